"""The bundled example models and multi-stream structures: C simulation == golden, bit for bit.

Inputs: 12 frames drawn from the examples' synthetic task (real images the models were
trained on) plus 12 frames of uniform integers over the input type, 24 in all per model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.codegen import assert_bit_exact, build_all, random_frames, variant_mapping, widest_folding
from support.examples import build_models_module
from support.onnx_models import GraphBuilder

from hwcodesign.backends import emit_project
from hwcodesign.backends.dataflow import map_pipeline
from hwcodesign.boards import load_board
from hwcodesign.codegen.project import Project
from hwcodesign.ir.graph import Graph
from hwcodesign.mapper.cost import candidate_foldings
from hwcodesign.mapper.ilp import fixed_mapping
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.quantize import quantize_qdq
from hwcodesign.sim.golden import quantize_input

TASK_FRAMES = 12
NOISE_FRAMES = 12


def task_frames(graph: Graph) -> np.ndarray:
    images, _ = build_models_module().synthetic_samples(TASK_FRAMES, stream=9)
    return quantize_input(graph, images)


@pytest.fixture(scope="module")
def example_projects(example_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Graph, Project]]:
    root = tmp_path_factory.mktemp("example_projects")
    board = load_board("ultra96v2")
    projects = {}
    for key in ("w8a8", "w4a8", "cnv"):
        graph = optimize(load_onnx(example_models[key]))
        projects[key] = (graph, emit_project(graph, map_pipeline(graph, board), root / key))
    # the 4-bit CNV at other stream widths, and with every MAC built from LUTs, fully parallel
    graph = projects["cnv"][0]
    for word_bits in (32, 128):
        projects[f"cnv_{word_bits}"] = (graph, emit_project(graph, map_pipeline(graph, board), root / f"cnv{word_bits}",
                                                            word_bits=word_bits))
    lut = {op.name: widest_folding(graph, op.name, mac="lut") for op in graph
           if any(f.mac == "lut" for f in candidate_foldings(op, graph.input_tensors(op)))}
    assert len(lut) >= 2
    projects["cnv_lut"] = (graph, emit_project(graph, fixed_mapping(graph, board, lut), root / "cnv_lut"))
    build_all([project for _, project in projects.values()])
    return projects


@pytest.mark.parametrize("key", ["w8a8", "w4a8", "cnv", "cnv_32", "cnv_128", "cnv_lut"])
def test_example_model_csim_equals_golden(example_projects: dict[str, tuple[Graph, Project]], key: str) -> None:
    graph, project = example_projects[key]
    frames = np.concatenate([task_frames(graph), random_frames(graph, NOISE_FRAMES, seed=3)])
    assert frames.shape[0] == TASK_FRAMES + NOISE_FRAMES
    assert_bit_exact(graph, project, frames, key)


def test_stream_widths_change_the_packing(example_projects: dict[str, tuple[Graph, Project]]) -> None:
    for bits, key in ((32, "cnv_32"), (64, "cnv"), (128, "cnv_128")):
        project = example_projects[key][1]
        assert f"typedef ap_axiu<{bits}, 0, 0, 0> hwc_word_t;" in (project.root / "hls/top.h").read_text()
        for port in project.inputs + project.outputs:
            tensor = port.tensor
            pixels, pixel_bits = tensor.shape[2] * tensor.shape[3], tensor.channels * tensor.dtype.bits
            if 2 * pixel_bits <= bits:  # whole pixels share a word (CNV's RGB input in 64 and 128 bits)
                words = -(-pixels // (bits // pixel_bits))
            else:
                words = -(-tensor.channels // (bits // tensor.dtype.bits)) * pixels
            assert port.layout.words_per_frame == words
            assert port.layout.bytes_per_frame == words * bits // 8
        assert project.inputs[0].layout.pixels_per_word == {32: 1, 64: 2, 128: 5}[bits]  # 24-bit RGB pixels
    layers = example_projects["cnv_lut"][1].root / "hls/layers"
    assert "hwc_lane_mac<C>(" in (layers / "hwc_conv.h").read_text()
    assert "hwc_multiplier<(C::LUT_MACS != 0)>" in (layers / "hwc_common.h").read_text()  # the lane's multipliers
    params = "".join(p.read_text() for p in (example_projects["cnv_lut"][1].root / "hls/params").glob("*.h"))
    assert "LUT_MACS = 1" in params


def branching_model() -> tuple[object, list[np.ndarray]]:
    """A tensor read four ways (two convs, a pool and an output port), a three-way concat, two outputs."""
    b = GraphBuilder(seed=5)
    x = b.input((1, 3, 10, 10))
    trunk = b.node("Relu", [b.conv(x, 3, 6, pads=[1, 1, 1, 1])])
    left = b.node("Relu", [b.conv(trunk, 6, 4, k=1)])
    right = b.conv(trunk, 6, 5, pads=[1, 1, 1, 1], strides=[2, 2])
    right_up = b.node("Resize", [right, "", b.const(np.array([1, 1, 2, 2], np.float32))], mode="nearest",
                      coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    pooled = b.node("MaxPool", [trunk], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
    joined = b.node("Concat", [left, right_up, pooled], axis=1)
    head = b.conv(joined, 15, 7, k=1)
    rng = np.random.default_rng(11)
    samples = [rng.normal(0, 1, (1, 3, 10, 10)).astype(np.float32) for _ in range(16)]
    return b.model([head, trunk]), samples


@pytest.mark.parametrize("variant", ["serial", "parallel", "mapped"])
def test_fanout_concat_and_two_outputs(tmp_path: Path, variant: str) -> None:
    model, samples = branching_model()
    graph = optimize(load_onnx(quantize_qdq(model, samples)))
    assert len(graph.outputs) == 2
    assert any(len(op.inputs) == 3 for op in graph if op.kind == "Concat")
    project = emit_project(graph, variant_mapping(graph, load_board("zcu104"), variant), tmp_path / "branching")
    assert [p.port for p in project.outputs] == ["out0", "out1"]
    top = (project.root / "hls/top.cpp").read_text()
    assert top.count("hwc_fanout2<") >= 3  # four readers of the trunk
    assert top.count("hwc_concat2<") == 2  # a three-way concat is a chain of two
    assert_bit_exact(graph, project, random_frames(graph, 20, seed=1), f"branching/{variant}")
