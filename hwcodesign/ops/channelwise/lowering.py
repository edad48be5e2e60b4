"""Lowering of channelwise layers: MaxPool, AveragePool, GlobalAveragePool and ReduceMean over H, W.

(A depthwise conv is lowered by the conv family's rule, which picks `DepthwiseConv` for a group
per channel; a pool of an active-site mask by the sparse family's `recognize-sparse-masks`.)
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import onnx

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.frontend.context import LoweringContext
from hwcodesign.frontend.padding import add_pads, padded_shape, window_input
from hwcodesign.frontend.validate import check_window
from hwcodesign.frontend.values import FinalStage, OutputQuantizer, Pending
from hwcodesign.frontend.windows import window_pads
from hwcodesign.ir.op import Op, window_output_size
from hwcodesign.ops.channelwise.ir import GlobalAvgPool, Pool
from hwcodesign.ops.facets.lowering import FamilyLowering


def pool(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    source, padded = window_input(ctx, node, name, "lowest" if node.op_type == "MaxPool" else "zero")
    x = source.tensor
    attrs = ctx.attrs(node)
    kernel = tuple(int(k) for k in attrs.get("kernel_shape", ()))  # type: ignore[union-attr]
    check_window(name, node.op_type, attrs, kernel)
    stride = tuple(int(s) for s in attrs.get("strides", (1, 1)))
    if any(int(d) != 1 for d in attrs.get("dilations", (1, 1))):
        raise UnsupportedModelError(name, node.op_type, "dilated pooling is not supported")
    # the node's own window is over the tensor an explicit Pad before it made (`padded`, folded here)
    seen = padded_shape(x.shape, padded)
    pads = window_pads(node, name, attrs, seen, kernel, stride, (1, 1))  # type: ignore[arg-type]
    mode = "max" if node.op_type == "MaxPool" else "avg"
    if mode == "avg" and any(pads) and not int(attrs.get("count_include_pad", 0)):
        raise UnsupportedModelError(
            name, node.op_type, "count_include_pad=0 with padding gives a position-dependent divisor; use count_include_pad=1"
        )
    if int(attrs.get("ceil_mode", 0)):
        pads = ceil_mode_pads(name, node.op_type, mode, seen, kernel, stride, pads)
    pads = add_pads(pads, padded)  # an explicit Pad's zeros are elements: an average's divisor counts them
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


def ceil_mode_pads(name: str, op_type: str, mode: str, shape: tuple[int, ...], kernel: tuple[int, ...],
                   stride: tuple[int, ...], pads: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """ceil_mode=1 as floor mode with extra bottom/right pads: one more window per axis where the
    floor formula drops a partial one, kept only if it starts inside the input or the top/left pad
    (ONNX and torch drop a window starting in the bottom/right pad). A max pool pads below the
    type's range, so the extra pad never wins; an average pool's divisor would count it."""
    extra = []
    for axis in range(2):
        size, k, s = shape[2 + axis], kernel[axis], stride[axis]
        begin, end = pads[axis], pads[axis + 2]
        out = -(-(size + begin + end - k) // s) + 1
        if (out - 1) * s >= size + begin:
            out -= 1
        extra.append(max(0, (out - 1) * s + k - (size + begin + end)))
    if mode == "avg" and any(extra):
        raise UnsupportedModelError(name, op_type, "ceil_mode=1 adds a partial window at the bottom/right whose "
                                    "divisor counts only the real positions; an average pool cannot lower it exactly")
    return (pads[0], pads[1], pads[2] + extra[0], pads[3] + extra[1])


def reduce_mean(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    """ReduceMean over H and W (axes as an attribute before opset 18, as an input from 18) is a
    global average pool; with keepdims=0 its (N, C) output is the pool's output viewed flat."""
    attrs = ctx.attrs(node)
    if len(node.input) > 1 and node.input[1]:
        axes = [int(a) for a in ctx.constant(node, name, 1, "axes").reshape(-1)]
    else:
        axes = [int(a) for a in attrs.get("axes", ())]  # type: ignore[union-attr]
    x = ctx.activation(node, name, 0).tensor
    if len(x.shape) != 4 or sorted(a % 4 for a in axes) != [2, 3]:
        raise UnsupportedModelError(name, node.op_type, f"axes {axes}: only a mean over H and W (axes 2, 3) of an "
                                    "NCHW tensor is supported, as a global average pool")
    global_average_pool(ctx, node, name)
    if not int(attrs.get("keepdims", 1)):
        ctx.values[node.output[0]] = ctx.values[node.output[0]].with_changes(flat=True)  # type: ignore[union-attr]


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
    "MaxPool": pool, "AveragePool": pool, "GlobalAveragePool": global_average_pool, "ReduceMean": reduce_mean,
}))
