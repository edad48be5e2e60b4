"""Typed graph IR: quantized tensor types, the op base, the layer graph. The op kinds live in `hwcodesign.ops`."""

from hwcodesign.ir.graph import Graph
from hwcodesign.ir.op import Input, Op
from hwcodesign.ir.requant import Requant, identity_requant, make_requant, shared_shift
from hwcodesign.ir.types import ActiveSet, IntType, Tensor

__all__ = [
    "ActiveSet", "Graph", "Input", "IntType", "Op", "Requant", "Tensor", "identity_requant", "make_requant",
    "shared_shift",
]
