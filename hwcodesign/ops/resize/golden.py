"""Golden semantics of nearest-neighbour upsampling: each centred value repeated, then requantized."""

from __future__ import annotations

import numpy as np

from hwcodesign.ir.types import Tensor
from hwcodesign.ops.facets.golden import GoldenRules, centred
from hwcodesign.ops.resize.ir import Resize


def run_resize(op: Resize, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    values = centred(args[0], tensors[0]).repeat(op.scale[0], axis=2).repeat(op.scale[1], axis=3)
    return op.requant.apply(values)


GOLDEN = GoldenRules({Resize: run_resize})
