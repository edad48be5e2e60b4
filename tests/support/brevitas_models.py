"""Brevitas networks as its QONNX exporter writes them, and qonnx's own executor as their reference.

`mlp` is a small TFC-style MLP (an 8-bit input quantizer, quantized linear layers with 4-bit
ReLUs and a BatchNorm, and a last layer with quantized weights but a float output, which the host
runs), exported with either of Brevitas's exporters: TorchScript (scales as Constant nodes, a
bias-free layer as Transpose + MatMul) or dynamo (scales as initializers, every layer a Gemm).
Brevitas 0.13.4's exporter refuses to run without onnxoptimizer importable, even on its dynamo
path, which never calls it (hence the `test` extra pins it).

`qonnx_run` runs a model as qonnx does (`cleanup_model`, then `execute_onnx` frame by frame).
qonnx runs each standard node in an onnxruntime session of its own, written with onnx's newest IR
version (14 for onnx 1.23), newer than onnxruntime 1.31 reads; those models are written with
`IR_VERSION` here instead, which changes nothing else.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import numpy as np
import onnx
import qonnx.core.onnx_exec as qonnx_exec
import torch
from brevitas.export import export_qonnx
from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import Int8ActPerTensorFloat
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.cleanup import cleanup_model
from torch import nn

from support.onnx_models import IR_VERSION

INPUTS = 16
EXPORTERS = ("torchscript", "dynamo")


class MLP(nn.Module):
    """input quantizer -> fc0 (8-bit output quantizer) -> ReLU4 -> fc1 + BatchNorm -> ReLU4 -> out (float)."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.fc0 = QuantLinear(INPUTS, 12, bias=True, weight_bit_width=4, output_quant=Int8ActPerTensorFloat,
                               return_quant_tensor=True)
        self.act0 = QuantReLU(bit_width=4, return_quant_tensor=True)
        self.fc1 = QuantLinear(12, 12, bias=True, weight_bit_width=4, return_quant_tensor=False)
        self.bn1 = nn.BatchNorm1d(12)
        self.act1 = QuantReLU(bit_width=4, return_quant_tensor=True)
        self.out = QuantLinear(12, 5, bias=False, weight_bit_width=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.act1(self.bn1(self.fc1(self.act0(self.fc0(self.inp(x)))))))


def mlp(exporter: str, seed: int = 0) -> onnx.ModelProto:
    """The MLP with seeded weights, BatchNorm statistics and activation scales (a few training-mode
    passes calibrate them), exported by `exporter` ("torchscript" or "dynamo")."""
    torch.manual_seed(seed)
    module = MLP()
    module.bn1.running_mean.uniform_(-0.5, 0.5)
    module.bn1.running_var.uniform_(0.5, 2.0)
    module.train()
    with torch.no_grad():
        for _ in range(3):
            module(torch.randn(32, INPUTS))
    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return export_qonnx(module, torch.randn(1, INPUTS), dynamo=exporter == "dynamo")


@contextmanager
def readable_node_models() -> Iterator[None]:
    """qonnx's per-node models written with an IR version onnxruntime reads."""
    make = qonnx_exec.qonnx_make_model
    with mock.patch.object(qonnx_exec, "qonnx_make_model", lambda graph, **kw: make(graph, ir_version=IR_VERSION, **kw)):
        yield


def qonnx_run(model: onnx.ModelProto, frames: np.ndarray) -> tuple[Any, list[dict[str, np.ndarray]]]:
    """The cleaned-up model (a qonnx ModelWrapper, whose tensor names cleanup renames) and, for
    each of `frames` (N, ...) of its one input, every tensor qonnx computes."""
    cleaned = cleanup_model(ModelWrapper(model))
    name = cleaned.graph.input[0].name
    with readable_node_models(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cleaned, [qonnx_exec.execute_onnx(cleaned, {name: frames[i:i + 1]}, return_full_exec_context=True)
                         for i in range(len(frames))]
