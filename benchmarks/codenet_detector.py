"""The CoDeNet-like example detector beside CoDeNet's published figures.

Published (../shared/REFERENCES.md; Huang et al., "CoDeNet", FPGA 2021): on the Ultra96
(ZU3EG), the high-efficiency design runs at 26.9 fps with a 0.76 MB model, 4-bit weights and
8-bit activations, 61.7 AP50 on Pascal VOC.

What is compared: our example (examples/codenet: ShuffleNetV2-style backbone, three depthwise
deformable upsampling stages with offsets bounded to +-2, CenterNet heads, 256x256 input, int4
weights / uint8 activations, random weights) on two architectures, each simulated with its cost
model (no hardware here):
- the layer-sequential engine (one MAC unit and one pixel unit running the layers in turn,
  feature maps and weights in DDR): CoDeNet's own kind of accelerator, so the Ultra96 row is the
  closest to like with like. Its cycles follow the generated loops (their trip counts equal the C
  simulation's), but DDR latency and contention are modelled by constants, not measured;
- the dataflow pipeline (every layer its own stage, everything on chip), which does not fit the
  ZU3EG (the script prints by how much) and runs every layer concurrently on larger parts.
Not comparable: the networks differ (ours 0.46 MB, CoDeNet's 0.76 MB), the published input size
for 26.9 fps is not in REFERENCES.md (the paper evaluates 256x256 and 512x512), and accuracy is
not compared (our weights are random).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.examples import load_script  # noqa: E402

from hwcodesign.backends.choose import backend_of, build_report  # noqa: E402
from hwcodesign.backends.dataflow import map_pipeline  # noqa: E402
from hwcodesign.boards import load_board  # noqa: E402
from hwcodesign.hardware.folding import RESOURCES  # noqa: E402
from hwcodesign.mapper.engine_map import map_engine  # noqa: E402
from hwcodesign.mapper.ilp import candidate_table  # noqa: E402
from hwcodesign.mapper.table import MappingInfeasible, least_within_limits, resource_limits  # noqa: E402
from hwcodesign.passes import load_onnx, optimize  # noqa: E402

PUBLISHED_FPS = 26.9
PUBLISHED_MB = 0.76
BOARDS = ("ultra96v2", "zcu104", "zcu102")
BUILT = ROOT / "build" / "examples" / "codenet" / "codenet_w4a8.onnx"


def codenet_model(scratch: Path) -> Path:
    """The example's QDQ model: the one `make`/the tests built, else built now (needs torch)."""
    if BUILT.exists():
        return BUILT
    build = load_script(ROOT / "examples" / "codenet" / "build.py", "codenet_build")
    return build.build_codenet(scratch)["w4a8"]


def describe(name: str, board_name: str, summary: dict, mapping, seconds: float) -> str:
    board = load_board(board_name)
    used = ", ".join(f"{r.upper()} {mapping.total(r):,}/{board.resources.as_dict()[r]:,}" for r in RESOURCES)
    return (f"  {name:<10} {summary['fps']:8.1f} fps ({summary['fps'] / PUBLISHED_FPS:6.2f}x published), latency "
            f"{summary['latency_ms']:7.2f} ms, {summary['macs_per_frame'] / 1e6:.0f} M MACs, model "
            f"{summary['model_size_mb']:.2f} MB ({summary['model_size_mb'] / PUBLISHED_MB:.2f}x published), "
            f"{board.clock_mhz:g} MHz; {used}; mapped in {seconds:.1f} s")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = codenet_model(Path(tmp))
        graph = optimize(load_onnx(path))
    weight_mb = sum(op.weight_bits() for op in graph) / 8 / 1e6
    print(f"CoDeNet-like example: {len(graph)} layers, {weight_mb:.2f} MB of weights (int4 + int32 biases)")
    print(f"published CoDeNet (Ultra96, high-efficiency design): {PUBLISHED_FPS} fps, {PUBLISHED_MB} MB")
    print("layer-sequential engine (weights and feature maps in DDR, as CoDeNet's accelerator):")
    for name in BOARDS:
        start = time.perf_counter()
        mapping = map_engine(graph, load_board(name))
        summary = build_report(graph, mapping, backend_of(mapping).simulate(graph, mapping))["summary"]
        print(describe(name, name, summary, mapping, time.perf_counter() - start))
        print(f"  {'':<10} engine {mapping.config}, MAC utilisation {summary['mac_utilisation']:.0%}, "
              f"DDR {summary['ddr_mb_per_frame']:.1f} MB per frame ({summary['ddr_gbps']:.2f} GB/s)")
    print("dataflow pipeline (every layer its own stage, all on chip):")
    for name in BOARDS:
        board = load_board(name)
        start = time.perf_counter()
        try:
            mapping = map_pipeline(graph, board, suggest_board=False)
        except MappingInfeasible as error:
            table = candidate_table(graph, board)
            limits = resource_limits(board)
            alone = sum(min(c.bram18k for c in options) for options in table.costs)
            within = least_within_limits(table, limits, "bram18k")
            print(f"  {name:<10} does not fit as an all-on-chip pipeline: {error}")
            print(f"  {'':<10} least BRAM18K of any mapping {alone}; within the DSP/LUT/FF limits {within} "
                  f"({within / board.resources.bram18k:.2f}x the part's {board.resources.bram18k}); "
                  f"the mapper allows {limits['bram18k']}")
            continue
        summary = build_report(graph, mapping, backend_of(mapping).simulate(graph, mapping))["summary"]
        print(describe(name, name, summary, mapping, time.perf_counter() - start))

if __name__ == "__main__":
    main()
