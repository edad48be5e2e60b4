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
    """Max pooling pads below the type's range (never chosen); average pooling sums, `requant` divides."""
    tensor = tensors[0]
    values = centred(args[0], tensor)
    if op.mode == "max":
        lowest = tensor.dtype.min - tensor.zero_point - 1
        acc = windows(values, op.kernel, op.stride, op.pads, (1, 1), lowest).max(axis=(4, 5))
    else:
        acc = windows(values, op.kernel, op.stride, op.pads, (1, 1), 0).sum(axis=(4, 5))
    return op.requant.apply(acc)


def run_global_avg_pool(op: GlobalAvgPool, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    return op.requant.apply(centred(args[0], tensors[0]).sum(axis=(2, 3), keepdims=True))


GOLDEN = GoldenRules({DepthwiseConv: run_depthwise_conv, Pool: run_pool, GlobalAvgPool: run_global_avg_pool})
