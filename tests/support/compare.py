"""The three-way check's first leg: onnxruntime on the ONNX model vs the integer golden model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort

from hwcodesign.ir.graph import Graph
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.sim import quantize_input, run_golden


@dataclass
class Agreement:
    """Per-element agreement of golden integers with onnxruntime's output re-quantized."""

    max_lsb: int
    exact_fraction: float
    elements: int
    argmax_agreement: float

    def __str__(self) -> str:
        return (f"max |diff| {self.max_lsb} LSB, exact {100 * self.exact_fraction:.2f}% of "
                f"{self.elements} elements, argmax equal {100 * self.argmax_agreement:.1f}%")


def ort_session(model: onnx.ModelProto) -> ort.InferenceSession:
    """onnxruntime evaluating the model as written: DequantizeLinear -> float op -> QuantizeLinear.

    Graph optimizations are off because they replace QDQ groups by fused integer kernels with
    their own approximations (QLinearAveragePool was measured up to 7 LSB away from the model's
    own float semantics); the model's meaning is the unfused graph.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def compare_with_onnxruntime(model: onnx.ModelProto, inputs: list[np.ndarray],
                             graph: Graph | None = None, reference: onnx.ModelProto | None = None) -> Agreement:
    """Run both on the same float inputs; `reference` overrides the model onnxruntime runs."""
    graph = graph or optimize(load_onnx(model))
    session = ort_session(reference or model)
    input_name = session.get_inputs()[0].name
    out_tensor = graph.output_tensors()[0]
    diffs, argmax_same = [], []
    for x in inputs:
        expected = session.run(None, {input_name: x.astype(np.float32)})[0]
        expected_q = out_tensor.quantize(expected.reshape(out_tensor.shape))
        golden = run_golden(graph, quantize_input(graph, x))[out_tensor.name]
        diffs.append(np.abs(golden - expected_q).ravel())
        argmax_same.append(int(golden.argmax()) == int(expected_q.argmax()))
    all_diffs = np.concatenate(diffs)
    return Agreement(int(all_diffs.max()), float((all_diffs == 0).mean()), all_diffs.size, float(np.mean(argmax_same)))
