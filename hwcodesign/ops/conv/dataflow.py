"""Convolutions and fully connected layers as dataflow stages (templates/hls/layers/hwc_conv.h).

A stage with PE output-channel lanes and SIMD input lanes computes PE x SIMD MACs per cycle
with an II=1 loop, as FINN's MVAU/SWG do. SIMD walks the im2col row of a pixel: up to the input
channels it parallelises channels, beyond them whole kernel taps (so an RGB stem can still be
unrolled; the ring then needs one read port per tap). A Linear is a conv whose window is its
whole input. A pointwise conv (1x1, stride 1, no padding) with enough steps per pixel runs
pixel by pixel: the same template with the frame viewed as H*W rows of one pixel, a ring of two
pixels instead of two rows (`pixel_ring`).
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np

from hwcodesign.hardware.ctext import (
    WEIGHT_MEMORY_CODES,
    Stage,
    bias_type,
    c_type,
    mac_tables,
    magnitude,
    output_stage,
    require,
    struct,
    weight_memory,
)
from hwcodesign.hardware.folding import Folding, LayerCost, divisors, with_weight_memories
from hwcodesign.hardware.stage_cost import channel_constants, mac_stage_cost, ring_buffer, weight_rom
from hwcodesign.hardware.stream import input_words
from hwcodesign.hardware.units import (
    PIPELINE_RAMP,
    dsp_macs_possible,
    lut_macs_possible,
    requant_units,
    xnor_macs,
)
from hwcodesign.hardware.window import (
    pixels_as_rows,
    row_steps,
    span_rows,
    window_constants,
    window_fill,
    window_loop,
    window_needs,
)
from hwcodesign.ir.requant import Requant, as_thresholds, signed_bits, thresholds_possible
from hwcodesign.ir.types import Tensor
from hwcodesign.ops.conv.ir import Conv, Linear
from hwcodesign.ops.facets.dataflow import (
    CostTarget,
    DataflowFacet,
    PerOp,
    StageCode,
    StagePlan,
    StageWiring,
    dense_only,
    loop_steps,
    reducing_emits,
    row_emits,
)

PIXEL_RING_MIN_STEPS = 8 * PIPELINE_RAMP
"""A pointwise conv runs pixel by pixel only with this many steps per pixel: each pixel is then a
row of the loop nest and pays the loop's pipeline ramp."""


def conv_geometry(op: Conv, source: Tensor, pixelwise: bool, window_rows: int, ring_rows: int) -> dict[str, int]:
    """The window the template runs; a pixel-by-pixel conv sees the frame as H*W rows of one pixel
    (its window one row, its ring two)."""
    if pixelwise:
        return window_constants(pixels_as_rows(source), pixels_as_rows(op.output), (1, 1), (1, 1), (0, 0, 0, 0), (1, 1),
                                window_rows, ring_rows)
    return window_constants(source, op.output, op.kernel, op.stride, op.pads, op.dilation, window_rows, ring_rows)


def linear_geometry(op: Linear, source: Tensor, window_rows: int, ring_rows: int) -> dict[str, int]:
    """A fully connected layer's window: its whole input."""
    return window_constants(source, op.output, source.shape[2:], (1, 1), (0, 0, 0, 0), (1, 1), window_rows, ring_rows)


def pixel_ring(op: Conv, folding: Folding, source: Tensor) -> bool:
    """Whether a pointwise conv (1x1, stride 1, no padding) runs pixel by pixel."""
    if op.kernel != (1, 1) or op.stride != (1, 1) or any(op.pads):
        return False
    steps = (op.out_channels // folding.pe) * (source.channels // op.groups) // folding.simd
    return steps >= PIXEL_RING_MIN_STEPS


def with_lut_macs(op: Conv | Linear, source: Tensor, options: list[Folding]) -> list[Folding]:
    """The foldings again with LUT MACs, where the operands are narrow enough; only those for
    an XNOR stage (a binarised layer never takes DSPs)."""
    luts = [Folding(f.pe, f.simd, "lut") for f in options] if lut_macs_possible(op.weight_type, source.dtype.bits) else []
    return luts if not dsp_macs_possible(op.weight_type, source.dtype) else options + luts


def with_output_choices(op: Conv | Linear, options: list[Folding]) -> list[Folding]:
    """The foldings again with a threshold output stage where the output has few enough levels
    (`requant.as_thresholds`): comparators instead of a DSP multiplier, for the mapper to weigh."""
    if thresholds_possible(op.requant):
        return options + [replace(f, output="thresholds") for f in options]
    return options


def row_length(op: Conv | Linear, source: Tensor) -> int:
    """The im2col row one output channel reads: its group's channels x kernel taps (a Linear: its
    whole input)."""
    if isinstance(op, Linear):
        return source.elements_per_frame
    return source.channels // op.groups * op.kernel[0] * op.kernel[1]


def weight_depth(op: Conv | Linear, source: Tensor, folding: Folding) -> int:
    """Words of one PE's weight ROM: its output channels' im2col rows, SIMD weights a word."""
    return op.out_channels // folding.pe * (row_length(op, source) // folding.simd)


def with_memories(op: Conv | Linear, source: Tensor, options: list[Folding]) -> list[Folding]:
    """The foldings in each weight memory worth offering for their ROMs (`memory.weight_memories`)."""
    return with_weight_memories(options, lambda f: weight_rom(f, op.weight_type, weight_depth(op, source, f)))


def accumulator_bound(op: Conv | Linear, source: Tensor) -> int:
    """The largest |accumulator| the stage can reach: every product at its largest, plus the bias."""
    length = op.weight[0].size
    return magnitude(source) * int(np.abs(op.weight).max(initial=0)) * length + int(np.abs(op.bias).max(initial=0))


@lru_cache(maxsize=1 << 12)
def threshold_form(op: Conv | Linear, source: Tensor) -> Requant | None:
    """`requant.as_thresholds` of the layer's output stage, searched once per layer rather than
    once per candidate folding (IR ops compare by identity and never change)."""
    return as_thresholds(op.requant, accumulator_bound(op, source))


def stage_requant(op: Conv | Linear, source: Tensor, folding: Folding) -> Requant:
    """The output stage the folding builds: the op's multiply-and-shift, or the same function as
    thresholds over every reachable accumulator (what the cost model prices and the code emits)."""
    if folding.output == "thresholds":
        thresholds = threshold_form(op, source)
        if thresholds is not None:
            return thresholds
    return op.requant


def xnor_stage(op: Conv | Linear, source: Tensor) -> bool:
    """Whether the stage's lanes are XNORs and a popcount: both operands bipolar, and no zero
    padding (a padded tap is 0, neither -1 nor +1, so a padded window keeps the generic MAC)."""
    return xnor_macs(op.weight_type, source.dtype) and not any(getattr(op, "pads", ()))


def loops(view: dict[str, int], source: Tensor, out_channels: int, length: int, folding: Folding, lanes: int,
          rows_per_step: int = 1) -> dict:
    """The plan's loop terms of a MAC stage over the window `view` (its config geometry), counting
    hwc_conv.h's loops: words of a frame; the `fill` loop (hwc_ring_fill: the input rows output
    row 0 needs, IN_W x IN_C / IN_LANES words each); per output row the `steps` loop, which runs
    max(OUT_W x out_channels / PE x length / SIMD MAC steps + the drain of the shared output
    stages, ceil(PE / RQ_UNITS) steps after the row's last MAC, words of the rows the next output
    row adds); loop_trips = fill + every row's steps; per simulation step `rows_per_step` rows."""
    steps_per_pixel = (out_channels // folding.pe) * (length // folding.simd)
    drain = -(-folding.pe // requant_units(folding.pe, length // folding.simd))
    fill_words, rows = window_loop(view["OUT_H"], view["IN_H"], view["IN_W"], view["STRIDE_H"],
                                   view["WINDOW_ROWS"] - view["PAD_T"], view["IN_C"] // lanes,
                                   view["OUT_W"] * steps_per_pixel + drain)
    return dict(input_words=input_words(source, lanes), fill_words=fill_words, loop_trips=fill_words + sum(rows),
                step_trips=loop_steps(fill_words, rows, rows_per_step),
                row_steps=row_steps(view["OUT_W"], steps_per_pixel, drain, view["STRIDE_H"], view["IN_W"], view["IN_C"],
                                    lanes))


def mac_cost(op: Conv | Linear, source: Tensor, folding: Folding, plan: StagePlan, target: CostTarget, *,
             pixels: int, taps: int, in_per_group: int) -> LayerCost:
    """cycles = the stage's loop iterations (`loops`: the fill, then per output row its
    output_pixels x groups x (out_per_group / PE) x (in_per_group x kh x kw / SIMD) MAC steps and
    the output drain, or the input words read meanwhile if more), plus a pipeline ramp per pixel
    for a pointwise conv run pixel by pixel (each pixel a row of its loop nest)."""
    pe, simd = folding.pe, folding.simd
    folds_per_output = in_per_group * taps // simd
    cycles = sum(plan.step_trips)
    if plan.pixel_ring:  # every pixel is a row of the stage's loop nest: one pipeline ramp each
        cycles += pixels * PIPELINE_RAMP
    row_pixels = 1 if plan.pixel_ring else source.shape[3]
    buffer = ring_buffer(plan.ring_rows, row_pixels, source, plan.input_lanes[0], max(1, simd // in_per_group))
    requant = stage_requant(op, source, folding)
    constants = channel_constants(op.bias, requant, op.out_channels, requant_units(pe, folds_per_output))
    return mac_stage_cost(folding, op.weight_type, source.dtype.bits, target.ps_type, cycles=cycles,
                          depth=plan.fill_cycles + (cycles // max(pixels, 1)) + 12,
                          weight_depth=weight_depth(op, source, folding),
                          folds_per_output=folds_per_output, constants=constants, buffer=buffer,
                          requant=requant, xnor=xnor_stage(op, source))


class ConvDataflow(DataflowFacet):
    """A standard or grouped conv; pointwise ones with many steps per pixel run pixel by pixel."""

    def candidate_foldings(self, op: Conv, inputs: list[Tensor]) -> list[Folding]:
        """PE dividing the outputs per group; SIMD dividing the im2col row in whole channel groups
        or whole taps; LUT MACs where they fit, threshold outputs where few levels, LUTRAM weights
        where a real trade-off."""
        dense_only(op, inputs)
        in_per_group = inputs[0].channels // op.groups
        length = row_length(op, inputs[0])
        whole = [s for s in divisors(length) if in_per_group % s == 0 or s % in_per_group == 0]
        shapes = [Folding(pe, simd) for pe in divisors(op.out_channels // op.groups) for simd in whole]
        return with_memories(op, inputs[0], with_output_choices(op, with_lut_macs(op, inputs[0], shapes)))

    def plan(self, op: Conv, inputs: list[Tensor], folding: Folding) -> StagePlan:
        dense_only(op, inputs)
        source = inputs[0]
        lanes = min(folding.simd, source.channels // op.groups)
        pixelwise = pixel_ring(op, folding, source)
        length = row_length(op, source)
        window = span_rows(op.kernel[0], op.dilation[0])
        ring = window + op.stride[0]  # the rows the next output row adds stream in meanwhile
        terms = loops(conv_geometry(op, source, pixelwise, window, ring), source, op.out_channels, length, folding, lanes,
                      source.shape[3] if pixelwise else 1)
        out_rows, in_rows = op.output.shape[2], source.shape[2]
        needs = window_needs(out_rows, in_rows, op.stride[0], op.pads[0], (op.kernel[0] - 1) * op.dilation[0])
        fill = window_fill(window, source.shape[3], -(-source.channels // lanes)) if window > 1 else 0
        return StagePlan((lanes,), folding.pe, window_rows=window, ring_rows=ring, held_rows=1 if pixelwise else ring,
                         pixel_ring=pixelwise, fill_cycles=fill, fifo_rows=0, steps=out_rows, emits=row_emits(out_rows),
                         needs=(needs,), **terms)

    def cost(self, op: Conv, inputs: list[Tensor], folding: Folding, plan: StagePlan, target: CostTarget) -> LayerCost:
        source = inputs[0]
        return mac_cost(op, source, folding, plan, target, pixels=op.output.shape[2] * op.output.shape[3],
                        taps=op.kernel[0] * op.kernel[1], in_per_group=source.channels // op.groups)

    def stage(self, op: Conv, wiring: StageWiring, folding: Folding, plan: StagePlan) -> StageCode:
        view = conv_geometry(op, wiring.sources[0], plan.pixel_ring, plan.window_rows, plan.ring_rows)
        return StageCode.of(conv_stage(op, wiring, folding, plan, op.groups, view))


class LinearDataflow(DataflowFacet):
    """A fully connected layer: a conv whose window is its whole input (a ring of its rows and
    one more); the simulator steps through its input rows, the output appearing after the last."""

    def candidate_foldings(self, op: Linear, inputs: list[Tensor]) -> list[Folding]:
        dense_only(op, inputs)
        shapes = [Folding(pe, simd) for pe in divisors(op.out_channels) for simd in divisors(inputs[0].channels)]
        return with_memories(op, inputs[0], with_output_choices(op, with_lut_macs(op, inputs[0], shapes)))

    def plan(self, op: Linear, inputs: list[Tensor], folding: Folding) -> StagePlan:
        dense_only(op, inputs)
        source = inputs[0]
        lanes = min(folding.simd, source.channels)
        in_rows = source.shape[2]
        view = linear_geometry(op, source, in_rows, in_rows + 1)
        terms = loops(view, source, op.out_channels, source.elements_per_frame, folding, lanes)
        # the whole input is the window: the fill loop reads it row by row (one simulation step
        # each), then the single output row's MAC steps and drain run after the last
        row_words = terms["fill_words"] // in_rows
        terms["step_trips"] = (row_words,) * (in_rows - 1) + (terms["loop_trips"] - (in_rows - 1) * row_words,)
        return StagePlan((lanes,), folding.pe, window_rows=in_rows, ring_rows=in_rows + 1, steps=in_rows,
                         emits=reducing_emits(in_rows), needs=(tuple(range(in_rows)),), **terms)

    def cost(self, op: Linear, inputs: list[Tensor], folding: Folding, plan: StagePlan, target: CostTarget) -> LayerCost:
        return mac_cost(op, inputs[0], folding, plan, target, pixels=1, taps=1,
                        in_per_group=inputs[0].elements_per_frame)

    def stage(self, op: Linear, wiring: StageWiring, folding: Folding, plan: StagePlan) -> StageCode:
        return StageCode.of(conv_stage(op, wiring, folding, plan, 1,
                                       linear_geometry(op, wiring.sources[0], plan.window_rows, plan.ring_rows)))


def conv_stage(op: Conv | Linear, wiring: StageWiring, folding: Folding, plan: StagePlan, groups: int,
               view: dict[str, int]) -> Stage:
    """A standard/grouped conv (or a Linear as a conv whose kernel is the whole input) over the
    window `view`."""
    ident, source = wiring.ident, wiring.sources[0]
    weight = op.weight
    pe, simd = folding.pe, folding.simd
    view.update(IN_LANES=plan.input_lanes[0], IN_WORDS=plan.input_words)
    out_channels = weight.shape[0]
    in_per_group = source.channels // groups
    length = in_per_group * weight.shape[2] * weight.shape[3]
    require(out_channels // groups % pe == 0, op.name, f"PE={pe} must divide {out_channels // groups} output channels per group")
    require(length % simd == 0 and (in_per_group % simd == 0 or simd % in_per_group == 0), op.name,
            f"SIMD={simd} must split the im2col row ({in_per_group} channels x {length // in_per_group} taps) "
            "into whole channel groups or whole taps")
    folds, simd_folds = out_channels // pe, length // simd
    # im2col row order (ky, kx, channel): (O, C_g, KH, KW) -> (O, KH, KW, C_g) -> lanes
    rows = weight.transpose(0, 2, 3, 1).reshape(out_channels, length)
    table = rows.reshape(folds, pe, simd_folds, simd).transpose(1, 0, 2, 3)
    acc_bound = accumulator_bound(op, source)
    rq_units = requant_units(pe, simd_folds)
    stage = output_stage(stage_requant(op, source, folding), acc_bound, out_channels, op.output.dtype, f"{ident}_rq")
    weight_t, stored, code_bits = weight_memory(op.weight_type, table)
    constants = {
        **view, "GROUPS": groups, "PE": pe, "SIMD": simd, "ROW_LENGTH": length,
        "WEIGHT_DEPTH": folds * simd_folds, "WEIGHT_CODE_BITS": code_bits, "BIAS_LENGTH": out_channels, "HAS_BIAS": 1,
        "RQ_UNITS": rq_units, "BIAS_BANKS": rq_units, "LUT_MACS": int(folding.mac == "lut"),
        "WEIGHT_MEMORY": WEIGHT_MEMORY_CODES[folding.weights],
        "XNOR": int(xnor_stage(op, source)),
        "ROW_STEPS": plan.row_steps, **stage.constants,
    }
    types = {
        "in_t": c_type(source.dtype), "weight_t": weight_t,
        "bias_t": bias_type(op.bias),
        "acc_t": f"ap_int<{signed_bits(acc_bound)}>", **stage.types,
    }
    tables = mac_tables(ident, types, stored, (pe, folds * simd_folds, simd), op.bias)
    declarations = "\n".join([
        struct(f"{ident}_config", types, constants),
        *tables.declarations,
        stage.table,
    ])
    call = f"hwc_conv<{ident}_config>({wiring.in_streams[0]}, {wiring.out_stream}, {ident}_w, {ident}_b, {ident}_rq);"
    return Stage(ident, "hwc_conv.h", declarations, call, tables.files)


DATAFLOW = PerOp({Conv: ConvDataflow(), Linear: LinearDataflow()})
