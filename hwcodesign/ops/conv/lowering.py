"""Lowering of convolutions and fully connected layers: Conv, Gemm and MatMul with quantized weights.

A conv whose output the sparse convention masks becomes a `SubmanifoldConv`, and one with a
group per channel a `DepthwiseConv`: the kind is chosen once its output stage is known. A
per-channel scale and shift with nothing to fold into (`affine_pending`) is a 1x1 depthwise conv.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import onnx

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.frontend.context import LoweringContext
from hwcodesign.frontend.epilogue import add_bias
from hwcodesign.frontend.padding import add_pads, padded_shape, window_input
from hwcodesign.frontend.validate import check_window
from hwcodesign.frontend.values import Activation, ConvWindow, FinalStage, Pending, QuantizedConstant
from hwcodesign.frontend.weights import (
    bias_and_requant,
    bias_real,
    output_channel_scale,
    unit_requant,
    weight_format,
    weights,
)
from hwcodesign.frontend.windows import window_pads
from hwcodesign.ir.op import Op
from hwcodesign.ir.types import DyBitType, IntType
from hwcodesign.ops.channelwise import ir as channelwise_ir  # a module: channelwise.ir imports conv.ir
from hwcodesign.ops.conv.ir import Conv, Linear
from hwcodesign.ops.facets.lowering import FamilyLowering
from hwcodesign.ops.sparse import ir as sparse_ir


def sparse_conv_kind(sparse: bool, depthwise: bool) -> type:
    """The IR op a conv's builder makes: sparse when its output has an active set."""
    if sparse:
        return sparse_ir.SubmanifoldConv
    return channelwise_ir.DepthwiseConv if depthwise else Conv


def conv(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    x, padded = window_input(ctx, node, name, "zero")
    attrs = ctx.attrs(node)
    weight = weights(ctx, node, name, 1)
    w_scale, w_int, w_type = output_channel_scale(name, node.op_type, weight, 0)
    if w_int.ndim != 4:
        raise UnsupportedModelError(name, node.op_type, f"{w_int.ndim - 2}-D convolution; only 2-D is supported")
    check_window(name, node.op_type, attrs, w_int.shape[2:])
    w_type = weight_format(ctx, name, node.op_type, w_int, w_type)
    out_channels, _, kh, kw = w_int.shape
    groups = int(attrs.get("group", 1))
    stride = tuple(int(s) for s in attrs.get("strides", (1, 1)))
    dilation = tuple(int(d) for d in attrs.get("dilations", (1, 1)))
    seen = padded_shape(x.tensor.shape, padded)  # what the node's own window reads: an explicit Pad's output
    pads = add_pads(window_pads(node, name, attrs, seen, (kh, kw), stride, dilation), padded)
    depthwise = groups > 1 and groups == x.tensor.channels == out_channels
    layer_name = ctx.unique(name)
    input_name = x.tensor.name

    def build(stage: FinalStage) -> Op:
        bias, requant = bias_and_requant(name, node.op_type, stage)
        if stage.output.sparse and isinstance(w_type, DyBitType):
            raise UnsupportedModelError(name, node.op_type, f"{w_type} weights on a sparse conv; DyBit weights are "
                                        "decoded in dense Conv, depthwise Conv and Gemm/MatMul stages")
        kind = sparse_conv_kind(stage.output.sparse, depthwise)
        return kind(layer_name, (input_name,), stage.output, w_int, w_type, bias,
                    stride, pads, dilation, groups, requant)  # type: ignore[arg-type]

    probe = Conv(layer_name, (input_name,), x.tensor, w_int, w_type, np.zeros(out_channels, np.int64),
                 stride, pads, dilation, groups, unit_requant())  # type: ignore[arg-type]
    shape = probe.output_shape([x.tensor.shape])
    if min(shape[2:]) < 1:
        raise UnsupportedModelError(name, node.op_type, f"output would be empty: {shape}")
    acc_scale = x.tensor.scale * w_scale
    window = ConvWindow(x.tensor.active, (kh, kw), stride, pads, x.tensor.shape[2:])  # type: ignore[arg-type]
    pending = Pending(name, node.op_type, shape, acc_scale, build, bias=np.zeros(out_channels), window=window)
    ctx.values[node.output[0]] = add_bias(pending, bias_real(ctx, node, name, 2, out_channels), node)


def linear(ctx: LoweringContext, node: onnx.NodeProto, name: str, x: Activation, weight: QuantizedConstant,
           out_axis: int, gain: float, bias_index: int | None) -> None:
    tensor = x.tensor
    if not x.flat and tensor.shape[2:] != (1, 1):
        raise UnsupportedModelError(
            name, node.op_type, f"input '{tensor.name}' is {tensor.shape}; flatten it before a matrix multiply"
        )
    w_scale, w_int, w_type = output_channel_scale(name, node.op_type, weight, out_axis)
    if w_int.ndim != 2 or w_int.shape[1] != tensor.elements_per_frame:
        raise UnsupportedModelError(
            name, node.op_type, f"weight shape {weight.q.shape} does not match {tensor.elements_per_frame} inputs"
        )
    w_type = weight_format(ctx, name, node.op_type, w_int, w_type)
    out_channels = w_int.shape[0]
    w_int = w_int.reshape((out_channels,) + tensor.shape[1:])
    layer_name = ctx.unique(name)

    def build(stage: FinalStage) -> Op:
        bias, requant = bias_and_requant(name, node.op_type, stage)
        return Linear(layer_name, (tensor.name,), stage.output, w_int, w_type, bias, requant)

    shape = (1, out_channels, 1, 1)
    pending = Pending(name, node.op_type, shape, tensor.scale * w_scale, build,
                      gain=np.full(1, gain), bias=np.zeros(out_channels), flat=True)
    if bias_index is not None:
        pending = add_bias(pending, bias_real(ctx, node, name, bias_index, out_channels), node)
    ctx.values[node.output[0]] = pending


def gemm(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    attrs = ctx.attrs(node)
    if int(attrs.get("transA", 0)):
        raise UnsupportedModelError(name, node.op_type, "transA=1 is not supported")
    x = ctx.activation(node, name, 0)
    weight = weights(ctx, node, name, 1)
    out_axis = 0 if int(attrs.get("transB", 0)) else 1
    beta = float(attrs.get("beta", 1.0))
    alpha = float(attrs.get("alpha", 1.0))
    linear(ctx, node, name, x, weight, out_axis, alpha, None)
    pending = ctx.values[node.output[0]]
    assert isinstance(pending, Pending)
    bias = bias_real(ctx, node, name, 2, pending.channels) * beta
    ctx.values[node.output[0]] = add_bias(pending, bias, node)


def matmul(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    x = ctx.activation(node, name, 0)
    linear(ctx, node, name, x, weights(ctx, node, name, 1), 1, 1.0, None)


def affine_pending(ctx: LoweringContext, x: Activation, name: str) -> Pending:
    """A per-channel scale and shift of a quantized activation (BatchNorm, Add/Mul by a constant).

    With nothing to fold into, it becomes a 1x1 depthwise conv with unit weights: the
    per-channel multiplier, bias and offset of its output stage do the work.
    """
    tensor = x.tensor
    channels = tensor.channels
    unit = np.ones((channels, 1, 1, 1), np.int64)
    layer_name = ctx.unique(name)

    def build(stage: FinalStage) -> Op:
        bias, requant = bias_and_requant(name, "affine", stage)
        kind = sparse_conv_kind(stage.output.sparse, channels > 1)
        return kind(layer_name, (tensor.name,), stage.output, unit, IntType(2, True), bias,
                    (1, 1), (0, 0, 0, 0), (1, 1), channels, requant)

    window = ConvWindow(tensor.active, (1, 1), (1, 1), (0, 0, 0, 0), tensor.shape[2:])  # type: ignore[arg-type]
    return Pending(name, "affine", tensor.shape, np.full(1, tensor.scale), build,
                   bias=np.zeros(channels), flat=x.flat, window=window)


LOWERING = FamilyLowering(
    rules=MappingProxyType({"Conv": conv, "Gemm": gemm, "MatMul": matmul}),
    builders=MappingProxyType({"affine": affine_pending}),
)
