"""Lowering of Resize and Upsample: nearest-neighbour upsampling by integer factors, which is
pixel repetition only for some coordinate and rounding modes (checked)."""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import onnx

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.frontend.context import LoweringContext
from hwcodesign.frontend.values import Constant, FinalStage, OutputQuantizer, Pending
from hwcodesign.ir.op import Op, Shape
from hwcodesign.ops.facets.lowering import FamilyLowering
from hwcodesign.ops.resize.ir import Resize


def resize(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    x = ctx.activation(node, name, 0).tensor
    attrs = ctx.attrs(node)
    mode = attrs.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if mode != "nearest":
        raise UnsupportedModelError(name, node.op_type, f"mode '{mode}'; only nearest-neighbour resize is supported")
    factors = resize_factors(ctx, node, name, attrs, x.shape)
    check_nearest_is_repeat(node, name, attrs, factors, x.shape)
    layer_name = ctx.unique(name)

    def build(stage: FinalStage) -> Op:
        requant = stage.requant()
        return Resize(layer_name, (x.name,), stage.output, factors, requant)

    shape = (x.shape[0], x.shape[1], x.shape[2] * factors[0], x.shape[3] * factors[1])
    ctx.values[node.output[0]] = Pending(name, node.op_type, shape, np.full(1, x.scale), build,
                                          has_bias=False, passthrough=OutputQuantizer.of(x))


def resize_factors(ctx: LoweringContext, node: onnx.NodeProto, name: str, attrs: dict[str, object], shape: Shape) -> tuple[int, int]:
    scales: np.ndarray | None = None
    if node.op_type == "Upsample":
        scales = np.asarray(attrs["scales"]) if "scales" in attrs else ctx.constant(node, name, 1, "scales")
    else:
        for index, what in ((2, "scales"), (3, "sizes")):
            value = ctx.optional(node, index)
            if value is None:
                continue
            if not isinstance(value, Constant):
                raise UnsupportedModelError(name, node.op_type, f"{what} must be constant")
            if value.array.size == 0:
                continue
            scales = value.array.astype(np.float64)
            if what == "sizes":
                scales = scales / np.asarray(shape, np.float64)
    if scales is None or scales.size != 4:
        raise UnsupportedModelError(name, node.op_type, "needs 4 constant scales or sizes")
    if scales[0] != 1 or scales[1] != 1:
        raise UnsupportedModelError(name, node.op_type, "resizing batch or channels is not supported")
    factors = tuple(int(round(s)) for s in scales[2:])
    if any(abs(s - f) > 1e-6 or f < 1 for s, f in zip(scales[2:], factors)):
        raise UnsupportedModelError(name, node.op_type, f"scale factors {scales[2:].tolist()} must be positive integers")
    return factors  # type: ignore[return-value]


def check_nearest_is_repeat(node: onnx.NodeProto, name: str, attrs: dict[str, object],
                            factors: tuple[int, int], shape: Shape) -> None:
    """Integer upsampling is pixel repetition only for some coordinate/rounding modes; check."""
    if node.op_type == "Upsample":
        return
    def text(key: str, default: str) -> str:
        value = attrs.get(key, default)
        return value.decode() if isinstance(value, bytes) else str(value)
    transform = text("coordinate_transformation_mode", "half_pixel")
    rounding = text("nearest_mode", "round_prefer_floor")
    for factor, size in zip(factors, shape[2:]):
        out = np.arange(size * factor, dtype=np.float64)
        if transform == "asymmetric":
            source = out / factor
        elif transform in ("half_pixel", "pytorch_half_pixel"):
            source = (out + 0.5) / factor - 0.5
        elif transform == "align_corners":
            source = out * (size - 1) / max(size * factor - 1, 1)
        else:
            raise UnsupportedModelError(name, node.op_type, f"coordinate_transformation_mode '{transform}'")
        rounded = {
            "floor": np.floor(source),
            "ceil": np.ceil(source),
            "round_prefer_floor": np.where(source % 1 == 0.5, np.floor(source), np.round(source)),
            "round_prefer_ceil": np.where(source % 1 == 0.5, np.ceil(source), np.round(source)),
        }.get(rounding)
        if rounded is None:
            raise UnsupportedModelError(name, node.op_type, f"nearest_mode '{rounding}'")
        if not np.array_equal(np.clip(rounded, 0, size - 1), out // factor):
            raise UnsupportedModelError(
                name, node.op_type,
                f"{transform}/{rounding} does not repeat pixels; use asymmetric coordinates with floor rounding",
            )


LOWERING = FamilyLowering(rules=MappingProxyType({"Resize": resize, "Upsample": resize}))
