"""Nearest-neighbour upsampling as a dataflow stage (`hwc_resize` in hwc_elementwise.h): each
input row is emitted SCALE_H times, each pixel SCALE_W times, from a ring of two rows (the
current one and the next, which streams in meanwhile); PE channels per cycle."""

from __future__ import annotations

from hwcodesign.hardware.ctext import Stage, c_type, magnitude, output_stage, pixel_constants, struct
from hwcodesign.hardware.folding import Folding, LayerCost, divisors
from hwcodesign.hardware.stage_cost import pixel_stage_cost, ring_buffer
from hwcodesign.hardware.stream import input_words
from hwcodesign.ir.requant import signed_bits
from hwcodesign.ir.types import Tensor
from hwcodesign.ops.facets.dataflow import (
    CostTarget,
    DataflowFacet,
    StageCode,
    StagePlan,
    StageWiring,
    dense_only,
    loop_steps,
    row_emits,
)
from hwcodesign.ops.resize.ir import Resize

RING_ROWS = 2


class ResizeDataflow(DataflowFacet):
    def candidate_foldings(self, op: Resize, inputs: list[Tensor]) -> list[Folding]:
        return [Folding(pe, 1) for pe in divisors(op.output.channels)]

    def plan(self, op: Resize, inputs: list[Tensor], folding: Folding) -> StagePlan:
        dense_only(op, inputs)
        source, out, pe = inputs[0], op.output, folding.pe
        in_rows, out_rows = source.shape[2], out.shape[2]
        work = op.scale[0] * out.shape[3] * (out.channels // pe)
        row_words = source.shape[3] * (source.channels // pe)
        # hwc_resize: the `fill` loop reads input row 0 (hwc_ring_fill), then per input row the
        # `steps` loop runs max(its SCALE_H output rows' words, the next input row's words read
        # meanwhile); a simulation step is one output row: its input row's steps split evenly
        rows = [max(work, row_words if row < in_rows - 1 else 0) for row in range(in_rows)]
        split = [rows[r // op.scale[0]] // op.scale[0] + (r % op.scale[0] < rows[r // op.scale[0]] % op.scale[0])
                 for r in range(out_rows)]
        return StagePlan((pe,), pe, input_words=input_words(source, pe), ring_rows=RING_ROWS, held_rows=RING_ROWS,
                         fill_words=row_words, row_steps=max(work, row_words), loop_trips=row_words + sum(rows),
                         step_trips=loop_steps(row_words, tuple(split)), fifo_rows=0,
                         steps=out_rows, emits=row_emits(out_rows),
                         needs=(tuple(r // op.scale[0] for r in range(out_rows)),))

    def cost(self, op: Resize, inputs: list[Tensor], folding: Folding, plan: StagePlan, target: CostTarget) -> LayerCost:
        source, pe = inputs[0], folding.pe  # cycles: the plan's loops (the fill, every row's steps)
        return pixel_stage_cost(op, pe, plan.loop_trips, plan.fill_cycles + 8, ring_buffer(plan.ring_rows, source.shape[3], source, pe))

    def stage(self, op: Resize, wiring: StageWiring, folding: Folding, plan: StagePlan) -> StageCode:
        return StageCode.of(resize_stage(op, wiring, folding, plan))


def resize_stage(op: Resize, wiring: StageWiring, folding: Folding, plan: StagePlan) -> Stage:
    ident, source = wiring.ident, wiring.sources[0]
    acc_bound = magnitude(source)
    stage = output_stage(op.requant, acc_bound, op.output.channels, op.output.dtype, f"{ident}_rq")
    constants = {
        **pixel_constants(source, op.output, folding.pe, op.name),
        "IN_H": source.shape[2], "IN_W": source.shape[3], "OUT_W": op.output.shape[3],
        "SCALE_H": op.scale[0], "SCALE_W": op.scale[1], "RING_ROWS": plan.ring_rows,
        "IN_LANES": plan.input_lanes[0], "IN_WORDS": plan.input_words, "ROW_STEPS": plan.row_steps,
        **stage.constants,
    }
    types = {"in_t": c_type(source.dtype), "acc_t": f"ap_int<{signed_bits(acc_bound)}>", **stage.types}
    declarations = struct(f"{ident}_config", types, constants) + "\n" + stage.table
    return Stage(ident, "hwc_elementwise.h", declarations,
                 f"hwc_resize<{ident}_config>({wiring.in_streams[0]}, {wiring.out_stream}, {ident}_rq);")


DATAFLOW = ResizeDataflow()
