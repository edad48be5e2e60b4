"""Whole models as torch exports them, with float parts around a quantized core.

Each is a small torch module exported with the TorchScript exporter (`dynamo=False`, opset 17)
and quantized by onnxruntime's `quantize_static` (through `quantize_qdq`), the float parts kept
float as a user does (`nodes_to_exclude`) or left to the quantizer's defaults:

* `normalised_softmax`: (x - mean) / std -> CNN -> Linear -> Softmax (quantize_static defaults:
  the Softmax gets its own Q/DQ; the Sub/Div stay float);
* `gru_head`: CNN -> global pool -> GRU step (hidden state as an input and an output, as ESDA's
  tracker carries it across frames) -> Linear, the GRU and the linear layer left float;
* `bipolar_input`: Brevitas's 2x - 1 input scaling, then a CNN;
* `float_classifier`: a quantized CNN whose final Linear is left unquantized.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx

from hwcodesign.quantize import quantize_qdq, quiet

HEIGHT = WIDTH = 12
CHANNELS = 3
HIDDEN = 16
CLASSES = 5


@dataclass(frozen=True)
class HostModel:
    """A float model as exported, its QDQ model, and frames of its own inputs."""

    name: str
    float_model: onnx.ModelProto
    model: onnx.ModelProto
    frames: dict[str, np.ndarray]  # the model's non-state inputs, (N, ...) float32


def export(module: object, example: tuple, input_names: list[str], output_names: list[str]) -> onnx.ModelProto:
    import torch

    buffer = io.BytesIO()
    with quiet():
        torch.onnx.export(module, example, buffer, dynamo=False, opset_version=17, input_names=input_names,
                          output_names=output_names)
    return onnx.load_from_string(buffer.getvalue())


def backbone(torch: object, channels: int = CHANNELS) -> object:
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, stride=2),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def images(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((count, CHANNELS, HEIGHT, WIDTH), dtype=np.float32)


def normalised_softmax(seed: int = 0, frames: int = 4) -> HostModel:
    import torch

    torch.manual_seed(seed)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features, self.fc = backbone(torch), torch.nn.Linear(8, CLASSES)
            self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.fc(self.features((x - self.mean) / self.std)), dim=1)

    float_model = export(Net().eval(), (torch.rand(1, CHANNELS, HEIGHT, WIDTH),), ["image"], ["probabilities"])
    model = quantize_qdq(float_model, images(16, seed + 1))
    return HostModel("normalised_softmax", float_model, model, {"image": images(frames, seed + 2)})


def gru_head(seed: int = 0, frames: int = 5) -> HostModel:
    import torch

    torch.manual_seed(seed)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = backbone(torch)
            self.gru, self.fc = torch.nn.GRU(8, HIDDEN, batch_first=True), torch.nn.Linear(HIDDEN, 2)

        def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            y, h_next = self.gru(self.features(x).unsqueeze(1), h)
            return self.fc(y[:, -1]), h_next

    example = (torch.rand(1, CHANNELS, HEIGHT, WIDTH), torch.zeros(1, 1, HIDDEN))
    float_model = export(Net().eval(), example, ["frame", "hidden"], ["centre", "hidden_next"])
    host = [n.name for n in float_model.graph.node if n.op_type in ("GRU",) or "fc" in n.name]
    calibration = [{"frame": frame[None], "hidden": np.zeros((1, 1, HIDDEN), np.float32)} for frame in images(16, seed + 1)]
    model = quantize_qdq(float_model, calibration, nodes_to_exclude=host)
    return HostModel("gru_head", float_model, model, {"frame": images(frames, seed + 2)})


def bipolar_input(seed: int = 0, frames: int = 4) -> HostModel:
    import torch

    torch.manual_seed(seed)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features, self.fc = backbone(torch), torch.nn.Linear(8, CLASSES)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.features(2.0 * x - 1.0))

    float_model = export(Net().eval(), (torch.rand(1, CHANNELS, HEIGHT, WIDTH),), ["image"], ["logits"])
    scaling = [n.name for n in float_model.graph.node if n.op_type in ("Mul", "Sub")]
    model = quantize_qdq(float_model, images(16, seed + 1), nodes_to_exclude=scaling)
    return HostModel("bipolar_input", float_model, model, {"image": images(frames, seed + 2)})


def float_classifier(seed: int = 0, frames: int = 4) -> HostModel:
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(backbone(torch), torch.nn.Linear(8, CLASSES)).eval()
    float_model = export(net, (torch.rand(1, CHANNELS, HEIGHT, WIDTH),), ["image"], ["logits"])
    final = [n.name for n in float_model.graph.node if n.op_type == "Gemm"]
    model = quantize_qdq(float_model, images(16, seed + 1), nodes_to_exclude=final)
    return HostModel("float_classifier", float_model, model, {"image": images(frames, seed + 2)})


BUILDERS: dict[str, Callable[..., HostModel]] = {
    "normalised_softmax": normalised_softmax,
    "gru_head": gru_head,
    "bipolar_input": bipolar_input,
    "float_classifier": float_classifier,
}
