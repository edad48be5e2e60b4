"""The simulate report as plain data: one dict that the terminal, JSON and HTML views all read.

Building the report once from (graph, mapping, latency) and rendering it several ways keeps the
views consistent: the HTML page and `report.json` cannot disagree with what the terminal printed.
The dict holds only JSON-native values (lists, str keys), so `json.loads(json.dumps(r)) == r`,
and nothing time-dependent except the solver's `solve_seconds`, so reports diff cleanly in CI.
"""

from __future__ import annotations

from typing import Any

from hwcodesign.hardware.engine.config import PARAMS_WORD_BITS
from hwcodesign.hardware.folding import RESOURCES
from hwcodesign.ir.graph import Graph
from hwcodesign.mapper.engine.cost import roofline
from hwcodesign.mapper.engine_map import EngineMapping
from hwcodesign.mapper.mapping import Mapping
from hwcodesign.report.host import host_lines
from hwcodesign.sim.latency import LatencyReport
from hwcodesign.sim.sparse_latency import SparseProfile
from hwcodesign.tables import format_table

RESOURCE_LABELS = {"dsp": "DSP", "bram18k": "BRAM18K", "uram": "URAM", "lut": "LUT", "ff": "FF"}


def percent(part: float, whole: float) -> float:
    """part / whole in percent; 0 when the whole is 0 (a board without that resource, an all-zero model)."""
    return part / whole * 100 if whole else 0.0


def bottleneck_layer(graph: Graph, mapping: Mapping) -> str:
    """The slowest stage; ties go to the first in graph order so the name is deterministic."""
    names = [op.name for op in graph]
    return max(names, key=lambda name: mapping.costs[name].cycles, default="")


def limited_by(latency: LatencyReport, bottleneck: str, bottleneck_cycles: int) -> str:
    """What sets the frame interval: the slowest stage (the input DMA is one), or the output DMA.

    The mapper prices the input transfer as the Input stage; the output transfer is only
    simulated, so a design whose results take longer to write back than a frame is output-bound.
    """
    return "dma_out" if latency.dma_out_cycles > bottleneck_cycles else bottleneck


def sparsity_section(mapping: Mapping, profile: SparseProfile | None) -> dict[str, Any]:
    section: dict[str, Any] = {"design_densities": dict(sorted(mapping.densities.items()))}
    if profile is not None:
        section["summary"] = profile.summary()
        section["frames"] = [{"latency_ms": f.latency_ms, "input_density": f.input_density,
                              "active_sites": dict(sorted(f.active_sites.items()))} for f in profile.frames]
    return section


def build_dataflow_report(graph: Graph, mapping: Mapping, latency: LatencyReport, model_path: str | None,
                          profile: SparseProfile | None = None) -> dict[str, Any]:
    """The report of a dataflow pipeline (`backends.build_report` builds either architecture's). A
    sparse network's report also holds its design densities and, with `profile`, each sample
    frame's latency and active sites beside the dense-equivalent latency."""
    board = mapping.board
    timings = {stage.name: stage for stage in latency.stages}
    bottleneck = bottleneck_layer(graph, mapping)
    bottleneck_cycles = mapping.bottleneck_cycles
    macs = graph.macs()
    weight_bits = sum(op.weight_bits() for op in graph)
    available = board.resources.as_dict()

    layers = []
    for op in graph:
        cost, folding, timing = mapping.costs[op.name], mapping.foldings[op.name], timings.get(op.name)
        layers.append({
            "name": op.name,
            "op": op.kind,
            "folding": {"pe": folding.pe, "simd": folding.simd, "mac": folding.mac, "output": folding.output,
                        "weights": folding.weights},
            **{field: cost.resource(field) for field in ("cycles", "depth", *RESOURCES)},
            "percent_of_bottleneck": percent(cost.cycles, bottleneck_cycles),
            "utilisation": timing.utilisation if timing else None,
            "first_output_cycle": timing.first_output if timing else None,
            "last_output_cycle": timing.last_output if timing else None,
        })

    resources = {}
    for resource in RESOURCES:
        used = mapping.total(resource)
        resources[resource] = {
            "used": used,
            "limit": mapping.limits.get(resource),
            "available": available[resource],
            "percent_of_board": percent(used, available[resource]),
        }

    report: dict[str, Any] = {
        "architecture": "dataflow",
        "model": {"name": graph.name, "path": model_path},
        "board": {"name": board.name, "part": board.part, "clock_mhz": board.clock_mhz},
        "goal": mapping.goal,
        "solve_seconds": mapping.solve_seconds,
        "summary": {
            "fps": latency.fps,
            "mapper_fps": mapping.fps,
            "latency_ms": latency.latency_ms,
            "interval_cycles": latency.interval_cycles,
            "bottleneck": bottleneck,
            "bottleneck_layers": [op.name for op in graph if mapping.costs[op.name].cycles == bottleneck_cycles],
            "bottleneck_cycles": bottleneck_cycles,
            "limited_by": limited_by(latency, bottleneck, bottleneck_cycles),
            "dma_in_cycles": latency.dma_in_cycles,
            "dma_out_cycles": latency.dma_out_cycles,
            "macs_per_frame": macs,
            "weight_bits": weight_bits,
            "model_size_mb": weight_bits / 8 / 1e6,
            "fifo_bram18k": latency.fifo_memory.bram18k,
            "fifo_lut": latency.fifo_memory.lut,
            "refold_lut": latency.refold_lut,
            "refold_ff": latency.refold_ff,
        },
        "resources": resources,
        "layers": layers,
        "fifos": [
            {"producer": producer, "consumer": consumer, "rows": rows,
             "elements": latency.fifo_elements.get((producer, consumer))}
            for (producer, consumer), rows in latency.fifo_rows.items()
        ],
    }
    if mapping.densities or profile is not None:
        report["sparsity"] = sparsity_section(mapping, profile)
    return report


def resource_entries(mapping: Mapping | EngineMapping) -> dict[str, dict[str, Any]]:
    available = mapping.board.resources.as_dict()
    return {
        resource: {
            "used": mapping.total(resource),
            "limit": mapping.limits.get(resource),
            "available": available[resource],
            "percent_of_board": percent(mapping.total(resource), available[resource]),
        }
        for resource in RESOURCES
    }


def build_engine_report(graph: Graph, mapping: EngineMapping, latency: LatencyReport,
                        model_path: str | None) -> dict[str, Any]:
    """The report of a layer-sequential engine: the same keys, layers as its instructions (the
    engine's resources are shared by all of them, so a layer has cycles, blocks and DDR traffic
    instead of its own DSP/BRAM). The timings are a run's (all `batch` frames of it): per-frame
    figures divide by the batch, per-layer ones are the run's."""
    board, config = mapping.board, mapping.config
    frame = max(mapping.frame_cycles, 1)
    slowest = max(mapping.timings, key=lambda t: t.cycles)
    macs = sum(t.macs for t in mapping.timings)
    ddr_bytes = sum(t.ddr_bytes for t in mapping.timings)
    batch = mapping.batch
    weight_bits = sum(op.weight_bits() for op in graph)
    memory = mapping.memory
    roofs = [roofline(t, config, memory) for t in mapping.timings]
    layers = [{
        "name": t.name, "op": t.kind, "blocks": t.blocks, "cycles": t.cycles, "macs": t.macs,
        "percent_of_frame": percent(t.cycles, frame), "mac_utilisation": roof.mac_utilisation,
        "ddr_kb": t.ddr_bytes / 1024, "bound": roof.bound, "ddr_utilisation": roof.ddr_utilisation,
    } for t, roof in zip(mapping.timings, roofs, strict=True)]
    memory_bound = sum(t.cycles for t, roof in zip(mapping.timings, roofs) if roof.bound == "memory")
    return {
        "architecture": "sequential",
        "model": {"name": graph.name, "path": model_path},
        "board": {"name": board.name, "part": board.part, "clock_mhz": board.clock_mhz},
        "goal": mapping.goal,
        "solve_seconds": mapping.solve_seconds,
        "engine": {"config": str(config), "pe": config.pe, "simd": config.simd, "rq_units": config.rq_units,
                   "ew_lanes": config.ew_lanes, "weight_depth": config.weight_depth, "word_bits": config.word_bits,
                   "packed_macs": config.packed_macs, "pp": config.pp, "uram": list(config.uram), "instances": mapping.instances, "batch": batch,
                   "alone_frame_cycles": mapping.alone_cycles,
                   "candidates": mapping.candidates, "reason": mapping.reason,
                   "input_windows": {op.output.name: op.window.to_json() for op in graph.inputs if op.window}},
        "summary": {
            "fps": latency.fps,
            "mapper_fps": mapping.fps,
            "latency_ms": latency.latency_ms,
            "interval_cycles": latency.interval_cycles,
            "bottleneck": slowest.name,
            "bottleneck_layers": [slowest.name],
            "bottleneck_cycles": slowest.cycles,
            "limited_by": "sequential",
            "dma_in_cycles": 0.0,
            "dma_out_cycles": 0.0,
            "macs_per_frame": macs // batch,
            "mac_utilisation": macs / (frame * config.macs_per_cycle),
            "weight_bits": weight_bits,
            "model_size_mb": weight_bits / 8 / 1e6,
            "ddr_mb_per_frame": ddr_bytes / batch / 1e6,
            "ddr_gbps": ddr_bytes / batch * latency.fps / 1e9,
            "peak_macs_per_cycle": config.macs_per_cycle,
            "peak_ddr_bytes_per_cycle": memory.peak_bytes,
            "memory_bound_percent": percent(memory_bound, frame),
        },
        "resources": resource_entries(mapping),
        "layers": layers,
        "fifos": [],
    }


def instances_lines(engine: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    """Why several engines: what one of them alone would do, and what sharing the DDR costs each;
    and what a run of several frames buys and costs."""
    instances, alone, batch = engine.get("instances", 1), engine.get("alone_frame_cycles", 0), engine.get("batch", 1)
    lines = []
    if batch > 1:
        lines.append(f"batch: each engine run holds {batch} frames, so an instruction's weights and records cross the "
                     f"DDR once per {batch} frames; every frame of a run waits for all of it "
                     f"({summary['latency_ms']:.2f} ms)")
    if instances > 1 and alone:
        run = summary["interval_cycles"] * instances * batch  # one instance's run among the others
        what = "a frame" if batch == 1 else f"a run of {batch} frames"
        lines.append(f"instances: one engine alone takes {alone:,} cycles {what}; each of the {instances} takes "
                     f"{run:,.0f} sharing the DDR, so together they finish a frame every "
                     f"{summary['interval_cycles']:,.0f} cycles ({alone / batch / summary['interval_cycles']:.2f}x one "
                     f"engine's throughput for {instances}x its resources)")
    return lines


def roofline_lines(summary: dict[str, Any]) -> list[str]:
    """The engine's roofline in a line: its two roofs and the share of the frame under each."""
    if "memory_bound_percent" not in summary:
        return []
    memory = summary["memory_bound_percent"]
    return [f"roofline: {memory:.0f}% of the frame in memory-bound layers (roof {summary['peak_ddr_bytes_per_cycle']:g} "
            f"DDR bytes a cycle per engine), {100 - memory:.0f}% compute-bound (roof "
            f"{summary['peak_macs_per_cycle']:,} MACs a cycle); per layer: 'bound', 'MAC util', 'DDR util'"]


def engine_label(engine: dict[str, Any]) -> str:
    """"layer-sequential engine PE.. SIMD.." and, with several, how many and where they sit."""
    instances, batch = engine.get("instances", 1), engine.get("batch", 1)
    label = f"layer-sequential engine {engine['config']}"
    if instances > 1:
        label += f" x {instances} instances (one per HP port, resources summed)"
    return label + (f", {batch} frames a run" if batch > 1 else "")


def folding_label(layer: dict[str, Any]) -> str:
    """"PE6 SIMD3" (plus " lut" for LUT MACs, " thr" for a threshold output stage, " lutram" for
    weights in LUTRAM); "-" for the input stream, which is not folded."""
    if layer["op"] == "Input":
        return "-"
    folding = layer["folding"]
    return f"PE{folding['pe']} SIMD{folding['simd']}" + (" lut" if folding["mac"] == "lut" else "") + \
        (" thr" if folding.get("output") == "thresholds" else "") + \
        (" lutram" if folding.get("weights") == "lutram" else "")


ENGINE_LAYER_HEADERS = ("layer", "unit", "blocks", "cycles", "% of frame", "bound", "MAC util", "DDR util", "DDR KB")
"""The engine's layer table (terminal and HTML): each instruction's cycles and its roofline."""


def engine_layer_rows(report: dict[str, Any]) -> list[list[Any]]:
    """One row per instruction under `ENGINE_LAYER_HEADERS`; "bound" is the roof it would hit
    first (`mapper.engine.cost.Roofline`), the utilisations how close it comes to each roof."""
    return [
        [layer["name"], layer["op"], layer["blocks"], f"{layer['cycles']:,}", f"{layer['percent_of_frame']:.1f}",
         layer.get("bound", "-"), f"{layer['mac_utilisation']:.2f}" if layer["macs"] else "-",
         f"{layer['ddr_utilisation']:.2f}" if "ddr_utilisation" in layer else "-", f"{layer['ddr_kb']:,.1f}"]
        for layer in report["layers"]
    ]


def format_engine_layer_table(report: dict[str, Any]) -> str:
    return format_table(ENGINE_LAYER_HEADERS, engine_layer_rows(report), right_align=(2, 3, 4, 6, 7, 8))


def format_layer_table(report: dict[str, Any]) -> str:
    """One row per layer: the folding the mapper chose and what it costs, slowest-relative."""
    if report.get("architecture") == "sequential":
        return format_engine_layer_table(report)
    headers = ("layer", "op", "folding", "II cycles", "DSP", "BRAM18K", "LUT", "% of bottleneck")
    rows = [
        (layer["name"], layer["op"], folding_label(layer), f"{layer['cycles']:,}", layer["dsp"],
         layer["bram18k"], f"{layer['lut']:,}", f"{layer['percent_of_bottleneck']:.1f}")
        for layer in report["layers"]
    ]
    return format_table(headers, rows, right_align=range(3, 8))


def format_summary(report: dict[str, Any]) -> str:
    """A few lines for the terminal: speed, what limits it, how full the board is, model size."""
    summary, board = report["summary"], report["board"]
    usage = ", ".join(
        f"{RESOURCE_LABELS[name]} {entry['used']:,}/{entry['available']:,} ({entry['percent_of_board']:.1f}%)"
        for name, entry in report["resources"].items()
    )
    if report.get("architecture") == "sequential":
        engine = report["engine"]
        instances = engine.get("instances", 1)
        pace = ("one layer at a time" if instances == 1 else
                f"{instances} engines each running one frame, one layer at a time: {instances} frames in flight")
        lines = [
            f"throughput: {summary['fps']:,.1f} fps at {board['clock_mhz']:g} MHz on {board['name']}"
            f" ({summary['interval_cycles']:,.0f} cycles per frame, {pace})",
            f"latency: {summary['latency_ms']:.4f} ms (a frame, from its input in DDR to its outputs in DDR)",
            f"architecture: {engine_label(engine)} ({engine['word_bits']}-bit feature-map and "
            f"{PARAMS_WORD_BITS}-bit params AXI masters; "
            f"best of {engine['candidates']} candidates)",
            f"slowest layer: {summary['bottleneck']} ({summary['bottleneck_cycles']:,} cycles); MAC utilisation "
            f"{summary['mac_utilisation']:.0%}",
            f"resources of board: {usage}",
            f"DDR: {summary['ddr_mb_per_frame']:.2f} MB per frame (feature maps, weights, records), "
            f"{summary['ddr_gbps']:.2f} GB/s at this frame rate",
            *roofline_lines(summary),
            f"model: {summary['model_size_mb']:.3f} MB of weights, {summary['macs_per_frame'] / 1e6:.2f} M MACs per frame",
        ]
        if engine["reason"]:
            lines.insert(2, f"why: {engine['reason']}")
        lines[3:3] = instances_lines(engine, summary)
        for name, window in engine.get("input_windows", {}).items():  # pass pack-input-window
            kh, kw = window["kernel"]
            lines.insert(3, f"input '{name}': the host packs the first layer's {kh}x{kw} window of its "
                         f"{window['frame'][0]}-channel frame into {window['frame'][0] * kh * kw} channels (pack-input-window)")
        return "\n".join(lines + host_lines(report) + note_lines(report))
    limit = summary["limited_by"]
    limit_note = "" if limit == summary["bottleneck"] else f" (interval set by {limit})"
    return "\n".join([
        f"throughput: {summary['fps']:,.1f} fps at {board['clock_mhz']:g} MHz on {board['name']}"
        f" ({summary['interval_cycles']:,.0f} cycles per frame){limit_note}",
        f"latency: {summary['latency_ms']:.4f} ms (first frame, DMA in to DMA out)",
        f"bottleneck: {summary['bottleneck']} ({summary['bottleneck_cycles']:,} cycles)",
        f"resources of board: {usage}",
        f"streams: FIFOs planned by the simulation {summary['fifo_bram18k']} BRAM18K, {summary['fifo_lut']:,} LUT "
        f"(in the layers' totals above); width converters {summary['refold_lut']:,} LUT, "
        f"{summary['refold_ff']:,} FF (in the totals)",
        f"model: {summary['model_size_mb']:.3f} MB of weights, {summary['macs_per_frame'] / 1e6:.2f} M MACs per frame",
    ] + sparsity_lines(report) + host_lines(report) + note_lines(report))


def note_lines(report: dict[str, Any]) -> list[str]:
    """The mapper's note (a design not proven optimal when the time limit ran out)."""
    return [f"note: {report['note']}"] if report.get("note") else []


def sparsity_lines(report: dict[str, Any]) -> list[str]:
    """A sparse network's design densities and, for sample frames, latency by density."""
    sparsity = report.get("sparsity")
    if not sparsity:
        return []
    densities = sparsity["design_densities"].values()
    lines = [f"sparse: sized for design densities {min(densities):.1%} to {max(densities):.1%} of sites "
             f"(the throughput above holds for frames up to them)"]
    if "summary" in sparsity:
        s = sparsity["summary"]
        lines.append(f"sparse: {s['frames']} sample frames at input density {s['input_density_mean']:.1%} "
                     f"(max {s['input_density_max']:.1%}): latency median {s['latency_ms_median']:.4f} ms, "
                     f"p95 {s['latency_ms_p95']:.4f} ms; the same hardware on a fully active frame "
                     f"{s['dense_latency_ms']:.4f} ms")
    return lines
