"""The three-way check's first leg: onnxruntime on the ONNX model vs the integer golden model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from hwcodesign.ir.graph import Graph
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.reference import Reference
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


def compare_with_onnxruntime(model: onnx.ModelProto, inputs: list[np.ndarray],
                             graph: Graph | None = None, reference: onnx.ModelProto | None = None) -> Agreement:
    """Run both on the same float inputs; `reference` overrides the model onnxruntime runs.

    onnxruntime runs the model as written (`hwcodesign.reference`: graph optimisations off, since
    they replace QDQ groups by fused integer kernels with their own approximations).
    """
    graph = graph or optimize(load_onnx(model))
    session = Reference(reference or model)
    out_tensor = graph.output_tensors()[0]
    diffs, argmax_same = [], []
    for x in inputs:
        expected = session.first(x)
        expected_q = out_tensor.quantize(expected.reshape(out_tensor.shape))
        golden = run_golden(graph, quantize_input(graph, x))[out_tensor.name]
        diffs.append(np.abs(golden - expected_q).ravel())
        argmax_same.append(int(golden.argmax()) == int(expected_q.argmax()))
    all_diffs = np.concatenate(diffs)
    return Agreement(int(all_diffs.max()), float((all_diffs == 0).mean()), all_diffs.size, float(np.mean(argmax_same)))
