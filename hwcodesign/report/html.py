"""The simulate report on disk: `report.json` for tools and a self-contained `report.html` for people.

The page embeds its plots as base64 PNGs and its style inline, so it can be attached to an issue,
mailed or archived as a CI artifact and still open anywhere. Plots use `matplotlib.figure.Figure`
directly (Agg canvas, no pyplot), so rendering touches no global state and needs no display.
The folder is written like every output folder (`outputs.write_atomically`): staged, swapped into
place whole and signed with a manifest, so a reader (or a kill mid-write) never sees a half-written
report and `-o` never replaces a folder of the user's.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwcodesign.outputs import REPORT_KIND, write_atomically
from hwcodesign.report.summary import (
    ENGINE_LAYER_HEADERS,
    RESOURCE_LABELS,
    engine_label,
    engine_layer_rows,
    folding_label,
    format_summary,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LOG_SCALE_SPAN = 100  # cycles spanning more than this ratio get a log axis, or small layers vanish
BAR_COLOUR, BOTTLENECK_COLOUR, DMA_COLOUR, LIMIT_COLOUR = "#4c78a8", "#e45756", "#aaaaaa", "#333333"

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.bottleneck { background: #fde8e8; }
pre { background: #f7f7f7; padding: 0.8em; }
img { max-width: 100%; }
"""


def figure_to_data_uri(figure: Figure) -> str:
    """PNG bytes of `figure` as a data: URI (no software/date metadata, so output is reproducible)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def cycles_plot(report: dict[str, Any]) -> str:
    """Horizontal bar per layer in graph order, bottleneck layers in red: where the frame time goes.

    The input DMA is the Input layer's bar; the output DMA, which only the simulator prices, is
    drawn in grey after the layers, so an output-bound design shows up too.
    """
    from matplotlib.figure import Figure

    summary = report["summary"]
    engine = report.get("architecture") == "sequential"
    slowest = set(summary["bottleneck_layers"])
    names = [layer["name"] for layer in report["layers"]] + ([] if engine else ["DMA out"])
    cycles = [layer["cycles"] for layer in report["layers"]] + ([] if engine else [summary["dma_out_cycles"]])
    colours = [BOTTLENECK_COLOUR if layer["name"] in slowest else BAR_COLOUR for layer in report["layers"]]
    colours += [] if engine else [DMA_COLOUR]
    figure = Figure(figsize=(8, max(2.5, 0.3 * len(names) + 1.2)), layout="constrained")
    axes = figure.add_subplot()
    positive = [c for c in cycles if c > 0]
    log = bool(positive) and max(positive) > LOG_SCALE_SPAN * min(positive)
    if log:
        axes.set_xscale("log")
        # Bars start at a floor below the smallest value: on a log axis a bar from 0 is undefined.
        floor = min(positive) / 2
        axes.barh(range(len(names)), [max(c, floor) - floor for c in cycles], left=floor, color=colours)
    else:
        axes.barh(range(len(names)), cycles, color=colours)
    axes.set_yticks(range(len(names)), names, fontsize=8)
    axes.invert_yaxis()  # first layer on top, as in the table
    if engine:  # one layer at a time: the frame is the sum of the bars
        axes.set_xlabel("cycles per frame spent in the layer" + (", log scale" if log else ""))
        axes.set_title(f"cycles per layer (frame: {summary['interval_cycles']:,.0f} cycles)")
    else:
        axes.set_xlabel("initiation interval (cycles per frame)" + (", log scale" if log else ""))
        axes.set_title(f"cycles per layer (bottleneck: {summary['bottleneck_cycles']:,} cycles)")
    return figure_to_data_uri(figure)


def roofline_plot(report: dict[str, Any]) -> str:
    """The engine's roofline: each MAC instruction at its operational intensity (MACs per DDR byte)
    and the MACs a cycle it achieves, under the two roofs of one engine instance (PE x SIMD x PP lanes;
    the peak DDR bytes a cycle times the intensity). Points under the slope are memory-bound,
    under the flat roof compute-bound (`Roofline.bound`); pixel instructions (no MACs) are left out."""
    from matplotlib.figure import Figure

    summary = report["summary"]
    lanes, peak_bytes = summary["peak_macs_per_cycle"], summary["peak_ddr_bytes_per_cycle"]
    layers = [layer for layer in report["layers"] if layer["macs"] and layer["ddr_kb"] and layer["cycles"]]
    intensity = [layer["macs"] / (layer["ddr_kb"] * 1024) for layer in layers]
    achieved = [layer["macs"] / layer["cycles"] for layer in layers]
    figure = Figure(figsize=(7, 4.2), layout="constrained")
    axes = figure.add_subplot()
    axes.set_xscale("log")
    axes.set_yscale("log")
    low = min(intensity + [lanes / peak_bytes]) / 2
    high = max(intensity + [lanes / peak_bytes]) * 2
    knee = lanes / peak_bytes
    axes.plot([low, knee, high], [low * peak_bytes, lanes, lanes], color=LIMIT_COLOUR,
              label=f"roofs: {peak_bytes:g} B/cycle, {lanes:,} MACs/cycle")
    colours = [BOTTLENECK_COLOUR if layer["bound"] == "memory" else BAR_COLOUR for layer in layers]
    axes.scatter(intensity, achieved, c=colours, s=14)
    axes.set_xlabel("MACs per DDR byte")
    axes.set_ylabel("MACs per cycle achieved")
    left_out = len(report["layers"]) - len(layers)
    axes.set_title(f"roofline of one engine: {len(layers)} MAC layers\n(red memory-bound, blue compute-bound"
                   + (f"; {left_out} without MACs not drawn)" if left_out else ")"), fontsize=9)
    axes.legend(loc="lower right", fontsize=8)
    return figure_to_data_uri(figure)


def resources_plot(report: dict[str, Any]) -> str:
    """Used resources as percent of the board, with the mapper's cap drawn over each bar."""
    from matplotlib.figure import Figure

    entries = report["resources"]
    labels = [RESOURCE_LABELS.get(name, name) for name in entries]
    used = [entry["percent_of_board"] for entry in entries.values()]
    figure = Figure(figsize=(6, 3.5), layout="constrained")
    axes = figure.add_subplot()
    bars = axes.bar(range(len(labels)), used, color=BAR_COLOUR, width=0.6)
    axes.bar_label(bars, [f"{u:.1f}%" for u in used], fontsize=8)
    for x, entry in enumerate(entries.values()):
        if entry["limit"] is not None and entry["available"]:
            cap = entry["limit"] / entry["available"] * 100
            axes.hlines(cap, x - 0.4, x + 0.4, colors=LIMIT_COLOUR, linestyles="--",
                        label="mapping limit" if x == 0 else None)
    axes.set_xticks(range(len(labels)), labels)
    axes.set_ylim(0, 105)
    axes.set_ylabel("% of board")
    axes.set_title("resource use vs board")
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="upper right", fontsize=8)
    return figure_to_data_uri(figure)


def html_table(headers: list[str], rows: list[list[Any]], numeric: set[int],
               row_classes: list[str] | None = None) -> str:
    """An escaped HTML table; columns in `numeric` are right-aligned."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for index, row in enumerate(rows):
        cls = row_classes[index] if row_classes else ""
        cells = "".join(
            f'<td class="num">{html.escape(str(c))}</td>' if i in numeric else f"<td>{html.escape(str(c))}</td>"
            for i, c in enumerate(row)
        )
        body.append(f'<tr class="{cls}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def layer_rows(report: dict[str, Any]) -> list[list[Any]]:
    return [
        [layer["name"], layer["op"], folding_label(layer), f"{layer['cycles']:,}", layer["dsp"], layer["bram18k"],
         f"{layer['lut']:,}", f"{layer['ff']:,}", f"{layer['percent_of_bottleneck']:.1f}",
         "-" if layer["utilisation"] is None else f"{layer['utilisation']:.2f}"]
        for layer in report["layers"]
    ]


def render_html(report: dict[str, Any]) -> str:
    """The whole page as one string (summary, plots, layer and FIFO tables)."""
    model = report["model"]
    title = f"hwcodesign report: {model['name']} on {report['board']['name']}"
    # compiled projects leave the solver's wall-clock time out, so their files are reproducible
    solved = f", mapping solved in {report['solve_seconds']:.2f} s" if "solve_seconds" in report else ""
    slowest = set(report["summary"]["bottleneck_layers"])
    classes = ["bottleneck" if layer["name"] in slowest else "" for layer in report["layers"]]
    if report.get("architecture") == "sequential":
        layers = html_table(list(ENGINE_LAYER_HEADERS), engine_layer_rows(report), numeric={2, 3, 4, 6, 7, 8},
                            row_classes=classes)
        streams = ("<h2>Engine</h2>\n<p>An engine runs the layers one after another; feature maps and weights "
                   f"stay in DDR. {html.escape(engine_label(report['engine']))}.</p>")
        if "peak_macs_per_cycle" in report["summary"] and any(layer["macs"] for layer in report["layers"]):
            streams += f'\n<h2>Roofline</h2>\n<img alt="roofline" src="{roofline_plot(report)}">'
    else:
        layers = html_table(
            ["layer", "op", "folding", "II cycles", "DSP", "BRAM18K", "LUT", "FF", "% of bottleneck", "utilisation"],
            layer_rows(report), numeric=set(range(3, 10)), row_classes=classes,
        )
        fifos = html_table(
            ["producer", "consumer", "rows", "elements"],
            [[f["producer"], f["consumer"], f["rows"], f["elements"]] for f in report["fifos"]], numeric={2, 3},
        )
        streams = f"""<h2>FIFO depths</h2>
<p>Rows each stream must buffer so that back-pressure never stalls the pipeline (a single-consumer
input stream gets a short FIFO instead: the DMA simply waits).</p>
{fifos}"""
    source = f"<p>model file: <code>{html.escape(model['path'])}</code></p>" if model["path"] else ""
    host = host_html(report)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
{source}
<p>board part <code>{html.escape(report['board']['part'])}</code>, goal {html.escape(report['goal'])}{solved}</p>
<h2>Summary</h2>
<pre>{html.escape(format_summary(report))}</pre>
<h2>Cycles per layer</h2>
<img alt="cycles per layer" src="{cycles_plot(report)}">
<h2>Resources</h2>
<img alt="resource use vs board" src="{resources_plot(report)}">
<h2>Layers</h2>
{layers}
{streams}
{host}
</body>
</html>
"""


def host_html(report: dict[str, Any]) -> str:
    """The host parts' nodes, why each runs on the CPU, and the estimated time (empty without host parts)."""
    host = report.get("host")
    if not host:
        return ""
    rows = [[node["name"], label, node["reason"]] for label, part in host["parts"].items() for node in part["nodes"]]
    estimates = "".join(f"<li>{html.escape(label)} the accelerator: {part['flops']:,} FLOPs, about "
                        f"{part['estimated_ms']:.3f} ms ({html.escape(part['estimate'])})</li>"
                        for label, part in host["parts"].items())
    return f"""<h2>Host parts (the board's CPU)</h2>
<p>These nodes run in the driver on the board's CPU, before or after the accelerator; their time is
an estimate from operation counts and the board file's CPU figures, not a measurement.</p>
<ul>{estimates}</ul>
{html_table(["node", "runs", "why"], rows, numeric=set())}"""


def report_texts(report: dict[str, Any]) -> dict[str, str]:
    """File name -> text of `report.json` and `report.html` (for writers that stage files)."""
    json_text = json.dumps(report, indent=2, sort_keys=True, allow_nan=False) + "\n"
    return {"report.json": json_text, "report.html": render_html(report)}


def write_report(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write `report.json` and `report.html` as the folder `out_dir` (kind "report"); return their paths."""
    out_dir = Path(out_dir)
    write_atomically(out_dir, report_texts(report), kind=REPORT_KIND)
    return out_dir / "report.json", out_dir / "report.html"
