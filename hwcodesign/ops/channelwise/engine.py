"""Channelwise layers on the engine: depthwise convs and pools on the MAC unit's channelwise mode
(SIMD channels per step, one tap at a time); global average pooling on the pixel unit."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hwcodesign.hardware.engine.config import EngineConfig
from hwcodesign.hardware.engine.datapath import X_BITS, Datapath, magnitude
from hwcodesign.hardware.engine.descriptor import FLAGS, DescribeContext
from hwcodesign.hardware.engine.plan import (
    Instruction,
    InstructionPlan,
    PixelLoops,
    Window,
    global_pool_loops,
    mac_plan,
)
from hwcodesign.ir.op import Op
from hwcodesign.ir.types import Tensor
from hwcodesign.ops.channelwise.ir import DepthwiseConv, GlobalAvgPool, Pool
from hwcodesign.ops.facets.engine import ByOp, ConvWindowFacet, EngineFacet, PixelFacet


class DepthwiseEngine(ConvWindowFacet):
    def mode(self, op: Op) -> str:
        return "channelwise"

    def weights(self, item: InstructionPlan) -> np.ndarray:
        return np.asarray(item.instruction.op.weight, np.int64).reshape(item.inputs[0].channels, item.taps)


class PoolEngine(EngineFacet):
    """A pool is a channelwise window without a bias: an average pool weighs every tap 1 (its
    output stage divides), a max pool loads no weights and the unit takes the maximum."""

    def mode(self, op: Op) -> str:
        return "channelwise"

    def plan(self, instruction: Instruction, inputs: Sequence[Tensor], config: EngineConfig,
             weight_bits: int) -> InstructionPlan:
        op = instruction.op
        return mac_plan(instruction, inputs, config, weight_bits, Window(op.kernel, op.stride, op.pads[:2]),
                        weighted=op.mode != "max")

    def accumulator_bound(self, item: InstructionPlan) -> int:
        op = item.instruction.op
        taps = op.kernel[0] * op.kernel[1] if op.mode == "avg" else 1
        return max(magnitude(item.inputs[0]), 1 << (X_BITS - 1)) * taps

    def datapath(self, item: InstructionPlan) -> Datapath:
        op = item.instruction.op
        return Datapath(self.accumulator_bound(item), op.requants(), max_pool=op.mode == "max")

    def describe(self, item: InstructionPlan, fields: dict[str, int], context: DescribeContext) -> int:
        return FLAGS["max_pool"] if item.instruction.op.mode == "max" else 0

    def weights(self, item: InstructionPlan) -> np.ndarray:
        return np.ones((item.inputs[0].channels, item.taps), np.int64)


class GlobalPoolEngine(PixelFacet):
    """The pixel unit sums every pixel of a channel, then converts the sums once."""

    def mode(self, op: Op) -> str:
        return "global_pool"

    def accumulator_bound(self, item: InstructionPlan) -> int:
        source = item.inputs[0]
        return magnitude(source) * source.shape[2] * source.shape[3]

    def pixel_loops(self, item: InstructionPlan, config: EngineConfig) -> PixelLoops:
        return global_pool_loops(item, config)


FACET = ByOp({DepthwiseConv: DepthwiseEngine(), Pool: PoolEngine(), GlobalAvgPool: GlobalPoolEngine()})
