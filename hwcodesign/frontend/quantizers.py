"""The quantizer nodes (QuantizeLinear, DequantizeLinear, QONNX `Quant`): graph plumbing that pins
a value to an integer grid. On a constant they make quantized weights; on a float graph input the
accelerator's input; on a pending layer its output stage (`LoweringContext.finalize`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.frontend.context import LoweringContext
from hwcodesign.frontend.finn_types import integer_type
from hwcodesign.frontend.sparse import CONVENTION
from hwcodesign.frontend.validate import check_scale, per_axis_view, quant_input_problem
from hwcodesign.frontend.values import (
    Activation,
    ActiveMask,
    Constant,
    FloatInput,
    MaskStep,
    OutputQuantizer,
    Padded,
    Pending,
    QuantizedConstant,
    Value,
)
from hwcodesign.ir.types import BipolarType, IntType, Tensor

QUANTIZERS = ("QuantizeLinear", "DequantizeLinear", "Quant", "BipolarQuant", "MultiThreshold")
MAX_ACTIVATION_BITS = 16
MAX_CONSTANT_BITS = 32
FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE)
ONNX_INT_TYPES: dict[int, IntType] = {
    onnx.TensorProto.UINT8: IntType(8, False),
    onnx.TensorProto.INT8: IntType(8, True),
    onnx.TensorProto.UINT16: IntType(16, False),
    onnx.TensorProto.INT16: IntType(16, True),
    onnx.TensorProto.INT32: IntType(32, True),
    onnx.TensorProto.UINT4: IntType(4, False),
    onnx.TensorProto.INT4: IntType(4, True),
}


def quantizer_of(node: onnx.NodeProto, name: str, scale: np.ndarray, zero_point: np.ndarray,
    dtype: IntType, lo: int | None = None, hi: int | None = None,
) -> OutputQuantizer:
    if scale.size != 1 or zero_point.size != 1:
        raise UnsupportedModelError(
            name, node.op_type, "per-channel quantization of an activation; hardware uses one scale per activation tensor"
        )
    zp = float(zero_point.reshape(-1)[0])
    if zp != round(zp):
        raise UnsupportedModelError(name, node.op_type, f"non-integer zero point {zp}")
    check_scale(name, node.op_type, scale, dtype.max - dtype.min + 1)
    scale_value = float(scale.reshape(-1)[0])
    return OutputQuantizer(
        scale_value, int(zp), dtype, dtype.min if lo is None else lo, dtype.max if hi is None else hi
    )


def quantize_value(ctx: LoweringContext, node: onnx.NodeProto, name: str, quantizer: OutputQuantizer,
                   scale: np.ndarray, zero_point: np.ndarray) -> None:
    """Apply a quantizer (QuantizeLinear or Quant) to whatever its input is."""
    source = ctx.value(node, name, 0)
    out = node.output[0]
    if isinstance(source, QuantizedConstant):
        # Q(DQ(w)) of a constant: the TorchScript exporter shares equal initializers, so one BatchNorm's
        # weight can be an Identity of another's DequantizeLinear output, which quantize_static quantizes
        # again. Requantized as onnxruntime computes it: dequantized in float32, then quantized.
        real = ((source.q - source.zero_point).astype(np.float32) * source.scale.astype(np.float32))
        source = Constant(real.astype(np.float32))
    if isinstance(source, Constant):
        refuse_empty(node, name, source.array)
        if not np.all(np.isfinite(source.array)):
            raise UnsupportedModelError(name, node.op_type, f"'{node.input[0]}' holds NaN or infinite values")
        if np.any(scale == 0):
            raise UnsupportedModelError(name, node.op_type, f"quantizing '{node.input[0]}' with a zero scale divides "
                                        "by zero")
        real = source.array.astype(np.float64)
        q = np.clip(np.rint(real / scale + zero_point), quantizer.lo, quantizer.hi).astype(np.int64)
        ctx.values[out] = QuantizedConstant(
            q, np.broadcast_to(scale, q.shape), np.broadcast_to(zero_point, q.shape).astype(np.int64), quantizer.dtype
        )
        return
    if scale.size != 1:
        raise UnsupportedModelError(
            name, node.op_type, "per-channel quantization of an activation; hardware uses one scale per activation tensor"
        )
    if isinstance(source, FloatInput):
        quantize_input(ctx, source, name, quantizer, out)
        return
    if isinstance(source, Padded):
        if not quantizer.same_grid(source.source.tensor):
            raise UnsupportedModelError(source.node, "Pad", f"its output is requantized by {name}; a Pad folds into "
                                        "the window after it only on its input's own grid")
        ctx.values[out] = source
        return
    if isinstance(source, Activation):
        if quantizer.same_grid(source.tensor):
            ctx.values[out] = source
            return
        pending = ctx.builders.requantize(ctx, source, name, "identity", passthrough=False)
        ctx.finalize(pending, quantizer, out)
        ctx.values[out] = Activation(ctx.values[out].tensor, source.flat)  # type: ignore[union-attr]
        return
    if isinstance(source, ActiveMask | MaskStep):
        raise UnsupportedModelError(
            name, node.op_type, "quantizes the active-site mask; the mask stays float (it says which sites are "
            "active, it is not data): quantize the float model with `hwcodesign quantize`, which keeps it float, or "
            "leave its nodes out of onnxruntime's quantize_static (nodes_to_exclude); " + CONVENTION)
    if not isinstance(source, Pending):
        raise UnsupportedModelError(name, node.op_type, f"cannot quantize its input '{node.input[0]}' here")
    ctx.finalize(source, quantizer, out)


def round_to_integers(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    """ONNX Round of a layer's output: that output on the integer grid, scale 1 and zero point 0.

    Round rounds half to even, as QuantizeLinear does, so Round(x) is QuantizeLinear(x, scale 1)
    dequantized: CoDeNet's integer offsets are written this way (offset conv -> Clip(0, N) ->
    Round). The integer type is the narrowest of uint8, int8, uint16 and int16 holding the
    value's bounded range: a Clip (or ReLU) before the Round, or its input's own grid. Round of an
    already quantized tensor is a requantization onto the integers, exact but at ties, where its
    float32 value q * scale may land either side of x.5 (then one apart, within 1 LSB)."""
    source = ctx.value(node, name, 0)
    if isinstance(source, Pending):
        low, high = source.clip_range  # a fused ReLU's or Clip's bounds
    elif isinstance(source, Activation):
        tensor = source.tensor
        low, high = ((tensor.dtype.min - tensor.zero_point) * tensor.scale,
                     (tensor.dtype.max - tensor.zero_point) * tensor.scale)
    else:
        raise UnsupportedModelError(name, node.op_type, f"rounds '{node.input[0]}', which is not a layer's output; "
                                    "Round is supported as a quantizer onto the integers (scale 1) after a layer")
    if not (np.isfinite(low) and np.isfinite(high)):
        raise UnsupportedModelError(name, node.op_type, "rounds an unbounded value: put a Clip before it (e.g. "
                                    "Clip(0, N) for CoDeNet's integer offsets) so its integers have a type")
    least, most = int(np.rint(low)), int(np.rint(high))
    dtype = next((t for t in ROUND_TYPES if t.min <= least and most <= t.max), None)
    if dtype is None:
        raise UnsupportedModelError(name, node.op_type, f"its integers [{least}, {most}] need more than 16 bits")
    quantize_value(ctx, node, name, OutputQuantizer(1.0, 0, dtype, dtype.min, dtype.max), np.ones(1), np.zeros(1, np.int64))


ROUND_TYPES = (IntType(8, False), IntType(8, True), IntType(16, False), IntType(16, True))


def quantize_input(ctx: LoweringContext, source: FloatInput, name: str, quantizer: OutputQuantizer, out: str) -> None:
    """A float graph input quantized: the accelerator's input, in the quantizer's type. A narrow
    range (QONNX narrow=1, a QCDQ Clip to [-7, 7]) is clamped by a layer after it, since the host
    quantizes into the whole type, where the reference would clip an input of -7.6 to -7."""
    tensor = Tensor(out, source.shape, quantizer.dtype, quantizer.scale, quantizer.zero_point)
    if (quantizer.lo, quantizer.hi) == (quantizer.dtype.min, quantizer.dtype.max):
        ctx.builders.input(ctx, source, tensor)
        return
    ctx.builders.input(ctx, source, tensor.renamed(ctx.unique(f"{out}_unclamped")))
    unclamped = ctx.values[ctx.input_tensor_of[source.name]]
    assert isinstance(unclamped, Activation)
    ctx.finalize(ctx.builders.requantize(ctx, unclamped, name, "identity", False), quantizer, out)


def quantize_linear(ctx: LoweringContext, node: onnx.NodeProto, name: str,
                    narrow: Callable[[IntType], tuple[IntType, int, int]] | None = None) -> None:
    """QuantizeLinear; `narrow` maps its integer type to the quantizer's (type, lo, hi) when a Clip
    after it narrows the range (QCDQ below 8 bits, `frontend/narrow.py`)."""
    attrs = ctx.attrs(node)
    scale = ctx.constant(node, name, 1, "scale").astype(np.float64)
    zp_value = ctx.optional(node, 2)
    if zp_value is None:
        output_dtype = int(attrs.get("output_dtype", 0)) or onnx.TensorProto.UINT8
        zero_point = np.zeros(scale.shape, np.int64)
    else:
        if not isinstance(zp_value, Constant):
            raise UnsupportedModelError(name, node.op_type, "zero point must be a constant initializer")
        output_dtype = onnx.helper.np_dtype_to_tensor_dtype(zp_value.array.dtype)
        zero_point = zp_value.array.astype(np.int64)
    dtype = int_type(node, name, output_dtype)
    lo, hi = dtype.min, dtype.max
    if narrow is not None:
        dtype, lo, hi = narrow(dtype)
        if np.any((zero_point < lo) | (zero_point > hi)):
            raise UnsupportedModelError(name, node.op_type, f"zero point {zero_point.reshape(-1)[:4].tolist()} is "
                                        f"outside the range [{lo}, {hi}] of the Clip after it")
    source = ctx.value(node, name, 0)
    refuse_non_real_quant_input(ctx, node, name, source)
    shape = source.array.shape if isinstance(source, Constant) else None
    scale, zero_point = per_axis(ctx, node, name, scale, zero_point, shape)
    quantizer = quantizer_of(node, name, scale.reshape(-1)[:1], zero_point.reshape(-1)[:1], dtype, lo, hi) \
        if scale.size == 1 else None
    if quantizer is None:
        if not isinstance(source, Constant):
            quantizer_of(node, name, scale, zero_point, dtype)  # raises: per-channel
        quantizer = OutputQuantizer(1.0, 0, dtype, lo, hi)
    quantize_value(ctx, node, name, quantizer, scale, zero_point)


def dequantize_linear(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    source = ctx.value(node, name, 0)
    value_scale = ctx.optional(node, 1)
    if not isinstance(value_scale, Constant):
        raise UnsupportedModelError(
            name, node.op_type, f"scale '{node.input[1]}' must be a constant initializer"
        )
    scale = value_scale.array.astype(np.float64)
    zp_value = ctx.optional(node, 2)
    if zp_value is not None and not isinstance(zp_value, Constant):
        raise UnsupportedModelError(name, node.op_type, "zero point must be a constant initializer")
    zero_point = np.zeros(scale.shape, np.int64) if zp_value is None else zp_value.array.astype(np.int64)
    if not isinstance(source, Constant | QuantizedConstant):
        per_axis(ctx, node, name, scale, zero_point, None)  # checks block_size and the scale
    out = node.output[0]
    if isinstance(source, Constant | QuantizedConstant):
        # a QuantizedConstant here is a QuantizeLinear's output on a constant (quantize_value)
        array = source.array if isinstance(source, Constant) else source.q
        refuse_empty(node, name, array)
        if np.any(scale == 0):  # every value it scales is 0, and requantizing divides by it
            raise UnsupportedModelError(name, node.op_type, f"scale '{node.input[1]}' has zero entries")
        dtype = source.dtype if isinstance(source, QuantizedConstant) else int_type(
            node, name, onnx.helper.np_dtype_to_tensor_dtype(array.dtype), array)
        scale, zero_point = per_axis(ctx, node, name, scale, zero_point, array.shape)
        q = array.astype(np.int64)
        ctx.values[out] = QuantizedConstant(
            q, np.broadcast_to(scale, q.shape), np.broadcast_to(zero_point, q.shape), dtype
        )
        return
    if isinstance(source, Padded):  # a folded Pad's output, dequantized on its input's grid
        quantizer = quantizer_of(node, name, scale, zero_point, source.source.tensor.dtype)
        if not quantizer.same_grid(source.source.tensor):
            raise UnsupportedModelError(source.node, "Pad", f"its output is dequantized by {name} on another grid")
        ctx.values[out] = source
        return
    if isinstance(source, Activation):
        quantizer = quantizer_of(node, name, scale, zero_point, source.tensor.dtype)
        if not quantizer.same_grid(source.tensor):
            raise UnsupportedModelError(
                name, node.op_type,
                f"dequantizes '{node.input[0]}' with scale/zero point {quantizer.scale:.6g}/{quantizer.zero_point}"
                f" but it was quantized with {source.tensor.scale:.6g}/{source.tensor.zero_point}",
            )
        ctx.values[out] = source
        return
    if isinstance(source, FloatInput):
        dtype = int_type(node, name, input_elem_type(ctx, source.name))
        quantizer = quantizer_of(node, name, scale, zero_point, dtype)
        ctx.builders.input(ctx, source, Tensor(out, source.shape, dtype, quantizer.scale, quantizer.zero_point))
        return
    raise UnsupportedModelError(name, node.op_type, f"cannot dequantize '{node.input[0]}': it is not an integer tensor")


def input_elem_type(ctx: LoweringContext, input_name: str) -> int:
    for value in ctx.model.graph.input:
        if value.name == input_name:
            return value.type.tensor_type.elem_type
    return onnx.TensorProto.FLOAT


def int_type(node: onnx.NodeProto, name: str, onnx_type: int, values: np.ndarray | None = None) -> IntType:
    dtype = ONNX_INT_TYPES.get(onnx_type)
    if dtype is None:
        raise UnsupportedModelError(
            name, node.op_type, f"quantized type {onnx.TensorProto.DataType.Name(onnx_type)} not supported (int/uint 4, 8, 16, int32)"
        )
    return dtype


def per_axis(ctx: LoweringContext, node: onnx.NodeProto, name: str, scale: np.ndarray, zero_point: np.ndarray,
             shape: tuple[int, ...] | None) -> tuple[np.ndarray, np.ndarray]:
    """Reshape a 1-D per-axis scale/zero point so it broadcasts along the node's `axis` of a
    constant of `shape` (None: an activation, left to `quantizer_of`), checking both first."""
    attrs = ctx.attrs(node)
    block_size = int(attrs.get("block_size", 0))  # type: ignore[call-overload]
    if block_size:
        raise UnsupportedModelError(name, node.op_type, f"block_size {block_size}: blocked quantization is not "
                                    "supported" + (" (and ONNX forbids it with one scale)" if scale.size == 1 else ""))
    check_scale(name, node.op_type, scale)
    if scale.ndim > 1:  # the ONNX spec: a scalar (per tensor) or 1-D (per axis); onnxruntime refuses more
        raise UnsupportedModelError(name, node.op_type, f"scale of shape {list(scale.shape)}: {node.op_type} takes a "
                                    "scalar or a 1-D scale")
    if zero_point.size == 0:
        raise UnsupportedModelError(name, node.op_type, "the zero point is empty")
    if scale.size == 1 and zero_point.size == 1:
        return scale.reshape(()), zero_point.reshape(())
    if shape is None:
        return scale, zero_point
    view = per_axis_view(name, node.op_type, scale, zero_point, int(attrs.get("axis", 1)), shape)  # type: ignore[call-overload]
    return scale.reshape(view), zero_point.reshape(view)


def refuse_empty(node: onnx.NodeProto, name: str, array: np.ndarray) -> None:
    if array.size == 0:
        raise UnsupportedModelError(name, node.op_type, f"'{node.input[0]}' is empty (shape {list(array.shape)})")


def qonnx_quant(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    attrs = ctx.attrs(node)
    check_qonnx_flags(node, name, attrs)
    rounding = attrs.get("rounding_mode", b"ROUND")
    rounding = rounding.decode() if isinstance(rounding, bytes) else str(rounding)
    if rounding.upper() not in ("ROUND", "HALF_EVEN"):
        raise UnsupportedModelError(name, node.op_type, f"rounding_mode {rounding} not supported (ROUND only)")
    scale = ctx.constant(node, name, 1, "scale").astype(np.float64)
    zero_point = ctx.constant(node, name, 2, "zero point").astype(np.float64)
    bit_width = ctx.constant(node, name, 3, "bit width")
    source = ctx.value(node, name, 0)
    # a constant (Brevitas's Int32Bias: a bias on the accumulator's grid) is folded into the
    # integer arithmetic, so it may be as wide as an accumulator; activations are streamed
    widest = MAX_CONSTANT_BITS if isinstance(source, Constant) else MAX_ACTIVATION_BITS
    what = " for a constant (weight or bias)" if widest == MAX_CONSTANT_BITS else \
        f" for an activation (constants such as biases take up to {MAX_CONSTANT_BITS})"
    dtype, lo, hi = qonnx_int_range(attrs, whole_bits(node, name, "bit width", bit_width, widest, what))
    check_scale(name, node.op_type, scale)
    if zero_point.size == 0 or not np.all((zero_point >= lo) & (zero_point <= hi)):
        raise UnsupportedModelError(name, node.op_type, f"zero point {zero_point.reshape(-1)[:4].tolist()} is outside "
                                    f"the {dtype} range [{lo}, {hi}]")
    refuse_non_real_quant_input(ctx, node, name, source)
    if isinstance(source, Constant):
        require_broadcast(node, name, source.array, {"scale": scale, "zero point": zero_point})
        quantizer = OutputQuantizer(1.0, 0, dtype, lo, hi)
    else:
        quantizer = quantizer_of(node, name, scale, zero_point, dtype, lo, hi)
    if np.any(zero_point != np.rint(zero_point)):
        raise UnsupportedModelError(name, node.op_type, "non-integer zero point")
    quantize_value(ctx, node, name, quantizer, scale, np.rint(zero_point).astype(np.int64))


def require_broadcast(node: onnx.NodeProto, name: str, array: np.ndarray, params: dict[str, np.ndarray],
                      onto: bool = False) -> None:
    """A quantizer's parameters broadcast with the constant it quantizes (`onto`: to the
    constant's own shape, no larger); else refused naming them."""
    try:
        shape: tuple[int, ...] | None = np.broadcast_shapes(array.shape, *(p.shape for p in params.values()))
    except ValueError:
        shape = None
    if shape is None or (onto and shape != array.shape):
        named = " and ".join(f"{key} {list(value.shape)}" for key, value in params.items())
        raise UnsupportedModelError(name, node.op_type, f"{named} do{'es' if len(params) == 1 else ''} not broadcast "
                                    f"to '{node.input[0]}' {list(array.shape)}")


def bipolar_quant(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    """QONNX `BipolarQuant`: y = scale * sign(x) with sign(0) = +1 (`BipolarType`). On a constant it
    makes 1-bit weights; on a layer's output a sign output stage (`requant.sign_requant`)."""
    scale = ctx.constant(node, name, 1, "scale").astype(np.float64)
    check_scale(name, node.op_type, scale)
    source = ctx.value(node, name, 0)
    refuse_non_real_quant_input(ctx, node, name, source)
    if isinstance(source, QuantizedConstant):
        source = Constant(((source.q - source.zero_point) * source.scale).astype(np.float32))
    if isinstance(source, Constant):
        refuse_empty(node, name, source.array)
        require_broadcast(node, name, source.array, {"scale": scale}, onto=True)
        q = np.where(source.array >= 0, 1, -1).astype(np.int64)
        ctx.values[node.output[0]] = QuantizedConstant(q, np.broadcast_to(scale, q.shape), np.zeros(q.shape, np.int64),
                                                       BipolarType())
        return
    quantizer = quantizer_of(node, name, scale, np.zeros(1), BipolarType(), -1, 1)
    quantize_value(ctx, node, name, quantizer, scale, np.zeros(1, np.int64))


def multithreshold(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    """QONNX/FINN `MultiThreshold`: y = out_scale * #{i: x >= t_c,i} + out_bias, what FINN's
    streamlining turns every activation quantizer into. On a layer's output (or an integer
    activation) it is that layer's output stage as comparisons (`requant.threshold_requant`;
    a bipolar one is a sign stage); its output integers are y / out_scale, on the grid out_scale."""
    attrs = ctx.attrs(node)
    text = {key: (value.decode() if isinstance(value, bytes) else str(value)) for key, value in attrs.items()}
    layout = text.get("data_layout", "")
    if layout and (layout.find("C") != 1):
        raise UnsupportedModelError(name, node.op_type, f"data_layout {layout}: thresholds along axis 1 (NCHW, NC) only")
    dtype = integer_type(text.get("out_dtype", ""))
    if dtype is None:
        raise UnsupportedModelError(name, node.op_type, f"out_dtype {text.get('out_dtype', '(none)')!r} is not an "
                                    "integer datatype (BIPOLAR, BINARY, INTk, UINTk)")
    out_scale, out_bias = float(attrs.get("out_scale", 1.0)), float(attrs.get("out_bias", 0.0))  # type: ignore[arg-type]
    thresholds = ctx.constant(node, name, 1, "thresholds").astype(np.float64)
    if thresholds.ndim != 2 or thresholds.shape[1] == 0 or not np.all(np.isfinite(thresholds)):
        raise UnsupportedModelError(name, node.op_type, f"thresholds of shape {list(thresholds.shape)}: (channels or 1, "
                                    "steps) finite values")
    steps = thresholds.shape[1]
    if isinstance(dtype, BipolarType):
        if (steps, out_scale, out_bias) != (1, 2.0, -1.0):
            raise UnsupportedModelError(name, node.op_type, "a BIPOLAR output is one threshold with out_scale 2 and "
                                        f"out_bias -1 (2 * count - 1), not {steps}, {out_scale}, {out_bias}")
        scale, lo, hi = 1.0, -1, 1
    else:
        base = out_bias / out_scale if out_scale > 0 else np.nan
        if not (np.isfinite(base) and base == round(base)):
            raise UnsupportedModelError(name, node.op_type, f"out_bias {out_bias} / out_scale {out_scale} is not an "
                                        "integer: the outputs are not integers on the grid out_scale")
        scale, lo, hi = out_scale, int(base), int(base) + steps
        if not (dtype.min <= lo and hi <= dtype.max):  # FINN may move out_bias past the node, not its out_dtype
            dtype = IntType.fitting(lo, hi)
    source = ctx.value(node, name, 0)
    if isinstance(source, FloatInput | Constant | QuantizedConstant):
        raise UnsupportedModelError(name, node.op_type, f"thresholds '{node.input[0]}', which is not a layer's output "
                                    "or an integer activation; give a float graph input its integer datatype (FINN's "
                                    "pre-processing annotates UINT8 pixels) or quantize it with Quant/QuantizeLinear")
    channels = source.tensor.channels if isinstance(source, Activation) else getattr(source, "channels", None)
    if channels is not None and thresholds.shape[0] not in (1, channels):
        raise UnsupportedModelError(name, node.op_type, f"{thresholds.shape[0]} rows of thresholds for {channels} "
                                    "channels")
    quantizer = OutputQuantizer(scale, 0, dtype, lo, hi, tuple(tuple(row) for row in thresholds.tolist()))
    quantize_value(ctx, node, name, quantizer, np.array(scale), np.zeros((), np.int64))


def check_qonnx_flags(node: onnx.NodeProto, name: str, attrs: dict[str, object]) -> None:
    """QONNX's `signed` and `narrow` attributes (Quant, Trunc) are 0 or 1."""
    for flag in ("signed", "narrow"):
        if attrs.get(flag, 0) not in (0, 1):
            raise UnsupportedModelError(name, node.op_type, f"attribute {flag}={attrs[flag]!r} must be 0 or 1")


def whole_bits(node: onnx.NodeProto, name: str, label: str, bit_width: np.ndarray, widest: int, what: str = "") -> int:
    """A QONNX bit width (Quant's, Trunc's output one): one whole number 1..`widest`."""
    flat = bit_width.reshape(-1)
    bits = float(flat[0]) if flat.size == 1 else np.nan
    if not (np.isfinite(bits) and bits == round(bits) and 1 <= bits <= widest):
        raise UnsupportedModelError(name, node.op_type, f"{label} {flat[:4].tolist()} must be one integer 1..{widest}{what}")
    return int(bits)


def qonnx_int_range(attrs: dict[str, object], bits: int) -> tuple[IntType, int, int]:
    """(type, lo, hi) of a QONNX integer quantizer (Quant, Trunc) of `bits` bits, from its checked
    `signed` (default 1) and `narrow` (default 0) attributes, as qonnx's min_int/max_int."""
    signed, narrow = bool(attrs.get("signed", 1)), bool(attrs.get("narrow", 0))
    dtype = IntType(bits, signed)
    return dtype, dtype.min + (1 if narrow and signed else 0), dtype.max - (1 if narrow and not signed else 0)


def refuse_non_real_quant_input(ctx: LoweringContext, node: onnx.NodeProto, name: str, source: Value) -> None:
    if isinstance(source, Constant):
        problem = quant_input_problem(source.array, node.input[0], node.op_type)
    elif isinstance(source, FloatInput) and input_elem_type(ctx, source.name) not in FLOAT_TYPES:
        problem = quant_input_problem(np.zeros(0, helper.tensor_dtype_to_np_dtype(
            input_elem_type(ctx, source.name))), node.input[0], node.op_type)
    else:
        problem = None
    if problem:
        raise UnsupportedModelError(name, node.op_type, problem)
