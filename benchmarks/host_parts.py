"""The host parts' executors side by side: the driver's numpy executor against onnxruntime.

A model's float parts (input normalisation, a Softmax, an unquantized classifier, a GRU head) run
on the board's CPU inside the generated driver: with onnxruntime where the board image has it,
else with the driver's own numpy executor (`hwcodesign/host/runtime.py`). This measures, on this
machine and in one run, the time per frame of each host part under both executors (their ratio is
what carries over to a board's CPU, not the absolute times) beside the compiler's estimate for the
board's Cortex-A53 (`sim/host_time.py`, board file `[cpu]`), and the largest difference between the
two executors' outputs.

Models: the torch exports of `tests/support/host_models.py`, quantized by onnxruntime.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support import host_models  # noqa: E402

from hwcodesign.boards import load_board  # noqa: E402
from hwcodesign.codegen.host_parts import host_spec, write_host_files  # noqa: E402
from hwcodesign.host.runtime import HostPart  # noqa: E402
from hwcodesign.partition import load_partitioned  # noqa: E402
from hwcodesign.partition.run import run_host_part  # noqa: E402
from hwcodesign.passes import optimize  # noqa: E402
from hwcodesign.sim.host_time import estimate_host_seconds  # noqa: E402

RUNS = 300
BOARD = "ultra96v2"


def per_frame_seconds(part: HostPart, feeds: dict[str, np.ndarray], runs: int = RUNS) -> float:
    part.run(feeds)  # sessions and caches warm
    start = time.perf_counter()
    for _ in range(runs):
        part.run(feeds)
    return (time.perf_counter() - start) / runs


def main() -> int:
    board = load_board(BOARD)
    print(f"host parts: numpy executor vs onnxruntime, {RUNS} runs per part on this machine; "
          f"estimate for {board.display_name}'s {board.cpu.core} at {board.cpu.clock_mhz:g} MHz")
    print(f"{'model':20s} {'part':5s} {'nodes':>5s} {'numpy us':>9s} {'ort us':>8s} {'numpy/ort':>9s} "
          f"{'A53 est. us':>11s} {'max |diff|':>10s}")
    for name, build in host_models.BUILDERS.items():
        model = build()
        partition, graph = load_partitioned(model.model)
        spec = host_spec(partition, optimize(graph))
        with tempfile.TemporaryDirectory() as tmp:
            folder = write_host_files(partition, spec, Path(tmp))
            for label, part_model in (("pre", partition.pre), ("post", partition.post)):
                if part_model is None:
                    continue
                feeds = {value.name: np.random.default_rng(0).random(
                    [d.dim_value for d in value.type.tensor_type.shape.dim], dtype=np.float32)
                    for value in part_model.graph.input}
                numpy_part, ort_part = HostPart(folder, spec[label], "numpy"), HostPart(folder, spec[label], "onnxruntime")
                numpy_s, ort_s = per_frame_seconds(numpy_part, feeds), per_frame_seconds(ort_part, feeds)
                reference = run_host_part(part_model, feeds, ort_part.outputs)
                numpy_out = numpy_part.run(feeds)
                diff = max(float(np.abs(numpy_out[k].astype(np.float64) - reference[k]).max()) for k in reference)
                estimate = estimate_host_seconds(part_model, board.cpu)
                print(f"{name:20s} {label:5s} {len(part_model.graph.node):5d} {numpy_s * 1e6:9.1f} {ort_s * 1e6:8.1f} "
                      f"{numpy_s / ort_s:9.2f} {estimate.seconds * 1e6:11.1f} {diff:10.2g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
