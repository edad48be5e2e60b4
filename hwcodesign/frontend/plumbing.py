"""Graph plumbing that builds no layer: views (Flatten, Reshape), wires (Identity, Dropout), shapes,
an explicit Pad (folded into the window after it, `frontend/padding.py`) and the quantizers. Every lowering has these; no op family owns them.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import onnx

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.frontend.context import LoweringContext, Rule
from hwcodesign.frontend.padding import pad
from hwcodesign.frontend.quantizers import (
    bipolar_quant,
    dequantize_linear,
    multithreshold,
    qonnx_quant,
    quantize_linear,
    round_to_integers,
)
from hwcodesign.frontend.values import Activation, Constant, FloatInput, Pending


def flatten(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    if int(ctx.attrs(node).get("axis", 1)) != 1:
        raise UnsupportedModelError(name, node.op_type, "only Flatten(axis=1) is a streaming no-op")
    flat_view(ctx, node, name)


def flat_view(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    source = ctx.value(node, name, 0)
    if isinstance(source, Activation):
        ctx.values[node.output[0]] = Activation(source.tensor, flat=True)
    elif isinstance(source, Pending):
        ctx.values[node.output[0]] = source.with_changes(flat=True)
    else:
        raise UnsupportedModelError(name, node.op_type, f"input '{node.input[0]}' is not an activation")


def reshape(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    source = ctx.value(node, name, 0)
    target = ctx.constant(node, name, 1, "target shape").astype(np.int64).tolist()
    shape = source.tensor.shape if isinstance(source, Activation) else getattr(source, "shape", None)
    if shape is None:
        raise UnsupportedModelError(name, node.op_type, f"input '{node.input[0]}' is not an activation")
    total = int(np.prod(shape))
    resolved = [shape[i] if d == 0 else d for i, d in enumerate(target)]
    if -1 in resolved:
        known = int(np.prod([d for d in resolved if d != -1]))
        resolved[resolved.index(-1)] = total // max(known, 1)
    elements = total // shape[0]
    if resolved == [shape[0], elements] or (resolved[:2] == [shape[0], elements] and all(d == 1 for d in resolved[2:])):
        flat_view(ctx, node, name)
        return
    if tuple(resolved) == tuple(shape):
        identity(ctx, node, name)
        return
    raise UnsupportedModelError(
        name, node.op_type, f"reshape {tuple(shape)} -> {tuple(resolved)} is not a flatten; it would reorder the stream"
    )


def identity(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    ctx.values[node.output[0]] = ctx.value(node, name, 0)
    if node.op_type == "Dropout" and len(node.output) > 1 and node.output[1]:
        raise UnsupportedModelError(name, node.op_type, "the mask output is not supported")


def shape_of(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    source = ctx.value(node, name, 0)
    if isinstance(source, Activation):
        shape = source.tensor.shape
        flat = source.flat
    elif isinstance(source, Pending | FloatInput):
        shape, flat = source.shape, getattr(source, "flat", False)
    else:
        raise UnsupportedModelError(name, node.op_type, "shape of an unsupported value")
    dims = (shape[0], int(np.prod(shape[1:]))) if flat else shape
    ctx.values[node.output[0]] = Constant(np.asarray(dims, np.int64))


PLUMBING: Mapping[str, Rule] = MappingProxyType({
    "QuantizeLinear": quantize_linear,
    "DequantizeLinear": dequantize_linear,
    "Quant": qonnx_quant,
    "BipolarQuant": bipolar_quant,
    "MultiThreshold": multithreshold,
    "Round": round_to_integers,
    "Flatten": flatten,
    "Reshape": reshape,
    "Identity": identity,
    "Dropout": identity,
    "Shape": shape_of,
    "Pad": pad,
})
