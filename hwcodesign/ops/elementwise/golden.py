"""Golden semantics of the elementwise layers: an activation is its requantization; Add scales and
sums; Mul multiplies the centred inputs exactly (a gate broadcast over H, W) and requantizes once."""

from __future__ import annotations

import numpy as np

from hwcodesign.ir.types import Tensor
from hwcodesign.ops.elementwise.ir import Act, Add, Mul
from hwcodesign.ops.facets.golden import GoldenRules, centred, requantized


def run_act(op: Act, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    return requantized(op.requant, args[0], tensors[0])


def run_add(op: Add, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    """Both inputs on a common scale through their integer multipliers, summed, then requantized."""
    (a, b), (ta, tb) = args, tensors
    acc = centred(a, ta) * op.input_multipliers[0] + centred(b, tb) * op.input_multipliers[1]
    return op.requant.apply(acc)


def run_mul(op: Mul, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    """(a - a_zp) * (b - b_zp) in integers (a (N, C, 1, 1) gate broadcasts), then the one rounding."""
    (a, b), (ta, tb) = args, tensors
    return op.requant.apply(centred(a, ta) * centred(b, tb))


GOLDEN = GoldenRules({Act: run_act, Add: run_add, Mul: run_mul})
