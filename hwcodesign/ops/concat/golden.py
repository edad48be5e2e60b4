"""Golden semantics of channel concatenation: each input requantized to the output's scale, then stacked."""

from __future__ import annotations

import numpy as np

from hwcodesign.ir.types import Tensor
from hwcodesign.ops.concat.ir import Concat
from hwcodesign.ops.facets.golden import GoldenRules, requantized


def run_concat(op: Concat, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    parts = [requantized(rq, x, t) for rq, x, t in zip(op.input_requants, args, tensors)]
    return np.concatenate(parts, axis=1)


GOLDEN = GoldenRules({Concat: run_concat})
