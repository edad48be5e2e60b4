"""torchvision's classifiers as a user gets them: each through both of torch's exporters, quantized
by onnxruntime's `quantize_static` with its defaults (`support/torchvision_models.py`).

For every (model, exporter) pair (VGG-11 at 224x224, the others at 64x64): the golden model is within 1 LSB of
onnxruntime on every layer fed onnxruntime's own inputs (`isolated`); the whole golden model's
output difference (`chained`, it compounds through the layers) stays within the bound measured
here; the argmax agrees on random images (mapping and simulating them on boards:
test_torchvision_mapping.py). VGG-11 at 64x64 (its adaptive pool upsampling a 2x2 map) is refused
naming the ops. benchmarks/torchvision_matrix.py prints the matrix with fps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.codegen import random_frames
from support.engine import check_engine
from support.layerwise import chained_differences, isolated_differences, quantized_tensors
from support.torchvision_models import EXPORTERS, MODELS, exported

from hwcodesign.backends import emit_project
from hwcodesign.boards import load_board
from hwcodesign.errors import HwcodesignError
from hwcodesign.hardware.engine.config import EngineConfig
from hwcodesign.mapper.engine.program import instructions
from hwcodesign.mapper.engine_map import fixed_engine_mapping
from hwcodesign.partition import load_partitioned
from hwcodesign.passes import optimize
from hwcodesign.sim.golden import run_golden

CHAINED_LSB_BOUND = 32  # the largest compounded difference of any layer measured over the matrix
PAIRS = [(model, exporter) for model in MODELS for exporter in EXPORTERS]  # each at its size (SIZES)
VGG_AT_64_REFUSED = {"Transpose", "GatherND", "Gather", "Where", "Div"}
"""What dynamo writes for VGG-11's adaptive pool of a 2x2 map to 7x7 (64x64 input), refused until
an adaptive pool that upsamples is built; TorchScript cannot export it at that size at all."""
def refused_op_types(error: HwcodesignError) -> set[str]:
    """The op types a refusal names ("node 'n' (op T): ...", one line per node)."""
    return {part.split(")")[0] for part in str(error).split("(op ")[1:]}


@pytest.mark.parametrize(("name", "exporter"), PAIRS)
def test_within_one_lsb_per_layer_of_onnxruntime(name: str, exporter: str) -> None:
    model = exported(name, exporter)
    partition, graph = load_partitioned(model.model)
    graph = optimize(graph)
    feeds = [{"image": model.images[i:i + 1]} for i in range(len(model.images))]
    reference = quantized_tensors(model.model, feeds)
    isolated = isolated_differences(graph, reference)
    assert max(d.max_lsb for d in isolated) <= 1, "\n".join(d.row() for d in isolated if d.max_lsb > 1)
    chained = chained_differences(graph, reference)
    assert max(d.max_lsb for d in chained) <= CHAINED_LSB_BOUND
    outputs = run_golden(graph, {graph.inputs[0].name: reference[graph.inputs[0].output.name]})
    golden = outputs[graph.outputs[0]].reshape(len(feeds), -1)
    onnxruntime = reference[graph.outputs[0]].reshape(len(feeds), -1)
    agree = np.mean(golden.argmax(axis=1) == onnxruntime.argmax(axis=1))
    assert agree >= 0.75, f"argmax agrees on {agree:.0%} of the frames"


def test_vgg11_at_64_is_refused_naming_its_adaptive_pool_arithmetic() -> None:
    with pytest.raises(HwcodesignError) as error:
        load_partitioned(exported("vgg11", "dynamo", size=64).model)
    assert refused_op_types(error.value) <= VGG_AT_64_REFUSED, str(error.value)


def test_squeezenet_on_the_engine_writes_its_fire_modules_in_place(tmp_path: Path) -> None:
    """In each of SqueezeNet's 8 fire modules onnxruntime's quantizer gives the Concat the scale of
    one of its two inputs, so that part only copies: on the engine its expand conv writes straight
    into its place in the concatenation's pixels and that copy never runs; the other part
    rescales and stays. Two frames in one run: C simulation == golden on every element, and the
    loops it ran == the cost model's."""
    _, graph = load_partitioned(exported("squeezenet1_1", "dynamo").model)
    graph = optimize(graph)
    program = instructions(graph)
    parts = [i for i in program if i.op.kind == "Concat"]
    assert len([op for op in graph if op.kind == "Concat"]) == 8
    assert len({i.op.name for i in parts}) == len(parts) == 8  # one part left of each
    assert not any(i.op.input_requants[i.part].is_identity() for i in parts)
    assert len([i for i in program if i.destination and i.destination.tensor.name in {p.op.output.name for p in parts}]) == 8
    mapping = fixed_engine_mapping(graph, load_board("ultra96v2"), EngineConfig(16, 16, 4, 4, 512), batch=2)
    project = emit_project(graph, mapping, tmp_path / "squeezenet")
    check_engine(graph, project, mapping, random_frames(graph, 2, seed=5), "squeezenet1_1 in place")
