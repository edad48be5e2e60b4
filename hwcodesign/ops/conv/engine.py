"""Convolutions and fully connected layers on the engine: the MAC unit's conv mode (PE output
channels x SIMD input channels per step); a Linear is a conv whose window is its whole input."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hwcodesign.hardware.engine.config import EngineConfig
from hwcodesign.hardware.engine.datapath import magnitude
from hwcodesign.hardware.engine.plan import Instruction, InstructionPlan, Window, mac_plan
from hwcodesign.hardware.engine.tables import grouped_to_dense
from hwcodesign.ir.op import Op
from hwcodesign.ir.requant import largest
from hwcodesign.ir.types import Tensor
from hwcodesign.ops.conv.ir import Conv, Linear
from hwcodesign.ops.facets.engine import ByOp, ConvWindowFacet, EngineFacet


class ConvEngine(ConvWindowFacet):
    def mode(self, op: Op) -> str:
        return "conv"

    def weights(self, item: InstructionPlan) -> np.ndarray:
        op = item.instruction.op
        return grouped_to_dense(op.weight, op.groups, item.inputs[0])


class LinearEngine(EngineFacet):
    """A conv whose window is its whole input."""

    def mode(self, op: Op) -> str:
        return "conv"

    def bias(self, op: Op) -> np.ndarray | None:
        return op.bias

    def plan(self, instruction: Instruction, inputs: Sequence[Tensor], config: EngineConfig,
             weight_bits: int) -> InstructionPlan:
        source = inputs[0]
        return mac_plan(instruction, inputs, config, weight_bits, Window((source.shape[2], source.shape[3])))

    def accumulator_bound(self, item: InstructionPlan) -> int:
        op, x = item.instruction.op, item.inputs[0]
        return magnitude(x) * largest(op.weight) * x.elements_per_frame + largest(op.bias)

    def weights(self, item: InstructionPlan) -> np.ndarray:
        return np.asarray(item.instruction.op.weight, np.int64)  # (O, C, H, W) already is dense


FACET = ByOp({Conv: ConvEngine(), Linear: LinearEngine()})
