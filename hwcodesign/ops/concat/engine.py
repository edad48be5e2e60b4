"""Concatenation on the engine: one pixel-unit instruction per input, each converting its part
into its place in the output's words, when every part but the last fills whole words; otherwise
(ShuffleNetV2's 58 + 58 channels) one channel gather of both parts (`hardware.engine.gather`),
each channel through its own part's output stage."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hwcodesign.hardware.engine.config import EngineConfig, EngineUnsupported
from hwcodesign.hardware.engine.datapath import Datapath, magnitude
from hwcodesign.hardware.engine.descriptor import DescribeContext
from hwcodesign.hardware.engine.gather import GATHER_INPUTS, copies_bytes, held_positions
from hwcodesign.hardware.engine.plan import Destination, Instruction, InstructionPlan, pixel_plan
from hwcodesign.hardware.engine.tables import record_words
from hwcodesign.ir.op import Op
from hwcodesign.ir.requant import Requant
from hwcodesign.ir.types import Tensor
from hwcodesign.ops.concat.ir import Concat
from hwcodesign.ops.facets.engine import ByOp, EngineFacet, GatherFacet, PixelFacet


class ConcatGather(GatherFacet):
    """A Concat of two parts that do not fill whole words: one gather holding a pixel of each."""

    def order(self, instruction: Instruction, inputs: Sequence[Tensor], word_bytes: int) -> tuple[int, ...]:
        return tuple(start + c for start, tensor in zip(held_positions(inputs, word_bytes), inputs, strict=True)
                     for c in range(tensor.channels))

    def copies(self, instruction: Instruction, inputs: Sequence[Tensor]) -> bool:
        return all(copies_bytes(requant, tensor)
                   for requant, tensor in zip(instruction.op.input_requants, inputs, strict=True))

    def stage(self, instruction: Instruction) -> Requant:
        """The first part's stage: its zero point and clamp are the output's, as every part's are."""
        return instruction.op.input_requants[0]

    def own_records(self, item: InstructionPlan) -> np.ndarray:
        """Each part's channels through that part's own output stage."""
        op = item.instruction.op
        return np.concatenate([record_words(requant, tensor.channels)
                               for requant, tensor in zip(op.input_requants, item.inputs, strict=True)])


GATHER = ConcatGather()


class ConcatParts(PixelFacet):
    """One pixel-unit instruction per part, each converting its part into its place in the output's
    words; a Concat of two parts that do not fill whole words is one gather (`ConcatGather`)."""

    def mode(self, op: Op) -> str:
        return "requant"

    def instructions(self, op: Op, inputs: Sequence[Tensor], word_bits: int) -> tuple[Instruction, ...]:
        word_bytes = word_bits // 8
        unaligned = [index for index, tensor in enumerate(inputs[:-1]) if tensor.channels % word_bytes]
        if not unaligned:
            return tuple(Instruction(op, self.mode(op), index) for index in range(len(inputs)))
        if len(inputs) <= GATHER_INPUTS:
            return (Instruction(op, GATHER.mode(op)),)
        raise EngineUnsupported(
            f"layer '{op.name}' (Concat): part {unaligned[0]} has {inputs[unaligned[0]].channels} channels; the engine "
            f"writes each part into whole {word_bits}-bit words, so every part but the last needs a multiple of "
            f"{word_bytes} channels (or the Concat has at most {GATHER_INPUTS} parts, gathered as one)")

    def plan(self, instruction: Instruction, inputs: Sequence[Tensor], config: EngineConfig,
             weight_bits: int) -> InstructionPlan:
        source = inputs[instruction.part]
        return pixel_plan(instruction, (source,), config, source)

    def accumulator_bound(self, item: InstructionPlan) -> int:
        return magnitude(item.inputs[0])

    def output_requant(self, instruction: Instruction) -> Requant:
        return instruction.op.input_requants[instruction.part]

    def records(self, item: InstructionPlan) -> np.ndarray:
        return record_words(self.output_requant(item.instruction), item.inputs[0].channels)  # the part's channels

    def copied_into(self, instruction: Instruction, inputs: Sequence[Tensor],
                    word_bytes: int) -> tuple[Tensor, Destination] | None:
        """A part is a byte-for-byte copy when its output stage is the identity on every value its
        input can hold (`copies_bytes`)."""
        source = inputs[instruction.part]
        if not copies_bytes(self.output_requant(instruction), source):
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


class ConcatEngine(ByOp):
    """A Concat's instructions: its parts' copies, or one gather of both parts, each run by its facet."""

    def __init__(self) -> None:
        super().__init__({Concat: ConcatParts()})

    def for_instruction(self, instruction: Instruction) -> EngineFacet:
        return GATHER if instruction.mode == GATHER.mode(instruction.op) else self.of(instruction.op)


FACET = ConcatEngine()
