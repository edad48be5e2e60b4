"""Golden semantics of the per-channel window layers: depthwise convolution and pooling."""

from __future__ import annotations

import numpy as np

from hwcodesign.ir.types import Tensor
from hwcodesign.ops.channelwise.ir import DepthwiseConv, GlobalAvgPool, Pool
from hwcodesign.ops.facets.golden import GoldenRules, centred, convolve, windows


def run_depthwise_conv(op: DepthwiseConv, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    """A grouped conv with one group per channel: the same numbers as the conv family's."""
    return convolve(op, args[0], tensors[0])


def run_pool(op: Pool, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    """Max pooling pads below the type's range (never chosen); average pooling sums, `requant` divides.
    Each tap's strided view of the windows is combined into the result in place (a reduction over
    the windows' two last axes would walk them element by element)."""
    tensor = tensors[0]
    values = centred(args[0], tensor)
    pad = tensor.dtype.min - tensor.zero_point - 1 if op.mode == "max" else 0
    cols = windows(values, op.kernel, op.stride, op.pads, (1, 1), pad)
    acc = cols[..., 0, 0].copy()
    combine = np.maximum if op.mode == "max" else np.add
    for i in range(op.kernel[0]):
        for j in range(op.kernel[1]):
            if i or j:
                combine(acc, cols[..., i, j], out=acc)
    return op.requant.apply(acc)


def run_global_avg_pool(op: GlobalAvgPool, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    return op.requant.apply(centred(args[0], tensors[0]).sum(axis=(2, 3), keepdims=True))


GOLDEN = GoldenRules({DepthwiseConv: run_depthwise_conv, Pool: run_pool, GlobalAvgPool: run_global_avg_pool})
