"""QONNX `Quant` models at every bit width 2..8: golden == onnxruntime on the expanded model."""

from __future__ import annotations

import numpy as np
import pytest
from support.compare import compare_with_onnxruntime
from support.examples import build_models_module
from support.qonnx_by_hand import qonnx_two_convs

from hwcodesign.ops import Conv
from hwcodesign.passes import load_onnx, optimize


@pytest.mark.parametrize("bits", range(2, 9))
def test_qonnx_bit_widths_match_onnxruntime(bits: int) -> None:
    model = qonnx_two_convs(bits)
    graph = optimize(load_onnx(model))
    convs = [op for op in graph if isinstance(op, Conv)]
    assert [str(c.weight_type) for c in convs] == [f"int{bits}"] * 2
    assert str(graph.output_tensors()[0].dtype) == f"int{bits}"
    reference = build_models_module().expand_qonnx_quant(model)
    rng = np.random.default_rng(bits)
    inputs = [rng.uniform(0, 1, (1, 3, 10, 10)).astype(np.float32) for _ in range(20)]
    agreement = compare_with_onnxruntime(model, inputs, graph=graph, reference=reference)
    assert agreement.max_lsb <= 1, str(agreement)
    assert agreement.exact_fraction >= 0.99, str(agreement)


def test_narrow_weights_stay_symmetric() -> None:
    graph = load_onnx(qonnx_two_convs(4))
    first = next(op for op in graph if isinstance(op, Conv))
    assert first.weight.min() >= -7 and first.weight.max() <= 7
