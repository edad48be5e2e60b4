"""Activations and additions on the engine's pixel unit: an activation is its output stage alone
(the requant mode); an addition scales both inputs by their multipliers first. The product of two
activations is refused: the pixel unit has no multiplier between its inputs and its aux port
streams a second map word for word, not a per-channel gate re-read at every pixel."""

from __future__ import annotations

from hwcodesign.hardware.engine.datapath import magnitude
from hwcodesign.hardware.engine.descriptor import FLAGS, DescribeContext
from hwcodesign.hardware.engine.plan import InstructionPlan
from hwcodesign.ir.op import Op
from hwcodesign.ops.elementwise.ir import Act, Add, Mul
from hwcodesign.ops.facets.engine import ByOp, PixelFacet
from hwcodesign.ops.refusal import Refused


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


MUL_REFUSAL = (
    "is a product of two activations: the engine's pixel unit has no multiplier between its two inputs "
    "(its add mode scales each input by a constant and sums them) and its aux port streams a second map "
    "of the input's shape, not a per-channel gate re-read at every pixel; build the network as the "
    "dataflow pipeline, which runs it (a squeeze-excitation gate held once per frame)"
)

FACET = ByOp({Act: ActEngine(), Add: AddEngine(), Mul: Refused(MUL_REFUSAL)})
