"""Issue 22's bit-exactness check at full size: ResNet-18 and MobileNetV2 at 224x224 on the design
`hwcodesign simulate` chooses for each board, C-simulated frame by frame against the golden model.

The models are the DPU benchmark's (`dpu_targets.py`: torchvision, TorchScript export,
onnxruntime's quantizer). For each board the design is what `simulate_model` picks (the engine
with its configuration and number of instances, or the dataflow pipeline, and the first layer's
window packed into channels when that is faster); its project is generated, its C simulation
built with g++, and `FRAMES` random images run through it (as the driver runs them: on an engine
with a batch, in one run of the engine). Printed per model and board: the
design, the elements compared, how many differ (must be 0: the C simulation of the packed graph
against the golden model of the model as exported, so the packing pass is checked too), and the
build and per-frame times. A difference exits with status 1.
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.torchvision_models import exported  # noqa: E402

from hwcodesign.backends import emit_project  # noqa: E402
from hwcodesign.boards import load_board  # noqa: E402
from hwcodesign.codegen.csim import build_library  # noqa: E402
from hwcodesign.flows.simulate import simulate_model  # noqa: E402
from hwcodesign.ir.input_window import im2col  # noqa: E402
from hwcodesign.partition import load_partitioned  # noqa: E402
from hwcodesign.passes import optimize  # noqa: E402
from hwcodesign.sim.golden import run_golden  # noqa: E402

SIZE = 224
MODELS = ("resnet18", "mobilenet_v2")
BOARDS = ("ultra96v2", "kv260", "zcu104", "zcu102")
FRAMES = 2
TIME_LIMIT = 60.0


def design_label(report: dict) -> str:
    engine = report.get("engine")
    if engine is None:
        return "dataflow pipeline"
    instances, batch = engine.get("instances", 1), engine.get("batch", 1)
    return f"engine {engine['config']}" + (f" x{instances}" if instances > 1 else "") + \
        (f" b{batch}" if batch > 1 else "") + (" (window packed)" if engine.get("input_windows") else "")


def main() -> int:
    warnings.filterwarnings("ignore")
    failed = False
    print(f"{'model':14} {'board':10} {'design':80} {'elements':>9} {'differ':>6} {'build s':>8} {'s/frame':>8}")
    for name in MODELS:
        _, graph = load_partitioned(exported(name, "torchscript", size=SIZE).model)
        graph = optimize(graph)
        source = graph.inputs[0].output
        frames = source.dtype.sample(np.random.default_rng(0), (FRAMES, *source.shape[1:]))
        expected = run_golden(graph, frames)
        for board_name in BOARDS:
            simulation = simulate_model(graph, load_board(board_name), time_limit=TIME_LIMIT)
            chosen = simulation.graph
            window = chosen.inputs[0].window
            inputs = im2col(frames, window) if window else frames
            with tempfile.TemporaryDirectory() as folder:
                project = emit_project(chosen, simulation.mapping, Path(folder) / f"{name}_{board_name}")
                start = time.perf_counter()
                build_library(project)
                built = time.perf_counter() - start
                start = time.perf_counter()
                simulated = project.csim(inputs)
                per_frame = (time.perf_counter() - start) / FRAMES
            elements = sum(value.size for value in expected.values())
            differ = sum(int(np.count_nonzero(simulated[key] != value)) for key, value in expected.items())
            failed |= differ != 0
            print(f"{name:14} {board_name:10} {design_label(simulation.report):80} {elements:>9,} {differ:>6} "
                  f"{built:>8.1f} {per_frame:>8.2f}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
