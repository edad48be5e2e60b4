"""An explicit constant `Pad` over H and W folded into the window of the Conv or pool reading it.

onnxruntime's quantizer writes it DQ -> Pad -> Q -> DQ on the input's own grid, so the padded
integer is `fill` = quantize(value). A Conv pads with the input's zero point (real 0), a max pool
below every value, an average pool with zeros its divisor counts: the Pad folds where its fill is
what the window would pad with anyway. Anything else is refused naming the Pad node.
"""

from __future__ import annotations

import numpy as np
import onnx

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.frontend.context import LoweringContext
from hwcodesign.frontend.values import Activation, Padded
from hwcodesign.ir.op import Shape

FOLDS_INTO = "a Pad folds only into the Conv, MaxPool or AveragePool reading it"


def pad(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    source = ctx.value(node, name, 0)
    if isinstance(source, Padded):
        inner = source
        source = source.source
    else:
        inner = None
    if not isinstance(source, Activation) or source.flat or len(source.tensor.shape) != 4:
        raise UnsupportedModelError(name, node.op_type, f"pads '{node.input[0]}', which is not a quantized NCHW "
                                    f"activation; {FOLDS_INTO}")
    attrs = ctx.attrs(node)
    mode = attrs.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if mode != "constant":
        raise UnsupportedModelError(name, node.op_type, f"mode '{mode}': only constant padding folds into a window")
    rank = 4
    if len(node.input) > 1 and node.input[1]:
        amounts = [int(p) for p in ctx.constant(node, name, 1, "pads").reshape(-1)]
    else:
        amounts = [int(p) for p in attrs.get("pads", ())]  # type: ignore[union-attr]
    if len(node.input) > 3 and node.input[3]:
        axes = [int(a) % rank for a in ctx.constant(node, name, 3, "axes").reshape(-1)]
    else:
        axes = list(range(rank))
    if len(amounts) != 2 * len(axes):
        raise UnsupportedModelError(name, node.op_type, f"pads {amounts} do not match the {len(axes)} axes")
    begin, end = [0] * rank, [0] * rank
    for index, axis in enumerate(axes):
        begin[axis], end[axis] = amounts[index], amounts[index + len(axes)]
    if any(begin[:2]) or any(end[:2]):
        raise UnsupportedModelError(name, node.op_type, f"pads {amounts} pad the batch or channel axis; only H and W "
                                    "padding folds into a window")
    if min(begin + end) < 0:
        raise UnsupportedModelError(name, node.op_type, f"negative pads {amounts} crop; only padding folds into a window")
    if len(node.input) > 2 and node.input[2]:
        values = ctx.constant(node, name, 2, "constant value").reshape(-1)
        value = float(values[0]) if values.size else 0.0
    else:
        value = float(attrs.get("value", 0.0))  # type: ignore[arg-type]
    tensor = source.tensor
    level = np.rint(np.float32(value) / np.float32(tensor.scale)) + tensor.zero_point
    fill = int(np.clip(level, tensor.dtype.min, tensor.dtype.max))
    pads = (begin[2], begin[3], end[2], end[3])
    if inner is not None:
        if inner.fill != fill:
            raise UnsupportedModelError(name, node.op_type, f"pads the output of Pad '{inner.node}' with another "
                                        "value; two fills cannot fold into one window")
        pads = tuple(a + b for a, b in zip(inner.pads, pads))  # type: ignore[assignment]
    ctx.values[node.output[0]] = Padded(source, pads, fill, name)


def window_input(ctx: LoweringContext, node: onnx.NodeProto, name: str,
                 pads_with: str) -> tuple[Activation, tuple[int, int, int, int]]:
    """The activation a Conv/pool reads and the pads a Pad before it adds (zeros if none).

    `pads_with` is what the window pads with: "zero" (the zero point: Conv, AveragePool) or
    "lowest" (below every value: MaxPool)."""
    value = ctx.values.get(node.input[0])
    if not isinstance(value, Padded):
        return ctx.activation(node, name, 0), (0, 0, 0, 0)
    tensor = value.source.tensor
    wanted = tensor.zero_point if pads_with == "zero" else tensor.dtype.min
    if value.fill != wanted:
        what = "the zero point (real 0)" if pads_with == "zero" else f"the type's minimum {tensor.dtype.min}"
        raise UnsupportedModelError(value.node, "Pad", f"pads with the integer {value.fill}, but {name} "
                                    f"({node.op_type}) after it pads with {what}; {FOLDS_INTO} when the values agree")
    return value.source, value.pads


def add_pads(pads: tuple[int, ...], extra: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    return tuple(a + b for a, b in zip(pads, extra))  # type: ignore[return-value]


def padded_shape(shape: Shape, pads: tuple[int, int, int, int]) -> Shape:
    return (*shape[:2], shape[2] + pads[0] + pads[2], shape[3] + pads[1] + pads[3])
