"""DyBit mixed precision, end to end: search a ResNet-8's per-layer weight formats and foldings
for the Ultra96-V2, compile the chosen mixed-precision model, check it bit-exact in C simulation
and measure what it costs in accuracy.

The model is the bundled ResNet-8 (examples/build_models.py: trained on the synthetic
10-prototype task, QDQ int8 weights, uint8 activations). `hwcodesign.flows.search` measures every
layer's sensitivity to int4 / DyBit 4, 3, 2 with the golden model on calibration frames, then one
integer program picks each layer's format and folding: the fastest mapping whose summed
sensitivity stays within `--max-sensitivity` (or the least sensitive one reaching `--fps`).

What it writes into --out: the search folder (formats.json, the mixed model, search.json,
report.html with the Pareto front), the compiled mixed-precision project, and results.json:
- modelled fps of uniform int8 (the fastest int8 mapping) and of the chosen mix, the speed-up;
- accuracy proxy (sensitivity) and measured agreement: top-1 of the mixed model's golden outputs
  against the int8 model's, and synthetic-task accuracy of both, on held-out frames at the
  training noise and at a harder noise level;
- C simulation of the compiled project == golden model on the held-out frames.

    python examples/dybit/run.py --out build/examples/dybit
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # examples/script_loader.py
from script_loader import load_script  # noqa: E402

from hwcodesign.boards import load_board  # noqa: E402
from hwcodesign.flows.compile import compile_model  # noqa: E402
from hwcodesign.flows.search import search  # noqa: E402
from hwcodesign.flows.simulate import map_and_simulate  # noqa: E402
from hwcodesign.mapper.precision import format_front  # noqa: E402
from hwcodesign.passes import load_onnx, optimize  # noqa: E402
from hwcodesign.quant.formats import WeightFormat  # noqa: E402
from hwcodesign.report.search_report import write_search  # noqa: E402
from hwcodesign.sim.golden import quantize_input, run_golden  # noqa: E402

BOARD = "ultra96v2"
# The whole Pareto front is swept (7 integer programs, about 2 minutes of CBC on 2 busy cores): the
# interactive default of 60 s for all of them would fail the demo on a slower or busy machine.
SEARCH_TIME_LIMIT = 300.0
FORMATS = ("int8", "int4", "dybit4", "dybit3", "dybit2")
MAX_SENSITIVITY = 2e-3  # summed relative output error the search may spend on speed
CALIBRATION_STREAM, TEST_STREAM = 4, 5  # sample streams of the synthetic task (build_models.py)
HARD_NOISE = 0.5  # the model was trained at noise 0.2


def build_models():
    return load_script(HERE.parent / "build_models.py", "hwcodesign_examples_build_models")


def base_model(out: Path, given: Path | None = None) -> Path:
    """The bundled ResNet-8 (int8 QDQ): `given`, else built into `out` unless already there."""
    if given is not None:
        return given
    models = build_models()
    path = out / models.RESNET_FILES[8]
    return path if path.is_file() else models.build_resnet_qdq(out, weight_bits=8)


def top1(graph, frames: np.ndarray) -> np.ndarray:
    outputs = run_golden(graph, quantize_input(graph, frames))
    (logits,) = outputs.values()
    return logits.reshape(len(frames), -1).argmax(axis=1)


def run(out: Path, calibration: int = 32, test: int = 200, max_sensitivity: float = MAX_SENSITIVITY,
        fps: float | None = None, max_candidates: int = 96, model: Path | None = None) -> dict:
    """The whole example; returns (and writes) results.json's content."""
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    models = build_models()
    model_path = base_model(out, model)
    model = onnx.load(str(model_path))
    board = load_board(BOARD)
    frames, _ = models.synthetic_samples(calibration, stream=CALIBRATION_STREAM)
    result = search(model, board, [WeightFormat.parse(f) for f in FORMATS], fps=fps,
                    max_sensitivity=None if fps else max_sensitivity, frames=frames,
                    max_candidates=max_candidates, progress=lambda m: print(f"  {m}"),
                    time_limit=SEARCH_TIME_LIMIT)
    print(format_front(result))
    written = write_search(result, model, model_path, out / "search")
    project_dir = out / f"resnet8_mixed_{BOARD}"
    compiled = compile_model(written["model"], board, project_dir)
    int8_graph = optimize(load_onnx(model))
    uniform, _, _ = map_and_simulate(int8_graph, board)  # the same mapper, no project needed

    mixed_graph = compiled.graph
    evaluation = {}
    for label, noise in (("training noise", 0.2), ("hard noise", HARD_NOISE)):
        x, y = models.synthetic_samples(test, stream=TEST_STREAM, noise=noise)
        mixed, base = top1(mixed_graph, x), top1(int8_graph, x)
        evaluation[label] = {"noise": noise, "frames": test, "int8_accuracy": float(np.mean(base == y)),
                             "mixed_accuracy": float(np.mean(mixed == y)),
                             "top1_agreement": float(np.mean(mixed == base))}
    x, _ = models.synthetic_samples(16, stream=TEST_STREAM)
    integers = quantize_input(mixed_graph, x)
    simulated = compiled.project.csim(integers)
    golden = run_golden(mixed_graph, integers)
    mismatches = sum(int(np.count_nonzero(simulated[n] != golden[n])) for n in golden)
    formats = {name: str(fmt) for name, fmt in sorted(result.chosen.formats.items())}
    results = {
        "board": BOARD, "max_sensitivity": None if fps else max_sensitivity, "target_fps": fps,
        "uniform_int8_fps": round(uniform.fps, 1), "mixed_fps": round(compiled.mapping.fps, 1),
        "speedup": round(compiled.mapping.fps / uniform.fps, 3),
        "fastest_front_fps": round(result.front[0].fps(board), 1),
        "fastest_front_speedup": round(result.front[0].fps(board) / uniform.fps, 3),
        "sensitivity": result.chosen.sensitivity, "formats": formats,
        "dybit_layers": sum(f.startswith("dybit") for f in formats.values()),
        "weight_kib": {"int8": round(sum(op.weight_bits() for op in int8_graph) / 8192, 2),
                       "mixed": round(sum(op.weight_bits() for op in mixed_graph) / 8192, 2)},
        "resources": {"int8": {r: uniform.total(r) for r in ("dsp", "bram18k", "lut")},
                      "mixed": {r: compiled.mapping.total(r) for r in ("dsp", "bram18k", "lut")}},
        "evaluation": evaluation, "csim_mismatches": mismatches, "csim_frames": len(x),
        "front": result.summary()["front"], "search_seconds": round(result.seconds, 1),
        "seconds": round(time.perf_counter() - start, 1),
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/examples/dybit"))
    parser.add_argument("--model", type=Path, help="the int8 QDQ ResNet-8 (default: build it into --out)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--max-sensitivity", type=float, default=MAX_SENSITIVITY)
    target.add_argument("--fps", type=float)
    args = parser.parse_args(argv)
    results = run(args.out, max_sensitivity=args.max_sensitivity, fps=args.fps, model=args.model)
    print(f"uniform int8: {results['uniform_int8_fps']:,.1f} fps; mixed ({results['dybit_layers']} DyBit layers): "
          f"{results['mixed_fps']:,.1f} fps, {results['speedup']:.2f}x, sensitivity {results['sensitivity']:.2e}")
    for label, row in results["evaluation"].items():
        print(f"  {label}: accuracy int8 {row['int8_accuracy']:.3f}, mixed {row['mixed_accuracy']:.3f}, "
              f"top-1 agreement {row['top1_agreement']:.3f} ({row['frames']} frames)")
    print(f"  C simulation vs golden: {results['csim_mismatches']} mismatching elements over {results['csim_frames']} frames")
    print(f"  results: {args.out / 'results.json'}; Pareto front: {args.out / 'search' / 'report.html'}")
    return 1 if results["csim_mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
