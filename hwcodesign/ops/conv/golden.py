"""Golden semantics of convolution and fully connected layers: exact integer sums, then requantization."""

from __future__ import annotations

import numpy as np

from hwcodesign.ir.types import Tensor
from hwcodesign.ops.conv.ir import Conv, Linear
from hwcodesign.ops.facets.golden import GoldenRules, centred, convolve, exact_matmul, magnitude


def run_conv(op: Conv, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    return convolve(op, args[0], tensors[0])


def run_linear(op: Linear, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    x, tensor = args[0], tensors[0]
    flat = centred(x, tensor).reshape(x.shape[0], -1)
    weight = op.weight.reshape(op.out_channels, -1)
    bound = magnitude(tensor) * float(np.abs(weight).max(initial=0)) * weight.shape[1]
    acc = exact_matmul(flat, weight.T, bound) + op.bias[None, :]
    return op.requant.apply(acc).reshape(x.shape[0], -1, 1, 1)


GOLDEN = GoldenRules({Conv: run_conv, Linear: run_linear})
