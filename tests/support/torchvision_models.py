"""torchvision's classifiers as a user exports them: both of torch's exporters, then onnxruntime's
`quantize_static` with its defaults (QDQ, per-channel weights as `quantize_qdq` sets them).

torchvision on PyPI is built against CUDA torch; beside the CPU build its import fails registering
fake kernels for its two compiled detection ops (`torchvision::nms`, `torchvision::qnms`), which
classification never calls. `import_torchvision` declares those two op schemas first (no kernels),
so the pure-Python models import; calling either op would fail loudly.

Models get random weights with realistic BatchNorm statistics (a few forward passes in train mode
on random images, then eval), so activations have the ranges trained networks have rather than
the identity statistics torchvision initialises.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import onnx

from hwcodesign.quantize import quantize_qdq, quiet

MODELS = ("resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "shufflenet_v2_x0_5", "squeezenet1_1",
          "efficientnet_b0", "regnet_x_400mf", "googlenet", "densenet121", "vgg11")
EXPORTERS = ("dynamo", "torchscript")
SIZE = 64  # small input: every model's strides still leave a spatial map before its global pool
SIZES = {"vgg11": 224}
"""Models tested at another size: VGG-11's adaptive pool to 7x7 is a plain network only where its
map is 7x7 (224x224); at 64x64 it upsamples a 2x2 map, which TorchScript cannot export and dynamo
writes as index arithmetic (Transpose, GatherND, Where, ...)."""
CLASSES = 10
DETECTION_OPS = ("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
                 "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")


@functools.cache
def import_torchvision() -> ModuleType:
    """torchvision, importable beside CPU torch (module doc)."""
    import torch

    missing = [schema for schema in DETECTION_OPS if not has_op(torch, schema.split("(")[0])]
    if missing:
        library = torch.library.Library("torchvision", "FRAGMENT")
        for schema in missing:
            library.define(schema)
        LIBRARIES.append(library)  # a Library's definitions last as long as the object
    import torchvision

    return torchvision


LIBRARIES: list[object] = []


def has_op(torch: ModuleType, name: str) -> bool:
    try:
        getattr(torch.ops.torchvision, name)
    except (AttributeError, RuntimeError):
        return False
    return True


@dataclass(frozen=True)
class ExportedModel:
    name: str
    exporter: str
    float_model: onnx.ModelProto
    model: onnx.ModelProto  # quantized with quantize_static's defaults
    images: np.ndarray  # (N, 3, SIZE, SIZE) float32 in [0, 1)


def torch_model(name: str, seed: int = 0, size: int = SIZE) -> object:
    """The classifier with random weights and BatchNorm statistics gathered on random images."""
    import torch

    torchvision = import_torchvision()
    torch.manual_seed(seed)
    kwargs = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
    net = torchvision.models.get_model(name, num_classes=CLASSES, **kwargs)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(8, 3, size, size))
    return net.eval()


def export(net: object, exporter: str, size: int = SIZE) -> onnx.ModelProto:
    import torch

    buffer = io.BytesIO()
    with quiet():
        example = (torch.rand(1, 3, size, size),)
        if exporter == "dynamo":
            torch.onnx.export(net, example, buffer, dynamo=True, opset_version=18, input_names=["image"],
                              output_names=["logits"], verbose=False)
        else:
            torch.onnx.export(net, example, buffer, dynamo=False, opset_version=17, input_names=["image"],
                              output_names=["logits"])
    return onnx.load_from_string(buffer.getvalue())


def images(count: int, seed: int, size: int = SIZE) -> np.ndarray:
    return np.random.default_rng(seed).random((count, 3, size, size), dtype=np.float32)


@functools.cache
def exported(name: str, exporter: str, calibration: int = 8, size: int | None = None) -> ExportedModel:
    """`name` through `exporter` at `size` (default: SIZES or SIZE), quantized by quantize_static
    with its defaults (cached per process)."""
    size = size or SIZES.get(name, SIZE)
    float_model = export(torch_model(name, size=size), exporter, size)
    model = quantize_qdq(float_model, images(calibration, 1, size))
    return ExportedModel(name, exporter, float_model, model, images(4, 2, size))
