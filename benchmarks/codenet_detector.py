"""The CoDeNet-like example detector beside CoDeNet's published configurations.

Published (../shared/REFERENCES.md; Huang et al., "CoDeNet", FPGA 2021, arXiv 2006.08357 full
text), all on the Ultra96 (ZU3EG) at 250 MHz after place and route, memory over HP0-HP3, the
first layer (8-bit weights) on the ARM CPU:
- configuration a: 256x256, 32.2 fps, AP50 51.1;
- configuration b: 256x256, 26.9 fps, AP50 55.1;
- configuration c: 512x512, 9.3 fps, AP50 61.7 (0.76 MB of 4-bit weights);
- resources: LUT 34,144, FF 41,827, BRAM 216/216 (100%, 432 BRAM18K), DSP 360/360.
The FPGA'21 abstract quotes 26.9 fps, 0.76 MB and 61.7 AP50 together; in the full text they are
different configurations, so this script compares the 256x256 example with a and b only.

What is compared: our example (examples/codenet, 256x256, int4 weights / uint8 activations,
random weights) on the layer-sequential engine, CoDeNet's own kind of accelerator, on the
Ultra96-V2 at the board file's 200 MHz and at CoDeNet's 250 MHz (`--clock 250`), each simulated
with its cost model (no hardware here: its cycles follow the generated loops, whose trip counts
equal the C simulation's, but DDR latency and contention are constants, not measurements), and
as a dataflow pipeline where one fits. What still differs, so the ratios are not like with like:
- the network: ours is ShuffleNetV2-0.5x-like with residual adds in place of channel split,
  shuffle and concatenation, its deformable stages take 18 free offsets from a 3x3 conv clipped
  to +-2 and sampled bilinearly; CoDeNet's is ShuffleNetV2 1.0x with concatenation throughout and
  square integer offsets s in [0, N] from a 1x1 conv (which the compiler now reads:
  tests/codegen/test_integer_square_offsets.py) -- the example is not rebuilt yet;
- the first layer runs on the accelerator here, on the CPU in CoDeNet (1.2/3.1 ms);
- activations: ours asymmetric uint8, CoDeNet's symmetric 8-bit;
- accuracy is not compared (random weights).
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
from hwcodesign.boards import Board, load_board, with_clock  # noqa: E402
from hwcodesign.hardware.folding import RESOURCES  # noqa: E402
from hwcodesign.mapper.engine_map import map_engine  # noqa: E402
from hwcodesign.mapper.ilp import candidate_table  # noqa: E402
from hwcodesign.mapper.table import MappingInfeasible, least_within_limits, resource_limits  # noqa: E402
from hwcodesign.passes import load_onnx, optimize  # noqa: E402

PUBLISHED = {"a": (256, 32.2), "b": (256, 26.9), "c": (512, 9.3)}  # configuration: (input size, fps)
PUBLISHED_MHZ = 250
PUBLISHED_RESOURCES = {"lut": 34_144, "ff": 41_827, "bram18k": 432, "dsp": 360}
INPUT_SIZE = 256
BOARDS = ("ultra96v2", "zcu104", "zcu102")
BUILT = ROOT / "build" / "examples" / "codenet" / "codenet_w4a8.onnx"


def codenet_model(scratch: Path) -> Path:
    """The example's QDQ model: the one `make`/the tests built, else built now (needs torch)."""
    if BUILT.exists():
        return BUILT
    build = load_script(ROOT / "examples" / "codenet" / "build.py", "codenet_build")
    return build.build_codenet(scratch)["w4a8"]


def describe(name: str, board: Board, summary: dict, mapping, seconds: float) -> str:
    used = ", ".join(f"{r.upper()} {mapping.total(r):,}/{board.resources.as_dict()[r]:,}" for r in RESOURCES)
    return (f"  {name:<10} {board.clock_mhz:5g} MHz {summary['fps']:8.1f} fps, latency {summary['latency_ms']:7.2f} ms, "
            f"{summary['macs_per_frame'] / 1e6:.0f} M MACs, model {summary['model_size_mb']:.2f} MB; {used}; "
            f"mapped in {seconds:.1f} s")


def beside_published(fps: float, mapping) -> str:
    """Our 256x256 fps against the paper's 256x256 configurations, and the resources against its table."""
    ratios = ", ".join(f"{fps / published:.2f}x configuration {key} ({published} fps)"
                       for key, (size, published) in PUBLISHED.items() if size == INPUT_SIZE)
    used = ", ".join(f"{r.upper()} {mapping.total(r):,} vs {PUBLISHED_RESOURCES[r]:,}" for r in PUBLISHED_RESOURCES)
    return f"  {'':<10} at {PUBLISHED_MHZ} MHz: {ratios}; {used} (CoDeNet's)"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = codenet_model(Path(tmp))
        graph = optimize(load_onnx(path))
    weight_mb = sum(op.weight_bits() for op in graph) / 8 / 1e6
    print(f"CoDeNet-like example: {len(graph)} layers, {weight_mb:.2f} MB of weights (int4 + int32 biases)")
    print("published CoDeNet (Ultra96 at 250 MHz): " + ", ".join(
        f"configuration {key} {size}x{size} {fps} fps" for key, (size, fps) in PUBLISHED.items()))
    print("layer-sequential engine (weights and feature maps in DDR, as CoDeNet's accelerator):")
    runs = [(name, None) for name in BOARDS] + [("ultra96v2", PUBLISHED_MHZ)]
    for name, clock in runs:
        board = with_clock(load_board(name), clock)
        start = time.perf_counter()
        mapping = map_engine(graph, board)
        summary = build_report(graph, mapping, backend_of(mapping).simulate(graph, mapping))["summary"]
        print(describe(name, board, summary, mapping, time.perf_counter() - start))
        print(f"  {'':<10} engine {mapping.config}, MAC utilisation {summary['mac_utilisation']:.0%}, "
              f"DDR {summary['ddr_mb_per_frame']:.1f} MB per frame ({summary['ddr_gbps']:.2f} GB/s)")
        if name == "ultra96v2" and clock == PUBLISHED_MHZ:
            print(beside_published(summary["fps"], mapping))
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
        print(describe(name, board, summary, mapping, time.perf_counter() - start))


if __name__ == "__main__":
    main()
