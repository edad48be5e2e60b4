"""Golden semantics of sparse convolution: a Conv's numbers at every site.

`sim/golden.py` then keeps only the active sites of the output (the rest hold its zero point),
since which sites are active is a property of the graph's sparse inputs, not of this layer.
"""

from __future__ import annotations

import numpy as np

from hwcodesign.ir.types import Tensor
from hwcodesign.ops.facets.golden import GoldenRules, convolve
from hwcodesign.ops.sparse.ir import SubmanifoldConv


def run_submanifold_conv(op: SubmanifoldConv, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    return convolve(op, args[0], tensors[0])


GOLDEN = GoldenRules({SubmanifoldConv: run_submanifold_conv})
