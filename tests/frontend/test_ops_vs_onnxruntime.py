"""Every supported op, quantized by onnxruntime's QDQ quantizer: golden == onnxruntime +- 1 LSB."""

from __future__ import annotations

import numpy as np
import pytest
from support.compare import compare_with_onnxruntime
from support.onnx_models import GraphBuilder
from support.op_cases import CASES, SHAPE, build

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.quantize import quantize_qdq


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




@pytest.mark.parametrize("symmetric", [False, True], ids=["uint8", "int8"])
@pytest.mark.parametrize("gate_first", [True, False], ids=["gate_times_map", "map_times_gate"])
@pytest.mark.parametrize("broadcast", [True, False], ids=["channel_gate", "same_shape"])
def test_product_of_two_activations(broadcast: bool, gate_first: bool, symmetric: bool) -> None:
    """DQ(a) * DQ(b) -> Q in either input order, a (1, C, 1, 1) gate or the same shape, on uint8
    and int8 activations: one Mul layer, the map first; golden == onnxruntime +- 1 LSB."""
    b = GraphBuilder(seed=7)
    x = b.input(SHAPE)
    features = b.node("Relu", [b.conv(x, 4, 8, pads=[1, 1, 1, 1])])
    if broadcast:
        squeezed = b.node("Relu", [b.conv(b.node("GlobalAveragePool", [features]), 8, 4, k=1)])
        other = b.node("Clip", [b.conv(squeezed, 4, 8, k=1), b.const(np.float32(0)), b.const(np.float32(1))])
    else:
        other = b.conv(x, 4, 8, k=1)
    model = b.model([b.node("Mul", [other, features] if gate_first else [features, other])])
    rng = np.random.default_rng(3)
    calibration = [rng.normal(0, 1, SHAPE).astype(np.float32) for _ in range(16)]
    quantized = quantize_qdq(model, calibration, symmetric_activations=symmetric)
    graph = optimize(load_onnx(quantized))
    (mul,) = [op for op in graph if op.kind == "Mul"]
    a, gate = graph.input_tensors(mul)
    assert mul.broadcast == broadcast and a.shape == (1, 8, 12, 12)
    assert gate.shape == ((1, 8, 1, 1) if broadcast else (1, 8, 12, 12))
    assert a.dtype.signed == gate.dtype.signed == mul.output.dtype.signed == symmetric
    inputs = [np.random.default_rng(i).normal(0, 1, SHAPE).astype(np.float32) for i in range(20)]
    agreement = compare_with_onnxruntime(quantized, inputs, graph=graph)
    assert agreement.max_lsb <= 1, str(agreement)
    assert agreement.exact_fraction >= 0.9, str(agreement)


def test_product_of_unbroadcastable_shapes_is_refused_by_name() -> None:
    b = GraphBuilder(seed=7)
    x = b.input(SHAPE)
    features = b.node("Relu", [b.conv(x, 4, 8, pads=[1, 1, 1, 1])])
    rows = b.node("MaxPool", [features], kernel_shape=[1, 12], strides=[1, 12])  # (1, 8, 12, 1)
    model = b.model([b.node("Mul", [features, rows])])
    quantized = quantize_qdq(model, [np.random.default_rng(i).normal(0, 1, SHAPE).astype(np.float32) for i in range(4)])
    with pytest.raises(UnsupportedModelError, match=r"per-channel gate \(N, C, 1, 1\)"):
        optimize(load_onnx(quantized))


def test_unquantized_intermediate_helper_model_is_consistent() -> None:
    # guard for the test helper itself: QDQ models really contain Q/DQ pairs
    model, calibration = build("conv_relu")
    quantized = quantize_qdq(model, calibration)
    ops = {n.op_type for n in quantized.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
