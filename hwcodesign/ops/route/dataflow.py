"""Channel re-routing as dataflow stages (`hwc_route.h`), PE channels per cycle, no arithmetic
(the output stage is the identity unless a quantizer moves the output to another grid):

- a channel slice (`hwc_channel_slice`) reads every word of its input and writes the words of its
  channel range; PE divides the start and both channel counts, so a word never straddles the
  range's ends and nothing is buffered. A K-way Split is K slices of one stream, which the top's
  fan-out copies to each;
- a channel permutation (`hwc_channel_permute`) holds a pixel: its words go into one half of a
  two-pixel buffer while the previous pixel's channels leave the other half in the new order. At
  PE=1 the buffer is a memory (a write and a read a cycle); wider, it is registers and each lane a
  multiplexer over both pixels' channels.
"""

from __future__ import annotations

import math

from hwcodesign.hardware.ctext import (
    Stage,
    c_type,
    int_list,
    magnitude,
    output_stage,
    pixel_constants,
    struct,
)
from hwcodesign.hardware.folding import Folding, LayerCost, divisors
from hwcodesign.hardware.memory import MemoryCost, lut_rom, memory_cost
from hwcodesign.hardware.stage_cost import pixel_stage_cost
from hwcodesign.hardware.stream import input_words
from hwcodesign.ir.requant import signed_bits
from hwcodesign.ir.types import Tensor
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
from hwcodesign.ops.route.ir import ChannelPermute, ChannelSlice

LUT_MUX_INPUTS = 4  # a LUT6 is a 4:1 multiplexer of one bit


class SliceDataflow(DataflowFacet):
    def candidate_foldings(self, op: ChannelSlice, inputs: list[Tensor]) -> list[Folding]:
        common = math.gcd(inputs[0].channels, op.start, op.output.channels)
        return [Folding(pe, 1) for pe in divisors(common)]

    def plan(self, op: ChannelSlice, inputs: list[Tensor], folding: Folding) -> StagePlan:
        dense_only(op, inputs)
        source, pe = inputs[0], folding.pe
        # hwc_channel_slice: the `steps` loop, one iteration per input word (IN_W x IN_C / PE a row)
        return streamed_plan(inputs, pe, op.output.shape[2], source.shape[3] * (source.channels // pe))

    def cost(self, op: ChannelSlice, inputs: list[Tensor], folding: Folding, plan: StagePlan,
             target: CostTarget) -> LayerCost:
        return pixel_stage_cost(op, folding.pe, plan.loop_trips, 8, MemoryCost(0, 0))

    def stage(self, op: ChannelSlice, wiring: StageWiring, folding: Folding, plan: StagePlan) -> StageCode:
        ident, source, pe = wiring.ident, wiring.sources[0], folding.pe
        acc_bound = magnitude(source)
        stage = output_stage(op.requant, acc_bound, op.output.channels, op.output.dtype, f"{ident}_rq")
        constants = {**pixel_constants(source, op.output, pe, op.name), "START": op.start, **stage.constants}
        types = {"in_t": c_type(source.dtype), "acc_t": f"ap_int<{signed_bits(acc_bound)}>", **stage.types}
        declarations = struct(f"{ident}_config", types, constants) + "\n" + stage.table
        return StageCode.of(Stage(ident, "hwc_route.h", declarations,
                                  f"hwc_channel_slice<{ident}_config>({wiring.in_streams[0]}, {wiring.out_stream}, "
                                  f"{ident}_rq);"))


class PermuteDataflow(DataflowFacet):
    def candidate_foldings(self, op: ChannelPermute, inputs: list[Tensor]) -> list[Folding]:
        return [Folding(pe, 1) for pe in divisors(op.output.channels)]

    def plan(self, op: ChannelPermute, inputs: list[Tensor], folding: Folding) -> StagePlan:
        dense_only(op, inputs)
        source, pe = inputs[0], folding.pe
        rows, width = op.output.shape[2], op.output.shape[3]
        folds = source.channels // pe
        # hwc_channel_permute: the `steps` loop, C / PE iterations per pixel and as many more to
        # drain the last (each reads a word of one pixel and writes a word of the one before); a
        # row's step holds its pixels' iterations, the last row's the drain too
        trips = tuple(width * folds + (folds if row == rows - 1 else 0) for row in range(rows))
        return StagePlan((pe,), pe, input_words=input_words(source, pe), loop_trips=sum(trips),
                         step_trips=trips, steps=rows, emits=row_emits(rows), needs=pixel_needs(inputs, rows))

    def cost(self, op: ChannelPermute, inputs: list[Tensor], folding: Folding, plan: StagePlan,
             target: CostTarget) -> LayerCost:
        source, pe = inputs[0], folding.pe
        bits = source.dtype.bits + 1  # the buffer holds centred values
        if pe == 1:  # one write and one read a cycle: the two pixels are a memory
            buffer, buffer_ff, mux_lut = memory_cost(2 * source.channels, bits), 0, 0
        else:  # PE reads of any channels a cycle: registers, each lane a multiplexer over both pixels
            buffer = MemoryCost(0, 0)
            buffer_ff = 2 * source.channels * bits
            mux_lut = pe * bits * -(-2 * source.channels // LUT_MUX_INPUTS)
        order = lut_rom(source.channels, index_bits(source.channels), pe)
        # cycles: the plan's loop; depth: a pixel in before its first word out
        base = pixel_stage_cost(op, pe, plan.loop_trips, 8 + source.channels // pe, buffer)
        return LayerCost(base.cycles, base.depth, base.dsp, base.bram18k, base.lut + mux_lut + order.lut,
                         base.ff + buffer_ff)

    def stage(self, op: ChannelPermute, wiring: StageWiring, folding: Folding, plan: StagePlan) -> StageCode:
        ident, source, pe = wiring.ident, wiring.sources[0], folding.pe
        acc_bound = magnitude(source)
        stage = output_stage(op.requant, acc_bound, op.output.channels, op.output.dtype, f"{ident}_rq")
        # the buffer's banks: one memory at PE=1, registers otherwise (as the cost says)
        banks = 1 if pe == 1 else 2 * source.channels
        constants = {**pixel_constants(source, op.output, pe, op.name), "BANKS": banks, **stage.constants}
        types = {"in_t": c_type(source.dtype), "acc_t": f"ap_int<{signed_bits(acc_bound)}>", **stage.types}
        order_type = f"ap_uint<{index_bits(source.channels)}>"
        order = (f"static const {order_type} {ident}_order[{source.channels}] = {{\n"
                 f"{int_list(list(op.order))}}};\n")
        declarations = struct(f"{ident}_config", types, constants) + "\n" + stage.table + order
        return StageCode.of(Stage(ident, "hwc_route.h", declarations,
                                  f"hwc_channel_permute<{ident}_config>({wiring.in_streams[0]}, {wiring.out_stream}, "
                                  f"{ident}_rq, {ident}_order);"))


def index_bits(channels: int) -> int:
    return max(1, (channels - 1).bit_length())


DATAFLOW = PerOp({ChannelSlice: SliceDataflow(), ChannelPermute: PermuteDataflow()})
