"""Every supported op, quantized by onnxruntime's QDQ quantizer: golden == onnxruntime +- 1 LSB."""

from __future__ import annotations

import numpy as np
import pytest
from support.compare import compare_with_onnxruntime
from support.op_cases import CASES, SHAPE, build

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




def test_unquantized_intermediate_helper_model_is_consistent() -> None:
    # guard for the test helper itself: QDQ models really contain Q/DQ pairs
    model, calibration = build("conv_relu")
    quantized = quantize_qdq(model, calibration)
    ops = {n.op_type for n in quantized.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
