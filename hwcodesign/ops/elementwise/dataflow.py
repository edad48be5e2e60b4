"""Activations, residual adds and products of two activations as dataflow stages: PE channels per
cycle, one requantization per lane (`hwc_elementwise.h`); on sparse tensors, the same per token of
an active site (`hwc_sparse.h`), whose stream carries whole pixels.

A product by a per-channel gate (squeeze-excitation, `hwc_mul_gate`) reads the gate's C values
once per frame into a register array, then streams the map. The gate is computed from the same
map (global pool -> 1x1 convs -> activation), so it exists only after the whole map has passed the
branch point: the FIFO from the branch point to this stage holds a whole frame of the map, or the
pipeline deadlocks (the global pool waits for map words the full FIFO blocks, this stage waits for
a gate the pool has not made). The plan says so (`input_fifo_rows`: every row of the map on slot
0, the gate's one row on slot 1) and the cost model counts that FIFO as the producer's output
memory (`mapper.streams.output_fifos`); the pipeline simulator measures the same depth on the
edge (the step of output row 0 needs the gate, emitted after the pool's last input row)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from hwcodesign.hardware.ctext import (
    Stage,
    c_type,
    magnitude,
    output_stage,
    pixel_constants,
    struct,
    token_constants,
)
from hwcodesign.hardware.folding import Folding, LayerCost, divisors
from hwcodesign.hardware.memory import MemoryCost, memory_cost
from hwcodesign.hardware.stage_cost import pixel_stage_cost, token_row_cycles, token_stage_cost
from hwcodesign.hardware.stream import density_of, input_words, sites
from hwcodesign.ir.requant import signed_bits
from hwcodesign.ir.types import Tensor
from hwcodesign.ops.elementwise.ir import Act, Add, Mul
from hwcodesign.ops.facets.dataflow import (
    CostTarget,
    DataflowFacet,
    PerOp,
    StageCode,
    StagePlan,
    StageWiring,
    dense_only,
    pixel_needs,
    row_emits,
    streamed_plan,
)


class PerPixelDataflow(DataflowFacet):
    """What activations and adds share: PE channels per step over every pixel (or token); an
    add has two more multipliers per lane, its inputs' scales."""

    input_dsp_per_lane = 0

    def candidate_foldings(self, op: Act | Add, inputs: list[Tensor]) -> list[Folding]:
        return [Folding(pe, 1) for pe in divisors(op.output.channels)]

    def plan(self, op: Act | Add, inputs: list[Tensor], folding: Folding) -> StagePlan:
        out, pe = op.output, folding.pe
        rows = out.shape[2]
        if any(t.sparse for t in inputs) or out.sparse:  # tokens carry all channels of a site
            return StagePlan(tuple(t.channels if t.sparse else pe for t in inputs), out.channels if out.sparse else pe,
                             sparse=True, steps=rows, emits=row_emits(rows), needs=pixel_needs(inputs, rows))
        # hwc_act / hwc_pairwise (add): the `step` loop, one iteration per output word (OUT_W x C / PE a row)
        return streamed_plan(inputs, pe, rows, out.shape[3] * (out.channels // pe))

    def cost(self, op: Act | Add, inputs: list[Tensor], folding: Folding, plan: StagePlan,
             target: CostTarget) -> LayerCost:
        source, pe = inputs[0], folding.pe
        if plan.sparse:
            tokens = sites(source, density_of(source, target.densities)) + 1
            return token_stage_cost(op, source, pe, tokens, extra_dsp=self.input_dsp_per_lane * pe)
        return pixel_stage_cost(op, pe, plan.loop_trips, 8, MemoryCost(0, 0))

    def sparse_row_cycles(self, op: Act | Add, inputs: list[Tensor], folding: Folding, plan: StagePlan,
                          counts: Mapping[str, np.ndarray]) -> list[float]:
        return token_row_cycles(counts[op.output.name], inputs[0].channels // folding.pe)


class ActDataflow(PerPixelDataflow):
    def stage(self, op: Act, wiring: StageWiring, folding: Folding, plan: StagePlan) -> StageCode:
        return StageCode.of(act_stage(op, wiring, folding, plan))


class AddDataflow(PerPixelDataflow):
    input_dsp_per_lane = 2

    def stage(self, op: Add, wiring: StageWiring, folding: Folding, plan: StagePlan) -> StageCode:
        return StageCode.of(add_stage(op, wiring, folding, plan))


class MulDataflow(DataflowFacet):
    """A product of two activations, dense only: PE channels per step over every pixel, one
    multiplier and one requantization per lane. With a gate, its C / PE words are read first
    (`gate` loop), then the map streams (`steps` loop) as through an activation."""

    def candidate_foldings(self, op: Mul, inputs: list[Tensor]) -> list[Folding]:
        return [Folding(pe, 1) for pe in divisors(op.output.channels)]

    def plan(self, op: Mul, inputs: list[Tensor], folding: Folding) -> StagePlan:
        dense_only(op, inputs)
        out, pe = op.output, folding.pe
        rows = out.shape[2]
        row_words = out.shape[3] * (out.channels // pe)
        # hwc_mul_gate: the `gate` loop reads one gate word per channel fold, then the `steps`
        # loop one map word per output word; hwc_mul: the `steps` loop reads both
        gate_words = out.channels // pe if op.broadcast else 0
        step_trips = (gate_words + row_words,) + (row_words,) * (rows - 1)
        # a gate is made from this map: the map's FIFO holds the whole frame (module doc)
        frame_fifo = (rows, 1) if op.broadcast else ()
        return StagePlan((pe, pe), pe, input_words=input_words(inputs[0], pe), loop_trips=sum(step_trips),
                         step_trips=step_trips, input_fifo_rows=frame_fifo, steps=rows, emits=row_emits(rows),
                         needs=pixel_needs(inputs, rows))

    def cost(self, op: Mul, inputs: list[Tensor], folding: Folding, plan: StagePlan,
             target: CostTarget) -> LayerCost:
        pe = folding.pe
        gate = inputs[1]
        # the gate's centred values: C registers of (bits + 1), PE read per cycle
        held = memory_cost(-(-gate.channels // pe), gate.dtype.bits + 1, copies=pe) if op.broadcast else MemoryCost(0, 0)
        cost = pixel_stage_cost(op, pe, plan.loop_trips, 8, held)
        return replace(cost, dsp=cost.dsp + MUL_DSP_PER_LANE * pe)

    def stage(self, op: Mul, wiring: StageWiring, folding: Folding, plan: StagePlan) -> StageCode:
        return StageCode.of(mul_stage(op, wiring, folding, plan))


MUL_DSP_PER_LANE = 1
"""The product of two activations of up to 18 x 27 bits: one DSP48 multiplier per lane."""


def act_stage(op: Act, wiring: StageWiring, folding: Folding, plan: StagePlan) -> Stage:
    ident, source = wiring.ident, wiring.sources[0]
    acc_bound = magnitude(source)
    stage = output_stage(op.requant, acc_bound, op.output.channels, op.output.dtype, f"{ident}_rq")
    if plan.sparse:
        constants = {**token_constants(op.output, folding.pe, op.name), "IN_ZP": source.zero_point, **stage.constants}
        kernel, template = "hwc_sparse_act", "hwc_sparse.h"
    else:
        constants = {**pixel_constants(source, op.output, folding.pe, op.name), **stage.constants}
        kernel, template = "hwc_act", "hwc_elementwise.h"
    types = {"in_t": c_type(source.dtype), "acc_t": f"ap_int<{signed_bits(acc_bound)}>", **stage.types}
    declarations = struct(f"{ident}_config", types, constants) + "\n" + stage.table
    return Stage(ident, template, declarations,
                 f"{kernel}<{ident}_config>({wiring.in_streams[0]}, {wiring.out_stream}, {ident}_rq);")


def add_stage(op: Add, wiring: StageWiring, folding: Folding, plan: StagePlan) -> Stage:
    ident = wiring.ident
    a, b = wiring.sources
    mult_a, mult_b = op.input_multipliers
    acc_bound = magnitude(a) * abs(mult_a) + magnitude(b) * abs(mult_b)
    stage = output_stage(op.requant, acc_bound, op.output.channels, op.output.dtype, f"{ident}_rq")
    if plan.sparse:
        constants = {**token_constants(op.output, folding.pe, op.name), "IN_ZP": a.zero_point,
                     "IN_B_ZP": b.zero_point, "MULT_A": mult_a, "MULT_B": mult_b, **stage.constants}
        kernel, template = "hwc_sparse_add", "hwc_sparse.h"
    else:
        constants = {**pixel_constants(a, op.output, folding.pe, op.name), "IN_B_ZP": b.zero_point,
                     "MULT_A": mult_a, "MULT_B": mult_b, **stage.constants}
        kernel, template = "hwc_pairwise", "hwc_elementwise.h"
    types = {"in_t": c_type(a.dtype), "in_b_t": c_type(b.dtype), "acc_t": f"ap_int<{signed_bits(acc_bound)}>",
             **stage.types}
    declarations = struct(f"{ident}_config", types, constants) + "\n" + stage.table
    combine = "" if plan.sparse else f", hwc_scaled_sum<{ident}_config> "
    call = f"{kernel}<{ident}_config{combine}>({wiring.in_streams[0]}, {wiring.in_streams[1]}, {wiring.out_stream}, {ident}_rq);"
    return Stage(ident, template, declarations, call)


def mul_stage(op: Mul, wiring: StageWiring, folding: Folding, plan: StagePlan) -> Stage:
    ident = wiring.ident
    a, b = wiring.sources
    acc_bound = magnitude(a) * magnitude(b)
    stage = output_stage(op.requant, acc_bound, op.output.channels, op.output.dtype, f"{ident}_rq")
    constants = {**pixel_constants(a, op.output, folding.pe, op.name), "IN_B_ZP": b.zero_point, **stage.constants}
    types = {"in_t": c_type(a.dtype), "in_b_t": c_type(b.dtype), "acc_t": f"ap_int<{signed_bits(acc_bound)}>",
             "gate_t": f"ap_int<{signed_bits(magnitude(b))}>", **stage.types}
    declarations = struct(f"{ident}_config", types, constants) + "\n" + stage.table
    kernel = "hwc_mul_gate" if op.broadcast else "hwc_pairwise"
    combine = "" if op.broadcast else f", hwc_product<{ident}_config> "
    call = f"{kernel}<{ident}_config{combine}>({wiring.in_streams[0]}, {wiring.in_streams[1]}, {wiring.out_stream}, {ident}_rq);"
    return Stage(ident, "hwc_elementwise.h", declarations, call)


DATAFLOW = PerOp({Act: ActDataflow(), Add: AddDataflow(), Mul: MulDataflow()})
