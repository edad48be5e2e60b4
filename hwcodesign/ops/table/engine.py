"""Lookup tables on the layer-sequential engine's pixel unit (`hwc_engine_lookup.h`, built only
into engines whose program has one): before the layer runs, its table (`LOOKUP_ENTRIES` bytes,
one per stored input byte) is loaded from params into the pixel unit's table memory, a copy per
pixel lane; then the input streams through it as through the other per-element layers, EW_LANES
elements a cycle. The table replaces the output-stage records: the layer has no requantization."""

from __future__ import annotations

from collections.abc import Sequence

from hwcodesign.hardware.engine.config import EngineConfig
from hwcodesign.hardware.engine.descriptor import DescribeContext
from hwcodesign.hardware.engine.plan import Instruction, InstructionPlan
from hwcodesign.hardware.engine.tables import LOOKUP_ENTRIES, lookup_table_words
from hwcodesign.ir.op import Op
from hwcodesign.ir.requant import Requant, identity_requant
from hwcodesign.ir.types import Tensor
from hwcodesign.ops.facets.engine import PixelFacet


class LookupEngine(PixelFacet):
    def mode(self, op: Op) -> str:
        return "lookup"

    def plan(self, instruction: Instruction, inputs: Sequence[Tensor], config: EngineConfig,
             weight_bits: int) -> InstructionPlan:
        return InstructionPlan(instruction, tuple(inputs), instruction.op.output,
                               lookup_words=LOOKUP_ENTRIES // config.word_bytes)

    def output_requant(self, instruction: Instruction) -> Requant:
        """No output stage; the descriptor's output zero point and range are the output type's."""
        out = instruction.op.output
        return identity_requant(1, out.zero_point, out.dtype.min, out.dtype.max)

    def describe(self, item: InstructionPlan, fields: dict[str, int], context: DescribeContext) -> int:
        op = item.instruction.op
        fields["tables_addr"] = context.writer.append(lookup_table_words(op.table, item.inputs[0],
                                                                         context.config.word_bytes))
        return 0


FACET = LookupEngine()
