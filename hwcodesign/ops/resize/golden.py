"""Golden semantics of nearest-neighbour upsampling: each centred value repeated, then requantized."""

from __future__ import annotations

import numpy as np

from hwcodesign.ir.types import Tensor
from hwcodesign.ops.facets.golden import GoldenRules, requantized
from hwcodesign.ops.resize.ir import Resize


def run_resize(op: Resize, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    # the output stage is per value: applied before the repeat, to a scale**2 smaller array
    return requantized(op.requant, args[0], tensors[0]).repeat(op.scale[0], axis=2).repeat(op.scale[1], axis=3)


GOLDEN = GoldenRules({Resize: run_resize})
