"""The graph's inputs on the engine: the host writes them into the feature-map buffer before the
run, so they are tensors in DDR and no instruction."""

from __future__ import annotations

from collections.abc import Sequence

from hwcodesign.hardware.engine.config import EngineConfig
from hwcodesign.hardware.engine.plan import Instruction, InstructionPlan
from hwcodesign.ir.op import Op
from hwcodesign.ir.types import Tensor
from hwcodesign.ops.facets.engine import EngineFacet

_NO_INSTRUCTION = "a graph input is written by the host; the engine runs no instruction for it"


class InputEngine(EngineFacet):
    def instructions(self, op: Op, inputs: Sequence[Tensor], word_bits: int) -> tuple[Instruction, ...]:
        return ()

    def mode(self, op: Op) -> str:
        raise NotImplementedError(_NO_INSTRUCTION)

    def plan(self, instruction: Instruction, inputs: Sequence[Tensor], config: EngineConfig,
             weight_bits: int) -> InstructionPlan:
        raise NotImplementedError(_NO_INSTRUCTION)

    def accumulator_bound(self, item: InstructionPlan) -> int:
        raise NotImplementedError(_NO_INSTRUCTION)


FACET = InputEngine()
