"""Golden semantics of the elementwise layers: an activation is its requantization; Add scales and sums."""

from __future__ import annotations

import numpy as np

from hwcodesign.ir.types import Tensor
from hwcodesign.ops.elementwise.ir import Act, Add
from hwcodesign.ops.facets.golden import GoldenRules, centred


def run_act(op: Act, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    return op.requant.apply(centred(args[0], tensors[0]))


def run_add(op: Add, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    """Both inputs on a common scale through their integer multipliers, summed, then requantized."""
    (a, b), (ta, tb) = args, tensors
    acc = centred(a, ta) * op.input_multipliers[0] + centred(b, tb) * op.input_multipliers[1]
    return op.requant.apply(acc)


GOLDEN = GoldenRules({Act: run_act, Add: run_add})
