"""The host parts in the report: which nodes run on the board's CPU, why, and for how long.

The accelerator's time is simulated; the host's cannot be measured without the board, so it is
an estimate from each part's operation count and the board's CPU figures (`sim/host_time.py`,
`boards/*.toml` `[cpu]`), and the report says so. The driver's `benchmark()` measures both on the
board. The driver runs the host parts and the accelerator one after the other (no overlap), so
the whole model's frame time is their sum.
"""

from __future__ import annotations

from typing import Any

from hwcodesign.boards import Board
from hwcodesign.host.program import numpy_missing
from hwcodesign.partition import AFTER, BEFORE, Partition
from hwcodesign.sim.host_time import estimate_host_seconds


def host_section(partition: Partition, board: Board, summary: dict[str, Any]) -> dict[str, Any]:
    """The report's `host` entry: the placement, each part's estimate and the whole model's figures."""
    placement = partition.placement
    parts = {}
    for label, place, model in (("before", BEFORE, partition.pre), ("after", AFTER, partition.post)):
        if model is None:
            continue
        estimate = estimate_host_seconds(model, board.cpu)
        parts[label] = {
            "nodes": [{"name": name, "reason": placement.reasons.get(name, "")} for name in placement.nodes(place)],
            "flops": estimate.flops,
            "estimated_ms": estimate.seconds * 1e3,
            "estimate": estimate.describe(),
            "cpu": f"one {board.cpu.core} core at {board.cpu.clock_mhz:g} MHz",
            "numpy_missing": numpy_missing(model),  # ops the driver's numpy executor lacks: onnxruntime needed
        }
    host_ms = sum(part["estimated_ms"] for part in parts.values())
    accelerator_ms = 1e3 / summary["fps"] if summary["fps"] else 0.0
    return {
        "parts": parts,
        "state": [{"input": p.input, "output": p.output, "shape": list(p.shape)} for p in partition.state],
        "host_ms_estimate": host_ms,
        "end_to_end_latency_ms_estimate": summary["latency_ms"] + host_ms,
        "end_to_end_fps_estimate": 1e3 / (accelerator_ms + host_ms) if accelerator_ms + host_ms else 0.0,
    }


def host_lines(report: dict[str, Any]) -> list[str]:
    """The summary's lines on the host parts (none for a model that is all accelerator)."""
    host = report.get("host")
    if not host:
        return []
    lines = []
    for label, part in host["parts"].items():
        names = ", ".join(node["name"] for node in part["nodes"][:4]) + (", ..." if len(part["nodes"]) > 4 else "")
        lines.append(f"host {label} the accelerator: {len(part['nodes'])} node(s) ({names}), "
                     f"{part['flops']:,} FLOPs, about {part['estimated_ms']:.3f} ms (estimated for {part['cpu']}, "
                     "not measured: report.json says from what)")
    missing = sorted({op for part in host["parts"].values() for op in part["numpy_missing"]})
    if missing:
        lines.append(f"host ops the driver's numpy executor does not implement: {', '.join(missing)}; "
                     "the board needs onnxruntime for them (pip install onnxruntime on the board image)")
    if host["state"]:
        lines.append("host state carried across frames: " + ", ".join(
            f"{s['input']} <- {s['output']} {'x'.join(map(str, s['shape']))}" for s in host["state"]))
    lines.append(f"whole model (estimate: host and accelerator in turn): latency about "
                 f"{host['end_to_end_latency_ms_estimate']:.3f} ms, {host['end_to_end_fps_estimate']:,.1f} fps")
    return lines
