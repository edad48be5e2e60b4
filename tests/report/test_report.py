"""The simulate report: its numbers agree with the mapping and simulation, and every view shows them."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import pytest
from support.qdq_by_hand import conv_bn_relu_qdq

from hwcodesign.backends import build_report, map_to_board, simulate
from hwcodesign.boards import load_board
from hwcodesign.hardware.folding import RESOURCES
from hwcodesign.outputs import MANIFEST_FILE
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.report import format_layer_table, format_summary, write_report
from hwcodesign.report.html import cycles_plot
from hwcodesign.sim.latency import LatencyReport


@pytest.fixture(scope="module")
def simulated() -> tuple[Any, Any, LatencyReport]:
    graph = optimize(load_onnx(conv_bn_relu_qdq()))
    mapping = map_to_board(graph, load_board("ultra96v2"))
    return graph, mapping, simulate(graph, mapping)


@pytest.fixture(scope="module")
def report(simulated) -> dict[str, Any]:
    return build_report(*simulated, model_path="conv_bn_relu.onnx")


def test_json_round_trips(report: dict[str, Any], tmp_path: Path) -> None:
    json_path, html_path = write_report(report, tmp_path / "new" / "dir")
    assert json_path.name == "report.json" and html_path.name == "report.html"
    assert json.loads(json_path.read_text()) == report
    assert sorted(p.name for p in json_path.parent.iterdir()) == [MANIFEST_FILE, "report.html", "report.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert json_path.stat().st_mode & 0o777 == 0o666 & ~umask  # like open(), not tempfile's 0o600


def test_numbers_are_consistent(simulated, report: dict[str, Any]) -> None:
    graph, mapping, latency = simulated
    assert [layer["name"] for layer in report["layers"]] == [op.name for op in graph]
    for resource in RESOURCES:
        entry = report["resources"][resource]
        converters = mapping.reserved.get(resource, 0)  # width converters: in the totals, not in a layer
        assert sum(layer[resource] for layer in report["layers"]) + converters == entry["used"] == mapping.total(resource)
        assert entry["limit"] == mapping.limits[resource]
        assert entry["percent_of_board"] == pytest.approx(entry["used"] / max(entry["available"], 1) * 100)
    summary = report["summary"]
    bottleneck = next(layer for layer in report["layers"] if layer["name"] == summary["bottleneck"])
    assert bottleneck["cycles"] == mapping.bottleneck_cycles
    assert bottleneck["percent_of_bottleneck"] == 100
    assert all(layer["percent_of_bottleneck"] <= 100 for layer in report["layers"])
    assert summary["fps"] == latency.fps
    assert summary["latency_ms"] == latency.latency_ms
    assert summary["weight_bits"] == sum(op.weight_bits() for op in graph)
    assert summary["model_size_mb"] == summary["weight_bits"] / 8 / 1e6
    assert summary["macs_per_frame"] == 6 * 3 * 3 * 3 * 10 * 10  # the 3x3 conv, 3 -> 6 channels, 10x10
    assert len(report["fifos"]) == len(latency.fifo_rows)


def test_report_is_deterministic(simulated, report: dict[str, Any]) -> None:
    again = build_report(*simulated, model_path="conv_bn_relu.onnx")
    assert json.dumps(again, sort_keys=True) == json.dumps(report, sort_keys=True)


def test_html_is_self_contained(report: dict[str, Any], tmp_path: Path) -> None:
    _, html_path = write_report(report, tmp_path)
    page = html_path.read_text()
    assert page.count("data:image/png;base64,") == 2
    for layer in report["layers"]:
        assert f"<td>{layer['name']}</td>" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_html_escapes_layer_names(report: dict[str, Any], tmp_path: Path) -> None:
    hostile = json.loads(json.dumps(report))
    hostile["layers"][-1]["name"] = "<b>conv&1</b>"
    _, html_path = write_report(hostile, tmp_path)
    page = html_path.read_text()
    assert "&lt;b&gt;conv&amp;1&lt;/b&gt;" in page and "<b>conv" not in page


def test_text_views(report: dict[str, Any]) -> None:
    table = format_layer_table(report).splitlines()
    assert len(table) == 2 + len(report["layers"])  # header, rule, one row per layer
    assert table[0].split()[:3] == ["layer", "op", "folding"]
    for line, layer in zip(table[2:], report["layers"]):
        assert line.startswith(layer["name"])
    bottleneck_row = next(line for line in table[2:] if line.startswith(report["summary"]["bottleneck"]))
    assert bottleneck_row.endswith("100.0")
    text = format_summary(report)
    assert report["summary"]["bottleneck"] in text and "fps" in text and "MB" in text
    for label in ("DSP", "BRAM18K", "LUT", "FF"):
        assert label in text


def test_cycles_plot_switches_to_log_axis_without_warnings(report: dict[str, Any]) -> None:
    """A 1000x spread (and the 0-cycle input stage) must still plot cleanly on a log axis."""
    wide = json.loads(json.dumps(report))
    wide["layers"][-1]["cycles"] *= 1000
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cycles_plot(wide).startswith("data:image/png;base64,")
        assert cycles_plot(report).startswith("data:image/png;base64,")
