"""torchvision's classifiers mapped onto boards (split from test_torchvision.py so that the two
run on different workers): every model maps and simulates on the Ultra96-V2 and the ZCU102 through
one exporter, and ResNet's residual Adds run in their convs' output stage on the engine, C-simulated
bit-exact."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.codegen import random_frames
from support.engine import check_engine
from support.shufflenet import shufflenet_features
from support.torchvision_models import exported

from hwcodesign.backends import emit_project
from hwcodesign.boards import load_board
from hwcodesign.flows.simulate import map_and_simulate
from hwcodesign.hardware.engine.config import EngineConfig
from hwcodesign.mapper.engine.program import instructions
from hwcodesign.mapper.engine_map import fixed_engine_mapping
from hwcodesign.partition import load_partitioned
from hwcodesign.passes import optimize

# Every model mapped and simulated on both boards (`auto`), through one exporter each (both give the
# same layers: the accuracy test above loads every pair): the pipeline where it fits (ShuffleNet,
# SqueezeNet, MobileNetV2/V3 on the ZCU102), the layer-sequential engine elsewhere (lookup tables,
# squeeze-excitation products, lookup means, channel gathers).
SIMULATED = [("resnet18", "dynamo"), ("resnet50", "torchscript"), ("mobilenet_v2", "torchscript"),
             ("mobilenet_v3_small", "dynamo"), ("shufflenet_v2_x0_5", "torchscript"), ("squeezenet1_1", "dynamo"),
             ("efficientnet_b0", "dynamo"), ("regnet_x_400mf", "torchscript"), ("googlenet", "dynamo"),
             ("densenet121", "torchscript"), ("vgg11", "dynamo")]



@pytest.mark.parametrize(("name", "exporter"), SIMULATED)
@pytest.mark.parametrize("board", ["ultra96v2", "zcu102"])
def test_maps_and_simulates(name: str, exporter: str, board: str) -> None:
    _, graph = load_partitioned(exported(name, exporter).model)
    mapping, latency, _ = map_and_simulate(optimize(graph), load_board(board), time_limit=10)
    assert latency.fps > 0 and mapping.board.name == board


def test_resnet_residual_adds_run_in_their_convs_output_stage(tmp_path: Path) -> None:
    """Every residual Add of ResNet-18 and ResNet-50 is fused into the conv producing one of its
    inputs (`fuse_residual_adds`: the other is in DDR by then, the downsample conv when a block has
    one, since torch runs it after conv3), so the pixel unit runs no Add. ResNet-18 on a PP4
    engine, two frames in one run: C simulation == golden on every element, and the loops it ran
    == the cost model's."""
    for name, exporter, blocks in (("resnet18", "dynamo", 8), ("resnet50", "torchscript", 16)):
        _, graph = load_partitioned(exported(name, exporter).model)
        graph = optimize(graph)
        program = instructions(graph)
        assert len([op for op in graph if op.kind == "Add"]) == blocks, name
        assert not any(i.mode == "add" for i in program), name
        fused = [i for i in program if i.residual is not None]
        assert len(fused) == blocks and all(i.destination.tensor is i.residual.op.output for i in fused), name
    _, graph = load_partitioned(exported("resnet18", "dynamo").model)
    graph = optimize(graph)
    mapping = fixed_engine_mapping(graph, load_board("kv260"), EngineConfig(16, 16, 4, 4, 512, pp=4), batch=2)
    project = emit_project(graph, mapping, tmp_path / "resnet18")
    check_engine(graph, project, mapping, random_frames(graph, 2, seed=7), "resnet18 residual adds fused")


def test_shufflenet_runs_on_the_engine_bit_exactly(tmp_path: Path) -> None:
    """torchvision's ShuffleNetV2 x0.5 (both exporters give the same layers; TorchScript here) on the
    layer-sequential engine: its channel split, shuffle and concatenation as pixel-unit gathers,
    composed (`compose_gathers`) into at most two per unit; C simulation == golden on every
    element, the loops the cost model's."""
    _, graph = load_partitioned(shufflenet_features("torchscript"))
    graph = optimize(graph)
    program = instructions(graph, 128)
    gathers = [i for i in program if i.mode == "gather"]
    units = len([op for op in graph if op.kind == "ChannelPermute"])
    assert units == 16 and len(gathers) <= 2 * units and all(i.route is not None for i in gathers
                                                              if i.op.kind == "ChannelSlice")
    mapping = fixed_engine_mapping(graph, load_board("ultra96v2"), EngineConfig(16, 16, 4, 4, 1024, word_bits=128))
    project = emit_project(graph, mapping, tmp_path / "shufflenet")
    check_engine(graph, project, mapping, random_frames(graph, 2, seed=3), "shufflenet_v2_x0_5 on the engine")
