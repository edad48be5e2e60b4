"""Lowering of Concat along channels: one requantization per input onto the output grid."""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import onnx

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.frontend.context import LoweringContext
from hwcodesign.frontend.values import FinalStage, OutputQuantizer, Pending
from hwcodesign.ir.op import Op
from hwcodesign.ir.requant import make_requant
from hwcodesign.ops.concat.ir import Concat
from hwcodesign.ops.facets.lowering import FamilyLowering


def concat(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    axis = int(ctx.attrs(node).get("axis", 1))
    tensors = [ctx.require_activation(i, name, node.op_type).tensor for i in node.input]
    if axis not in (1, -3):
        raise UnsupportedModelError(name, node.op_type, f"concat along axis {axis}; only channels (axis 1)")
    if len({(t.shape[2], t.shape[3]) for t in tensors}) != 1:
        raise UnsupportedModelError(name, node.op_type, "inputs differ in spatial size")
    layer_name = ctx.unique(name)

    def build(stage: FinalStage) -> Op:
        ratio = float(stage.ratio[0])
        requants = tuple(
            make_requant(np.full(t.channels, ratio * t.scale), stage.output.zero_point, stage.lo, stage.hi)
            for t in tensors
        )
        return Concat(layer_name, tuple(t.name for t in tensors), stage.output, requants)

    first = tensors[0]
    same = all(OutputQuantizer.of(first).same_grid(t) for t in tensors)
    shape = (first.shape[0], sum(t.channels for t in tensors), first.shape[2], first.shape[3])
    ctx.values[node.output[0]] = Pending(name, node.op_type, shape, np.ones(1), build, has_bias=False,
                                          passthrough=OutputQuantizer.of(first) if same else None)


LOWERING = FamilyLowering(rules=MappingProxyType({"Concat": concat}))
