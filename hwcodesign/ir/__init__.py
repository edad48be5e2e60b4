"""Typed graph IR: quantized tensor types, one dataclass per layer kind, the layer graph."""

from hwcodesign.ir.graph import Graph
from hwcodesign.ir.ops import (
    OP_KINDS,
    Act,
    Add,
    Concat,
    Conv,
    DeformConv,
    DepthwiseConv,
    GlobalAvgPool,
    Input,
    Linear,
    Op,
    Pool,
    Resize,
    SubmanifoldConv,
)
from hwcodesign.ir.requant import Requant, identity_requant, make_requant, shared_shift
from hwcodesign.ir.types import ActiveSet, IntType, Tensor

__all__ = [
    "OP_KINDS", "Act", "ActiveSet", "Add", "Concat", "Conv", "DeformConv", "DepthwiseConv", "GlobalAvgPool", "Graph",
    "Input", "IntType", "Linear", "Op", "Pool", "Requant", "Resize", "SubmanifoldConv", "Tensor",
    "identity_requant", "make_requant", "shared_shift",
]
