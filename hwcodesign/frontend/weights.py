"""Quantized weights and biases of a layer being lowered: reading them, their per-output-channel
scale, the weight format the model names for the layer, and the integer bias in accumulator units.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.frontend.context import LoweringContext
from hwcodesign.frontend.values import Constant, FinalStage, QuantizedConstant
from hwcodesign.ir.requant import Requant
from hwcodesign.ir.types import IntType, WeightType

BIAS_TYPE = IntType(32, True)
MAX_WEIGHT_BITS = 16
"""Weights are multiplier operands (DSP ports of 27 x 18 bits, LUT multipliers): at most 16 bits.
A constant's quantizer may be wider (32 bits) only for what is added, not multiplied: a bias."""


def weights(ctx: LoweringContext, node: onnx.NodeProto, name: str, index: int) -> QuantizedConstant:
    value = ctx.value(node, name, index)
    if not isinstance(value, QuantizedConstant):
        raise UnsupportedModelError(
            name, node.op_type,
            f"weights '{node.input[index]}' are not quantized; put DequantizeLinear or Quant on the initializer",
        )
    if value.dtype.bits <= MAX_WEIGHT_BITS:
        return value
    # a wider container (a 32-bit Quant, DequantizeLinear of int32): the type its integers need
    stored = np.concatenate([value.q.reshape(-1), np.asarray(value.zero_point).reshape(-1)]).astype(np.int64)
    needed = IntType.fitting(int(stored.min()), int(stored.max()))
    if needed.bits > MAX_WEIGHT_BITS:
        raise UnsupportedModelError(name, node.op_type, f"weights '{node.input[index]}' ({value.dtype}) hold values of "
                                    f"{needed.bits} bits; weights take at most {MAX_WEIGHT_BITS} (a wider quantizer is "
                                    "for a bias)")
    return replace(value, dtype=needed)


def output_channel_scale(name: str, op_type: str, weight: QuantizedConstant, out_axis: int) -> tuple[np.ndarray, np.ndarray, IntType]:
    """Per-output-channel weight scale; weights with their zero point removed; their type."""
    scale = np.moveaxis(np.broadcast_to(weight.scale, weight.q.shape), out_axis, 0)
    zero = np.moveaxis(np.broadcast_to(weight.zero_point, weight.q.shape), out_axis, 0)
    q = np.moveaxis(weight.q, out_axis, 0)
    flat_scale = scale.reshape(scale.shape[0], -1)
    if not np.all(flat_scale == flat_scale[:, :1]):
        raise UnsupportedModelError(name, op_type, "weight scale varies along a non-output axis")
    zero_flat = zero.reshape(zero.shape[0], -1)
    if not np.all(zero_flat == zero_flat[:, :1]):
        raise UnsupportedModelError(name, op_type, "weight zero point varies along a non-output axis")
    per_channel_zero = zero_flat[:, 0]
    dtype = weight.dtype
    if np.any(per_channel_zero != 0):
        dtype = IntType.fitting(dtype.min - int(per_channel_zero.max()), dtype.max - int(per_channel_zero.min()))
    centred = q - per_channel_zero.reshape((-1,) + (1,) * (q.ndim - 1))
    return flat_scale[:, 0].astype(np.float64), centred.astype(np.int64), dtype


def weight_format(ctx: LoweringContext, name: str, op_type: str, w_int: np.ndarray, w_type: IntType) -> WeightType:
    """The weights' type: the one the model's weight formats name for this layer (whose
    levels the weights must be), else the quantizer's integer type."""
    fmt = ctx.weight_formats.get(name)
    if fmt is None:
        return w_type
    ctx.weight_formats_used.add(name)
    typed = fmt.weight_type
    if not typed.contains(w_int):
        bad = next(int(v) for v in np.unique(w_int) if not typed.contains(v))
        raise UnsupportedModelError(name, op_type, f"weights are marked {fmt} but {bad} is not a {fmt} "
                                    f"level; write the model with hwcodesign.frontend.formats.with_weight_formats")
    return typed


def refuse_weight_format(ctx: LoweringContext, name: str, op_type: str, why: str) -> None:
    if name in ctx.weight_formats:
        raise UnsupportedModelError(name, op_type, f"weight format {ctx.weight_formats[name]}: {why}")


def bias_real(ctx: LoweringContext, node: onnx.NodeProto, name: str, index: int, channels: int) -> np.ndarray:
    value = ctx.optional(node, index)
    if value is None:
        return np.zeros(channels)
    if isinstance(value, QuantizedConstant):
        real = (value.q - value.zero_point) * value.scale
    elif isinstance(value, Constant):
        real = value.array.astype(np.float64)
    else:
        raise UnsupportedModelError(name, node.op_type, f"bias '{node.input[index]}' must be a constant")
    if real.size not in (1, channels):
        raise UnsupportedModelError(name, node.op_type, f"bias '{node.input[index]}' has {real.size} values for "
                                    f"{channels} output channels")
    return np.broadcast_to(real.reshape(-1), (channels,)).astype(np.float64)


def bias_and_requant(name: str, op_type: str, stage: FinalStage) -> tuple[np.ndarray, Requant]:
    """Integer bias for the accumulator; its sub-unit remainder goes to the requant offset."""
    rounded = np.rint(stage.bias)
    if not np.all(np.isfinite(rounded)):
        raise UnsupportedModelError(name, op_type, "the bias (with what folds into it: BatchNorm, added constants) "
                                    "is not finite")
    if not BIAS_TYPE.contains(rounded):
        raise UnsupportedModelError(name, op_type, "bias does not fit 32 bits in accumulator units")
    requant = stage.requant(fractional_bias=stage.bias - rounded)
    return rounded.astype(np.int64), requant


def unit_requant() -> Requant:
    """A placeholder output stage for probing a layer's output shape before its quantizer is known."""
    return Requant(np.ones(1, np.int64), np.zeros(1, np.int64), 0, 0, 0)
