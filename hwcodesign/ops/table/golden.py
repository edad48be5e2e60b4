"""Golden semantics of a lookup table: the output level of each input level, read per element; of
a lookup mean: the fine table read per element, summed over H and W, requantized once."""

from __future__ import annotations

import numpy as np

from hwcodesign.ir.types import Tensor
from hwcodesign.ops.facets.golden import GoldenRules
from hwcodesign.ops.table.ir import Lookup, LookupMean


def run_lookup(op: Lookup, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    return op.table[args[0].astype(np.int64) - tensors[0].dtype.min]


def run_lookup_mean(op: LookupMean, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    values = op.table[args[0].astype(np.int64) - tensors[0].dtype.min]
    return op.requant.apply(values.sum(axis=(2, 3), keepdims=True))


GOLDEN = GoldenRules({Lookup: run_lookup, LookupMean: run_lookup_mean})
