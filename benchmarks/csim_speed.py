"""C-simulation speed: the generated HLS C++ (compiled with g++) per frame against onnxruntime.

For each bundled example model: compile onto Ultra96-V2 into build/bench/<name>, build the
C-simulation library once (the one-off g++ time is printed separately; it is measured cold, in a
fresh temporary cache, so the figure is the same on every run), then time `project.csim` on a batch
of FRAMES frames (best of REPEATS runs) against onnxruntime on the same model, one frame per call
(CPU provider, single thread, default graph optimizations = ORT_ENABLE_ALL, i.e. the fast path a
user gets; the QONNX model runs as its standard-ONNX expansion). Target: csim <= 20x onnxruntime
per frame. The csim outputs are also compared with the golden model on the same frames.

The layer-sequential engine (architecture "sequential") is timed the same way on ResNet-8 and on
the CoDeNet-like detector (examples/codenet, compiled for the Ultra96-V2 as the engine "auto"
picks there; fewer frames, its C simulation takes about a second a frame).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.examples import build_models_module  # noqa: E402
from support.timing import best_of  # noqa: E402

from hwcodesign.codegen.csim import build_library  # noqa: E402
from hwcodesign.flows.compile import compile_model  # noqa: E402
from hwcodesign.reference import Reference, onnxruntime  # noqa: E402
from hwcodesign.sim.golden import quantize_input, run_golden  # noqa: E402

BOARD = "ultra96v2"
FRAMES = 64
REPEATS = 3
TARGET_RATIO = 20.0
MODELS_DIR = ROOT / "build" / "examples"
BENCH_DIR = ROOT / "build" / "bench"


def example_models() -> dict[str, Path]:
    """The three example models in build/examples (built there first if missing)."""
    bm = build_models_module()
    builders = {
        ("resnet8 QDQ w8a8", bm.RESNET_FILES[8]): lambda: bm.build_resnet_qdq(MODELS_DIR, weight_bits=8),
        ("resnet8 QDQ w4a8", bm.RESNET_FILES[4]): lambda: bm.build_resnet_qdq(MODELS_DIR, weight_bits=4),
        ("cnv QONNX w4a4", bm.CNV_FILE): lambda: bm.build_qonnx_cnn(MODELS_DIR),
    }
    models = {}
    for (name, file), build in builders.items():
        path = MODELS_DIR / file
        if not path.is_file():
            print(f"building {path.relative_to(ROOT)}")
            path = build()
        models[name] = path
    return models


def codenet_model() -> Path:
    """The CoDeNet-like example's QDQ model (built by examples/codenet/build.py if missing)."""
    path = MODELS_DIR / "codenet" / "codenet_w4a8.onnx"
    if not path.is_file():
        from support.examples import load_script

        build = load_script(ROOT / "examples" / "codenet" / "build.py", "codenet_build")
        path = build.build_codenet(path.parent)["w4a8"]
    return path


def bench_model(name: str, path: Path, reference: onnx.ModelProto, rng: np.random.Generator,
                architecture: str = "auto", frames_count: int = FRAMES, repeats: int = REPEATS) -> dict:
    out_dir = BENCH_DIR / f"{path.stem}_{architecture}"
    start = time.perf_counter()
    result = compile_model(path, BOARD, out_dir, architecture=architecture)
    compile_seconds = time.perf_counter() - start
    project, graph = result.project, result.graph

    start = time.perf_counter()
    build_library(project)
    build_seconds = time.perf_counter() - start

    shape = graph.inputs[0].output.shape
    x = rng.uniform(0, 1, (frames_count, *shape[1:])).astype(np.float32)
    xq = quantize_input(graph, x)
    project.csim(xq[:1])  # load the library once before timing
    outputs: dict = {}

    def run_csim() -> None:
        outputs.update(project.csim(xq))

    csim = best_of(run_csim, repeats) / frames_count

    frames = [x[i : i + 1] for i in range(frames_count)]

    def ort_time(optimized: bool) -> float:
        # optimized: the default level (ORT_ENABLE_ALL), the fast path users get (QDQ int8 patterns become
        # fused QLinearConv/QGemm kernels); not: the model as written (DQ -> float op -> Q), the reference
        session = Reference(reference, optimized=optimized)
        session.first(frames[0])  # warm-up

        def run_ort() -> None:
            for frame in frames:
                session.first(frame)

        return best_of(run_ort, repeats) / frames_count

    runtime, as_written = ort_time(True), ort_time(False)

    golden = run_golden(graph, xq)
    exact = total = 0
    for tensor, expected in golden.items():
        got = outputs[tensor].reshape(expected.shape)
        same = (got == expected).reshape(frames_count, -1).all(axis=1)
        exact += int(same.sum())
        total += same.size
    return {"name": name, "frames": frames_count, "compile": compile_seconds, "build": build_seconds, "csim": csim, "ort": runtime, "ort_as_written": as_written,
            "exact": exact, "total": total}


def main() -> None:
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    bm = build_models_module()
    models = example_models()
    rng = np.random.default_rng(0)
    rows = []
    previous_cache = os.environ.get("HWCODESIGN_CACHE")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["HWCODESIGN_CACHE"] = cache  # cold g++ build every run, nothing left behind
        try:
            for name, path in models.items():
                model = onnx.load(path)
                reference = bm.expand_qonnx_quant(model) if "QONNX" in name else model
                rows.append(bench_model(name, path, reference, rng))
            resnet = models["resnet8 QDQ w8a8"]
            rows.append(bench_model("resnet8 engine", resnet, onnx.load(resnet), rng, "sequential"))
            codenet = codenet_model()
            rows.append(bench_model("codenet engine", codenet, onnx.load(codenet), rng, "sequential", 4, 1))
        finally:
            if previous_cache is None:
                os.environ.pop("HWCODESIGN_CACHE", None)
            else:
                os.environ["HWCODESIGN_CACHE"] = previous_cache

    print(f"C simulation vs onnxruntime on {BOARD}: {FRAMES} random frames (the CoDeNet engine 4), best of "
          f"{REPEATS} runs (CoDeNet 1); csim is one batch call of all frames (g++ -O3), onnxruntime is "
          f"{onnxruntime().__version__} CPU, 1 thread, one frame per run() call, graph optimizations at the default "
          f"level (ORT_ENABLE_ALL)")
    header = (f"{'model':<18} {'csim ms/frame':>13} {'onnxruntime ms/frame':>20} {'ratio':>8} {'target':>8}  "
              f"{'':4} {'ort as written':>14} {'ratio':>7} {'golden bit-exact':>16} {'g++ build s':>11} {'compile s':>9}")
    print(header)
    print("-" * len(header))
    failures = []
    for row in rows:
        ratio = row["csim"] / row["ort"]
        ok = ratio <= TARGET_RATIO
        mark = "PASS" if ok else "FAIL"
        print(f"{row['name']:<18} {row['csim'] * 1e3:13.3f} {row['ort'] * 1e3:20.3f} {ratio:7.1f}x "
              f"{'<= ' + format(TARGET_RATIO, 'g') + 'x':>8}  {mark:4} {row['ort_as_written'] * 1e3:14.3f} "
              f"{row['csim'] / row['ort_as_written']:6.1f}x {row['exact']:>9}/{row['total']:<6} "
              f"{row['build']:11.1f} {row['compile']:9.2f}")
        if row["exact"] != row["total"]:
            failures.append(f"{row['name']}: csim differs from the golden model on "
                            f"{row['total'] - row['exact']} of {row['total']} frames")
    print(f"one-off g++ build of the csim library (cold cache): total {sum(r['build'] for r in rows):.1f} s")
    print("'ort as written': graph optimizations off (DQ -> float op -> Q, no fused int8 kernels), the "
          "reference semantics of the golden-model tests")
    if failures:
        raise SystemExit("\n".join(failures))


if __name__ == "__main__":
    main()
