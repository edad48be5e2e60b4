"""Folded streams: words of PE channels between stages, re-folding converters where a reader
takes another width. Checked bit-exact in C simulation with widths that do not divide each other
(3 -> 4, 4 -> 6, 6 -> whole pixels), and the converter's schedule against its definition."""

from __future__ import annotations

import numpy as np
import pytest
from support.codegen import assert_bit_exact, random_frames
from support.onnx_models import GraphBuilder

from hwcodesign.backends import emit_project
from hwcodesign.boards import load_board
from hwcodesign.codegen.hls_top import refold_steps
from hwcodesign.hardware.folding import Folding
from hwcodesign.hardware.stream import stream_fifo_depth
from hwcodesign.ir.graph import Graph
from hwcodesign.mapper.cost import stage_plan
from hwcodesign.mapper.ilp import fixed_mapping
from hwcodesign.mapper.streams import refold_cost
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.quantize import quantize_qdq

SHAPE = (1, 4, 10, 10)


def mixed_width_graph() -> Graph:
    """conv 4->12, then a 3x3 conv 12->12 and a 1x1 conv 12->12 added (a fan-out and a join),
    and a concat of the sum with the first conv's output."""
    b = GraphBuilder(7)
    x = b.input(SHAPE)
    first = b.node("Relu", [b.conv(x, 4, 12, pads=[1, 1, 1, 1])])
    left = b.node("Relu", [b.conv(first, 12, 12, pads=[1, 1, 1, 1])])
    right = b.conv(first, 12, 12, k=1)
    total = b.node("Relu", [b.node("Add", [left, right])])
    out = b.node("Concat", [total, first], axis=1)
    rng = np.random.default_rng(3)
    samples = [rng.normal(0, 1, SHAPE).astype(np.float32) for _ in range(16)]
    return optimize(load_onnx(quantize_qdq(b.model([out]), samples)))


def pinned_foldings(graph: Graph) -> dict[str, Folding]:
    """PE 3 on the first conv; SIMD 4 (reads words of 4) and PE 4 on the 3x3 conv; PE 6 on
    the 1x1 conv; PE 2 on the add (reads words of 2); PE 6 on the concat."""
    convs = [op for op in graph if op.kind == "Conv"]
    first, three, one = convs[0], next(c for c in convs[1:] if c.kernel == (3, 3)), next(c for c in convs[1:] if c.kernel == (1, 1))
    add = next(op for op in graph if op.kind == "Add")
    concat = next(op for op in graph if op.kind == "Concat")
    return {first.name: Folding(3, 1), three.name: Folding(4, 4), one.name: Folding(6, 12),
            add.name: Folding(2, 1), concat.name: Folding(6, 1)}


@pytest.mark.parametrize(("lanes_in", "lanes_out"), [(a, b) for a in (1, 2, 3, 4, 6, 12) for b in (1, 2, 3, 4, 6, 12) if a != b])
def test_refold_schedule_moves_every_channel_at_one_word_per_cycle(lanes_in: int, lanes_out: int) -> None:
    words_in = 5 * 12 // lanes_in
    steps = refold_steps(words_in, lanes_in, lanes_out)
    words_out = words_in * lanes_in // lanes_out
    # one word in and one out per cycle at most, and the buffer never stalls both sides
    assert max(words_in, words_out) <= steps <= max(words_in, words_out) + 2


def test_mismatched_widths_get_converters_and_stay_bit_exact(tmp_path) -> None:
    graph = mixed_width_graph()
    board = load_board("ultra96v2")
    mapping = fixed_mapping(graph, board, pinned_foldings(graph))
    project = emit_project(graph, mapping, tmp_path / "mixed")
    top = (project.root / "hls" / "top.cpp").read_text()
    # 3 -> 4 (first conv into the 3x3 conv), 3 -> 12 (into the 1x1 conv), 4 -> 2 and 6 -> 2 (into
    # the add), 2 -> 6 and 3 -> 6 (into the concat), 6 -> 24 (whole pixels to the output port)
    for pair in ("3, 4,", "3, 12,", "4, 2,", "6, 2,", "2, 6,", "3, 6,", "6, 24,"):
        assert f"hwc_refold<ap_uint<8>, {pair}" in top or f"hwc_refold<ap_int<8>, {pair}" in top, pair
    lut, ff = refold_cost(graph, mapping.foldings)
    assert lut > 0 and ff > 0
    assert_bit_exact(graph, project, random_frames(graph, 6, seed=11), "mixed widths")


def test_lanes_follow_the_folding() -> None:
    graph = mixed_width_graph()
    foldings = pinned_foldings(graph)
    for op in graph:
        folding = foldings.get(op.name, Folding())
        if op.kind == "Input":
            assert stage_plan(op, graph.input_tensors(op), folding).output_lanes == op.output.channels
        else:
            assert stage_plan(op, graph.input_tensors(op), folding).output_lanes == folding.pe
    three = next(op for op in graph if op.kind == "Conv" and op.kernel == (3, 3) and op.output.channels == 12
                 and graph.input_tensors(op)[0].channels == 12)
    assert stage_plan(three, graph.input_tensors(three), foldings[three.name]).input_lanes == (4,)


def test_fifo_depth_is_whole_rows_of_words() -> None:
    tensor = mixed_width_graph().inputs[0].output
    assert stream_fifo_depth(2, tensor, 2) == 2 * SHAPE[3] * (SHAPE[1] // 2)
    assert stream_fifo_depth(0, tensor, 4) == 2
