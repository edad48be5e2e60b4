"""Compile time on ResNet-18-sized models, per stage and in total (target < 30 s each).

The models are built by hand in torch (ResNet-18 topology without torchvision: 7x7/2 stem, 3x3/2
max pool, BasicBlock x [2, 2, 2, 2], global average pool, 1000-class fully connected layer;
224x224x3 input; random weights and BatchNorm statistics from a fixed seed, eval mode), exported
to ONNX (opset 21, TorchScript exporter) and QDQ-quantized by onnxruntime's `quantize_static`
(per-channel weights, uint8 activations, MinMax on a few random samples). They are built once
into build/bench/ and reused.

(a) Full compile (`compile_model`) onto ZCU102. Full-width ResNet-18 has 11.7 M weights (94 Mbit
    at 8 bits, 47 Mbit at 4 bits) and ZCU102 has 32 Mbit of BRAM (no URAM); the mapper keeps
    weights on chip, so no supported board holds it. Measured instead: the same topology with
    half the channel widths (32-64-128-256) and 4-bit weights; narrower variants are tried in
    turn if that does not fit either.
(b) Full-width ResNet-18 (8-bit weights) through import+optimize, a pinned mapping
    (`fixed_mapping`, every layer PE=1 SIMD=1, resources not checked), the latency simulator and
    `emit_project`: the code generator writing all 11.7 M weights. The generated C++ is not
    compiled (g++ on it would take far longer than the flow itself).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from hwcodesign.backends import emit_project, simulate  # noqa: E402
from hwcodesign.boards import load_board  # noqa: E402
from hwcodesign.flows.compile import compile_model  # noqa: E402
from hwcodesign.mapper.ilp import fixed_mapping  # noqa: E402
from hwcodesign.mapper.table import MappingInfeasible  # noqa: E402
from hwcodesign.passes import load_onnx, optimize  # noqa: E402
from hwcodesign.quantize import quantize_qdq  # noqa: E402

BOARD = "zcu102"
TARGET_SECONDS = 30.0
BENCH_DIR = ROOT / "build" / "bench"
FULL_WIDTHS = (64, 128, 256, 512)
CALIBRATION_SAMPLES = 4
SEED = 0


def make_resnet18(widths: tuple[int, int, int, int], num_classes: int = 1000):
    """ResNet-18 topology in plain torch (BasicBlock x [2, 2, 2, 2]); eval mode, seeded weights."""
    import torch
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self, c_in: int, c_out: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.downsample = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, 0, bias=False), nn.BatchNorm2d(c_out))
                               if stride != 1 or c_in != c_out else nn.Identity())

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + self.downsample(x))

    class ResNet18(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 7, 2, 3, bias=False), nn.BatchNorm2d(widths[0]),
                                      nn.ReLU(), nn.MaxPool2d(3, 2, 1))
            blocks, c_in = [], widths[0]
            for stage, width in enumerate(widths):
                for block in range(2):
                    blocks.append(BasicBlock(c_in, width, 2 if block == 0 and stage > 0 else 1))
                    c_in = width
            self.layers = nn.Sequential(*blocks)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.flatten = nn.Flatten()
            self.fc = nn.Linear(widths[-1], num_classes)

        def forward(self, x):
            return self.fc(self.flatten(self.pool(self.layers(self.stem(x)))))

    torch.manual_seed(SEED)
    model = ResNet18()
    generator = torch.Generator().manual_seed(SEED + 1)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):  # non-trivial BN so that folding matters
            c = module.num_features
            module.weight.data = torch.rand(c, generator=generator) + 0.5
            module.bias.data = 0.2 * torch.randn(c, generator=generator)
            module.running_mean = 0.1 * torch.randn(c, generator=generator)
            module.running_var = torch.rand(c, generator=generator) + 0.5
    return model.eval()


def build_resnet18(widths: tuple[int, int, int, int], weight_bits: int) -> tuple[Path, int]:
    """The QDQ ONNX file for these widths and weight bits (built once); returns (path, torch parameters)."""
    import torch

    model = make_resnet18(widths)
    parameters = sum(p.numel() for p in model.parameters())
    path = BENCH_DIR / f"resnet18_{'-'.join(map(str, widths))}_w{weight_bits}a8.onnx"
    if path.is_file():
        return path, parameters
    print(f"building {path.relative_to(ROOT)} (torch -> ONNX opset 21 -> quantize_static QDQ) ...", flush=True)
    start = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        float_path = Path(tmp) / "float.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.zeros(1, 3, 224, 224),), str(float_path), dynamo=False,
                              opset_version=21, do_constant_folding=True, input_names=["input"],
                              output_names=["logits"])
        float_model = onnx.shape_inference.infer_shapes(onnx.load(float_path))
        rng = np.random.default_rng(SEED)
        samples = [rng.uniform(0, 1, (1, 3, 224, 224)).astype(np.float32) for _ in range(CALIBRATION_SAMPLES)]
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # quantize_static's "consider pre-processing" warnings
        try:
            quantized = quantize_qdq(float_model, samples, per_channel=True, weight_bits=weight_bits)
        finally:
            root.setLevel(level)
        partial = Path(tmp) / path.name
        onnx.save(quantized, partial)
        os.replace(partial, path)  # never leave a half-written model behind
    print(f"  built in {time.perf_counter() - start:.1f} s", flush=True)
    return path, parameters


def graph_weights(graph) -> str:
    """'N M weights (k-bit)' over the imported graph's weighted layers."""
    ops = [op for op in graph if isinstance(getattr(op, "weight", None), np.ndarray)]
    bits = sorted({op.weight_type.bits for op in ops})
    return f"{sum(int(op.weight.size) for op in ops) / 1e6:.2f} M weights ({'/'.join(map(str, bits))}-bit)"


class StageTimer:
    """Wall-clock seconds per named stage; `step` matches compile_model's `step` argument."""

    STAGES = {"importing": "import+optimize", "mapping": "mapping ILP", "simulating": "simulate",
              "generating": "codegen/emit"}

    def __init__(self, **renames: str) -> None:
        self.seconds: dict[str, float] = {}
        self.stages = {k: renames.get(k, v) for k, v in self.STAGES.items()}

    @contextmanager
    def step(self, message: str) -> Iterator[None]:
        label = next((v for k, v in self.stages.items() if message.startswith(k)), message)
        start = time.perf_counter()
        yield
        self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - start


def print_stages(title: str, timer: StageTimer, total: float) -> None:
    print(title)
    for label, seconds in timer.seconds.items():
        print(f"  {label:<16} {seconds:8.2f} s")
    other = total - sum(timer.seconds.values())
    if other > 0.005:
        print(f"  {'other (report)':<16} {other:8.2f} s")
    ratio = total / TARGET_SECONDS
    print(f"  {'total':<16} {total:8.2f} s   target < {TARGET_SECONDS:g} s, ratio = measured / {TARGET_SECONDS:g} s "
          f"= {ratio:.2f}  {'PASS' if total < TARGET_SECONDS else 'FAIL'}")


def full_compile() -> None:
    print(f"(a) full compile_model onto {BOARD}. Full-width ResNet-18 (11.7 M weights) does not fit any "
          f"supported board's on-chip memory (the mapper keeps all weights on chip; ZCU102 has 32 Mbit of BRAM), "
          f"so the same topology is compiled with narrower channels and 4-bit weights.")
    for divisor in (2, 4, 8):
        widths = tuple(w // divisor for w in FULL_WIDTHS)
        path, parameters = build_resnet18(widths, weight_bits=4)
        timer = StageTimer()
        start = time.perf_counter()
        try:
            result = compile_model(path, BOARD, BENCH_DIR / path.stem, step=timer.step)
        except MappingInfeasible as error:
            print(f"  widths {'-'.join(map(str, widths))}, 4-bit weights: does not fit {BOARD} "
                  f"(tried in {time.perf_counter() - start:.1f} s): {error}")
            continue
        total = time.perf_counter() - start
        mapping = result.mapping
        print_stages(f"  ResNet-18 topology, 224x224, widths {'-'.join(map(str, widths))}, 4-bit weights, "
                     f"8-bit activations: {parameters / 1e6:.2f} M parameters in torch, "
                     f"{graph_weights(result.graph)} after import; "
                     f"{len(result.graph)} layers; BRAM18k {mapping.total('bram18k')}/{mapping.limits['bram18k']}, "
                     f"DSP {mapping.total('dsp')}/{mapping.limits['dsp']}, {mapping.fps:.1f} fps", timer, total)
        return
    print("  no width tried fits; nothing compiled")


def full_width_codegen() -> None:
    path, parameters = build_resnet18(FULL_WIDTHS, weight_bits=8)
    board = load_board(BOARD)
    timer = StageTimer(mapping="pinned mapping")
    start = time.perf_counter()
    with timer.step("importing"):
        graph = optimize(load_onnx(path))
    with timer.step("mapping"):
        mapping = fixed_mapping(graph, board, {})
    with timer.step("simulating"):
        latency = simulate(graph, mapping)
    with timer.step("generating"):
        project = emit_project(graph, mapping, BENCH_DIR / path.stem, name=path.stem, fifo_rows=latency.fifo_rows,
                               model_label=path.name)
    total = time.perf_counter() - start
    written = sum(f.stat().st_size for f in project.root.rglob("*") if f.is_file())
    print_stages(f"(b) full-width ResNet-18 (widths 64-128-256-512, 8-bit weights, {parameters / 1e6:.2f} M parameters "
                 f"in torch, {graph_weights(graph)} after import, {len(graph)} layers) through "
                 f"import+optimize, fixed_mapping (PE=1 SIMD=1, no resource check), simulate and emit_project "
                 f"({written / 1e6:.1f} MB written; C++ not compiled):", timer, total)


def main() -> None:
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    full_compile()
    full_width_codegen()


if __name__ == "__main__":
    main()
