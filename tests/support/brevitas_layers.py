"""Small Brevitas networks, one construct each, exported as Brevitas's exporters write them, and
qonnx's executor as the reference for the QONNX ops onnxruntime has no kernel for (`Trunc`).

The constructs the frontend must read as Brevitas writes them:
- `conv_net`: QuantIdentity -> QuantConv2d -> QuantReLU or QuantIdentity at 2..8 bits, signed,
  unsigned or narrow-range; `export_onnx_qcdq` writes each quantizer below 8 bits (or narrow) as
  QuantizeLinear -> Clip -> DequantizeLinear, weights as int8 constants -> Clip -> DequantizeLinear
  (TorchScript) or QuantizeLinear(W) -> Clip -> DequantizeLinear (dynamo);
- `transposed_linear`: x @ W.T with a per-channel quantized W, which both exporters write as the
  weights' quantizer -> Transpose -> MatMul;
- `trunc_pool`: TruncAvgPool2d / TruncAdaptiveAvgPool2d, which `export_qonnx` writes as
  AveragePool / GlobalAveragePool -> Trunc.

Each network is seeded and its activation scales calibrated by one forward pass in training mode
on seeded inputs. Exports have batch 1. `exports(directory)` builds each (network, exporter) once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from support.brevitas_models import hushed
from support.qonnx_reference import qonnx_tensors

if TYPE_CHECKING:
    import torch

EXPORTERS = ("qcdq", "qcdq-dynamo", "qonnx", "qonnx-dynamo")


def seeded(build: Callable[[], torch.nn.Module], input_shape: tuple[int, ...], seed: int = 0) -> torch.nn.Module:
    """`build()` with seeded weights, its activation scales from one training-mode pass over seeded
    inputs, in eval mode."""
    import torch

    torch.manual_seed(seed)
    module = build()
    module.train()
    with torch.no_grad():
        module(torch.randn((8, *input_shape[1:]), generator=torch.Generator().manual_seed(seed + 1)))
    return module.eval()


def conv_net(bits: int, activation: str, weight_narrow: bool) -> Callable[[], torch.nn.Module]:
    """Input quantizer, 3x3 conv (float bias) and output quantizer, all at `bits`: `activation`
    "signed" / "narrow" (QuantIdentity, narrow range on the input and the output) or "unsigned" /
    "unsigned-narrow" (QuantReLU)."""
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantReLU

    narrow = activation in ("narrow", "unsigned-narrow")

    def build() -> torch.nn.Module:
        import torch

        output = QuantIdentity(bit_width=bits, narrow_range=narrow) if activation in ("signed", "narrow") else \
            QuantReLU(bit_width=bits, narrow_range=narrow)
        return torch.nn.Sequential(
            QuantIdentity(bit_width=bits, narrow_range=activation == "narrow", return_quant_tensor=True),
            QuantConv2d(3, 4, 3, weight_bit_width=bits, weight_narrow_range=weight_narrow), output)

    return build


def transposed_linear() -> torch.nn.Module:
    """x @ W.T, W quantized to 4 bits per output channel: the weights' quantizer, then Transpose."""
    import torch
    from brevitas.nn import QuantIdentity, QuantLinear

    class TransposedLinear(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp = QuantIdentity(bit_width=4)
            self.fc = QuantLinear(12, 5, bias=False, weight_bit_width=4, weight_scaling_per_output_channel=True)
            self.out = QuantIdentity(bit_width=8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(torch.matmul(self.inp(x), self.fc.quant_weight().transpose(0, 1)))

    return TransposedLinear()


def trunc_pool(bits: int, rounding: str, adaptive: bool, out_bits: int = 8,
               requantized: bool = False) -> Callable[[], torch.nn.Module]:
    """A `bits`-bit QuantReLU, then a 2x2 TruncAvgPool2d (or TruncAdaptiveAvgPool2d to 1x1) whose
    `out_bits` output is the graph's: Brevitas's TruncTo8bit (`rounding` "floor") or RoundTo8bit
    ("round") at that width; `requantized`: an 8-bit QuantIdentity after it (a Trunc ending the
    graph is host work for `compile`'s partition, which cuts after the last Quant)."""
    from brevitas.nn import QuantIdentity, QuantReLU, TruncAdaptiveAvgPool2d, TruncAvgPool2d
    from brevitas.quant.scaled_int import RoundTo8bit, TruncTo8bit

    quant = {"floor": TruncTo8bit, "round": RoundTo8bit}[rounding].let(bit_width=out_bits)

    def build() -> torch.nn.Module:
        import torch

        pool = TruncAdaptiveAvgPool2d((1, 1), trunc_quant=quant, return_quant_tensor=False) if adaptive else \
            TruncAvgPool2d(2, 2, trunc_quant=quant, return_quant_tensor=False)
        tail = [QuantIdentity(bit_width=8)] if requantized else []
        return torch.nn.Sequential(QuantIdentity(bit_width=8, return_quant_tensor=True),
                                   QuantReLU(bit_width=bits, return_quant_tensor=True), pool, *tail)

    return build


def export(module: torch.nn.Module, input_shape: tuple[int, ...], exporter: str, path: Path) -> onnx.ModelProto:
    """`module` exported by `exporter` (`EXPORTERS`: QCDQ or QONNX, TorchScript or dynamo) for a
    batch-1 input of `input_shape`; QCDQ through dynamo quantizes the weights by a QuantizeLinear
    node, since it cannot write integer constants."""
    import torch
    from brevitas.export import export_onnx_qcdq, export_qonnx

    example = torch.randn(input_shape, generator=torch.Generator().manual_seed(7))
    dynamo = exporter.endswith("-dynamo")
    options: dict[str, Any] = {"export_weight_q_node": True} if exporter == "qcdq-dynamo" else {}
    function = export_onnx_qcdq if exporter.startswith("qcdq") else export_qonnx
    try:
        with hushed():
            function(module, example, export_path=str(path), dynamo=dynamo, **options)
    finally:
        Path(f"{path}.data").unlink(missing_ok=True)  # dynamo's side file, which Brevitas re-saves inline
    return onnx.load(str(path))


class Exports:
    """Each (network, exporter) exported once into `directory`; a fresh copy on every call, since
    tests edit what they get."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.done: dict[str, bytes] = {}

    def __call__(self, key: str, build: Callable[[], torch.nn.Module], input_shape: tuple[int, ...],
                 exporter: str) -> onnx.ModelProto:
        name = f"{key}-{exporter}"
        if name not in self.done:
            model = export(seeded(build, input_shape), input_shape, exporter, self.directory / f"{name}.onnx")
            self.done[name] = model.SerializeToString()
        return onnx.load_from_string(self.done[name])


def run_qonnx(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """The model's first output for the batch-1 input `x` by qonnx's `execute_onnx`."""
    output = model.graph.output[0].name
    return qonnx_tensors(model, [x], [output])[output]
