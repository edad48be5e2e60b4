"""Every supported op, quantized by onnxruntime's QDQ quantizer: golden == onnxruntime +- 1 LSB."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from support.compare import compare_with_onnxruntime
from support.onnx_models import GraphBuilder, quantize_qdq

from hwcodesign.frontend import load_onnx
from hwcodesign.passes import optimize

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


def global_average_pool(b: GraphBuilder, x: str) -> str:
    return b.node("GlobalAveragePool", [b.node("Relu", [b.conv(x, 4, 8)])])


def residual_add(b: GraphBuilder, x: str) -> str:
    left = b.node("Relu", [b.conv(x, 4, 4, pads=[1, 1, 1, 1])])
    right = b.conv(left, 4, 4, pads=[1, 1, 1, 1])
    return b.node("Relu", [b.node("Add", [left, right])])


def concat(b: GraphBuilder, x: str) -> str:
    return b.node("Concat", [b.conv(x, 4, 3, pads=[1, 1, 1, 1]), b.node("Relu", [b.conv(x, 4, 5, k=1)])], axis=1)


def resize_nearest(b: GraphBuilder, x: str) -> str:
    scales = b.const(np.array([1, 1, 2, 2], np.float32))
    return b.node("Resize", [b.conv(x, 4, 4), "", scales], mode="nearest",
                  coordinate_transformation_mode="asymmetric", nearest_mode="floor")


CASES: dict[str, Callable[[GraphBuilder, str], str]] = {
    f.__name__: f for f in (
        conv_relu, conv_stride2_nobias, conv_dilated, conv_grouped, conv_depthwise, conv_1x1_asymmetric_pads,
        conv_batchnorm_relu, conv_relu6, conv_leaky, flatten_gemm, gemm_untransposed, matmul_add,
        max_pool, average_pool, average_pool_padded, global_average_pool, residual_add, concat, resize_nearest,
    )
}


def build(case: str, seed: int = 0, opset: int = 17) -> tuple[object, list[np.ndarray]]:
    b = GraphBuilder(seed)
    out = CASES[case](b, b.input(SHAPE))
    rng = np.random.default_rng(seed + 1)
    samples = [rng.normal(0, 1, SHAPE).astype(np.float32) for _ in range(16)]
    return b.model([out], opset=opset), samples


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_matches_onnxruntime(case: str) -> None:
    model, calibration = build(case)
    quantized = quantize_qdq(model, calibration)
    rng = np.random.default_rng(123)
    inputs = [rng.normal(0, 1, SHAPE).astype(np.float32) for _ in range(20)]
    agreement = compare_with_onnxruntime(quantized, inputs)
    assert agreement.max_lsb <= 1, str(agreement)
    assert agreement.exact_fraction >= 0.9, str(agreement)


@pytest.mark.parametrize("case", ["conv_relu", "conv_depthwise", "flatten_gemm"])
def test_per_tensor_weights(case: str) -> None:
    model, calibration = build(case)
    quantized = quantize_qdq(model, calibration, per_channel=False)
    inputs = [np.random.default_rng(i).normal(0, 1, SHAPE).astype(np.float32) for i in range(20)]
    agreement = compare_with_onnxruntime(quantized, inputs)
    assert agreement.max_lsb <= 1, str(agreement)


@pytest.mark.parametrize("case", ["conv_relu", "conv_grouped", "flatten_gemm"])
def test_int4_weights(case: str) -> None:
    model, calibration = build(case, opset=21)
    quantized = quantize_qdq(model, calibration, weight_bits=4)
    graph = optimize(load_onnx(quantized))
    weight_types = {str(op.weight_type) for op in graph if hasattr(op, "weight_type")}
    assert weight_types == {"int4"}
    inputs = [np.random.default_rng(i).normal(0, 1, SHAPE).astype(np.float32) for i in range(20)]
    agreement = compare_with_onnxruntime(quantized, inputs, graph=graph)
    assert agreement.max_lsb <= 1, str(agreement)


def test_symmetric_int8_activations() -> None:
    model, calibration = build("residual_add")
    quantized = quantize_qdq(model, calibration, symmetric_activations=True)
    graph = optimize(load_onnx(quantized))
    assert graph.output_tensors()[0].dtype.signed
    inputs = [np.random.default_rng(i).normal(0, 1, SHAPE).astype(np.float32) for i in range(20)]
    assert compare_with_onnxruntime(quantized, inputs, graph=graph).max_lsb <= 1




def test_unquantized_intermediate_helper_model_is_consistent() -> None:
    # guard for the test helper itself: QDQ models really contain Q/DQ pairs
    model, calibration = build("conv_relu")
    quantized = quantize_qdq(model, calibration)
    ops = {n.op_type for n in quantized.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
