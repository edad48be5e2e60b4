"""CoDeNet as the paper's configurations run it (examples/codenet/paper.py), exported by torch
and quantized by `hwcodesign quantize`, at 64x64 (the same layers and channels as 256x256, a
sixteenth of the pixels): ShuffleNetV2 1.0x with channel split, shuffle and concatenation, three
decoder stages of integer square offsets, CenterNet heads, the first layer on the host.

Checked: the network is the paper's (parameters, layers, no residual Add, the first layer on the
host, int8 symmetric activations); the golden model's heads equal onnxruntime's run of the QDQ
model within 1 LSB; the layer-sequential engine on the Ultra96-V2 runs the detector bit-exactly
in C simulation (its routing as pixel-unit gathers), each instruction's loops the cost model's.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from support.engine import check_engine
from support.examples import load_script
from support.layerwise import chained_differences, quantized_tensors, table

from hwcodesign.flows.compile import compile_model
from hwcodesign.mapper.engine.program import instructions
from hwcodesign.ops import DeformConv
from hwcodesign.partition import load_partitioned
from hwcodesign.passes import optimize
from hwcodesign.reference import Reference

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
paper = load_script(Path(__file__).resolve().parents[2] / "examples" / "codenet" / "paper.py", "codenet_paper")

SIZE = 64
SCENES = 2


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    root = tmp_path_factory.mktemp("codenet_paper")
    return {configuration: paper.build_paper(root, configuration, SIZE) for configuration in ("a", "b")}


def test_the_network_is_the_papers(built: dict[str, dict[str, Path]]) -> None:
    """1.58 M parameters: the paper's 6.06 MB in float32 within 1% (its BatchNorms' gains and shifts,
    folded into the convs here, are the difference); 48 convs, 22 depthwise, 3 deformable
    with integer offsets in [0, 7]; 16 units of split/concatenate/shuffle and no residual Add; the
    first layer (with configuration b's max pool) on the host, 24 channels at a quarter of the input."""
    assert sum(p.numel() for p in paper.CoDeNet("a").parameters()) * 4 / 2**20 == pytest.approx(6.06, rel=0.01)
    for configuration, first in (("a", ["Conv", "Relu"]), ("b", ["Conv", "Relu", "MaxPool"])):
        partition, graph = load_partitioned(built[configuration]["w4a8"])
        graph = optimize(graph)
        assert [node.op_type for node in partition.pre.graph.node] == first
        assert graph.inputs[0].output.shape == (1, 24, SIZE // 4, SIZE // 4)
        kinds = Counter(op.kind for op in graph)
        assert (kinds["Conv"], kinds["DepthwiseConv"], kinds["DeformConv"]) == (48, 22, 3)
        assert (kinds["Concat"], kinds["ChannelPermute"], kinds["Add"]) == (16, 16, 0)
        deforms = [op for op in graph if isinstance(op, DeformConv)]
        assert all(op.integer_offsets and op.fixed_shape and op.offset_range == paper.OFFSET_BOUND for op in deforms)
        assert [op.output.channels for op in deforms] == [1024, 256, 128]
        assert [graph.tensor(name).shape[1] for name in graph.outputs] == list(paper.HEADS.values())
        activations = {str(op.output.dtype) for op in graph}
        assert activations == {"int8", "uint8"}  # symmetric int8, and the offsets on the integers 0..N
        assert {op.output.zero_point for op in graph} == {0}


def test_the_golden_model_equals_onnxruntime(built: dict[str, dict[str, Path]]) -> None:
    """Run from the quantized first-layer output, the golden model's three heads equal onnxruntime's
    run of the QDQ model (optimisations off) within 1 LSB, on two scenes (measured: equal). Layer by
    layer the names do not line up: with symmetric activations onnxruntime quantizes a conv's
    output before its ReLU and again after it, on the same grid, and the IR's conv, which clamps
    at zero itself, keeps the first quantizer's name."""
    model = onnx.load(str(built["a"]["w4a8"]))
    _, graph = load_partitioned(model)
    graph = optimize(graph)
    assert {str(graph.tensor(name).dtype) for name in graph.outputs} == {"int8"}
    images = paper.scenes.synthetic_scenes(SCENES, seed=0, stream=7, size=SIZE)[0]
    reference = quantized_tensors(model, [{"input": images[i:i + 1]} for i in range(SCENES)])
    offsets = [reference[node.output[0]] for node in model.graph.node if node.op_type == "Round"]
    # the offsets spread over [0, N] (a stage at 2x2 pixels has few values of its own)
    assert len(offsets) == 3 and all(len(np.unique(s)) >= 3 for s in offsets)
    assert set(np.unique(np.concatenate([s.ravel() for s in offsets]))) == set(range(paper.OFFSET_BOUND + 1))
    outputs = [d for d in chained_differences(graph, reference) if d.tensor in graph.outputs]
    assert len(outputs) == 3 and all(d.max_lsb <= 1 for d in outputs), table(outputs)
    assert all(d.high > d.low for d in outputs)


def test_the_engine_runs_it_bit_exactly(built: dict[str, dict[str, Path]], tmp_path: Path) -> None:
    result = compile_model(built["b"]["w4a8"], "ultra96v2", tmp_path / "codenet_b", architecture="sequential")
    program = instructions(result.graph, result.mapping.config.word_bits)
    # each unit's halves read the previous unit's two parts (or its Concat's words) through the
    # Concat and the shuffle (`compose_gathers`): 54 gathers composed into at most two per unit
    gathers = [instruction for instruction in program if instruction.mode == "gather"]
    assert all(instruction.route is not None for instruction in gathers if instruction.op.kind == "ChannelSlice")
    assert 2 * 13 < len(gathers) <= 2 * 16
    assert not any(instruction.mode == "add" for instruction in program)
    images = paper.scenes.synthetic_scenes(SCENES, seed=1, stream=9, size=SIZE)[0]
    partition, _ = load_partitioned(built["b"]["w4a8"])
    first_layer = Reference(partition.pre).frames(images)  # the host's conv, ReLU and max pool, in float
    frames = result.graph.inputs[0].output.quantize(first_layer)
    check_engine(result.graph, result.project, result.mapping, frames, "CoDeNet b on the Ultra96-V2 engine")
