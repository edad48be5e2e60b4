"""Depthwise convs, pools and the global average pool as dataflow stages.

Depthwise conv and pools run in `hwc_channelwise.h`: PE channels per cycle, lane p only ever
reading channel p, a depthwise conv SIMD of a channel's kernel taps per cycle, a pool one tap.
The global pool (`hwc_elementwise.h`) sums each channel fold over the frame, one PE-channel word
per cycle; on a sparse input (`hwc_sparse.h`) it sums the tokens of the active sites instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from hwcodesign.hardware.ctext import (
    WEIGHT_MEMORY_CODES,
    Stage,
    bias_type,
    c_type,
    mac_tables,
    magnitude,
    output_stage,
    pixel_constants,
    require,
    struct,
    token_constants,
    weight_memory,
)
from hwcodesign.hardware.folding import Folding, LayerCost, divisors, with_weight_memories
from hwcodesign.hardware.memory import MemoryCost
from hwcodesign.hardware.stage_cost import (
    channel_constants,
    mac_stage_cost,
    pixel_stage_cost,
    ring_buffer,
    token_stage_cost,
    weight_rom,
)
from hwcodesign.hardware.stream import density_of, input_words, sites
from hwcodesign.hardware.units import ACCUMULATOR_BITS, PIPELINE_RAMP, lut_macs_possible, requant_units
from hwcodesign.hardware.window import (
    row_steps,
    span_rows,
    window_constants,
    window_fill,
    window_loop,
    window_needs,
)
from hwcodesign.ir.requant import signed_bits
from hwcodesign.ir.types import IntType, Tensor, WeightType
from hwcodesign.ops.channelwise.ir import DepthwiseConv, GlobalAvgPool, Pool
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


@dataclass(frozen=True)
class WindowArithmetic:
    """What a depthwise conv and a pool put into the same template (`hwc_channelwise`): its mode,
    the weights per channel and tap (a pool's are a placeholder it never reads), the bias, the
    accumulator bound and the output stages."""

    mode: str
    weights: np.ndarray
    bias: np.ndarray
    weight_type: WeightType
    acc_bound: int
    rq_units: int
    has_bias: bool
    reads_weights: bool


class WindowDataflow(DataflowFacet):
    """A sliding window of PE channels, lane p only ever reading channel p (`hwc_channelwise.h`):
    what depthwise convs and pools share."""

    def dilation(self, op: DepthwiseConv | Pool) -> tuple[int, int]:
        raise NotImplementedError

    def units(self, op: DepthwiseConv | Pool, folding: Folding) -> int:
        """Output stages: how many outputs finish per cycle."""
        raise NotImplementedError

    def arithmetic(self, op: DepthwiseConv | Pool, source: Tensor, folding: Folding) -> WindowArithmetic:
        raise NotImplementedError

    def plan(self, op: DepthwiseConv | Pool, inputs: list[Tensor], folding: Folding) -> StagePlan:
        dense_only(op, inputs)
        source, pe = inputs[0], folding.pe
        dilation = self.dilation(op)
        window = span_rows(op.kernel[0], dilation[0])
        ring = window + op.stride[0]
        view = window_constants(source, op.output, op.kernel, op.stride, op.pads, dilation, window, ring)
        steps_per_pixel = (op.output.channels // pe) * (op.kernel[0] * op.kernel[1] // folding.simd)
        drain = -(-pe // self.units(op, folding))
        # hwc_channelwise.h: the `fill` loop (the input rows output row 0 needs), then per output
        # row the `steps` loop: max(OUT_W x C / PE x taps / SIMD steps + the output stages' drain,
        # ceil(PE / RQ_UNITS) after the row, words of the rows the next output row adds)
        fill_words, rows = window_loop(view["OUT_H"], view["IN_H"], view["IN_W"], view["STRIDE_H"],
                                       window - op.pads[0], source.channels // pe, view["OUT_W"] * steps_per_pixel + drain)
        out_rows, in_rows = op.output.shape[2], source.shape[2]
        needs = window_needs(out_rows, in_rows, op.stride[0], op.pads[0], window - 1)
        fill = window_fill(window, source.shape[3], -(-source.channels // pe)) if window > 1 else 0
        return StagePlan((pe,), pe, input_words=input_words(source, pe), window_rows=window, ring_rows=ring,
                         held_rows=ring, fill_cycles=fill, fill_words=fill_words, loop_trips=fill_words + sum(rows),
                         step_trips=loop_steps(fill_words, rows),
                         row_steps=row_steps(view["OUT_W"], steps_per_pixel, drain, op.stride[0], source.shape[3],
                                             source.channels, pe),
                         fifo_rows=0, steps=out_rows, emits=row_emits(out_rows), needs=(needs,))

    def stage(self, op: DepthwiseConv | Pool, wiring: StageWiring, folding: Folding, plan: StagePlan) -> StageCode:
        channels = op.output.channels
        require(channels % folding.pe == 0, op.name, f"PE={folding.pe} must divide {channels} channels")
        arithmetic = self.arithmetic(op, wiring.sources[0], folding)
        return StageCode.of(channelwise_stage(op, wiring, folding, plan, arithmetic, self.dilation(op)))


class DepthwiseDataflow(WindowDataflow):
    """PE channels and SIMD of each channel's kernel taps per cycle, MACs as a conv's."""

    def dilation(self, op: DepthwiseConv) -> tuple[int, int]:
        return op.dilation

    def units(self, op: DepthwiseConv, folding: Folding) -> int:
        return requant_units(folding.pe, op.kernel[0] * op.kernel[1] // folding.simd)

    def candidate_foldings(self, op: DepthwiseConv, inputs: list[Tensor]) -> list[Folding]:
        """PE channels x SIMD taps, LUT MACs where they fit, LUTRAM weights where a real trade-off."""
        dense_only(op, inputs)
        taps = op.kernel[0] * op.kernel[1]
        options = [Folding(pe, simd) for pe in divisors(op.out_channels) for simd in divisors(taps)]
        if lut_macs_possible(op.weight_type, inputs[0].dtype.bits):
            options += [Folding(f.pe, f.simd, "lut") for f in options]
        return with_weight_memories(options, lambda f: weight_rom(f, op.weight_type, depthwise_weight_depth(op, f)))

    def cost(self, op: DepthwiseConv, inputs: list[Tensor], folding: Folding, plan: StagePlan,
             target: CostTarget) -> LayerCost:
        source, pe = inputs[0], folding.pe
        pixels = op.output.shape[2] * op.output.shape[3]
        folds_per_output = op.kernel[0] * op.kernel[1] // folding.simd
        cycles = plan.loop_trips  # the fill, every row's MAC steps and drain (`WindowDataflow.plan`)
        buffer = ring_buffer(plan.ring_rows, source.shape[3], source, plan.input_lanes[0], folding.simd)
        constants = channel_constants(op.bias, op.requant, op.out_channels, requant_units(pe, folds_per_output))
        return mac_stage_cost(folding, op.weight_type, source.dtype.bits, target.ps_type, cycles=cycles,
                              depth=plan.fill_cycles + cycles // max(pixels, 1) + 12,
                              weight_depth=depthwise_weight_depth(op, folding),
                              folds_per_output=folds_per_output, constants=constants, buffer=buffer,
                              requant=op.requant)

    def arithmetic(self, op: DepthwiseConv, source: Tensor, folding: Folding) -> WindowArithmetic:
        taps = op.kernel[0] * op.kernel[1]
        require(taps % folding.simd == 0, op.name, f"SIMD={folding.simd} must divide the {taps} kernel taps")
        weights = op.weight.reshape(op.output.channels, taps)
        acc_bound = magnitude(source) * int(np.abs(weights).max(initial=0)) * taps + int(np.abs(op.bias).max(initial=0))
        return WindowArithmetic("HWC_DEPTHWISE", weights, op.bias, op.weight_type, acc_bound, self.units(op, folding),
                                True, True)


def depthwise_weight_depth(op: DepthwiseConv, folding: Folding) -> int:
    """Words of one PE's weight ROM: its channels' kernel taps, SIMD taps a word."""
    return op.out_channels // folding.pe * (op.kernel[0] * op.kernel[1] // folding.simd)


class PoolDataflow(WindowDataflow):
    """Max or average pooling: one tap of PE channels per cycle, a requantization per lane."""

    def dilation(self, op: Pool) -> tuple[int, int]:
        return (1, 1)

    def units(self, op: Pool, folding: Folding) -> int:
        return folding.pe

    def candidate_foldings(self, op: Pool, inputs: list[Tensor]) -> list[Folding]:
        dense_only(op, inputs)
        return [Folding(pe, 1) for pe in divisors(op.output.channels)]

    def cost(self, op: Pool, inputs: list[Tensor], folding: Folding, plan: StagePlan, target: CostTarget) -> LayerCost:
        """kh*kw window taps per output pixel and channel fold, its input streaming in the same loop:
        the plan's loops (the fill, then per output row its taps and drain)."""
        source, pe = inputs[0], folding.pe
        return pixel_stage_cost(op, pe, plan.loop_trips, plan.fill_cycles + 8,
                                ring_buffer(plan.ring_rows, source.shape[3], source, pe))

    def arithmetic(self, op: Pool, source: Tensor, folding: Folding) -> WindowArithmetic:
        taps = op.kernel[0] * op.kernel[1]
        require(folding.simd == 1, op.name, "pooling stages run one tap per cycle (SIMD=1)")
        lowest = source.dtype.min - source.zero_point - 1
        acc_bound = max(magnitude(source), abs(lowest)) * (taps if op.mode == "avg" else 1)
        return WindowArithmetic("HWC_MAX_POOL" if op.mode == "max" else "HWC_AVG_POOL",
                                np.zeros((op.output.channels, taps), np.int64),  # placeholder: pools read no weights
                                np.zeros(1, np.int64), IntType(2, True), acc_bound, folding.pe, False, False)


class GlobalPoolDataflow(DataflowFacet):
    """The global average pool: every pixel's channel folds summed (a reducing stage: its steps
    are input rows), or on a sparse input its tokens'."""

    def candidate_foldings(self, op: GlobalAvgPool, inputs: list[Tensor]) -> list[Folding]:
        return [Folding(pe, 1) for pe in divisors(inputs[0].channels if inputs[0].sparse else op.output.channels)]

    def plan(self, op: GlobalAvgPool, inputs: list[Tensor], folding: Folding) -> StagePlan:
        source, pe = inputs[0], folding.pe
        in_rows = source.shape[2]
        structure = dict(steps=in_rows, emits=reducing_emits(in_rows), needs=(tuple(range(in_rows)),))
        if source.sparse:
            return StagePlan((source.channels,), pe, sparse=True, **structure)
        dense_only(op, inputs)
        return dense_global_pool_plan(source, pe)

    def cost(self, op: GlobalAvgPool, inputs: list[Tensor], folding: Folding, plan: StagePlan,
             target: CostTarget) -> LayerCost:
        source, pe = inputs[0], folding.pe
        if plan.sparse:
            tokens = sites(source, density_of(source, target.densities)) + 1
            return token_stage_cost(op, source, pe, tokens, tail=source.channels // pe,
                                    extra_ff=source.channels * ACCUMULATOR_BITS)
        return pixel_stage_cost(op, pe, plan.loop_trips, 8, MemoryCost(0, 0))

    def stage(self, op: GlobalAvgPool, wiring: StageWiring, folding: Folding, plan: StagePlan) -> StageCode:
        return StageCode.of(global_pool_stage(op, wiring, folding, plan))

    def sparse_row_cycles(self, op: GlobalAvgPool, inputs: list[Tensor], folding: Folding, plan: StagePlan,
                          counts: Mapping[str, np.ndarray]) -> list[float]:
        """Per input row its tokens' channel folds; the output after the last."""
        source = inputs[0]
        folds = source.channels // folding.pe
        rows = [float(n * folds) for n in counts[source.name]]
        rows[-1] += folds + PIPELINE_RAMP
        return rows


def dense_global_pool_plan(source: Tensor, pe: int) -> StagePlan:
    """A stage that sums every pixel of a dense input per channel, then writes one pixel: the
    `accumulate` loop reads every input word (IN_W x C / PE a row), then the `emit` loop writes
    one output word per channel fold after the last row (hwc_global_avg_pool, hwc_lookup_mean)."""
    in_rows = source.shape[2]
    folds = -(-source.channels // pe)
    row_words = source.shape[3] * folds
    return StagePlan((pe,), pe, input_words=input_words(source, pe), loop_trips=in_rows * row_words + folds,
                     step_trips=(row_words,) * (in_rows - 1) + (row_words + folds,), steps=in_rows,
                     emits=reducing_emits(in_rows), needs=(tuple(range(in_rows)),))


def channelwise_stage(op: DepthwiseConv | Pool, wiring: StageWiring, folding: Folding, plan: StagePlan,
                      arithmetic: WindowArithmetic, dilation: tuple[int, int]) -> Stage:
    """Depthwise conv, max pool or average pool: lane p only ever reads channel p."""
    ident, source = wiring.ident, wiring.sources[0]
    pe, simd = folding.pe, folding.simd
    channels = op.output.channels
    taps = op.kernel[0] * op.kernel[1]
    bias, rq_units = arithmetic.bias, arithmetic.rq_units
    simd_folds = taps // simd
    folds = channels // pe
    table = arithmetic.weights.reshape(folds, pe, simd_folds, simd).transpose(1, 0, 2, 3)
    if not arithmetic.reads_weights:
        table = table[:, :1, :1, :1]
    geometry = window_constants(source, op.output, op.kernel, op.stride, op.pads, dilation, plan.window_rows,
                                plan.ring_rows)
    geometry.update(IN_LANES=plan.input_lanes[0], IN_WORDS=plan.input_words)
    stage = output_stage(op.requant, arithmetic.acc_bound, channels, op.output.dtype, f"{ident}_rq")
    weight_depth = table.shape[1] * table.shape[2]
    weight_t, stored, code_bits = weight_memory(arithmetic.weight_type, table)
    constants = {
        **geometry, "PE": pe, "SIMD": simd, "WEIGHT_DEPTH": weight_depth, "WEIGHT_CODE_BITS": code_bits,
        "BIAS_LENGTH": len(bias),
        "HAS_BIAS": int(arithmetic.has_bias),
        "RQ_UNITS": rq_units, "BIAS_BANKS": min(rq_units, len(bias)), "LUT_MACS": int(folding.mac == "lut"),
        "WEIGHT_MEMORY": WEIGHT_MEMORY_CODES[folding.weights if arithmetic.reads_weights else "lutram"],
        "ACC_LOWEST": source.dtype.min - source.zero_point - 1,
        "ROW_STEPS": plan.row_steps,
        **stage.constants,
    }
    types = {
        "in_t": c_type(source.dtype), "weight_t": weight_t,
        "bias_t": bias_type(bias),
        "acc_t": f"ap_int<{signed_bits(arithmetic.acc_bound)}>", **stage.types,
    }
    mode_line = f"    static const hwc_channelwise_mode MODE = {arithmetic.mode};\n"
    tables = mac_tables(ident, types, stored, (pe, weight_depth, table.shape[3]), bias)
    declarations = "\n".join([
        struct(f"{ident}_config", types, constants, nested=mode_line),
        *tables.declarations,
        stage.table,
    ])
    call = f"hwc_channelwise<{ident}_config>({wiring.in_streams[0]}, {wiring.out_stream}, {ident}_w, {ident}_b, {ident}_rq);"
    return Stage(ident, "hwc_channelwise.h", declarations, call, tables.files)


def global_pool_stage(op: GlobalAvgPool, wiring: StageWiring, folding: Folding, plan: StagePlan) -> Stage:
    """Dense: every pixel's channel folds summed, one pixel out. Sparse: the tokens summed, one
    dense pixel out in words of PE channels (what dense readers take)."""
    ident, source = wiring.ident, wiring.sources[0]
    acc_bound = magnitude(source) * source.shape[2] * source.shape[3]
    stage = output_stage(op.requant, acc_bound, op.output.channels, op.output.dtype, f"{ident}_rq")
    types = {"in_t": c_type(source.dtype), "acc_t": f"ap_int<{signed_bits(acc_bound)}>", **stage.types}
    if plan.sparse:
        constants = {**token_constants(source, folding.pe, op.name), "IN_C": source.channels,
                     "IN_ZP": source.zero_point, **stage.constants}
        kernel, template = "hwc_sparse_global_pool", "hwc_sparse.h"
    else:
        constants = {**pixel_constants(source, op.output, folding.pe, op.name), **stage.constants}
        kernel, template = "hwc_global_avg_pool", "hwc_elementwise.h"
    declarations = struct(f"{ident}_config", types, constants) + "\n" + stage.table
    call = f"{kernel}<{ident}_config>({wiring.in_streams[0]}, {wiring.out_stream}, {ident}_rq);"
    return Stage(ident, template, declarations, call)


DATAFLOW = PerOp({DepthwiseConv: DepthwiseDataflow(), Pool: PoolDataflow(), GlobalAvgPool: GlobalPoolDataflow()})
