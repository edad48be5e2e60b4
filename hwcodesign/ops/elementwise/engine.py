"""Activations and additions on the engine's pixel unit: an activation is its output stage alone
(the requant mode); an addition scales both inputs by their multipliers first."""

from __future__ import annotations

from hwcodesign.hardware.engine.datapath import magnitude
from hwcodesign.hardware.engine.descriptor import FLAGS, DescribeContext
from hwcodesign.hardware.engine.plan import InstructionPlan
from hwcodesign.ir.op import Op
from hwcodesign.ops.elementwise.ir import Act, Add
from hwcodesign.ops.facets.engine import ByOp, PixelFacet


class ActEngine(PixelFacet):
    def mode(self, op: Op) -> str:
        return "requant"


class AddEngine(PixelFacet):
    """The second input arrives on the aux port."""

    def mode(self, op: Op) -> str:
        return "add"

    def accumulator_bound(self, item: InstructionPlan) -> int:
        return sum(magnitude(t) * abs(m) for t, m in zip(item.inputs, item.instruction.op.input_multipliers))

    def describe(self, item: InstructionPlan, fields: dict[str, int], context: DescribeContext) -> int:
        op, aux = item.instruction.op, item.inputs[1]
        fields.update(context.tensor_fields("aux", aux))
        fields.update(mult_a=op.input_multipliers[0], mult_b=op.input_multipliers[1])
        return FLAGS["aux_signed"] if aux.dtype.signed else 0


FACET = ByOp({Act: ActEngine(), Add: AddEngine()})
