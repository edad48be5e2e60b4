"""FINN's networks as a FINN user gets them: `brevitas_examples.bnn_pynq`'s CNV, TFC, SFC and LFC
at the bit widths its cfg files name, exported by Brevitas's own exporters, and run by qonnx's
executor as the reference the compiler must agree with.

Why random weights: the pretrained checkpoints are downloads (`model_with_cfg(name, True)` calls
`torch.hub`), which this project cannot fetch; the networks are built from the same cfg files
with `pretrained=False`. What makes a binarised network hard to compile is not its accuracy
but its constants, so the weights are seeded and the BatchNorm layers get per-channel statistics
gathered on the inputs a user feeds plus random affine terms, some of them negative: every
channel has its own threshold, and some thresholds compare downwards (a negative gamma), as
trained networks have. The final TensorNorm gets statistics of the logits it normalises.

The exporters, as a user calls them with their defaults (`EXPORTERS`):
- `qonnx`: `brevitas.export.export_qonnx`; on torch >= 2.9 Brevitas 0.13 defaults to the dynamo
  exporter (`Gemm`, constants folded and deduplicated, opset 20 + `qonnx.custom_op.general`);
- `qcdq`: `brevitas.export.export_onnx_qcdq`, dynamo likewise (QuantizeLinear -> Clip ->
  DequantizeLinear, opset 18);
- `qonnx-torchscript`, `qcdq-torchscript`: the same with `dynamo=False`, what FINN's own flows
  (pinned to older torch) write: `Transpose` + `MatMul` for a Linear, `Pow` left in TensorNorm,
  QCDQ weights stored as int8 constants (opset 13).
QCDQ cannot write a 1-bit quantizer: Brevitas asserts 'Binary quant not supported' for every
binary weight or activation, so `qcdq` of W1A1 and W1A2 raises `ExportRefused`
(`EXPORT_REFUSALS`).

Brevitas's ONNX managers import `onnxoptimizer` (its `export` extra) and refuse to export
without it, even on the dynamo path that never calls it; the `test` extra installs it.

The exported graphs have batch 1 (FINN's convention, and the dynamo export bakes `Reshape(1,
-1)` in), so `run_reference` runs qonnx's `execute_onnx` one sample at a time, after
`qonnx.util.cleanup.cleanup_model` as FINN's flow does.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from support.onnx_models import IR_VERSION

if TYPE_CHECKING:
    import torch

NETWORKS = ("cnv", "tfc", "sfc", "lfc")
PRECISIONS = ("w1a1", "w1a2", "w2a2")
EXPORTERS = ("qonnx", "qcdq", "qonnx-torchscript", "qcdq-torchscript")
INPUT_SHAPES = {"cnv": (3, 32, 32), "tfc": (1, 28, 28), "sfc": (1, 28, 28), "lfc": (1, 28, 28)}
"""One sample as exported (batch 1 in front): CIFAR-10 images for CNV, MNIST digits for the MLPs,
which flatten the 1x28x28 image themselves (`x.view(N, -1)` is the graph's first node)."""
EXPORT_REFUSALS = {"qcdq": "Binary quant not supported", "qcdq-torchscript": "Binary quant not supported"}
"""What each exporter raises for a network with a 1-bit quantizer (W1A1, W1A2): Brevitas's QCDQ
handlers assert a bit width above 1 (`brevitas/export/onnx/standard/qcdq/handler.py`)."""
NEGATIVE_GAMMA_SHARE = 0.2  # share of BatchNorm channels whose threshold compares downwards


@dataclass(frozen=True)
class Variant:
    """One network at one precision through one exporter."""

    network: str
    precision: str
    exporter: str

    @property
    def cfg_name(self) -> str:
        """The `bnn_pynq/cfg` file's name: `w1a2` is `cnv_1w2a`."""
        weight, act = self.precision[1], self.precision[3]
        return f"{self.network}_{weight}w{act}a"

    @property
    def file_name(self) -> str:
        return f"{self.network}_{self.precision}_{self.exporter}.onnx"

    @property
    def bits(self) -> tuple[int, int]:
        """(weight bits, activation bits)."""
        return int(self.precision[1]), int(self.precision[3])

    @property
    def refused(self) -> bool:
        """Whether the exporter refuses this variant (`EXPORT_REFUSALS`): QCDQ and 1-bit."""
        return self.exporter in EXPORT_REFUSALS and min(self.bits) == 1

    def __str__(self) -> str:
        return f"{self.network} {self.precision} {self.exporter}"


class ExportRefused(RuntimeError):
    """The exporter cannot write this variant (its message is Brevitas's)."""


def has_cfg(network: str, precision: str) -> bool:
    """Whether `bnn_pynq` ships this combination: LFC has no 2w2a, no network has 2w1a."""
    from brevitas_examples.bnn_pynq import models

    path = Path(models.__file__).parent.parent / "cfg" / f"{Variant(network, precision, '').cfg_name}.ini"
    return path.exists()


def variants(networks: Iterable[str] = NETWORKS, precisions: Iterable[str] = PRECISIONS,
             exporters: Iterable[str] = EXPORTERS) -> list[Variant]:
    """Every combination `bnn_pynq` has a cfg file for, refused exports included."""
    precisions, exporters = tuple(precisions), tuple(exporters)
    return [Variant(n, p, e) for n in networks for p in precisions if has_cfg(n, p) for e in exporters]


def user_inputs(network: str, count: int, seed: int = 0) -> np.ndarray:
    """(count, *INPUT_SHAPES[network]) float32 images as a user feeds them: 8-bit pixels / 255,
    in [0, 1]. The network maps them to [-1, 1] (`2x - 1`) before its first quantizer (Q1.7 for
    CNV, 1 or 2 bits for the MLPs); k/255 never lands on a rounding tie there."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (count, *INPUT_SHAPES[network]))
    return (pixels / 255).astype(np.float32)


@functools.cache
def torch_network(network: str, precision: str, seed: int = 0) -> torch.nn.Module:
    """The Brevitas network in eval mode: seeded weights, randomised BatchNorm and TensorNorm
    (module doc). Cached per process; do not change it (export restores its mode)."""
    import torch
    from brevitas_examples.bnn_pynq.models import get_model_cfg, model_impl
    from brevitas_examples.bnn_pynq.models.tensor_norm import TensorNorm

    cfg = get_model_cfg(Variant(network, precision, "").cfg_name)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = model_impl[cfg.get("MODEL", "ARCH")](cfg)  # no download: pretrained weights are not loaded
        net.eval()
        norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        with torch.no_grad():
            for norm in norms:
                channels = norm.num_features
                sign = torch.where(torch.rand(channels) < NEGATIVE_GAMMA_SHARE, -1.0, 1.0)
                norm.weight.copy_(sign * (0.5 + torch.rand(channels)))
                norm.bias.copy_(0.5 * torch.randn(channels))
                norm.momentum = None  # cumulative average over the calibration batches
                norm.reset_running_stats()
                norm.train()
            calibration = torch.from_numpy(user_inputs(network, 64, seed + 1))
            net(calibration)
            for norm in norms:
                norm.eval()
                std = norm.running_var.sqrt()
                norm.running_mean.add_(0.25 * std * torch.randn(norm.num_features))  # thresholds off the data's mean
                norm.running_var.mul_(0.5 + torch.rand(norm.num_features))
            tensor_norm = next(m for m in net.modules() if isinstance(m, TensorNorm))
            logits: list[torch.Tensor] = []
            hook = tensor_norm.register_forward_pre_hook(lambda _m, args: logits.append(args[0]))
            net(calibration)
            hook.remove()
            tensor_norm.running_mean.fill_(float(logits[0].mean()))
            tensor_norm.running_var.fill_(float(logits[0].var()))
            tensor_norm.weight.fill_(0.5 + float(torch.rand(1)))
            tensor_norm.bias.fill_(0.5 * float(torch.randn(1)))
    return net.eval()


def run_torch(network: str, precision: str, inputs: np.ndarray, seed: int = 0) -> np.ndarray:
    """Brevitas's own forward pass (eval mode) on `inputs`: what the exported file must compute."""
    import torch

    with torch.no_grad():
        out = torch_network(network, precision, seed)(torch.from_numpy(np.ascontiguousarray(inputs)))
    return np.asarray(out.value if hasattr(out, "value") else out, dtype=np.float32)


def exporter_function(exporter: str) -> Callable[..., Any]:
    """The Brevitas export call for `exporter`, with the defaults a user gets (module doc)."""
    from brevitas.export import export_onnx_qcdq, export_qonnx

    base = export_qonnx if exporter.startswith("qonnx") else export_onnx_qcdq
    if exporter.endswith("-torchscript"):
        return functools.partial(base, dynamo=False)
    if exporter not in ("qonnx", "qcdq"):
        raise ValueError(f"unknown exporter '{exporter}': one of {', '.join(EXPORTERS)}")
    return base


@contextlib.contextmanager
def hushed() -> Any:
    """Brevitas and the dynamo exporter print progress lines, warnings and (for QCDQ) a logged
    traceback of a failed opset conversion that does not fail the export; keep test output clean."""
    from hwcodesign.quantize import quiet

    exporter_log = logging.getLogger("torch.onnx")  # has its own handler: the root's level does not reach it
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    try:
        with quiet(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        exporter_log.setLevel(level)


def export_variant(variant: Variant, directory: Path, seed: int = 0) -> Path:
    """Export `variant` to `directory/variant.file_name` and return the path (the torch network
    is cached per process; the export itself is redone: use `ExportCache` to build each once).
    Raises ExportRefused with Brevitas's message where the exporter refuses the variant."""
    import torch

    # A copy per export: a refused export leaves its handlers on the quantizers (Brevitas sets a
    # handler only where none is), so the next export of the same module would reuse QCDQ's
    # handlers and refuse a QONNX export of a binary network too.
    net = copy.deepcopy(torch_network(variant.network, variant.precision, seed))
    path = Path(directory) / variant.file_name
    example = torch.from_numpy(user_inputs(variant.network, 1, seed + 2))
    try:
        with hushed():
            exporter_function(variant.exporter)(net, example, export_path=str(path))
    except AssertionError as error:  # Brevitas's refusals are asserts
        path.unlink(missing_ok=True)
        raise ExportRefused(f"{variant}: {error}") from error
    finally:
        # the dynamo exporter writes weights beside the file; Brevitas then re-saves the model
        # whole, leaving the side file unread
        Path(f"{path}.data").unlink(missing_ok=True)
    return path


@dataclass
class ExportCache:
    """Each variant exported once into `directory`; the refusal remembered as well. What the
    `brevitas_export` fixture hands out and what a script uses to avoid re-exporting."""

    directory: Path
    seed: int = 0

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._done: dict[Variant, Path | ExportRefused] = {}
        self.seconds: dict[Variant, float] = {}

    def __call__(self, network: str, precision: str, exporter: str) -> Path:
        variant = Variant(network, precision, exporter)
        if variant not in self._done:
            start = time.perf_counter()
            try:
                self._done[variant] = export_variant(variant, self.directory, self.seed)
            except ExportRefused as refused:
                self._done[variant] = refused
            self.seconds[variant] = time.perf_counter() - start
        result = self._done[variant]
        if isinstance(result, ExportRefused):
            raise result
        return result


@contextlib.contextmanager
def runnable_node_models() -> Any:
    """qonnx runs each standard node as a one-node model it makes with onnx's `make_model`, which
    stamps onnx 1.23's IR version 14; onnxruntime < 1.32 reads at most IR 13 and refuses every
    such model. Stamp the IR version the suite's models use instead, only while qonnx runs."""
    import qonnx.core.onnx_exec as onnx_exec

    original = onnx_exec.qonnx_make_model

    def make_model(graph: onnx.GraphProto, **kwargs: object) -> onnx.ModelProto:
        model = original(graph, **kwargs)
        model.ir_version = min(model.ir_version, IR_VERSION)
        return model

    onnx_exec.qonnx_make_model = make_model
    try:
        yield
    finally:
        onnx_exec.qonnx_make_model = original


def cleaned(model: str | Path | onnx.ModelProto) -> Any:
    """The model as FINN's flow reads it: a qonnx ModelWrapper after `cleanup_model` (shapes
    inferred, constants folded but quantizers kept, Transposes folded into quantized weights)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    source = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))
    with runnable_node_models():
        return cleanup_model(ModelWrapper(source))


def run_reference(model: str | Path | onnx.ModelProto, inputs: np.ndarray) -> np.ndarray:
    """The whole model's output for each of `inputs` (N, ...) by qonnx's `execute_onnx` on the
    cleaned model, one sample at a time when the graph has batch 1, stacked to (N, ...)."""
    from qonnx.core.onnx_exec import execute_onnx

    wrapper = cleaned(model)
    graph_input = wrapper.graph.input[0].name
    output = wrapper.graph.output[0].name
    batch = wrapper.get_tensor_shape(graph_input)[0]
    step = 1 if batch == 1 else len(inputs)
    with runnable_node_models():
        outputs = [execute_onnx(wrapper, {graph_input: inputs[i:i + step]})[output]
                   for i in range(0, len(inputs), step)]
    return np.concatenate(outputs, axis=0).astype(np.float32)


def reference_tensors(model: str | Path | onnx.ModelProto, inputs: np.ndarray, names: Iterable[str]) -> dict[str, np.ndarray]:
    """Tensors inside the model by name, for each of `inputs` (N, ...) one sample at a time, stacked:
    qonnx's `execute_onnx` with its full execution context on the model with shapes inferred and
    nothing else changed (`cleanup_model` renames every tensor, so a tensor a split or a lowering
    names could not be found in it)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    source = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))
    names = list(names)
    with runnable_node_models():
        wrapper = ModelWrapper(source).transform(InferShapes())
        graph_input = wrapper.graph.input[0].name
        runs = [execute_onnx(wrapper, {graph_input: inputs[i:i + 1]}, return_full_exec_context=True)
                for i in range(len(inputs))]
    return {name: np.concatenate([run[name] for run in runs], axis=0) for name in names}
