"""Concatenation on the engine: one pixel-unit instruction per input, each converting its part
into its place in the output's words (so every part but the last fills whole words)."""

from __future__ import annotations

from collections.abc import Sequence

from hwcodesign.hardware.engine.config import EngineConfig, EngineUnsupported
from hwcodesign.hardware.engine.datapath import Datapath, magnitude
from hwcodesign.hardware.engine.descriptor import DescribeContext
from hwcodesign.hardware.engine.plan import Destination, Instruction, InstructionPlan, pixel_plan
from hwcodesign.ir.op import Op
from hwcodesign.ir.requant import Requant
from hwcodesign.ir.types import Tensor
from hwcodesign.ops.facets.engine import PixelFacet


class ConcatEngine(PixelFacet):
    def mode(self, op: Op) -> str:
        return "requant"

    def instructions(self, op: Op, inputs: Sequence[Tensor], word_bits: int) -> tuple[Instruction, ...]:
        word_bytes = word_bits // 8
        for index, tensor in enumerate(inputs[:-1]):
            if tensor.channels % word_bytes:
                raise EngineUnsupported(
                    f"layer '{op.name}' (Concat): part {index} has {tensor.channels} channels; the engine writes "
                    f"each part into whole {word_bits}-bit words, so every part but the last needs a multiple "
                    f"of {word_bytes} channels")
        return tuple(Instruction(op, self.mode(op), index) for index in range(len(inputs)))

    def plan(self, instruction: Instruction, inputs: Sequence[Tensor], config: EngineConfig,
             weight_bits: int) -> InstructionPlan:
        source = inputs[instruction.part]
        return pixel_plan(instruction, (source,), config, source)

    def accumulator_bound(self, item: InstructionPlan) -> int:
        return magnitude(item.inputs[0])

    def output_requant(self, instruction: Instruction) -> Requant:
        return instruction.op.input_requants[instruction.part]

    def copied_into(self, instruction: Instruction, inputs: Sequence[Tensor],
                    word_bytes: int) -> tuple[Tensor, Destination] | None:
        """A part is a byte-for-byte copy when its output stage is the identity on every value its
        input can hold: multiplier 2**shift, no offset, the input's zero point, a clamp covering
        the input's range (the pixel unit computes (x - zp_in) * M >> shift + zp_out, clamped)."""
        source, requant = inputs[instruction.part], self.output_requant(instruction)
        if not (requant.is_identity() and requant.zero_point == source.zero_point
                and requant.lo <= source.dtype.min and requant.hi >= source.dtype.max):
            return None
        offset = sum(t.channels for t in inputs[: instruction.part]) // word_bytes
        return source, Destination(instruction.op.output, offset)

    def datapath(self, item: InstructionPlan) -> Datapath:
        return Datapath(self.accumulator_bound(item), (self.output_requant(item.instruction),))

    def describe(self, item: InstructionPlan, fields: dict[str, int], context: DescribeContext) -> int:
        """The part's channels, at its word offset in the output."""
        before = context.graph.input_tensors(item.instruction.op)[: item.instruction.part]
        fields.update(out_c=item.inputs[0].channels,
                      out_word_offset=sum(t.channels for t in before) // context.config.word_bytes)
        return 0


FACET = ConcatEngine()
