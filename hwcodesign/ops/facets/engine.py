"""The engine facet's interface: what the layer-sequential engine asks of an op family.

The engine (mapper/engine/program.py, mapper/engine/cost.py, mapper/engine/widths.py,
codegen/engine/program.py) owns its machinery: program order, the DDR arena, the memory system,
timing, resources. Everything that depends on the layer comes from the family's facet: which
unit and mode run it, its window and weights, its accumulator bounds, its descriptor fields and
its pixel-unit loops. A family the engine cannot run registers `Refused` instead.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from hwcodesign.hardware.engine.config import EngineConfig, EngineUnsupported
from hwcodesign.hardware.engine.datapath import Datapath, magnitude
from hwcodesign.hardware.engine.descriptor import DescribeContext
from hwcodesign.hardware.engine.gather import (
    check_gather,
    copies_bytes,
    describe_gather,
    gather_loops,
    gather_plan,
)
from hwcodesign.hardware.engine.plan import (
    Destination,
    Instruction,
    InstructionPlan,
    PixelLoops,
    Window,
    mac_plan,
    pixel_plan,
    streamed_loops,
)
from hwcodesign.hardware.engine.tables import record_words
from hwcodesign.ir.op import Op
from hwcodesign.ir.requant import Requant, largest
from hwcodesign.ir.types import Tensor
from hwcodesign.ops.refusal import Refused


class EngineFacet(ABC):
    """One family's layers on the engine. Stateless: a family registers one instance."""

    @abstractmethod
    def mode(self, op: Op) -> str:
        """The unit mode that runs `op` (a key of `hardware.engine.config.MODES`)."""

    def instructions(self, op: Op, inputs: Sequence[Tensor], word_bits: int) -> tuple[Instruction, ...]:
        """The instructions of `op` (one unless the family splits it); EngineUnsupported for what
        the engine's units cannot compute."""
        return (Instruction(op, self.mode(op)),)

    @abstractmethod
    def plan(self, instruction: Instruction, inputs: Sequence[Tensor], config: EngineConfig,
             weight_bits: int) -> InstructionPlan:
        """The instruction's schedule on `config` (`hardware.engine.plan.mac_plan` / `pixel_plan`)."""

    @abstractmethod
    def accumulator_bound(self, item: InstructionPlan) -> int:
        """The largest |accumulator| of the unit running `item`, bias included."""

    def copied_into(self, instruction: Instruction, inputs: Sequence[Tensor],
                    word_bytes: int) -> tuple[Tensor, Destination] | None:
        """When `instruction` only copies one of its inputs, byte for byte, into part of its
        output: that input and where it lands (its writer can store it there itself, and this
        instruction is dropped). None (the default): the instruction computes something."""
        return None

    def output_requant(self, instruction: Instruction) -> Requant:
        """The output stage the instruction's records hold."""
        return instruction.op.requant

    def bias(self, op: Op) -> np.ndarray | None:
        """The per-output-channel bias a MAC instruction's records hold (None: no bias)."""
        return None

    def records(self, item: InstructionPlan) -> np.ndarray:
        """A pixel instruction's output-stage records, one per output channel (`record_words`):
        `output_requant`'s, unless the channels' stages come from several requantizations."""
        return record_words(self.output_requant(item.instruction), item.output.channels)

    def datapath(self, item: InstructionPlan) -> Datapath:
        """What the instruction needs of the datapath widths."""
        op = item.instruction.op
        return Datapath(self.accumulator_bound(item), tuple(op.requants()), largest(self.bias(op)))

    def describe(self, item: InstructionPlan, fields: dict[str, int], context: DescribeContext) -> int:
        """Adds the family's descriptor fields (and params tables) to `fields`; returns its flags."""
        return 0

    def weights(self, item: InstructionPlan) -> np.ndarray:
        """A weighted MAC instruction's weights: (O, C, kh, kw) for the conv mode, dense over
        input channels; (C, kh * kw) for the channelwise mode."""
        raise NotImplementedError(f"{item.instruction.op.kind} loads no weights")

    def pixel_loops(self, item: InstructionPlan, config: EngineConfig) -> PixelLoops:
        """The pixel unit's loops for a pixel-mode instruction (the cost model's trip counts)."""
        raise NotImplementedError(f"{item.instruction.op.kind} does not run on the pixel unit")

    def gather(self, instruction: Instruction) -> GatherFacet | None:
        """The facet that runs `instruction` as a channel gather, when it is one (`compose_gathers`)."""
        return None


class ByOp(EngineFacet):
    """The facet of a family whose ops differ on the engine: one facet per op class, chosen by
    the op's exact class (as the registry chooses the family). An op class the engine cannot run
    while its family's others can is a `Refused` entry: asking anything of it raises
    `EngineUnsupported` naming the layer and the reason (the program refuses it first). A family
    whose one op runs as different instructions chooses by the instruction (`for_instruction`)."""

    def __init__(self, facets: dict[type[Op], EngineFacet | Refused]) -> None:
        self.facets = facets

    def of(self, op: Op) -> EngineFacet:
        facet = self.facets[type(op)]
        if isinstance(facet, Refused):
            raise EngineUnsupported(f"layer '{op.name}' ({op.kind}) {facet.reason}")
        return facet

    def for_instruction(self, instruction: Instruction) -> EngineFacet:
        """The facet that runs `instruction` (by default its op's)."""
        return self.of(instruction.op)

    def mode(self, op: Op) -> str:
        return self.of(op).mode(op)

    def instructions(self, op: Op, inputs: Sequence[Tensor], word_bits: int) -> tuple[Instruction, ...]:
        return self.of(op).instructions(op, inputs, word_bits)

    def plan(self, instruction: Instruction, inputs: Sequence[Tensor], config: EngineConfig,
             weight_bits: int) -> InstructionPlan:
        return self.for_instruction(instruction).plan(instruction, inputs, config, weight_bits)

    def accumulator_bound(self, item: InstructionPlan) -> int:
        return self.for_instruction(item.instruction).accumulator_bound(item)

    def copied_into(self, instruction: Instruction, inputs: Sequence[Tensor],
                    word_bytes: int) -> tuple[Tensor, Destination] | None:
        return self.for_instruction(instruction).copied_into(instruction, inputs, word_bytes)

    def output_requant(self, instruction: Instruction) -> Requant:
        return self.for_instruction(instruction).output_requant(instruction)

    def bias(self, op: Op) -> np.ndarray | None:
        return self.of(op).bias(op)

    def records(self, item: InstructionPlan) -> np.ndarray:
        return self.for_instruction(item.instruction).records(item)

    def datapath(self, item: InstructionPlan) -> Datapath:
        return self.for_instruction(item.instruction).datapath(item)

    def describe(self, item: InstructionPlan, fields: dict[str, int], context: DescribeContext) -> int:
        return self.for_instruction(item.instruction).describe(item, fields, context)

    def weights(self, item: InstructionPlan) -> np.ndarray:
        return self.for_instruction(item.instruction).weights(item)

    def pixel_loops(self, item: InstructionPlan, config: EngineConfig) -> PixelLoops:
        return self.for_instruction(item.instruction).pixel_loops(item, config)

    def gather(self, instruction: Instruction) -> GatherFacet | None:
        return self.for_instruction(instruction).gather(instruction)


class PixelFacet(EngineFacet):
    """A layer the pixel unit streams through its output stages: records for every output
    channel, the input's words once through the stages."""

    def plan(self, instruction: Instruction, inputs: Sequence[Tensor], config: EngineConfig,
             weight_bits: int) -> InstructionPlan:
        return pixel_plan(instruction, inputs, config, instruction.op.output)

    def accumulator_bound(self, item: InstructionPlan) -> int:
        return magnitude(item.inputs[0])

    def pixel_loops(self, item: InstructionPlan, config: EngineConfig) -> PixelLoops:
        return streamed_loops(item, config)


class GatherFacet(PixelFacet):
    """A layer the pixel unit runs as a channel gather (`hardware.engine.gather`): output channel
    c is byte `order[c]` of the held words of its inputs, through the output stage. An instruction
    composed with the gathers before it (`Instruction.route`) reads their sources in its route's
    order, through its route's records."""

    def mode(self, op: Op) -> str:
        return "gather"

    def gather(self, instruction: Instruction) -> GatherFacet | None:
        return self

    @abstractmethod
    def order(self, instruction: Instruction, inputs: Sequence[Tensor], word_bytes: int) -> tuple[int, ...]:
        """The op's own order: each output channel's byte position in its inputs' held words."""

    def copies(self, instruction: Instruction, inputs: Sequence[Tensor]) -> bool:
        """Every output channel is its source byte unchanged (the op's own stage; `copies_bytes`)."""
        return copies_bytes(instruction.op.requant, inputs[0])

    def stage(self, instruction: Instruction) -> Requant:
        """The op's own output stage (its zero point and clamp are the output's)."""
        return instruction.op.requant

    def own_records(self, item: InstructionPlan) -> np.ndarray:
        return record_words(self.stage(item.instruction), item.output.channels)

    def held_order(self, instruction: Instruction, inputs: Sequence[Tensor], word_bytes: int) -> tuple[int, ...]:
        """The order the instruction runs: its route's, else the op's."""
        route = instruction.route
        return route.order if route is not None else self.order(instruction, inputs, word_bytes)

    def output_requant(self, instruction: Instruction) -> Requant:
        return instruction.route.stage if instruction.route is not None else self.stage(instruction)

    def records(self, item: InstructionPlan) -> np.ndarray:
        route = item.instruction.route
        return route.records if route is not None else self.own_records(item)

    def datapath(self, item: InstructionPlan) -> Datapath:
        route = item.instruction.route
        requants = route.requants if route is not None else tuple(item.instruction.op.requants())
        return Datapath(self.accumulator_bound(item), requants)

    def plan(self, instruction: Instruction, inputs: Sequence[Tensor], config: EngineConfig,
             weight_bits: int) -> InstructionPlan:
        order = self.held_order(instruction, inputs, config.word_bytes)
        check_gather(instruction.op.name, instruction.op.kind, inputs, order, config.word_bytes)
        return gather_plan(instruction, inputs, config, order)

    def accumulator_bound(self, item: InstructionPlan) -> int:
        return max(magnitude(tensor) for tensor in item.inputs)

    def describe(self, item: InstructionPlan, fields: dict[str, int], context: DescribeContext) -> int:
        order = self.held_order(item.instruction, item.inputs, context.config.word_bytes)
        return describe_gather(item, order, fields, context)

    def pixel_loops(self, item: InstructionPlan, config: EngineConfig) -> PixelLoops:
        return gather_loops(item, config)


def window_bound(item: InstructionPlan, sample: int, weight: np.ndarray, bias: np.ndarray, groups: int,
                 taps: int) -> int:
    """A weighted window's accumulator bound: |sample| x max|w| x row length + max|bias|."""
    row = (item.inputs[0].channels // groups) * taps
    return sample * largest(weight) * row + largest(bias)


class ConvWindowFacet(EngineFacet):
    """A layer with a conv's window and weights (kernel, stride, pads, dilation, groups, bias) on
    the MAC unit: a convolution, a depthwise one."""

    def plan(self, instruction: Instruction, inputs: Sequence[Tensor], config: EngineConfig,
             weight_bits: int) -> InstructionPlan:
        op = instruction.op
        return mac_plan(instruction, inputs, config, weight_bits, Window(op.kernel, op.stride, op.pads[:2], op.dilation))

    def accumulator_bound(self, item: InstructionPlan) -> int:
        op = item.instruction.op
        taps = op.kernel[0] * op.kernel[1]
        return window_bound(item, magnitude(item.inputs[0]), op.weight, op.bias, op.groups, taps)

    def bias(self, op: Op) -> np.ndarray | None:
        return op.bias
