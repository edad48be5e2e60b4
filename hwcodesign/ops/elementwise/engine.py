"""Activations, additions and products on the engine's pixel unit: an activation is its output
stage alone (the requant mode); an addition scales both inputs by their multipliers first; a
product multiplies the centred inputs (a squeeze-excitation gate: one pixel, held while the map
streams), each then requantized once."""

from __future__ import annotations

from dataclasses import replace

from hwcodesign.hardware.engine.config import EngineConfig, words_per_pixel
from hwcodesign.hardware.engine.datapath import magnitude
from hwcodesign.hardware.engine.descriptor import FLAGS, DescribeContext
from hwcodesign.hardware.engine.plan import InstructionPlan, PixelLoops, streamed_loops
from hwcodesign.ir.op import Op
from hwcodesign.ops.elementwise.ir import Act, Add, Mul
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


class MulEngine(PixelFacet):
    """The product of two activations on the pixel unit's multipliers: the second input on the aux
    port, a whole map word for word, or a gate's one pixel read once into the gate buffer and
    applied at every pixel (`HWC_FLAG_GATE`)."""

    def mode(self, op: Op) -> str:
        return "mul"

    def accumulator_bound(self, item: InstructionPlan) -> int:
        return magnitude(item.inputs[0]) * magnitude(item.inputs[1])

    def describe(self, item: InstructionPlan, fields: dict[str, int], context: DescribeContext) -> int:
        aux = item.inputs[1]
        fields.update(context.tensor_fields("aux", aux))
        flags = FLAGS["aux_signed"] if aux.dtype.signed else 0
        return flags | (FLAGS["gate"] if item.instruction.op.broadcast else 0)

    def pixel_loops(self, item: InstructionPlan, config: EngineConfig) -> PixelLoops:
        """The map's words through the products; a gate's pixel is read first, in its own loop."""
        loops = streamed_loops(item, config)
        if not item.instruction.op.broadcast:
            return loops
        gate_words = words_per_pixel(item.inputs[1], config.word_bytes)
        return replace(loops, iterations=loops.iterations + gate_words, loops=loops.loops + 1)


FACET = ByOp({Act: ActEngine(), Add: AddEngine(), Mul: MulEngine()})
