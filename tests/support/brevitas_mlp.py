"""A small TFC-style Brevitas MLP, exported with either of Brevitas's exporters: TorchScript
(scales as Constant nodes, a bias-free layer as Transpose + MatMul) or dynamo (scales as
initializers, every layer a Gemm). An 8-bit input quantizer, quantized linear layers with 4-bit
ReLUs and a BatchNorm, and a last layer with quantized weights but a float output, which the host
runs. Brevitas 0.13.4's exporter refuses to run without onnxoptimizer importable, even on its
dynamo path, which never calls it (hence the `test` extra pins it)."""

from __future__ import annotations

import warnings

import onnx
import torch
from brevitas.export import export_qonnx
from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import Int8ActPerTensorFloat
from torch import nn

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
