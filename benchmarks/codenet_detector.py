"""CoDeNet's configurations a, b and c (examples/codenet/paper.py) beside the paper's figures.

Published (../shared/REFERENCES.md; "CoDeNet", FPGA 2021, arXiv 2006.08357 full text, Table 3
of the FPGA'21 paper), all on the Ultra96 (ZU3EG) at 250 MHz after place and route, memory over
HP0-HP3, the first layer (8-bit weights) on the ARM CPU:
- configuration a: 256x256, first layer conv 3x3/4, 32.2 fps (accelerator 29.9 ms + CPU 1.2 ms);
- configuration b: 256x256, conv 3x3/2 + max pool, 26.9 fps (accelerator 29.9 ms + CPU 3.1 ms);
- configuration c: 512x512, conv 3x3/4, 9.3 fps;
- resources (one design for all): LUT 34,144, FF 41,827, BRAM 216/216 (432 BRAM18K), DSP 360/360.

Ours: the same network (ShuffleNetV2 1.0x with split/shuffle/concatenation, three decoder stages
of depthwise deformable convs with integer square offsets in [0, 7], CenterNet heads; int4
per-channel weights, int8 symmetric activations; the first layer on the host) on the layer-sequential
engine, CoDeNet's own kind of accelerator, its four AXI masters on HP0-HP3, on the Ultra96-V2 at
250 MHz (`--clock 250`). Per configuration, one frame at a time as the paper measures it (`--goal
latency`): the accelerator's latency from the cost model (its loops' trip counts equal the C
simulation's, tests/examples/test_codenet_paper.py; DDR latency and contention are constants, not
measurements), plus the first layer's time on the board's Cortex-A53, estimated from its FLOPs
(`sim/host_time.py`, not measured), and their sum as fps. Also the engine's throughput when it
runs several frames a run (the mapper's default goal).

Activations are int8 symmetric here, as the paper states (its released code and HLS quantize
them asymmetrically). What still differs: the weights are random, so accuracy (AP50) is not
compared; our resources are the cost model's estimates, CoDeNet's are after place and route.
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
from hwcodesign.boards import load_board, with_clock  # noqa: E402
from hwcodesign.mapper.engine_map import map_engine  # noqa: E402
from hwcodesign.partition import load_partitioned  # noqa: E402
from hwcodesign.passes import optimize  # noqa: E402
from hwcodesign.sim.host_time import estimate_host_seconds  # noqa: E402

PUBLISHED_FPS = {"a": 32.2, "b": 26.9, "c": 9.3}
PUBLISHED_FIRST_LAYER_MS = {"a": 1.2, "b": 3.1}  # on the ARM CPU; c's is not given
PUBLISHED_ACCELERATOR_MS = {"a": 29.9, "b": 29.9}
PUBLISHED_MHZ = 250
PUBLISHED_RESOURCES = {"lut": 34_144, "ff": 41_827, "bram18k": 432, "dsp": 360}
BUILT = ROOT / "build" / "examples" / "codenet"


def paper_model(configuration: str, scratch: Path) -> Path:
    """The configuration's QDQ model: the one `make` built, else built now (needs torch)."""
    built = BUILT / f"codenet_{configuration}_w4a8.onnx"
    if built.exists():
        return built
    paper = load_script(ROOT / "examples" / "codenet" / "paper.py", "codenet_paper")
    return paper.build_paper(scratch, configuration)["w4a8"]


def resources(mapping) -> str:
    return ", ".join(f"{r.upper()} {mapping.total(r):,} ({PUBLISHED_RESOURCES[r]:,})" for r in PUBLISHED_RESOURCES)


def main() -> None:
    board = with_clock(load_board("ultra96v2"), PUBLISHED_MHZ)
    print(f"CoDeNet configurations on the {board.name} at {board.clock_mhz:g} MHz (the paper's clock); "
          "resources as ours (CoDeNet's)")
    with tempfile.TemporaryDirectory() as tmp:
        for configuration, published in PUBLISHED_FPS.items():
            path = paper_model(configuration, Path(tmp))
            partition, graph = load_partitioned(path)
            graph = optimize(graph)
            host_ms = estimate_host_seconds(partition.pre, board.cpu).seconds * 1e3
            start = time.perf_counter()
            single = map_engine(graph, board, goal="latency")
            summary = build_report(graph, single, backend_of(single).simulate(graph, single))["summary"]
            accelerator_ms = summary["latency_ms"]
            fps = 1e3 / (accelerator_ms + host_ms)
            paper_ms = PUBLISHED_ACCELERATOR_MS.get(configuration)
            against = f" (CoDeNet's {paper_ms} ms)" if paper_ms else ""
            paper_host = PUBLISHED_FIRST_LAYER_MS.get(configuration)
            print(f"configuration {configuration} ({graph.inputs[0].output.shape[2] * 4}x"
                  f"{graph.inputs[0].output.shape[3] * 4}, {summary['macs_per_frame'] / 1e9:.2f} G MACs on the "
                  f"accelerator):")
            print(f"  one frame at a time: accelerator {accelerator_ms:.2f} ms{against} + first layer on the host "
                  f"{host_ms:.2f} ms estimated" + (f" (CoDeNet's {paper_host} ms measured)" if paper_host else "")
                  + f" = {fps:.1f} fps, {fps / published:.2f}x CoDeNet's {published} fps")
            if paper_host:  # the same first-layer time on both sides: the accelerators alone differ
                same = 1e3 / (accelerator_ms + paper_host)
                print(f"  with CoDeNet's own first-layer time: {same:.1f} fps, {same / published:.2f}x; accelerator "
                      f"alone {paper_ms / accelerator_ms:.2f}x faster")
            print(f"  engine {single.config}, MAC utilisation {summary['mac_utilisation']:.0%}; {resources(single)}")
            throughput = map_engine(graph, board)
            best = build_report(graph, throughput, backend_of(throughput).simulate(graph, throughput))["summary"]
            print(f"  several frames a run: {best['fps']:.1f} fps on the accelerator, {throughput.batch} frames a run, "
                  f"engine {throughput.config}; {resources(throughput)}; mapped in "
                  f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
