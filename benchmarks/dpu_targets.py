"""Big CNNs on big boards beside the Vitis AI DPU: where hwcodesign stands (issue 22's benchmark).

Models: torchvision's ResNet-50, ResNet-18, MobileNetV2, EfficientNet-B0 and SqueezeNet 1.1 at
224x224 (random weights, BatchNorm statistics gathered on random images; TorchScript export;
onnxruntime's `quantize_static` with its defaults: tests/support/torchvision_models.py), mapped
as `hwcodesign simulate` maps them (`simulate_model`: the default `auto` architecture, the
throughput goal, an engine also tried with its first layer's window packed into channels) on
the Ultra96-V2, KV260, ZCU104 and ZCU102 at their default clocks. Printed per model and board:
- modelled fps and the architecture chosen (with "xN": N engine instances, one per HP port, each
  running its own frames, as the DPU's figures run several cores and threads; "bB": B frames per
  engine run, each instruction's weights loaded once for all of them; "w128": its feature maps in
  128-bit words), or why the model is refused;
- DSP / BRAM18K / URAM / LUT used (UltraRAM: the engine's weight memories and line buffer, where
  the mapper puts them there, on the KV260 and ZCU104; the other two boards have none);
- MAC utilisation: the model's MACs per frame over one instance's MAC lanes' capacity in a frame;
- the DPU's published end-to-end fps on that board (Xilinx Vitis AI model zoo, ../shared/REFERENCES.md;
  ZCU102 3x B4096 @ 281 MHz, ZCU104 2x B4096 @ 300 MHz, KV260 1x B4096 @ 300 MHz, Ultra96 1x
  B1600 @ 287 MHz; ResNet-50 and ResNet-18 from VAI 2.0 where 3.0 has no row, MobileNetV2 on the
  Ultra96 one thread, SqueezeNet on the Ultra96 is v1.0 at 227x227);
- the board's compute roof: every DSP making two INT8 products a cycle at the board clock, in
  frames per second of this model's MACs (what no design on that board can beat), and the same
  within the mapper's default DSP cap (`DEFAULT_CAPS`, 90%): the most any design the mapper may
  choose can reach with DSP multipliers at the board clock. A row whose DPU figure is above it
  (marked "!") cannot be matched that way: the DPU runs its DSPs at twice its 281-300 MHz
  clock, where the board files here keep the PL at 200-250 MHz.
The ratio column is hwcodesign / DPU: issue 22's goal is >= 1 on every row; the last line counts
the rows that meet it and the rows out of reach.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.torchvision_models import exported  # noqa: E402

from hwcodesign.boards import load_board  # noqa: E402
from hwcodesign.errors import HwcodesignError  # noqa: E402
from hwcodesign.flows.simulate import simulate_model  # noqa: E402
from hwcodesign.mapper.table import DEFAULT_CAPS  # noqa: E402
from hwcodesign.partition import load_partitioned  # noqa: E402
from hwcodesign.passes import optimize  # noqa: E402

SIZE = 224
MODELS = ("resnet50", "resnet18", "mobilenet_v2", "efficientnet_b0", "squeezenet1_1")
BOARDS = ("ultra96v2", "kv260", "zcu104", "zcu102")
DPU_FPS = {
    "resnet50": {"zcu102": 213.6, "zcu104": 182.5, "kv260": 100.1, "ultra96v2": 36.6},
    "resnet18": {"zcu102": 477.3, "zcu104": 415.4, "kv260": 214.2, "ultra96v2": 77.8},
    "mobilenet_v2": {"zcu102": 764.4, "zcu104": 621.0, "kv260": 338.1, "ultra96v2": 136.2},
    "efficientnet_b0": {"zcu102": 156.5, "zcu104": 146.5, "kv260": 87.2},
    "squeezenet1_1": {"zcu102": 1550.8, "zcu104": 1326.1, "kv260": 760.2, "ultra96v2": 283.6},
}
"""The DPU's published end-to-end fps (module doc)."""
TIME_LIMIT = 60.0
PRODUCTS_PER_DSP = 2


def roof_fps(board_name: str, macs: int) -> float:
    """Frames per second if every DSP made two products every cycle at the board clock."""
    board = load_board(board_name)
    return board.resources.dsp * PRODUCTS_PER_DSP * board.clock_mhz * 1e6 / max(macs, 1)


def main() -> None:
    warnings.filterwarnings("ignore")
    header = (f"{'model':16} {'board':10} {'arch':21} {'fps':>9} {'DPU fps':>8} {'ratio':>6} {'roof fps':>9} "
              f"{'capped':>9} {'MAC util':>8} {'DSP':>6} {'BRAM18K':>8} {'URAM':>5} {'LUT':>8}")
    print(header)
    met = compared = beyond = 0
    for name in MODELS:
        start = time.perf_counter()
        try:
            _, graph = load_partitioned(exported(name, "torchscript", size=SIZE).model)
            graph = optimize(graph)
            macs = graph.macs()
        except HwcodesignError as error:
            print(f"{name:16} refused: {str(error).splitlines()[0][:110]}")
            continue
        for board_name in BOARDS:
            dpu = DPU_FPS[name].get(board_name)
            dpu_text = f"{dpu:>8,.1f}" if dpu else f"{'-':>8}"
            try:
                simulation = simulate_model(graph, load_board(board_name), time_limit=TIME_LIMIT)
            except HwcodesignError as error:
                print(f"{name:16} {board_name:10} {'-':21} {'-':>9} {dpu_text}  {str(error).splitlines()[0][:80]}")
                continue
            report, latency = simulation.report, simulation.latency
            summary, used = report["summary"], {r: e["used"] for r, e in report["resources"].items()}
            roof = roof_fps(board_name, macs)
            capped = roof * DEFAULT_CAPS["dsp"]
            ratio = f"{latency.fps / dpu:>6.2f}" if dpu else f"{'-':>6}"
            if dpu:
                compared += 1
                met += latency.fps >= dpu
                beyond += dpu > capped
            utilisation = summary.get("mac_utilisation")
            engine = report.get("engine", {})
            instances, batch = engine.get("instances", 1), engine.get("batch", 1)
            wide = engine.get("word_bits", 64) != 64
            arch = report["architecture"] + (f" x{instances}" if instances > 1 else "") + (f" b{batch}" if batch > 1 else "") \
                + (f" w{engine['word_bits']}" if wide else "")
            print(f"{name:16} {board_name:10} {arch:21} {latency.fps:>9,.1f} {dpu_text} {ratio} "
                  f"{roof:>9,.0f} {capped:>8,.0f}{'!' if dpu and dpu > capped else ' '}"
                  f"{(f'{utilisation:.0%}' if utilisation is not None else '-'):>8} "
                  f"{used['dsp']:>6,} {used['bram18k']:>8,} {used['uram']:>5,} {used['lut']:>8,}")
        print(f"{'':16} ({macs / 1e9:.2f} GMAC per frame; {time.perf_counter() - start:.0f} s)")
    print(f"{met} of {compared} rows at or above the DPU; on {beyond} the DPU's figure is above the capped roof (!)")


if __name__ == "__main__":
    main()
