"""Lowering of channelwise layers: MaxPool, AveragePool and GlobalAveragePool.

(A depthwise conv is lowered by the conv family's rule, which picks `DepthwiseConv` for a group
per channel; a pool of an active-site mask by the sparse family's `recognize-sparse-masks`.)
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import onnx

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.frontend.context import LoweringContext
from hwcodesign.frontend.validate import check_window
from hwcodesign.frontend.values import FinalStage, OutputQuantizer, Pending
from hwcodesign.frontend.windows import window_pads
from hwcodesign.ir.op import Op, window_output_size
from hwcodesign.ops.channelwise.ir import GlobalAvgPool, Pool
from hwcodesign.ops.facets.lowering import FamilyLowering


def pool(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    x = ctx.activation(node, name, 0).tensor
    attrs = ctx.attrs(node)
    kernel = tuple(int(k) for k in attrs.get("kernel_shape", ()))  # type: ignore[union-attr]
    check_window(name, node.op_type, attrs, kernel)
    stride = tuple(int(s) for s in attrs.get("strides", (1, 1)))
    if int(attrs.get("ceil_mode", 0)):
        raise UnsupportedModelError(name, node.op_type, "ceil_mode=1 is not supported; use floor mode (ceil_mode=0), "
                                    "with one more row/column of pads at the bottom/right if the size must stay")
    if any(int(d) != 1 for d in attrs.get("dilations", (1, 1))):
        raise UnsupportedModelError(name, node.op_type, "dilated pooling is not supported")
    pads = window_pads(node, name, attrs, x.shape, kernel, stride, (1, 1))  # type: ignore[arg-type]
    mode = "max" if node.op_type == "MaxPool" else "avg"
    if mode == "avg" and any(pads) and not int(attrs.get("count_include_pad", 0)):
        raise UnsupportedModelError(
            name, node.op_type, "count_include_pad=0 with padding gives a position-dependent divisor; use count_include_pad=1"
        )
    if len(node.output) > 1 and node.output[1]:
        raise UnsupportedModelError(name, node.op_type, "the Indices output is not supported")
    layer_name = ctx.unique(name)

    def build(stage: FinalStage) -> Op:
        requant = stage.requant()
        return Pool(layer_name, (x.name,), stage.output, mode, kernel, stride, pads, requant)  # type: ignore[arg-type]

    shape = (x.shape[0], x.shape[1],
             window_output_size(x.shape[2], kernel[0], stride[0], pads[0] + pads[2], 1),
             window_output_size(x.shape[3], kernel[1], stride[1], pads[1] + pads[3], 1))
    acc_scale = x.scale if mode == "max" else x.scale / (kernel[0] * kernel[1])
    passthrough = OutputQuantizer.of(x) if mode == "max" else None
    ctx.values[node.output[0]] = Pending(name, node.op_type, shape, np.full(1, acc_scale), build,
                                          has_bias=False, passthrough=passthrough)


def global_average_pool(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    x = ctx.activation(node, name, 0).tensor
    layer_name = ctx.unique(name)

    def build(stage: FinalStage) -> Op:
        requant = stage.requant()
        return GlobalAvgPool(layer_name, (x.name,), stage.output, requant)

    shape = (x.shape[0], x.shape[1], 1, 1)
    acc_scale = x.scale / (x.shape[2] * x.shape[3])
    ctx.values[node.output[0]] = Pending(name, node.op_type, shape, np.full(1, acc_scale), build, has_bias=False)


LOWERING = FamilyLowering(rules=MappingProxyType({
    "MaxPool": pool, "AveragePool": pool, "GlobalAveragePool": global_average_pool,
}))
