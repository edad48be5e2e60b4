"""What `hwcodesign search` writes: the chosen formats, the mixed model, search.json and a
report.html with the accuracy-proxy vs latency Pareto front.

Everything is computed before anything is written, and the folder is written as a temporary
sibling swapped into place, so a failed search never leaves a half-written folder.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import onnx

from hwcodesign.frontend.formats import with_weight_formats
from hwcodesign.mapper.precision import SearchResult, format_front
from hwcodesign.outputs import SEARCH_KIND, write_atomically
from hwcodesign.report.html import BAR_COLOUR, BOTTLENECK_COLOUR, STYLE, figure_to_data_uri, html_table

MIXED_SUFFIX = "_mixed.onnx"


def front_plot(summary: dict[str, Any]) -> str:
    """Sensitivity (log) against latency: the front, the chosen point and uniform int8."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.2), layout="constrained")
    axes = figure.add_subplot()
    front = summary["front"]
    floor = min([p["sensitivity"] for p in front if p["sensitivity"] > 0], default=1e-6) / 10
    xs = [p["latency_ms"] for p in front]
    ys = [max(p["sensitivity"], floor) for p in front]
    axes.step(xs, ys, where="post", color=BAR_COLOUR, alpha=0.5)
    axes.plot(xs, ys, "o", color=BAR_COLOUR, label="Pareto front (optimal per latency budget)")
    chosen = summary["chosen"]
    axes.plot([chosen["latency_ms"]], [max(chosen["sensitivity"], floor)], "*", markersize=16,
              color=BOTTLENECK_COLOUR, label="chosen")
    if summary.get("uniform_int8"):
        uniform = summary["uniform_int8"]
        axes.plot([uniform["latency_ms"]], [max(uniform["sensitivity"], floor)], "s", color="#333333",
                  label="uniform int8 (fastest)")
    axes.set_yscale("log")
    axes.set_xlabel("modelled latency per frame (ms, bottleneck interval)")
    axes.set_ylabel(f"accuracy proxy (sum of sensitivities; 0 drawn at {floor:.0e})")
    axes.set_title(f"mixed-precision search on {summary['board']}")
    axes.legend(fontsize=8)
    return figure_to_data_uri(figure)


def render_search_html(summary: dict[str, Any], model_name: str) -> str:
    rows = [[f"{p['fps']:,.1f}", f"{p['latency_ms']:.4f}", f"{p['sensitivity']:.3e}", p["resources"]["dsp"],
             p["resources"]["bram18k"], p["resources"]["lut"],
             ", ".join(f"{layer}: {fmt}" for layer, fmt in p["formats"].items())] for p in summary["front"]]
    sensitivity_rows = [[layer] + [f"{value:.3e}" for value in formats.values()]
                        for layer, formats in summary["sensitivities"].items()]
    fmt_names = list(next(iter(summary["sensitivities"].values())).keys())
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>hwcodesign search: {html.escape(model_name)}</title>
<style>{STYLE}</style></head><body>
<h1>Mixed-precision search: {html.escape(model_name)} on {html.escape(summary['board'])}</h1>
<p>Each point is the least-sensitive choice of weight formats and foldings (one integer program,
CBC-optimal for the cost model) within a latency budget. Sensitivity: relative output error of the
golden model against the uniform-int8 model on the calibration frames, summed over layers.</p>
<img src="{front_plot(summary)}" alt="Pareto front">
<h2>Front</h2>
{html_table(["fps", "latency ms", "sensitivity", "DSP", "BRAM18K", "LUT", "formats"], rows, {0, 1, 2, 3, 4, 5})}
<h2>Per-layer sensitivities</h2>
{html_table(["layer"] + fmt_names, sensitivity_rows, set(range(1, len(fmt_names) + 1)))}
</body></html>
"""


def write_search(result: SearchResult, model: onnx.ModelProto, model_path: Path, out_dir: Path) -> dict[str, Path]:
    """Write formats.json, <model>_mixed.onnx, search.json, front.txt and report.html into
    `out_dir`, swapped into place whole (`outputs.write_atomically`)."""
    summary = result.summary()
    names = {"formats": "formats.json", "model": model_path.stem + MIXED_SUFFIX,
             "summary": "search.json", "report": "report.html", "front": "front.txt"}
    formats = {"board": result.board.name, "target_fps": result.target_fps, "layers": summary["chosen"]["formats"]}
    files: dict[str, str | bytes] = {
        names["formats"]: json.dumps(formats, indent=2) + "\n",
        names["model"]: with_weight_formats(model, result.chosen.formats).SerializeToString(),
        names["summary"]: json.dumps(summary, indent=2) + "\n",
        names["report"]: render_search_html(summary, model_path.name),
        names["front"]: format_front(result) + "\n",
    }
    out_dir = Path(out_dir)
    write_atomically(out_dir, files, kind=SEARCH_KIND)
    return {key: out_dir / name for key, name in names.items()}
