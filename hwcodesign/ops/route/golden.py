"""Golden semantics of channel re-routing: the centred input's channels selected or reordered,
then the output stage (the identity on one grid: the integers are copied)."""

from __future__ import annotations

import numpy as np

from hwcodesign.ir.types import Tensor
from hwcodesign.ops.facets.golden import GoldenRules, requantized
from hwcodesign.ops.route.ir import ChannelPermute, ChannelSlice


def run_slice(op: ChannelSlice, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    return requantized(op.requant, args[0][:, op.start:op.start + op.output.channels], tensors[0])


def run_permute(op: ChannelPermute, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    return requantized(op.requant, args[0][:, list(op.order)], tensors[0])


GOLDEN = GoldenRules({ChannelSlice: run_slice, ChannelPermute: run_permute})
