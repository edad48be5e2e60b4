"""Lowering of the boundary: a quantized graph input becomes the accelerator's `Input`.

Graph inputs are not nodes: the quantizer that reads one (QuantizeLinear, DequantizeLinear of an
integer input, Quant) asks for the input through the `input` builder.
"""

from __future__ import annotations

from types import MappingProxyType

from hwcodesign.frontend.context import LoweringContext
from hwcodesign.frontend.values import Activation, FloatInput
from hwcodesign.ir.op import Input
from hwcodesign.ir.types import ActiveSet, Tensor
from hwcodesign.ops.facets.lowering import FamilyLowering


def emit_input(ctx: LoweringContext, source: FloatInput, tensor: Tensor) -> None:
    """The accelerator's input for a graph input; sparse when a mask or SubmConv reads it."""
    if source.name in ctx.sparse_roots:
        tensor = tensor.with_active(ActiveSet(tensor.name))
    ctx.emit(Input(ctx.unique(source.name), (), tensor))
    ctx.input_tensor_of[source.name] = tensor.name
    ctx.values[tensor.name] = Activation(tensor)


LOWERING = FamilyLowering(builders=MappingProxyType({"input": emit_input}))
