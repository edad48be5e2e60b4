"""torchvision's classifiers through both of torch's exporters and onnxruntime's quantizer: which the
compiler accepts, how close the golden model is to onnxruntime, and the modelled frame rate per
board and architecture.

Each model (random weights, BatchNorm statistics gathered on random images, 64x64 input; VGG-11
at 224x224, the smallest size whose map its adaptive pool divides) is exported with torch's
default exporter (dynamo, opset 18) and the TorchScript one (opset 17), quantized by
`quantize_static` with its defaults, then: imported (or the ops it is refused on are listed), the
golden model compared with onnxruntime layer by layer on 4 random images (isolated: each layer fed
onnxruntime's inputs; chained: the whole golden model), the argmax compared, and the accelerator
mapped and simulated on the Ultra96-V2 and the ZCU102 as the dataflow pipeline and as the
layer-sequential engine (fps from the cost model; "-" where that architecture does not fit).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.layerwise import chained_differences, isolated_differences, quantized_tensors  # noqa: E402
from support.torchvision_models import EXPORTERS, MODELS, exported  # noqa: E402

from hwcodesign.boards import load_board  # noqa: E402
from hwcodesign.errors import HwcodesignError  # noqa: E402
from hwcodesign.flows.simulate import map_and_simulate  # noqa: E402
from hwcodesign.partition import load_partitioned  # noqa: E402
from hwcodesign.passes import optimize  # noqa: E402
from hwcodesign.sim.golden import run_golden  # noqa: E402

BOARDS = ("ultra96v2", "zcu102")
ARCHITECTURES = ("dataflow", "sequential")
TIME_LIMIT = 20.0


def refused_ops(error: HwcodesignError) -> str:
    names = sorted({part.split(")")[0] for part in str(error).split("(op ")[1:]})
    return "refused: " + (", ".join(names) or str(error).splitlines()[0][:60])


def fps_cells(graph: object) -> list[str]:
    cells = []
    for board in BOARDS:
        for architecture in ARCHITECTURES:
            try:
                _, latency, _ = map_and_simulate(graph, load_board(board), architecture=architecture,
                                                 time_limit=TIME_LIMIT)
                cells.append(f"{latency.fps:,.0f}")
            except HwcodesignError:
                cells.append("-")
    return cells


def main() -> int:
    header = ["model", "exporter", "status", "iso LSB", "chained LSB", "argmax"] + \
        [f"{b} {a[:3]}" for b in BOARDS for a in ARCHITECTURES]
    print(" | ".join(header))
    accepted = 0
    start = time.perf_counter()
    for name in MODELS:
        for exporter in EXPORTERS:
            try:
                model = exported(name, exporter)
            except Exception as error:  # noqa: BLE001 - an exporter's own failure is a row of the table
                print(f"{name} | {exporter} | export fails: {str(error).splitlines()[0][:70]}")
                continue
            try:
                _, graph = load_partitioned(model.model)
            except HwcodesignError as error:
                print(f"{name} | {exporter} | {refused_ops(error)}")
                continue
            accepted += 1
            graph = optimize(graph)
            feeds = [{"image": model.images[i:i + 1]} for i in range(len(model.images))]
            reference = quantized_tensors(model.model, feeds)
            isolated = max(d.max_lsb for d in isolated_differences(graph, reference))
            chained = chained_differences(graph, reference)
            golden = run_golden(graph, {graph.inputs[0].name: reference[graph.inputs[0].output.name]})
            ours = golden[graph.outputs[0]].reshape(len(feeds), -1)
            theirs = reference[graph.outputs[0]].reshape(len(feeds), -1)
            argmax = f"{np.mean(ours.argmax(1) == theirs.argmax(1)):.0%}"
            row = [name, exporter, "accepted", str(isolated), str(max(d.max_lsb for d in chained)), argmax,
                   *fps_cells(graph)]
            print(" | ".join(row))
    print(f"{accepted} of {len(MODELS) * len(EXPORTERS)} (model, exporter) pairs accepted "
          f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
