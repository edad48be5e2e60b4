"""MobileNetV3-Small as torch's default exporter (dynamo) writes it, quantized by quantize_static's
defaults, on the Ultra96-V2: its pipeline does not fit, so `auto` builds the layer-sequential
engine, whose C simulation runs the whole network bit-exact with the golden model: HardSwish and
HardSigmoid lookup tables, squeeze-excitation products with their gates, and the last HardSwish's
lookup mean, with the cost model's loop counts equal to the loops that ran."""

from __future__ import annotations

from pathlib import Path

from support.codegen import build_all, random_frames
from support.engine import check_engine
from support.torchvision_models import exported

from hwcodesign.backends import emit_project, map_to_board
from hwcodesign.boards import load_board
from hwcodesign.partition import load_partitioned
from hwcodesign.passes import optimize


def test_mobilenet_v3_engine_csim_equals_golden(tmp_path: Path) -> None:
    _, graph = load_partitioned(exported("mobilenet_v3_small", "dynamo").model)
    graph = optimize(graph)
    mapping = map_to_board(graph, load_board("ultra96v2"), time_limit=10)
    assert mapping.architecture == "sequential"
    modes = {timing.kind for timing in mapping.timings}
    assert {"lookup", "mul", "global_pool"} <= modes
    project = emit_project(graph, mapping, tmp_path / "mobilenet_v3")
    build_all([project])
    check_engine(graph, project, mapping, random_frames(graph, 2, seed=23), "mobilenet_v3_small/dynamo")
