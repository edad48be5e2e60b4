"""Pointwise convs that run pixel by pixel: the frame viewed as H*W rows of one pixel, so the
ring holds two pixels instead of two rows. Bit-exact in C simulation, and priced as such."""

from __future__ import annotations

import numpy as np
from support.codegen import assert_bit_exact, random_frames
from support.onnx_models import GraphBuilder

from hwcodesign.backends import emit_project
from hwcodesign.boards import load_board
from hwcodesign.hardware.folding import Folding
from hwcodesign.hardware.stage_cost import ring_buffer
from hwcodesign.ir.graph import Graph
from hwcodesign.mapper.cost import layer_cost, stage_plan
from hwcodesign.mapper.ilp import fixed_mapping
from hwcodesign.ops.conv.dataflow import PIXEL_RING_MIN_STEPS, pixel_ring
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.quantize import quantize_qdq

SHAPE = (1, 4, 12, 12)


def pointwise_graph() -> Graph:
    b = GraphBuilder(5)
    x = b.input(SHAPE)
    y = b.node("Relu", [b.conv(x, 4, 16, pads=[1, 1, 1, 1])])
    out = b.node("Relu", [b.conv(y, 16, 16, k=1)])
    rng = np.random.default_rng(2)
    samples = [rng.normal(0, 1, SHAPE).astype(np.float32) for _ in range(16)]
    return optimize(load_onnx(quantize_qdq(b.model([out]), samples)))


def pointwise(graph: Graph):
    return next(op for op in graph if op.kind == "Conv" and op.kernel == (1, 1))


def test_pixel_ring_only_for_long_pointwise_pixels() -> None:
    graph = pointwise_graph()
    op = pointwise(graph)
    source = graph.input_tensors(op)[0]
    assert 16 * 16 >= PIXEL_RING_MIN_STEPS
    assert pixel_ring(op, Folding(1, 1), source)
    assert not pixel_ring(op, Folding(16, 16), source)  # one step per pixel: the row ring
    three = next(o for o in graph if o.kind == "Conv" and o.kernel == (3, 3))
    assert not pixel_ring(three, Folding(1, 1), graph.input_tensors(three)[0])


def test_pixel_ring_costs_two_pixels_and_a_ramp_per_pixel() -> None:
    graph = pointwise_graph()
    op = pointwise(graph)
    source = graph.input_tensors(op)[0]
    plan = stage_plan(op, [source], Folding(1, 1))
    assert plan.pixel_ring and plan.ring_rows == 2 and plan.held_rows == 1
    rows = ring_buffer(plan.ring_rows, source.shape[3], source, 1)
    pixels = ring_buffer(plan.ring_rows, 1, source, 1)
    assert rows.bram18k >= 1 and pixels.bram18k == 0 and pixels.lut < 64  # 2 x 16 centred values in LUTRAM
    cost = layer_cost(op, [source], Folding(1, 1))
    assert cost.cycles > 12 * 12 * 16 * 16  # the compute plus one pipeline ramp per pixel


def test_pixel_ring_stage_is_bit_exact(tmp_path) -> None:
    graph = pointwise_graph()
    op = pointwise(graph)
    mapping = fixed_mapping(graph, load_board("ultra96v2"), {op.name: Folding(1, 2)})  # 128 steps per pixel
    project = emit_project(graph, mapping, tmp_path / "pointwise")
    configs = [p.read_text() for p in sorted((project.root / "hls" / "params").glob("*.h"))]
    config = next(text for text in configs if "IN_W = 1;" in text)
    assert "RING_ROWS = 2;" in config and "IN_H = 144;" in config
    assert_bit_exact(graph, project, random_frames(graph, 6, seed=4), "pixel ring")
