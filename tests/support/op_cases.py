"""One tiny float model per supported op (built with onnx.helper), shared by the frontend tests
(golden vs onnxruntime) and the codegen tests (C simulation vs golden)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from onnx import helper

from support.onnx_models import GraphBuilder

SHAPE = (1, 4, 12, 12)


def conv_relu(b: GraphBuilder, x: str) -> str:
    return b.node("Relu", [b.conv(x, 4, 8, pads=[1, 1, 1, 1])])


def conv_stride2_nobias(b: GraphBuilder, x: str) -> str:
    return b.conv(x, 4, 6, bias=False, strides=[2, 2], pads=[1, 1, 1, 1])


def conv_dilated(b: GraphBuilder, x: str) -> str:
    return b.conv(x, 4, 4, dilations=[2, 2], pads=[2, 2, 2, 2])


def conv_grouped(b: GraphBuilder, x: str) -> str:
    return b.node("Relu", [b.conv(x, 4, 8, groups=2, pads=[1, 1, 1, 1])])


def conv_depthwise(b: GraphBuilder, x: str) -> str:
    return b.conv(x, 4, 4, groups=4, pads=[1, 1, 1, 1])


def conv_1x1_asymmetric_pads(b: GraphBuilder, x: str) -> str:
    return b.conv(x, 4, 5, k=3, pads=[0, 1, 2, 1], strides=[1, 2])


def conv_batchnorm_relu(b: GraphBuilder, x: str) -> str:
    return b.node("Relu", [b.batch_norm(b.conv(x, 4, 8, pads=[1, 1, 1, 1]), 8)])


def conv_relu6(b: GraphBuilder, x: str) -> str:
    return b.node("Clip", [b.conv(x, 4, 8, pads=[1, 1, 1, 1]), b.const(np.float32(0)), b.const(np.float32(6))])


def conv_leaky(b: GraphBuilder, x: str) -> str:
    return b.node("LeakyRelu", [b.conv(x, 4, 8, pads=[1, 1, 1, 1])], alpha=0.1)


def conv_abs(b: GraphBuilder, x: str) -> str:
    # onnxruntime's quantizer leaves an Abs float: the conv after it quantizes its output
    return b.conv(b.node("Abs", [b.conv(x, 4, 8, pads=[1, 1, 1, 1])]), 8, 4, k=1)


def flatten_gemm(b: GraphBuilder, x: str) -> str:
    pooled = b.node("MaxPool", [b.node("Relu", [b.conv(x, 4, 4)])], kernel_shape=[2, 2], strides=[2, 2])
    return b.gemm(b.node("Flatten", [pooled], axis=1), 4 * 5 * 5, 10)


def gemm_untransposed(b: GraphBuilder, x: str) -> str:
    pooled = b.node("GlobalAveragePool", [b.conv(x, 4, 8)])
    return b.gemm(b.node("Flatten", [pooled]), 8, 6, trans_b=0)


def matmul_add(b: GraphBuilder, x: str) -> str:
    flat = b.node("Flatten", [b.node("GlobalAveragePool", [x])])
    weight = b.const(b.rng.normal(0, 0.5, (4, 7)).astype(np.float32))
    return b.node("Add", [b.node("MatMul", [flat, weight]), b.const(b.rng.normal(0, 0.1, 7).astype(np.float32))])


def max_pool(b: GraphBuilder, x: str) -> str:
    return b.node("MaxPool", [b.conv(x, 4, 4)], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])


def average_pool(b: GraphBuilder, x: str) -> str:
    return b.node("AveragePool", [b.conv(x, 4, 4)], kernel_shape=[2, 2], strides=[2, 2])


def average_pool_padded(b: GraphBuilder, x: str) -> str:
    return b.node("AveragePool", [b.conv(x, 4, 4)], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1],
                  count_include_pad=1)


def max_pool_ceil(b: GraphBuilder, x: str) -> str:
    """ceil_mode=1 (SqueezeNet, GoogLeNet): floor mode with one more row and column of end pad."""
    return b.node("MaxPool", [b.node("Relu", [b.conv(x, 4, 4)])], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)


def reduce_mean_gemm(b: GraphBuilder, x: str) -> str:
    """The default (dynamo) exporter's global average pool: ReduceMean over H, W (keepdims=0), then Gemm."""
    pooled = b.node("ReduceMean", [b.node("Relu", [b.conv(x, 4, 8)])], axes=[2, 3], keepdims=0)
    return b.gemm(pooled, 8, 6)


def global_average_pool(b: GraphBuilder, x: str) -> str:
    return b.node("GlobalAveragePool", [b.node("Relu", [b.conv(x, 4, 8)])])


def residual_add(b: GraphBuilder, x: str) -> str:
    left = b.node("Relu", [b.conv(x, 4, 4, pads=[1, 1, 1, 1])])
    right = b.conv(left, 4, 4, pads=[1, 1, 1, 1])
    return b.node("Relu", [b.node("Add", [left, right])])


def residual_add_shared(b: GraphBuilder, x: str) -> str:
    # every addend is read twice, so neither Add can run in a conv's output stage (the engine's
    # pixel unit adds them, where residual_add's Add is fused into its conv)
    left = b.node("Relu", [b.conv(x, 4, 4, pads=[1, 1, 1, 1])])
    right = b.conv(left, 4, 4, k=1)
    return b.node("Add", [b.node("Add", [left, right]), right])


def squeeze_excite(b: GraphBuilder, x: str) -> str:
    # torchvision's SqueezeExcitation writes `scale * input`: the (1, C, 1, 1) gate first; its gate
    # branch here has supported ops only (global pool, 1x1 convs, Relu, a Clip in place of HardSigmoid)
    features = b.node("Relu", [b.conv(x, 4, 8, pads=[1, 1, 1, 1])])
    squeezed = b.node("Relu", [b.conv(b.node("GlobalAveragePool", [features]), 8, 4, k=1)])
    gate = b.node("Clip", [b.conv(squeezed, 4, 8, k=1), b.const(np.float32(0)), b.const(np.float32(1))])
    return b.node("Mul", [gate, features])


def mul_same_shape(b: GraphBuilder, x: str) -> str:
    left = b.node("Relu", [b.conv(x, 4, 4, pads=[1, 1, 1, 1])])
    return b.node("Mul", [left, b.conv(x, 4, 4, k=1)])


def concat(b: GraphBuilder, x: str) -> str:
    return b.node("Concat", [b.conv(x, 4, 3, pads=[1, 1, 1, 1]), b.node("Relu", [b.conv(x, 4, 5, k=1)])], axis=1)


def resize_nearest(b: GraphBuilder, x: str) -> str:
    scales = b.const(np.array([1, 1, 2, 2], np.float32))
    return b.node("Resize", [b.conv(x, 4, 4), "", scales], mode="nearest",
                  coordinate_transformation_mode="asymmetric", nearest_mode="floor")


def shuffle(b: GraphBuilder, x: str, channels: int, groups: int) -> str:
    """The channel shuffle as torch writes it: Reshape to groups, Transpose, Reshape back."""
    h, w = SHAPE[2:]
    grouped = b.node("Reshape", [x, b.const(np.array([1, groups, channels // groups, h, w], np.int64))])
    swapped = b.node("Transpose", [grouped], perm=[0, 2, 1, 3, 4])
    return b.node("Reshape", [swapped, b.const(np.array([1, -1, h, w], np.int64))])


def channel_shuffle_g2(b: GraphBuilder, x: str) -> str:
    return shuffle(b, b.node("Relu", [b.conv(x, 4, 8, pads=[1, 1, 1, 1])]), 8, 2)


def channel_shuffle_g4(b: GraphBuilder, x: str) -> str:
    # a grouped conv after the shuffle reads channels of every group, as in ShuffleNet
    shuffled = shuffle(b, b.conv(x, 4, 8, k=1), 8, 4)
    return b.conv(shuffled, 8, 8, groups=2, pads=[1, 1, 1, 1])


def split_unequal(b: GraphBuilder, x: str) -> str:
    first, second = b.name("split"), b.name("split")
    b.nodes.append(helper.make_node("Split", [b.conv(x, 4, 8, pads=[1, 1, 1, 1]),
                                              b.const(np.array([3, 5], np.int64))], [first, second], name=first + "_node", axis=1))
    return b.node("Concat", [b.node("Relu", [second]), first], axis=1)


def slice_channels(b: GraphBuilder, x: str) -> str:
    start, end, axes = (b.const(np.array([v], np.int64)) for v in (2, 7, 1))
    return b.node("Slice", [b.conv(x, 4, 8, pads=[1, 1, 1, 1]), start, end, axes, b.const(np.array([1], np.int64))])


def slice_halves_shape_arithmetic(b: GraphBuilder, x: str) -> str:
    """The TorchScript exporter's chunk: Slice bounds computed from Shape by Gather, Add, Div, Mul."""
    y = b.conv(x, 4, 8, pads=[1, 1, 1, 1])
    one = b.const(np.array([1], np.int64))
    channels = b.node("Gather", [b.node("Shape", [y]), one], axis=0)
    half = b.node("Div", [b.node("Add", [channels, one]), b.const(np.array([2], np.int64))])
    left = b.node("Slice", [y, b.const(np.array([0], np.int64)), half, one])
    right = b.node("Slice", [y, half, b.node("Mul", [half, b.const(np.array([2], np.int64))]), one])
    return b.node("Add", [b.node("Relu", [left]), right])


def gather_channels(b: GraphBuilder, x: str) -> str:
    return b.node("Gather", [b.conv(x, 4, 6, k=1), b.const(np.array([4, 0, 5, 2, 1, 3], np.int64))], axis=1)


def split_in_two(b: GraphBuilder, x: str, channels: tuple[int, int]) -> tuple[str, str]:
    first, second = b.name("split"), b.name("split")
    b.nodes.append(helper.make_node("Split", [x, b.const(np.array(channels, np.int64))], [first, second],
                                    name=first + "_node", axis=1))
    return first, second


def shuffle_units(b: GraphBuilder, x: str) -> str:
    """Two ShuffleNetV2-like units on 10 channels: a shuffle straight off a conv (a byte copy) whose
    halves go through a ReLU (not a copy); a Concat of 5 + 5 (a gather of two parts), a shuffle
    and a split, one half through a ReLU, the other copied: the engine composes the routing where
    either stage is a copy (`compose_gathers`), and keeps the rest."""
    first, second = split_in_two(b, shuffle(b, b.conv(x, 4, 10, pads=[1, 1, 1, 1]), 10, 2), (5, 5))
    joined = b.node("Concat", [b.node("Relu", [first]), b.node("Relu", [b.conv(second, 5, 5, k=1)])], axis=1)
    left, right = split_in_two(b, shuffle(b, joined, 10, 2), (5, 5))
    return b.node("Concat", [b.node("Relu", [right]), left], axis=1)


CASES: dict[str, Callable[[GraphBuilder, str], str]] = {
    f.__name__: f for f in (
        conv_relu, conv_stride2_nobias, conv_dilated, conv_grouped, conv_depthwise, conv_1x1_asymmetric_pads,
        conv_batchnorm_relu, conv_relu6, conv_leaky, conv_abs, flatten_gemm, gemm_untransposed, matmul_add,
        max_pool, max_pool_ceil, average_pool, average_pool_padded, global_average_pool, reduce_mean_gemm,
        residual_add, concat, resize_nearest, squeeze_excite, mul_same_shape, channel_shuffle_g2, channel_shuffle_g4,
        split_unequal, slice_channels, slice_halves_shape_arithmetic, gather_channels,
    )
}
ENGINE_ONLY_CASES: dict[str, Callable[[GraphBuilder, str], str]] = {
    "residual_add_shared": residual_add_shared, "shuffle_units": shuffle_units}
"""Cases only the engine tests run (the pipeline has their parts in residual_add, channel_shuffle_g2
and split_unequal: nothing new there)."""


def build(case: str, seed: int = 0, opset: int = 17) -> tuple[object, list[np.ndarray]]:
    b = GraphBuilder(seed)
    out = {**CASES, **ENGINE_ONLY_CASES}[case](b, b.input(SHAPE))
    rng = np.random.default_rng(seed + 1)
    samples = [rng.normal(0, 1, SHAPE).astype(np.float32) for _ in range(16)]
    return b.model([out], opset=opset), samples
