"""FINN's own networks at the frame rates FINN users ask for: the least hardware hwcodesign's
mapper finds for each target beside FINN's published designs.

Networks: Brevitas's `bnn_pynq` CNV and TFC at W1A1 and W2A2 (tests/support/brevitas_models.py:
seeded random weights, BatchNorm statistics set; exported with `export_qonnx`), mapped as the
dataflow pipeline with the `resources` goal (`--fps F`: the least largest fraction of any resource
limit that reaches F) on the PYNQ-Z2 and the Ultra96-V2 at their default clocks. Printed per
target: the frame rate the design reaches, its LUT, BRAM18K and DSP (width converters and FIFOs
included), or why no design reaches it.

Published FINN designs (BNN-PYNQ, post-implementation, PYNQ-Z1 = the PYNQ-Z2's XC7Z020 at 100 MHz):
CNV-W2A2 37,302 LUT, 280 BRAM18K, 32 DSP at about 868 fps; CNV-W1A1 26,072 LUT, 248 BRAM18K, 24
DSP at 3,052 fps (../shared/REFERENCES.md); on the PYNQ-Z2 their own frame rates are targets too. FINN's own cost model is not run here (finn-plus needs Vivado for
post-synthesis figures); the comparison is against those published designs at the nearest target.
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.brevitas_models import ExportCache  # noqa: E402

from hwcodesign.boards import load_board  # noqa: E402
from hwcodesign.errors import HwcodesignError  # noqa: E402
from hwcodesign.flows.simulate import map_and_simulate  # noqa: E402
from hwcodesign.partition import load_partitioned  # noqa: E402
from hwcodesign.passes import optimize  # noqa: E402

NETWORKS = (("cnv", "w1a1"), ("cnv", "w2a2"), ("tfc", "w1a1"), ("tfc", "w2a2"))
BOARDS = ("pynqz2", "ultra96v2")
TARGETS = (1e3, 1e4, 1e5, 1e6)
PUBLISHED = {("cnv", "w2a2"): (868, {"lut": 37302, "bram18k": 280, "dsp": 32}),
             ("cnv", "w1a1"): (3052, {"lut": 26072, "bram18k": 248, "dsp": 24})}
"""FINN's BNN-PYNQ designs (PYNQ-Z1, 100 MHz, post-implementation): frame rate and resources."""


def published_text(finn_fps: int | None, finn: dict[str, int]) -> str:
    if finn_fps is None:
        return ""
    return f"FINN (PYNQ-Z1, 100 MHz): {finn_fps:,} fps, LUT {finn['lut']:,}, BRAM18K {finn['bram18k']}, DSP {finn['dsp']}"


def against_finn(mapping, finn: dict[str, int]) -> str:
    """Our design's resources as ratios of FINN's published design at the same frame rate."""
    return "  vs FINN: " + ", ".join(f"{r.upper()} {mapping.total(r) / finn[r]:.2f}x" for r in ("lut", "bram18k", "dsp"))


def main() -> None:
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        export = ExportCache(Path(tmp))
        for network, precision in NETWORKS:
            _, graph = load_partitioned(export(network, precision, "qonnx"))
            graph = optimize(graph)
            finn_fps, finn = PUBLISHED.get((network, precision), (None, {}))
            print(f"\n{network.upper()}-{precision.upper()}   {published_text(finn_fps, finn)}")
            print(f"{'board':10} {'target fps':>10} {'reached fps':>12} {'LUT':>8} {'BRAM18K':>8} {'DSP':>5}  thresholds")
            for board_name in BOARDS:
                board = load_board(board_name)
                for target in sorted({*TARGETS, *([finn_fps] if finn_fps and board_name == "pynqz2" else [])}):
                    try:
                        mapping, latency, _ = map_and_simulate(graph, board, fps=target, architecture="dataflow")
                    except HwcodesignError as error:
                        print(f"{board_name:10} {target:>10,.0f} {'-':>12}  {str(error).splitlines()[0][:90]}")
                        continue
                    stages = sum(f.output == "thresholds" for f in mapping.foldings.values())
                    print(f"{board_name:10} {target:>10,.0f} {latency.fps:>12,.0f} {mapping.total('lut'):>8,} "
                          f"{mapping.total('bram18k'):>8,} {mapping.total('dsp'):>5}  {stages} layers"
                          + (against_finn(mapping, finn) if target == finn_fps and board_name == "pynqz2" else ""))


if __name__ == "__main__":
    main()
