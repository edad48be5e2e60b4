"""The golden facet: the integer arithmetic the hardware computes, the golden model's definition.

A family's `golden.py` gives one `GoldenRule` per op class it owns; `sim/golden.py` walks the
graph and calls `family_of(op).golden.run(op, args, tensors)`. Every rule subtracts its input
zero points, accumulates integer products exactly and applies its `Requant` output stage, so the
C simulation of generated HLS code can match it bit for bit.

The numeric helpers the families share live here too, beside the interface, so that no family
imports another family's golden module: products are accumulated with float64 BLAS when the
operand ranges guarantee every partial sum stays below 2**53 (exact in float64), otherwise with
int64 matmul.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from hwcodesign.ir.op import Op
from hwcodesign.ir.requant import Requant
from hwcodesign.ir.types import Tensor
from hwcodesign.ops.refusal import OpUnsupported

FLOAT64_EXACT = 2.0**53

# One layer on integer inputs (its input values and their tensors, in op.inputs order) -> the int64
# output, in the output type's range.
GoldenRule = Callable[[Op, list[np.ndarray], list[Tensor]], np.ndarray]


@dataclass(frozen=True)
class GoldenRules:
    """A family's golden facet: the rule for each of its op classes (looked up by exact class)."""

    rules: Mapping[type[Op], GoldenRule]

    def run(self, op: Op, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
        rule = self.rules.get(type(op))
        if rule is None:
            raise OpUnsupported(f"the golden model has no rule for {type(op).__name__}")
        return rule(op, args, tensors)


class WindowConv(Protocol):
    """What the convolution arithmetic reads of an op (Conv, DepthwiseConv, SubmanifoldConv)."""

    weight: np.ndarray
    bias: np.ndarray
    stride: tuple[int, int]
    pads: tuple[int, int, int, int]
    dilation: tuple[int, int]
    groups: int
    requant: Requant

    @property
    def kernel(self) -> tuple[int, int]: ...

    @property
    def out_channels(self) -> int: ...


def exact_matmul(a: np.ndarray, b: np.ndarray, bound: float) -> np.ndarray:
    """a @ b on integer arrays, exactly; `bound` is an upper bound on any |partial sum|."""
    if bound < FLOAT64_EXACT:
        return np.rint(np.matmul(a.astype(np.float64), b.astype(np.float64))).astype(np.int64)
    return np.matmul(a.astype(np.int64), b.astype(np.int64))


def centred(x: np.ndarray, tensor: Tensor) -> np.ndarray:
    return x.astype(np.int64) - tensor.zero_point


def magnitude(tensor: Tensor) -> int:
    """Largest |x - zero_point| the tensor can hold."""
    return max(tensor.zero_point - tensor.dtype.min, tensor.dtype.max - tensor.zero_point)


def windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
            pads: tuple[int, int, int, int], dilation: tuple[int, int], pad_value: int) -> np.ndarray:
    """Sliding windows of NCHW `x` as (N, C, OH, OW, kh, kw), ONNX padding and dilation."""
    top, left, bottom, right = pads
    padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=pad_value)
    span = ((kernel[0] - 1) * dilation[0] + 1, (kernel[1] - 1) * dilation[1] + 1)
    view = sliding_window_view(padded, span, axis=(2, 3))
    return view[:, :, :: stride[0], :: stride[1], :: dilation[0], :: dilation[1]]


def convolve(op: WindowConv, x: np.ndarray, tensor: Tensor) -> np.ndarray:
    """A grouped 2-D convolution with zero (real-domain) padding, then the op's requantization."""
    n, channels = x.shape[:2]
    groups = op.groups
    cols = windows(centred(x, tensor), op.kernel, op.stride, op.pads, op.dilation, 0)
    _, _, oh, ow, kh, kw = cols.shape
    # (N, G, C/G, OH, OW, kh, kw) -> (N, G, C/G*kh*kw, OH*OW)
    cols = cols.reshape(n, groups, channels // groups, oh, ow, kh, kw)
    cols = cols.transpose(0, 1, 2, 5, 6, 3, 4).reshape(n, groups, -1, oh * ow)
    weight = op.weight.reshape(groups, op.out_channels // groups, -1)
    bound = magnitude(tensor) * float(np.abs(op.weight).max(initial=0)) * weight.shape[2]
    acc = exact_matmul(weight[None], cols, bound).reshape(n, op.out_channels, oh, ow)
    acc = acc + op.bias.reshape(1, -1, 1, 1)
    return op.requant.apply(acc)
