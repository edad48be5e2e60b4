"""Channel concatenation as dataflow stages (`hwc_concat.h`): a chain of two-input links, each
requantizing both parts onto the output grid and writing PE channels per cycle; a word never
straddles two parts, so PE divides every part's channels."""

from __future__ import annotations

import numpy as np

from hwcodesign.hardware.ctext import Stage, c_type, nest, output_stage, require, struct
from hwcodesign.hardware.folding import Folding, LayerCost, divisors
from hwcodesign.hardware.memory import MemoryCost
from hwcodesign.hardware.stage_cost import pixel_stage_cost
from hwcodesign.hardware.stream import input_words
from hwcodesign.ir.requant import Requant, signed_bits
from hwcodesign.ir.types import Tensor
from hwcodesign.ops.concat.ir import Concat
from hwcodesign.ops.facets.dataflow import (
    CostTarget,
    DataflowFacet,
    StageCode,
    StagePlan,
    StageWiring,
    dense_only,
    pixel_needs,
    row_emits,
)


class ConcatDataflow(DataflowFacet):
    def candidate_foldings(self, op: Concat, inputs: list[Tensor]) -> list[Folding]:
        return [Folding(pe, 1) for pe in divisors(op.output.channels) if all(t.channels % pe == 0 for t in inputs)]

    def plan(self, op: Concat, inputs: list[Tensor], folding: Folding) -> StagePlan:
        dense_only(op, inputs)
        out, pe = op.output, folding.pe
        rows, pixels = out.shape[2], out.shape[2] * out.shape[3]
        # hwc_concat2: link i writes the first i+1 parts, its `step` loop one iteration per
        # output word of them; the links run as concurrent processes, the last (every output
        # word, OUT_W x C / PE a row) the slowest: its iterations are the stage's steps
        link_channels = np.cumsum([t.channels for t in inputs])[1:]
        row_words = out.shape[3] * (out.channels // pe)
        return StagePlan(tuple(pe for _ in inputs), pe, input_words=input_words(inputs[0], pe),
                         loop_trips=int(sum(pixels * (int(c) // pe) for c in link_channels)),
                         step_trips=(row_words,) * rows, steps=rows, emits=row_emits(rows),
                         needs=pixel_needs(inputs, rows))

    def cost(self, op: Concat, inputs: list[Tensor], folding: Folding, plan: StagePlan, target: CostTarget) -> LayerCost:
        return pixel_stage_cost(op, folding.pe, sum(plan.step_trips), 8, MemoryCost(0, 0))  # the last link's loop

    def stage(self, op: Concat, wiring: StageWiring, folding: Folding, plan: StagePlan) -> StageCode:
        return concat_stages(op, wiring, folding)


def concat_stages(op: Concat, wiring: StageWiring, folding: Folding) -> StageCode:
    """A chain of two-input concatenations: the stages and the intermediate streams."""
    ident, sources, in_streams, out_stream = wiring.ident, wiring.sources, wiring.in_streams, wiring.out_stream
    stages, links = [], []
    left_stream, left = in_streams[0], sources[0]
    left_requant: Requant | None = op.input_requants[0]
    offset = sources[0].channels
    for index in range(1, len(sources)):
        last = index == len(sources) - 1
        channels = offset + sources[index].channels
        link_ident = ident if len(sources) == 2 else f"{ident}_{index}"
        out = op.output if last else Tensor(f"{op.output.name}#{index}", op.output.shape[:1] + (channels,) + op.output.shape[2:],
                                            op.output.dtype, op.output.scale, op.output.zero_point)
        pe = folding.pe
        out_name = out_stream if last else f"s_{link_ident}"
        parts = []
        for part, tensor, requant in (("A", left, left_requant), ("B", sources[index], op.input_requants[index])):
            if requant is None:  # an earlier link already put this part on the output grid
                requant = Requant(np.ones(1, np.int64), np.zeros(1, np.int64), 0, out.dtype.min, out.dtype.max)
                centre = 0
            else:
                centre = tensor.zero_point
            bound = max(abs(tensor.dtype.min - centre), abs(tensor.dtype.max - centre))
            stage = output_stage(requant, bound, tensor.channels, out.dtype, f"{link_ident}_rq_{part.lower()}")
            part_constants = {"IN_C": tensor.channels, "IN_ZP": centre, **stage.constants}
            part_types = {"in_t": c_type(tensor.dtype), "acc_t": f"ap_int<{signed_bits(bound)}>", **stage.types}
            parts.append((nest(struct(part, part_types, part_constants)), stage.table))
        require(left.channels % pe == 0 and sources[index].channels % pe == 0, op.name,
                f"PE={pe} must divide the channels of every part ({left.channels} and {sources[index].channels})")
        constants = {"OUT_C": channels, "PE": pe, "OUT_PIXELS": out.shape[2] * out.shape[3]}
        nested = "".join(text for text, _ in parts)
        declarations = struct(f"{link_ident}_config", {"out_t": c_type(out.dtype)}, constants, nested=nested)
        declarations += "\n" + "".join(table for _, table in parts)
        call = (f"hwc_concat2<{link_ident}_config>({left_stream}, {in_streams[index]}, {out_name}, "
                f"{link_ident}_rq_a, {link_ident}_rq_b);")
        stages.append(Stage(link_ident, "hwc_concat.h", declarations, call))
        if not last:
            links.append((out_name, out))
        left_stream, left, left_requant, offset = out_name, out, None, channels
    return StageCode.of(*stages, links=tuple(links))


DATAFLOW = ConcatDataflow()
