"""Quantizers narrower than their integer container: QuantizeLinear -> Clip -> DequantizeLinear.

QuantizeLinear writes int8/uint8, so Brevitas's `export_qcdq` writes a quantizer below 8 bits, or
a narrow-range one, with a Clip on its integers to the quantizer's range: [-2, 1] for signed 2
bits, [-7, 7] for narrow-range 4 bits, [0, 15] for unsigned 4 bits (`ClipMixin` in
brevitas/export/common/handler/base.py). Weights come the same way, or, from its TorchScript
export by default, as integer initializers -> Clip -> DequantizeLinear.

Such a Clip is part of the quantizer, not an activation on real values. The pattern
`recognize-narrow-quantizers` lowers the QuantizeLinear with the Clip's range and the narrowest
type of the container's signedness that holds it (a layer's output stage clamps to the range,
weights take the type), and the Clip passes its input on. It takes a Clip only where it sits
between the two on integers: its input is a QuantizeLinear's output (or an integer constant) that
nothing else reads, its bounds are integer constants (inputs from opset 11, attributes before),
and only DequantizeLinear nodes read its output. Any other Clip is an activation, as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.frontend.context import LoweringContext
from hwcodesign.frontend.quantizers import ONNX_INT_TYPES, quantize_linear
from hwcodesign.frontend.values import ActiveMask, Constant, MaskStep, QuantizedConstant
from hwcodesign.ir.types import IntType


@dataclass(frozen=True)
class ClipBounds:
    """The integer bounds of the Clip `node` on a quantizer's integers (None: that side is open)."""

    node: str
    lo: int | None
    hi: int | None

    def narrowed(self, container: IntType) -> tuple[IntType, int, int]:
        """(type, lo, hi): the part of `container` the Clip keeps and the narrowest type of the
        container's signedness holding it (a signed [0, 3] stays signed: int3)."""
        lo = container.min if self.lo is None else max(self.lo, container.min)
        hi = container.max if self.hi is None else min(self.hi, container.max)
        if lo > hi:
            raise UnsupportedModelError(self.node, "Clip", f"range [{self.lo}, {self.hi}] keeps no value of the "
                                        f"{container} integers it clips")
        dtype = IntType.fitting(min(lo, -1), hi) if container.signed else IntType.fitting(lo, hi)
        return dtype, lo, hi


def narrow_quantizers(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> bool:
    """`recognize-narrow-quantizers` (module doc): a QuantizeLinear with its narrowing Clip, the
    Clip taken with it, or a Clip of integer weights; False leaves the node to the other steps."""
    if node.op_type == "QuantizeLinear":
        if isinstance(ctx.values.get(node.input[0]), ActiveMask | MaskStep):
            return False  # a quantized active-site mask (`recognize-sparse-masks`)
        found = clip_after(ctx, node.output[0])
        if found is None:
            return False
        clip, bounds = found
        quantize_linear(ctx, node, name, bounds.narrowed)
        ctx.values[clip.output[0]] = ctx.values[node.output[0]]
        return True
    if node.output[0] in ctx.values:
        return True  # lowered with the QuantizeLinear before it
    source = ctx.values.get(node.input[0])
    if not isinstance(source, Constant) or source.array.dtype.kind not in "iu" or \
            not dequantized_only(ctx, node.output[0]):
        return False
    container = ONNX_INT_TYPES.get(onnx.helper.np_dtype_to_tensor_dtype(source.array.dtype))
    bounds = clip_bounds(ctx, node, name)
    if container is None or bounds is None:
        return False
    dtype, lo, hi = bounds.narrowed(container)
    q = np.clip(source.array.astype(np.int64), lo, hi)
    # the integers alone: the DequantizeLinear reading them brings the scale and zero point
    ctx.values[node.output[0]] = QuantizedConstant(q, np.ones(q.shape), np.zeros(q.shape, np.int64), dtype)
    return True


def clip_after(ctx: LoweringContext, tensor: str) -> tuple[onnx.NodeProto, ClipBounds] | None:
    """The Clip narrowing the integers `tensor` (a QuantizeLinear's output), with its bounds;
    None when `tensor` has another reader or the Clip is not one (module doc)."""
    readers = ctx.readers(tensor)
    if len(readers) != 1 or ctx.is_graph_output(tensor):
        return None
    name, clip = readers[0]
    if clip.op_type != "Clip" or clip.domain not in ("", "ai.onnx") or list(clip.input).count(tensor) != 1 or \
            clip.input[0] != tensor or not dequantized_only(ctx, clip.output[0]):
        return None
    bounds = clip_bounds(ctx, clip, name)
    return None if bounds is None else (clip, bounds)


def dequantized_only(ctx: LoweringContext, tensor: str) -> bool:
    """True when `tensor` is read, as the integers, by DequantizeLinear nodes only."""
    readers = ctx.readers(tensor)
    return bool(readers) and not ctx.is_graph_output(tensor) and all(
        node.op_type == "DequantizeLinear" and list(node.input).index(tensor) == 0 and
        list(node.input).count(tensor) == 1 for _, node in readers)


def clip_bounds(ctx: LoweringContext, clip: onnx.NodeProto, name: str) -> ClipBounds | None:
    """A Clip's bounds when each is absent or one integer constant (an input from opset 11, an
    attribute before); None otherwise."""
    attrs = ctx.attrs(clip)
    bounds: list[int | None] = []
    for index, key in ((1, "min"), (2, "max")):
        if index < len(clip.input) and clip.input[index]:
            value = ctx.constant_ahead(clip.input[index])
        elif key in attrs:
            value = np.asarray(attrs[key])
        else:
            bounds.append(None)
            continue
        if value is None or value.size != 1 or not np.isfinite(value).all():
            return None
        number = float(value.reshape(()))
        if number != round(number):
            return None
        bounds.append(int(number))
    return ClipBounds(name, *bounds)
