"""The simulate report: one dict built from graph, mapping and simulated latency (per architecture:
`build_dataflow_report`, `build_engine_report`; `backends.build_report` picks), rendered as text,
JSON and HTML."""

from hwcodesign.report.html import report_texts, write_report
from hwcodesign.report.summary import (
           build_dataflow_report,
           build_engine_report,
           format_layer_table,
           format_summary,
)

__all__ = ["build_dataflow_report", "build_engine_report", "format_layer_table", "format_summary", "report_texts",
           "write_report"]
