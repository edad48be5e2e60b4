"""Lookup tables on the layer-sequential engine's pixel unit (`hwc_engine_lookup.h`, built only
into engines whose program has one): before the layer runs, its table (`LOOKUP_ENTRIES` bytes,
one per stored input byte) is loaded from params into the pixel unit's table memory, a copy per
pixel lane; then the input streams through it as through the other per-element layers, EW_LANES
elements a cycle. The table replaces the output-stage records: the layer has no requantization.

A lookup mean runs as the pixel unit's global pool (`HWC_FLAG_TABLE`): its 16-bit fine table is
loaded the same way (from `weights_addr`, which the pixel unit does not otherwise use) into a
table memory a copy per lane, and each element is read through it before it is summed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from hwcodesign.hardware.engine.config import PARAMS_WORD_BITS, PARAMS_WORD_BYTES, EngineConfig
from hwcodesign.hardware.engine.datapath import Datapath
from hwcodesign.hardware.engine.descriptor import FLAGS, DescribeContext
from hwcodesign.hardware.engine.plan import (
    Instruction,
    InstructionPlan,
    PixelLoops,
    global_pool_loops,
    pixel_plan,
)
from hwcodesign.hardware.engine.tables import LOOKUP_ENTRIES, lookup_table_words
from hwcodesign.ir.op import Op
from hwcodesign.ir.requant import Requant, identity_requant
from hwcodesign.ir.types import Tensor
from hwcodesign.ops.facets.engine import ByOp, PixelFacet
from hwcodesign.ops.table.ir import MEAN_TABLE_BITS, Lookup, LookupMean


class LookupEngine(PixelFacet):
    def mode(self, op: Op) -> str:
        return "lookup"

    def plan(self, instruction: Instruction, inputs: Sequence[Tensor], config: EngineConfig,
             weight_bits: int) -> InstructionPlan:
        return InstructionPlan(instruction, tuple(inputs), instruction.op.output,
                               lookup_words=LOOKUP_ENTRIES // PARAMS_WORD_BYTES)

    def output_requant(self, instruction: Instruction) -> Requant:
        """No output stage; the descriptor's output zero point and range are the output type's."""
        out = instruction.op.output
        return identity_requant(1, out.zero_point, out.dtype.min, out.dtype.max)

    def describe(self, item: InstructionPlan, fields: dict[str, int], context: DescribeContext) -> int:
        op = item.instruction.op
        fields["tables_addr"] = context.writer.append(lookup_table_words(op.table, item.inputs[0],
                                                                         PARAMS_WORD_BYTES))
        return 0


class LookupMeanEngine(PixelFacet):
    """The global pool mode with the fine table in front of its sums."""

    def mode(self, op: Op) -> str:
        return "global_pool"

    def plan(self, instruction: Instruction, inputs: Sequence[Tensor], config: EngineConfig,
             weight_bits: int) -> InstructionPlan:
        table_words = LOOKUP_ENTRIES * MEAN_TABLE_BITS // PARAMS_WORD_BITS
        return replace(pixel_plan(instruction, inputs, config, instruction.op.output), lookup_words=table_words)

    def accumulator_bound(self, item: InstructionPlan) -> int:
        source = item.inputs[0]
        return int(abs(item.instruction.op.table).max()) * source.shape[2] * source.shape[3]

    def datapath(self, item: InstructionPlan) -> Datapath:
        return Datapath(self.accumulator_bound(item), (item.instruction.op.requant,), mean_table=True)

    def describe(self, item: InstructionPlan, fields: dict[str, int], context: DescribeContext) -> int:
        op = item.instruction.op
        fields["weights_addr"] = context.writer.append(
            lookup_table_words(op.table, item.inputs[0], PARAMS_WORD_BYTES, MEAN_TABLE_BITS))
        return FLAGS["table"]

    def pixel_loops(self, item: InstructionPlan, config: EngineConfig) -> PixelLoops:
        return global_pool_loops(item, config)


FACET = ByOp({Lookup: LookupEngine(), LookupMean: LookupMeanEngine()})
