"""The golden facet: the integer arithmetic the hardware computes, the golden model's definition.

A family's `golden.py` gives one `GoldenRule` per op class it owns; `sim/golden.py` walks the
graph and calls `family_of(op).golden.run(op, args, tensors)`. Every rule subtracts its input
zero points, accumulates integer products exactly and applies its `Requant` output stage, so the
C simulation of generated HLS code can match it bit for bit.

The numeric helpers the families share live here too, beside the interface, so that no family
imports another family's golden module: products are accumulated in floating point when the
operand ranges bound every partial sum: float32 below 2**24, float64 below 2**53 (every integer
up to there is exact, so every partial sum, and the result, is the integer), otherwise with int64
matmul. A convolution is one matrix product per group over all the batch's frames at once (a
depthwise one, a weighted sum of its taps), its windows gathered straight into that float type.
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

FLOAT32_EXACT = 2.0**24
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


def exact_type(bound: float) -> type[np.floating] | type[np.int64]:
    """The cheapest type in which integer sums bounded by `bound` are exact: float32 below 2**24,
    float64 below 2**53 (every integer up to there is representable), else int64."""
    if bound < FLOAT32_EXACT:
        return np.float32
    return np.float64 if bound < FLOAT64_EXACT else np.int64


def exact_matmul(a: np.ndarray, b: np.ndarray, bound: float) -> np.ndarray:
    """a @ b on integer arrays, exactly; `bound` is an upper bound on any |partial sum|."""
    kind = exact_type(bound)
    product = np.matmul(a.astype(kind, copy=False), b.astype(kind, copy=False))
    return product.astype(np.int64) if kind is not np.int64 else product


def centred(x: np.ndarray, tensor: Tensor) -> np.ndarray:
    return x.astype(np.int64) - tensor.zero_point


def requantized(requant: Requant, x: np.ndarray, tensor: Tensor) -> np.ndarray:
    """`requant.apply(centred(x, tensor))`, the same integers in fewer passes over the array: a
    stage that maps every value the tensor can hold to itself (one grid: a route, a Concat part
    already on the output's scale) is a copy; any other runs in float64 with the tensor's own
    bound (`Requant.apply`)."""
    if (requant.is_identity() and requant.zero_point == tensor.zero_point
            and requant.lo <= tensor.dtype.min and requant.hi >= tensor.dtype.max):
        return x.astype(np.int64)
    return requant.apply(np.subtract(x, tensor.zero_point, dtype=np.float64), bound=magnitude(tensor))


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
    """A grouped 2-D convolution with zero (real-domain) padding, then the op's requantization:
    per group one matrix product of its weights with the windows of every frame of the batch, in
    the cheapest exact type (`exact_type`); a pointwise conv a product with each frame's pixels as
    they lie; a depthwise conv (one input and one output channel a group) a sum over its taps of
    weight x window."""
    n, channels = x.shape[:2]
    groups = op.groups
    weight = op.weight.reshape(groups, op.out_channels // groups, -1)
    bound = magnitude(tensor) * float(np.abs(op.weight).max(initial=0)) * weight.shape[2]
    kind = exact_type(bound)
    values = np.subtract(x, tensor.zero_point, dtype=kind)  # centred, in one pass
    if op.kernel == (1, 1) and groups == 1 and not any(op.pads):  # a pointwise conv: no windows to gather
        picked = values[:, :, :: op.stride[0], :: op.stride[1]]
        oh, ow = picked.shape[2:]
        acc = np.matmul(weight[0].astype(kind), picked.reshape(n, channels, oh * ow))  # (N, O, OH*OW)
        return biased(op, acc.reshape(n, op.out_channels, oh, ow), kind, bound)
    if groups == channels and op.out_channels == channels:
        return depthwise(op, values, kind, bound)
    cols = windows(values, op.kernel, op.stride, op.pads, op.dilation, 0)
    _, _, oh, ow, kh, kw = cols.shape
    # (N, G, C/G, OH, OW, kh, kw) -> (G, C/G*kh*kw, N*OH*OW): all frames in one product per group
    cols = cols.reshape(n, groups, channels // groups, oh, ow, kh, kw)
    cols = cols.transpose(1, 2, 5, 6, 0, 3, 4).reshape(groups, -1, n * oh * ow)
    acc = np.matmul(weight.astype(kind), cols)  # (G, O/G, N*OH*OW)
    return biased(op, acc.reshape(op.out_channels, n, oh, ow).transpose(1, 0, 2, 3), kind, bound)


def frame_chunks(count: int, frame_bytes: int, budget: int) -> list[slice]:
    """Frames 0..count-1 as chunks of at most `budget` bytes (`frame_bytes` each; one frame at
    least): the golden model runs large batches a chunk at a time, so that its arrays stay in
    cache and come back from the allocator (`PASSES_BYTES` here, `sim/golden.CHUNK_BYTES`)."""
    size = max(1, budget // frame_bytes)
    return [slice(start, start + size) for start in range(0, count, size)]


NARROW_WIDTH = 32
"""Input width below which a depthwise conv runs channel-last (`depthwise`)."""
PASSES_BYTES = 2**22
"""A depthwise conv's frames at a time: 4 MB of int64 per chunk. Its nine products and sums, the
output stage and the conversions are all passes over arrays of the map's size, which run from
cache when the chunk is this small (with the graph's 8 MB chunks, `sim/golden.CHUNK_BYTES`:
CoDeNet a 59 -> 49 ms a frame)."""


def depthwise(op: WindowConv, values: np.ndarray, kind: type, bound: float) -> np.ndarray:
    """A depthwise conv (one input and one output channel a group) on centred `values` of type
    `kind`: per tap, weight x the tap's view, summed. numpy's inner loop runs along the last axis,
    so the layout is the one whose last axis is long: the rows of a wide map (NCHW, no copies), the
    channels of a narrow one (NHWC: a 6x6 map's rows made inner loops six long). Measured on
    CoDeNet's and MobileNetV2's layers: channel-last 1.7x faster at widths 8 and 16 (stride 1),
    1.5-1.7x slower at 32 and 64, where the transposes cost more than they save."""
    n, channels, height, width = values.shape
    chunks = frame_chunks(n, 8 * channels * height * width, PASSES_BYTES)
    if len(chunks) > 1:  # its passes over a few frames at a time stay in cache
        return np.concatenate([depthwise(op, values[chunk], kind, bound) for chunk in chunks])
    (kh, kw), (sh, sw), (dh, dw) = op.kernel, op.stride, op.dilation
    taps = op.weight.reshape(channels, kh, kw).astype(kind)
    if width >= NARROW_WIDTH:
        cols = windows(values, op.kernel, op.stride, op.pads, op.dilation, 0)
        acc = np.zeros(cols.shape[:4], kind)
        term = np.empty_like(acc)
        for i in range(kh):
            for j in range(kw):
                np.multiply(cols[..., i, j], taps[None, :, i, j, None, None], out=term)
                acc += term
        return biased(op, acc, kind, bound)
    top, left, bottom, right = op.pads
    padded = np.zeros((n, height + top + bottom, width + left + right, channels), kind)
    padded[:, top:top + height, left:left + width] = values.transpose(0, 2, 3, 1)
    oh = (padded.shape[1] - (kh - 1) * dh - 1) // sh + 1
    ow = (padded.shape[2] - (kw - 1) * dw - 1) // sw + 1
    acc = np.zeros((n, oh, ow, channels), kind)
    term = np.empty_like(acc)
    for i in range(kh):
        for j in range(kw):
            view = padded[:, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
            np.multiply(view, taps[:, i, j], out=term)
            acc += term
    return biased(op, acc, kind, bound, channel_axis=3).transpose(0, 3, 1, 2)


def biased(op: WindowConv, acc: np.ndarray, kind: type, bound: float, channel_axis: int = 1) -> np.ndarray:
    """The accumulators (|sum| <= `bound`) plus the bias, through the op's output stage. Float sums
    go to the output stage as they are, with the bias beside them (`Requant.apply` adds it in
    float64, exactly: bias and sum are integers below 2**53; float32 could not hold the bias
    beside them)."""
    if kind is np.int64:
        return op.requant.apply(acc, channel_axis, bias=op.bias)
    total = bound + float(np.abs(op.bias).max(initial=0))
    return op.requant.apply(acc, channel_axis, bound=total, bias=op.bias)
