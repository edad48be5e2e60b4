"""Loop trip counts of the dataflow stages: what the cost model says a stage's pipelined loops run
per frame, and what the generated stage's loops run (read off its config), for
tests/codegen/test_dataflow_loop_counts.py, which holds both against the iterations the C
simulation counts (`counted_loops`, HWC_COUNT_LOOPS in templates/hls/layers/hwc_common.h).

`expected_loop_trips` is the stage plan's (the cost model's loops); `template_loop_trips` replays the templates' loop
bounds; the test holds both equal to the counted iterations.
"""

from __future__ import annotations

import re
from pathlib import Path

from hwcodesign.codegen.project import Project
from hwcodesign.hardware.ctext import c_type, identifier
from hwcodesign.hardware.units import PIPELINE_RAMP
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.op import Input, Op
from hwcodesign.ir.stream_layout import layout_of
from hwcodesign.ir.types import Tensor
from hwcodesign.mapper.cost import Folding, candidate_foldings, stage_plan
from hwcodesign.ops import (
    Act,
    Add,
    ChannelPermute,
    ChannelSlice,
    Concat,
    Conv,
    DeformConv,
    GlobalAvgPool,
    Linear,
    Lookup,
    Mul,
    Pool,
    Resize,
)


def expected_loop_trips(op: Op, inputs: list[Tensor], folding: Folding) -> int:
    """The stage plan's loop iterations of `op`'s stage per frame (`StagePlan.loop_trips`: the
    cost model's cycles are these plus the pipeline ramps its family documents)."""
    return stage_plan(op, inputs, folding).loop_trips


def model_cycles(op: Op, inputs: list[Tensor], folding: Folding) -> int:
    """What the cost model's cycles of a dense stage are: its loops' iterations (for a concat's
    chain of concurrent links the last, slowest one's), plus a pipeline ramp per pixel for a
    pointwise conv run pixel by pixel (each pixel a row of its loop nest)."""
    plan = stage_plan(op, inputs, folding)
    loops = sum(plan.step_trips)
    if not isinstance(op, Concat):
        assert loops == plan.loop_trips, f"{op.name}: the steps' iterations add up to the stage's"
    return loops + (op.output.shape[2] * op.output.shape[3] * PIPELINE_RAMP if plan.pixel_ring else 0)


def axis_loop_trips(project: Project, op: Op) -> int:
    """hwc_axis_to_pixels' loop bound (`hwc_axis_frame::STEPS`): one iteration per pixel where
    pixels share words, else one per stream word."""
    layout = layout_of(op.output.shape, op.output.dtype, int(project.meta["word_bits"]))
    return layout.pixels if layout.pixels_per_word > 1 else layout.words_per_frame


def stage_names(project: Project, graph: Graph, op: Op) -> list[str]:
    """The counters of `op`'s stage: its layer identifier (a Concat of n parts: its n-1 links
    ident_0 ... ident_n-2), or for an Input the tag of its adapter's template arguments."""
    if isinstance(op, Input):
        return [f"hwc_axis_in_loops<{project.meta['word_bits']}, {c_type(op.output.dtype)}, {op.output.channels}, "
                f"{axis_loop_trips(project, op)}>"]
    ident = identifier(op.name, list(graph).index(op))
    parts = len(graph.input_tensors(op))
    return [ident] if not isinstance(op, Concat) or parts == 2 else [f"{ident}_{k}" for k in range(parts - 1)]


def counted_trips(counted: dict[str, int], names: list[str]) -> int:
    """The stage's counted iterations (a chain's links summed)."""
    return sum(counted[name] for name in names)


def stage_config(project: Project, ident: str) -> dict[str, int]:
    """The integer constants of a layer's config (hls/params/<ident>.h), outermost first."""
    text = Path(project.hls_dir() / "params" / f"{ident}.h").read_text()
    config: dict[str, int] = {}
    for name, value in re.findall(r"static const int (\w+) = (-?\d+);", text):
        config.setdefault(name, int(value))
    return config


def window_row_trips(c: dict[str, int], work: int, drain: int) -> int:
    """hwc_conv / hwc_channelwise / hwc_deform: the fill loop reads the rows output row 0 needs,
    then each output row's steps loop runs max(work + the output stages' drain, words read ahead
    for the next row) (hwc_window.h; a deformable window starts OFFSET_RANGE rows higher)."""
    words_per_row = c["IN_W"] * (c["IN_C"] // c["IN_LANES"])

    def rows_needed(oy: int) -> int:
        if oy >= c["OUT_H"]:
            return c["IN_H"]
        top = oy * c["STRIDE_H"] - c["PAD_T"] - c.get("OFFSET_RANGE", 0)
        return min(max(top + c["WINDOW_ROWS"], 0), c["IN_H"])

    ahead = [(rows_needed(oy + 1) - rows_needed(oy)) * words_per_row for oy in range(c["OUT_H"])]
    return rows_needed(0) * words_per_row + sum(max(work + drain, words) for words in ahead)


def template_loop_trips(project: Project, graph: Graph, op: Op, folding: Folding) -> int:
    """Iterations the generated stage's pipelined loops run per frame, from its loop bounds."""
    out = op.output
    pixels, folds = out.shape[2] * out.shape[3], -(-out.channels // folding.pe)
    if isinstance(op, Input):
        return axis_loop_trips(project, op)
    if isinstance(op, Act | Add | Concat | Lookup):  # one iteration per output word
        return pixels * folds
    if isinstance(op, Mul):  # a gate word per channel fold (hwc_mul_gate), then one per output word
        return pixels * folds + (folds if op.broadcast else 0)
    source = graph.input_tensors(op)[0]
    if isinstance(op, GlobalAvgPool):  # accumulate per input word, then emit per output word
        return source.shape[2] * source.shape[3] * folds + folds
    c = stage_config(project, stage_names(project, graph, op)[0])
    if isinstance(op, ChannelSlice):  # hwc_channel_slice: one iteration per input word
        return c["IN_PIXELS"] * (c["IN_C"] // c["PE"])
    if isinstance(op, ChannelPermute):  # hwc_channel_permute: a pixel's words per pixel, and one more to drain
        return (c["IN_PIXELS"] + 1) * (c["OUT_C"] // c["PE"])
    if isinstance(op, Resize):  # per input row: max(scaled row's words out, next row's words in)
        words_per_row = c["IN_W"] * (c["IN_C"] // c["IN_LANES"])
        work = c["SCALE_H"] * c["OUT_W"] * (c["OUT_C"] // c["PE"])
        return words_per_row + sum(max(work, words_per_row if iy + 1 < c["IN_H"] else 0) for iy in range(c["IN_H"]))
    if isinstance(op, DeformConv):
        taps = c["KH"] * c["KW"] * (1 if c["DEPTHWISE"] else c["IN_C"] // c["GROUPS"])
        return window_row_trips(c, c["OUT_W"] * (c["OUT_C"] // c["PE"]) * (taps // c["SIMD"]),
                                -(-c["PE"] // c["RQ_UNITS"]))
    taps_folds = c["ROW_LENGTH"] // c["SIMD"] if isinstance(op, Conv | Linear) and "ROW_LENGTH" in c \
        else c["KH"] * c["KW"] // c["SIMD"]
    if isinstance(op, Pool | Conv | Linear):
        work = c["OUT_W"] * (c["OUT_C"] // c["PE"]) * taps_folds
        return window_row_trips(c, work, -(-c["PE"] // c["RQ_UNITS"]))
    raise NotImplementedError(type(op).__name__)


def middle_folding(graph: Graph, op: Op) -> Folding:
    """The middle one of the layer's `candidate_foldings` (ordered by MAC lanes)."""
    options = candidate_foldings(op, graph.input_tensors(op))
    return options[len(options) // 2]
