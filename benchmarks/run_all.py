"""`make bench`: speed and agreement figures printed as ratios, never asserted by unit tests.

Foundation figures: frontend import time, golden-model time per frame against onnxruntime on the
same model (the golden model is a reference, not a fast path; the ratio shows what a 200-input
check costs), and golden-vs-onnxruntime agreement on the example models.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.examples import build_models_module  # noqa: E402

from hwcodesign.passes import load_onnx, optimize  # noqa: E402
from hwcodesign.reference import Reference  # noqa: E402
from hwcodesign.sim import quantize_input, run_golden  # noqa: E402

FRAMES = 50


def timed(function, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        function()
    return (time.perf_counter() - start) / repeat


def bench_model(name: str, path: Path, reference: onnx.ModelProto) -> None:
    import_seconds = timed(lambda: optimize(load_onnx(path)), 3)
    graph = optimize(load_onnx(path))
    session = Reference(reference)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, graph.inputs[0].output.shape).astype(np.float32)
    xq = quantize_input(graph, x)
    golden = timed(lambda: run_golden(graph, xq), FRAMES)
    runtime = timed(lambda: session.first(x), FRAMES)
    out = graph.output_tensors()[0]
    diffs = []
    for _ in range(100):
        x = rng.uniform(0, 1, out.shape[:1] + graph.inputs[0].output.shape[1:]).astype(np.float32)
        expected = out.quantize(session.first(x).reshape(out.shape))
        diffs.append(np.abs(run_golden(graph, quantize_input(graph, x))[out.name] - expected).ravel())
    diffs = np.concatenate(diffs)
    print(f"{name:<22} import {import_seconds * 1e3:7.1f} ms | golden {golden * 1e3:7.2f} ms/frame | "
          f"onnxruntime {runtime * 1e3:6.2f} ms/frame | golden/ort {golden / runtime:6.1f}x | "
          f"max diff {diffs.max()} LSB, exact {100 * (diffs == 0).mean():.2f}%")


def main() -> None:
    bm = build_models_module()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        models = {
            "resnet8 QDQ w8a8": bm.build_resnet_qdq(out, weight_bits=8),
            "resnet8 QDQ w4a8": bm.build_resnet_qdq(out, weight_bits=4),
            "cnv QONNX w4a4": bm.build_qonnx_cnn(out),
        }
        for name, path in models.items():
            model = onnx.load(path)
            reference = bm.expand_qonnx_quant(model) if "QONNX" in name else model
            bench_model(name, path, reference)


if __name__ == "__main__":
    main()
