"""C-simulation speed: the generated HLS C++ (compiled with g++) per frame against onnxruntime,
and what each g++ build costs.

For each bundled example model: compile onto Ultra96-V2 into build/bench/<name>, build the
C-simulation library once, cold, in a fresh temporary cache (its g++ wall time and peak memory,
as `csim.build_cost` records them), then time `project.csim` on a batch of FRAMES frames in one
process (best of REPEATS runs) against onnxruntime on the same model, one frame per call (CPU
provider, single thread; the QONNX model runs as its standard-ONNX expansion). The ratio with a
target is against onnxruntime with graph optimizations off (the model as written, DQ -> float op
-> Q: the reference semantics): csim <= 20x per frame on the pipeline models, <= 50x on the
engine models (issue 24), in one process. Beside it: the frames split over every core
(`Project.csim(workers=...)`, as `hwcodesign csim` runs them), against the same one-thread
onnxruntime, so not like for like. The ratio against onnxruntime's default optimizations (fused int8
kernels, the fast path a user gets) is printed beside it. The csim outputs are also compared with
the golden model on the same frames.

The layer-sequential engine (architecture "sequential") is timed the same way on ResNet-8 and on
the CoDeNet-like detector (examples/codenet, compiled for the Ultra96-V2 as the engine "auto"
picks there; fewer frames, its C simulation takes about a second a frame). torchvision's
SqueezeNet 1.1 at 224x224 on the ZCU104's pipeline is the largest pipeline project (its g++ build
took 72 s and 9.4 GB of memory when tables were compiled as ap_int initializers).
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

from hwcodesign.codegen.csim import build_cost, build_library  # noqa: E402
from hwcodesign.flows.compile import compile_model  # noqa: E402
from hwcodesign.flows.whole_model import csim_accelerator, golden_differences  # noqa: E402
from hwcodesign.reference import Reference, onnxruntime  # noqa: E402

BOARD = "ultra96v2"
FRAMES = 64
REPEATS = 3
TARGET_RATIO = {"dataflow": 20.0, "sequential": 50.0}  # against onnxruntime with optimizations off
CORES = os.cpu_count() or 1
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


def squeezenet_model() -> Path:
    """torchvision's SqueezeNet 1.1 at 224x224, TorchScript export, quantize_static defaults (as
    dpu_targets.py exports it), saved once in build/bench."""
    path = BENCH_DIR / "squeezenet1_1_224.onnx"
    if not path.is_file():
        from support.torchvision_models import exported

        onnx.save(exported("squeezenet1_1", "torchscript", size=224).model, path)
    return path


def bench_model(name: str, path: Path, reference: onnx.ModelProto, rng: np.random.Generator,
                architecture: str = "auto", frames_count: int = FRAMES, repeats: int = REPEATS,
                board: str = BOARD) -> dict:
    out_dir = BENCH_DIR / f"{path.stem}_{architecture}_{board}"
    start = time.perf_counter()
    result = compile_model(path, board, out_dir, architecture=architecture)
    compile_seconds = time.perf_counter() - start
    project, graph = result.project, result.graph

    build_library(project)
    cost = build_cost(project)
    assert cost is not None, "a cold cache: this call built the library"

    # the model's own input layout: a project whose first-layer window is packed into channels
    # (`pack-input-window`) takes frames as the model does and packs them itself, as the driver does
    shape = tuple(d.dim_value for d in reference.graph.input[0].type.tensor_type.shape.dim)
    x = rng.uniform(0, 1, (frames_count, *shape[1:])).astype(np.float32)
    xq = graph.inputs[0].output.quantize(x)
    packed = csim_accelerator(project).from_frames(graph.inputs[0].output.name, xq)  # im2col'd if packed
    project.csim(packed[:1])  # load the library once before timing
    outputs: dict = {}

    def run_csim() -> None:
        outputs.update(project.csim(packed))

    csim = best_of(run_csim, repeats) / frames_count
    # the frames split over every core, as `hwcodesign csim` and `evaluate --project` run them
    spread = best_of(lambda: project.csim(packed, workers=CORES), repeats) / frames_count

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

    differing, total = golden_differences(graph, {graph.inputs[0].output.name: xq}, outputs)
    exact = total - differing
    return {"name": name, "architecture": project.architecture, "frames": frames_count, "compile": compile_seconds,
            "build": cost.seconds, "peak_mb": cost.peak_bytes / 2**20, "csim": csim, "spread": spread, "ort": runtime,
            "ort_as_written": as_written, "exact": exact, "total": total}


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
            squeezenet = squeezenet_model()
            rows.append(bench_model("squeezenet 224", squeezenet, onnx.load(squeezenet), rng, "dataflow", 4, 1,
                                    board="zcu104"))
        finally:
            if previous_cache is None:
                os.environ.pop("HWCODESIGN_CACHE", None)
            else:
                os.environ["HWCODESIGN_CACHE"] = previous_cache

    print(f"C simulation vs onnxruntime: {FRAMES} random frames (CoDeNet and SqueezeNet 4), best of {REPEATS} runs "
          f"(CoDeNet and SqueezeNet 1); csim is one batch call of all frames in one process (g++ -O3), onnxruntime "
          f"is {onnxruntime().__version__} CPU, 1 thread, one frame per run() call")
    header = (f"{'model':<16} {'design':<10} {'csim ms':>9} {'ort off ms':>10} {'ratio':>7} {'target':>7}  {'':4} "
              f"{f'{CORES} cores ms':>12} {'ratio':>7} "
              f"{'ort ms':>8} {'ratio':>7} {'elements unlike golden':>22} {'g++ s':>6} {'g++ MB':>7} {'compile s':>9}")
    print(header)
    print("-" * len(header))
    failures = []
    for row in rows:
        target = TARGET_RATIO[row["architecture"]]
        ratio = row["csim"] / row["ort_as_written"]
        mark = "PASS" if ratio <= target else "FAIL"
        print(f"{row['name']:<16} {row['architecture']:<10} {row['csim'] * 1e3:9.2f} {row['ort_as_written'] * 1e3:10.2f} "
              f"{ratio:6.1f}x {'<= ' + format(target, 'g') + 'x':>7}  {mark:4} {row['spread'] * 1e3:12.2f} "
              f"{row['spread'] / row['ort_as_written']:6.1f}x {row['ort'] * 1e3:8.3f} "
              f"{row['csim'] / row['ort']:6.1f}x {row['total'] - row['exact']:>10}/{row['total']:<11} "
              f"{row['build']:6.1f} {row['peak_mb']:7.0f} {row['compile']:9.2f}")
        if row["exact"] != row["total"]:
            failures.append(f"{row['name']}: csim differs from the golden model on "
                            f"{row['total'] - row['exact']} of {row['total']} output integers")
    print(f"g++ builds of the csim libraries (cold cache): total {sum(r['build'] for r in rows):.1f} s, "
          f"largest peak {max(r['peak_mb'] for r in rows):.0f} MB (target: each under 60 s and 1024 MB)")
    print("'ort off': graph optimizations off (DQ -> float op -> Q, no fused int8 kernels), the reference "
          "semantics of the golden-model tests; 'ort': the default level (ORT_ENABLE_ALL)")
    if failures:
        raise SystemExit("\n".join(failures))


if __name__ == "__main__":
    main()
