"""`pack-input-window` on torchvision ResNet-18/50 at 224x224: the layer-sequential engine's
modelled frame rate, and its first layer's cycles and MAC utilisation, with the first layer's
window packed into the input's channels and without, on the Ultra96-V2 and the ZCU102.

    PYTHONPATH=.:tests python benchmarks/input_window.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.torchvision_models import exported  # noqa: E402

from hwcodesign.boards import load_board  # noqa: E402
from hwcodesign.mapper.engine_map import map_engine  # noqa: E402
from hwcodesign.partition import load_partitioned  # noqa: E402
from hwcodesign.passes import optimize  # noqa: E402
from hwcodesign.passes.input_window import pack_input_window  # noqa: E402

MODELS = ("resnet18", "resnet50")
BOARDS = ("ultra96v2", "zcu102")
SIZE = 224


def main() -> int:
    print("model | board | layout | fps | engine | first layer cycles | first layer MAC use | input bytes")
    for name in MODELS:
        _, graph = load_partitioned(exported(name, "torchscript", size=SIZE).model)
        graph = optimize(graph)
        layouts = {"frame": graph, "packed window": pack_input_window(graph)}
        for board in BOARDS:
            for layout, variant in layouts.items():
                mapping = map_engine(variant, load_board(board))
                first = mapping.timings[0]
                source = variant.inputs[0].output
                print(f"{name} | {board} | {layout} | {mapping.fps:,.1f} | {mapping.config} | {first.cycles:,} | "
                      f"{first.mac_utilisation(mapping.config):.1%} | {source.elements_per_frame:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
