"""Lowering of channelwise layers: MaxPool, AveragePool, GlobalAveragePool and ReduceMean over H, W,
and QONNX's Trunc of an average (Brevitas's TruncAvgPool2d).

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
from hwcodesign.frontend.quantizers import MAX_ACTIVATION_BITS, check_qonnx_flags, qonnx_int_range, whole_bits
from hwcodesign.frontend.validate import check_scale, check_window
from hwcodesign.frontend.values import Activation, FinalStage, OutputQuantizer, Pending
from hwcodesign.frontend.windows import ceil_mode_pads, window_pads
from hwcodesign.ir.op import Op, window_output_size
from hwcodesign.ir.requant import ROUNDING_MODES, rounding_bias
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
        pads = pool_ceil_pads(name, node.op_type, mode, seen, kernel, stride, pads)
    pads = add_pads(pads, padded)  # an explicit Pad's zeros are elements: an average's divisor counts them
    if len(node.output) > 1 and node.output[1]:
        raise UnsupportedModelError(name, node.op_type, "the Indices output is not supported")
    layer_name = ctx.unique(name)

    def build(stage: FinalStage) -> Op:
        requant = stage.requant(stage.bias)  # a pool adds no bias: a Trunc's rounding bias is the stage's offset
        return Pool(layer_name, (x.name,), stage.output, mode, kernel, stride, pads, requant)  # type: ignore[arg-type]

    shape = (x.shape[0], x.shape[1],
             window_output_size(x.shape[2], kernel[0], stride[0], pads[0] + pads[2], 1),
             window_output_size(x.shape[3], kernel[1], stride[1], pads[1] + pads[3], 1))
    acc_scale = x.scale if mode == "max" else x.scale / (kernel[0] * kernel[1])
    passthrough = OutputQuantizer.of(x) if mode == "max" else None
    ctx.values[node.output[0]] = Pending(name, node.op_type, shape, np.full(1, acc_scale), build,
                                          has_bias=False, passthrough=passthrough)


def pool_ceil_pads(name: str, op_type: str, mode: str, shape: tuple[int, ...], kernel: tuple[int, ...],
                   stride: tuple[int, ...], pads: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """ceil_mode=1 of a pool (`windows.ceil_mode_pads`). A max pool pads below the type's range,
    so the extra pad never wins; an average pool's divisor would count it, so it is refused."""
    extended = ceil_mode_pads(shape, kernel, stride, pads)
    if mode == "avg" and extended != pads:
        raise UnsupportedModelError(name, op_type, "ceil_mode=1 adds a partial window at the bottom/right whose "
                                    "divisor counts only the real positions; an average pool cannot lower it exactly")
    return extended


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
        requant = stage.requant(stage.bias)
        return GlobalAvgPool(layer_name, (x.name,), stage.output, requant)

    shape = (x.shape[0], x.shape[1], 1, 1)
    acc_scale = x.scale / (x.shape[2] * x.shape[3])
    ctx.values[node.output[0]] = Pending(name, node.op_type, shape, np.full(1, acc_scale), build, has_bias=False)


AVERAGES = ("AveragePool", "GlobalAveragePool", "ReduceMean")
MAX_TRUNC_SHIFT = 22  # |log2(output scale / scale)|, within the output stage's ratios (Brevitas shifts a few bits)


def trunc(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    """QONNX `Trunc` (v2, qonnx/custom_op/general/trunc.py) of an average pool: Brevitas's
    TruncAvgPool2d and TruncAdaptiveAvgPool2d, which `export_qonnx` writes as AveragePool (or
    GlobalAveragePool) -> Trunc, replace the average's division by a shift.

    Trunc reads the pool's output on the grid `scale` (the pool input's scale / window size), so
    round(x / scale) is the window sum: the pool's accumulator. It divides that by 2**t, t =
    round(log2(output scale / scale)), clamps to its `output bit width` integers and rounds by its
    `rounding_mode` (brevitas: floor for TruncTo8bit, round for RoundTo8bit); its output is those
    integers on the grid `output scale`. The pool's output stage computes exactly that: ratio 2**-t
    (exact, where output scale / scale is a float near it) and, for floor or ceil, the accumulator
    bias that makes its half-even rounding round that way (`rounding_bias`).
    """
    source = ctx.value(node, name, 0)
    if not (isinstance(source, Pending) and source.op_type in AVERAGES and source.activation == "none"
            and np.all(source.gain == 1) and np.all(source.bias == 0)):
        what = f"the output of '{source.node}' ({source.op_type})" if isinstance(source, Pending) else \
            "a quantized tensor" if isinstance(source, Activation) else "not a layer's output"
        raise UnsupportedModelError(name, node.op_type, f"its input '{node.input[0]}' is {what}; a Trunc is "
                                    "supported only right after an AveragePool or GlobalAveragePool (Brevitas's "
                                    "TruncAvgPool2d), as the rounding of the average")
    version = next((entry.version for entry in ctx.model.opset_import if entry.domain == node.domain), 1)
    if version < 2 or len(node.input) != 6:
        raise UnsupportedModelError(name, node.op_type, f"Trunc of opset {version} with {len(node.input)} inputs: "
                                    "only Trunc v2 (opset 2 of its domain; x, scale, zero point, input bit width, "
                                    "output scale, output bit width), which Brevitas writes, is supported")
    attrs = ctx.attrs(node)
    check_qonnx_flags(node, name, attrs)
    scale, zero_point, output_scale, bit_width = (ctx.constant(node, name, index, what) for index, what in (
        (1, "scale"), (2, "zero point"), (4, "output scale"), (5, "output bit width")))
    if scale.size != 1 or output_scale.size != 1 or zero_point.size != 1:
        raise UnsupportedModelError(name, node.op_type, "scale, zero point and output scale must be scalars")
    if float(zero_point.reshape(())) != 0:
        raise UnsupportedModelError(name, node.op_type, f"zero point {float(zero_point.reshape(())):g}: a Trunc's "
                                    "output zero point would be it / 2**t, not an integer; Brevitas writes 0")
    accumulator = float(source.acc_scale.reshape(-1)[0])
    if not np.isclose(float(scale.reshape(())), accumulator, rtol=1e-6, atol=0):
        raise UnsupportedModelError(name, node.op_type, f"scale {float(scale.reshape(())):.6g} is not the pool's "
                                    f"{accumulator:.6g} (its input's scale / window size): a Trunc rounds the "
                                    "window sum")
    dtype, lo, hi = qonnx_int_range(attrs, whole_bits(node, name, "output bit width", bit_width, MAX_ACTIVATION_BITS))
    check_scale(name, node.op_type, output_scale, dtype.max - dtype.min + 1)
    shift = int(np.round(np.log2(output_scale / scale)).reshape(()))  # as qonnx: in the model's float type
    if abs(shift) > MAX_TRUNC_SHIFT:
        raise UnsupportedModelError(name, node.op_type, f"output scale / scale is 2**{shift}; at most "
                                    f"2**{MAX_TRUNC_SHIFT} apart")
    rounding = attrs.get("rounding_mode", b"FLOOR")
    mode = (rounding.decode() if isinstance(rounding, bytes) else str(rounding)).upper()
    if mode not in ROUNDING_MODES:
        raise UnsupportedModelError(name, node.op_type, f"rounding_mode {mode}: supported are "
                                    f"{', '.join(ROUNDING_MODES)}")
    rounded = source.with_changes(bias=np.full(1, rounding_bias(shift, mode)))
    quantizer = OutputQuantizer(float(output_scale.reshape(())), 0, dtype, lo, hi)
    ctx.finalize(rounded, quantizer, node.output[0], ratio=2.0 ** -shift)


LOWERING = FamilyLowering(rules=MappingProxyType({
    "MaxPool": pool, "AveragePool": pool, "GlobalAveragePool": global_average_pool, "ReduceMean": reduce_mean,
    "Trunc": trunc,
}))
