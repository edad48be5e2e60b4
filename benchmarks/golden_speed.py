"""The golden model's speed per frame against onnxruntime on the same model (issue 24).

onnxruntime runs the model as written (graph optimisations off: DQ -> float op -> Q, the reference
semantics of the golden-model tests), one thread, one frame per call; the golden model runs a
batch of FRAMES frames in one call, as a user checking a data set would. Both are timed best of
REPEATS in this one run, and so is the golden model's arithmetic as it was before it was made fast
(`tests/support/golden_reference.py`: one float64 product per frame and group, the nine-operation
rounding shift, four bilinear corners and an int64 product for every deformable conv), swapped
in, so the before/after ratio is measured on the same machine at the same moment. Target: golden <= 3x
onnxruntime per frame. Both run on one thread (numpy's BLAS too). The fast and the reference golden
models are checked equal on the frames.

Models: the ResNet-8 example (QDQ w8a8), the CNV w4a4 QONNX example (onnxruntime runs its
standard-ONNX expansion), torchvision's ResNet-18 and MobileNetV2 at 96x96 (TorchScript export,
quantize_static's defaults), CoDeNet configuration a at 256x256 (examples/codenet/paper.py; the
accelerator's part, from the host's first-layer output) and the CoDeNet-like detector
(examples/codenet/build.py: deformable convs with bilinear offsets, the one issue 24 names).
"""

from __future__ import annotations

import os

# One BLAS thread, as onnxruntime gets one: a like-for-like ratio, and one that a loaded machine
# does not wreck (two BLAS threads beside other jobs on two cores ran MobileNetV2's golden model
# 10x slower). Set before numpy is imported, which reads it once.
for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"

import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.examples import build_models_module, load_script  # noqa: E402
from support.golden_reference import reference_golden  # noqa: E402
from support.timing import best_of  # noqa: E402

from hwcodesign.partition import load_partitioned  # noqa: E402
from hwcodesign.passes import optimize  # noqa: E402
from hwcodesign.reference import Reference  # noqa: E402
from hwcodesign.sim.golden import run_golden  # noqa: E402

FRAMES = 16
REPEATS = 3
TARGET_RATIO = 3.0
MODELS_DIR = ROOT / "build" / "examples"


def models(scratch: Path) -> dict[str, tuple[onnx.ModelProto, onnx.ModelProto]]:
    """name -> (the model the compiler reads, the model onnxruntime runs)."""
    bm = build_models_module()
    resnet8 = MODELS_DIR / bm.RESNET_FILES[8]
    if not resnet8.is_file():
        resnet8 = bm.build_resnet_qdq(MODELS_DIR, weight_bits=8)
    cnv = MODELS_DIR / bm.CNV_FILE
    if not cnv.is_file():
        cnv = bm.build_qonnx_cnn(MODELS_DIR)
    from support.torchvision_models import exported

    paper = load_script(ROOT / "examples" / "codenet" / "paper.py", "codenet_paper")
    codenet = MODELS_DIR / "codenet" / "codenet_a_w4a8.onnx"
    if not codenet.is_file():
        codenet = paper.build_paper(scratch, "a")["w4a8"]
    found = {"resnet8 w8a8": (onnx.load(resnet8),) * 2,
             "cnv w4a4 (QONNX)": (onnx.load(cnv), bm.expand_qonnx_quant(onnx.load(cnv)))}
    for name in ("resnet18", "mobilenet_v2"):
        model = exported(name, "torchscript", size=96).model
        found[f"{name} 96x96"] = (model, model)
    found["codenet a 256x256"] = (onnx.load(codenet),) * 2
    detector = MODELS_DIR / "codenet" / "codenet_w4a8.onnx"
    if not detector.is_file():
        build = load_script(ROOT / "examples" / "codenet" / "build.py", "codenet_build")
        detector = build.build_codenet(detector.parent)["w4a8"]
    found["codenet-like (bilinear)"] = (onnx.load(detector),) * 2
    return found


def bench(name: str, model: onnx.ModelProto, runtime_model: onnx.ModelProto, rng: np.random.Generator) -> dict:
    partition, graph = load_partitioned(model)
    graph = optimize(graph)
    source = partition.pre if partition.pre is not None else None
    shape = tuple(d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim)
    images = rng.uniform(0, 1, (FRAMES, *shape[1:])).astype(np.float32)
    # the accelerator's integer input: the host part's output (if any) quantized
    first = Reference(source).frames(images) if source is not None else images
    frames = graph.inputs[0].output.quantize(first)
    run_golden(graph, frames[:1])
    golden = best_of(lambda: run_golden(graph, frames), REPEATS) / FRAMES
    fast = run_golden(graph, frames)
    with reference_golden():
        before = best_of(lambda: run_golden(graph, frames), REPEATS) / FRAMES
        same = all(np.array_equal(values, run_golden(graph, frames)[key]) for key, values in fast.items())
    session = Reference(runtime_model, optimized=False, threads=1)
    session.first(images[:1])
    runtime = best_of(lambda: [session.first(images[i:i + 1]) for i in range(FRAMES)], REPEATS) / FRAMES
    return {"name": name, "golden": golden, "before": before, "ort": runtime, "same": same}


def main() -> None:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as scratch:
        rows = [bench(name, model, runtime, rng) for name, (model, runtime) in models(Path(scratch)).items()]
    print(f"golden model vs onnxruntime (optimisations off, 1 thread, a frame a call): {FRAMES} frames a golden "
          f"call, best of {REPEATS}; target golden <= {TARGET_RATIO:g}x onnxruntime")
    header = (f"{'model':<24} {'golden ms':>10} {'ratio':>7} {'target':>7}  {'before ms':>10} {'ratio':>7} "
              f"{'speed-up':>9} {'onnxruntime ms':>15} {'equal':>6}")
    print(header)
    print("-" * len(header))
    for row in rows:
        ratio, before = row["golden"] / row["ort"], row["before"] / row["ort"]
        mark = "PASS" if ratio <= TARGET_RATIO else "FAIL"
        print(f"{row['name']:<24} {row['golden'] * 1e3:10.2f} {ratio:6.1f}x {mark:>7}  {row['before'] * 1e3:10.2f} "
              f"{before:6.1f}x {row['before'] / row['golden']:8.2f}x {row['ort'] * 1e3:15.3f} {str(row['same']):>6}")
    if not all(row["same"] for row in rows):
        raise SystemExit("the fast golden model differs from the reference one")


if __name__ == "__main__":
    main()
