"""Channel re-routing (the route family): what its lowering takes and what it refuses by name,
and a re-routing onto another grid, which becomes a real output stage."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from support.compare import compare_with_onnxruntime
from support.onnx_models import GraphBuilder
from support.op_cases import SHAPE, build, shuffle

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.passes import PassOptions, load_onnx, optimize
from hwcodesign.quantize import quantize_qdq


def quantized(make, seed: int = 0, opset: int = 17) -> onnx.ModelProto:  # noqa: ANN001
    b = GraphBuilder(seed)
    out = make(b, b.input(SHAPE))
    samples = [np.random.default_rng(seed + 1).normal(0, 1, SHAPE).astype(np.float32) for _ in range(8)]
    return quantize_qdq(b.model([out], opset=opset), samples)


def inputs(count: int = 10) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.normal(0, 1, SHAPE).astype(np.float32) for _ in range(count)]


def test_the_shuffle_needs_its_pass() -> None:
    model, calibration = build("channel_shuffle_g2")
    with pytest.raises(UnsupportedModelError, match=r"\(op Reshape\).*would reorder the stream"):
        load_onnx(quantize_qdq(model, calibration), PassOptions(frozenset({"recognize-channel-shuffle"})))


@pytest.mark.parametrize(("make", "match"), [
    (lambda b, x: b.node("Transpose", [b.conv(x, 4, 8)], perm=[0, 1, 3, 2]),
     r"\(op Transpose\): only the Transpose\(0, 2, 1, 3, 4\) of a channel shuffle"),
    (lambda b, x: b.node("Slice", [b.conv(x, 4, 8), *(b.const(np.array([v], np.int64)) for v in (0, 8, 1, 2))]),
     r"\(op Slice\): channel step 2"),
    (lambda b, x: b.node("Slice", [b.conv(x, 4, 8), *(b.const(np.array([v], np.int64)) for v in (1, 5, 2, 1))]),
     r"\(op Slice\): slices axis 2"),
    (lambda b, x: b.node("Gather", [b.conv(x, 4, 6, k=1), b.const(np.array([0, 0, 2], np.int64))], axis=1),
     r"\(op Gather\): indices neither permute the channels nor select a contiguous range"),
    # a shuffle whose Transpose also swaps H and W is no channel permutation
    (lambda b, x: b.node("Reshape", [b.node("Transpose", [b.node("Reshape", [
        b.conv(x, 4, 8, pads=[1, 1, 1, 1]), b.const(np.array([1, 2, 4, 12, 12], np.int64))])], perm=[0, 2, 1, 4, 3]),
        b.const(np.array([1, 8, 12, 12], np.int64))]),
     r"\(op Reshape\).*would reorder the stream"),
])
def test_other_routings_are_refused_by_name(make, match: str) -> None:  # noqa: ANN001
    with pytest.raises(UnsupportedModelError, match=match):
        load_onnx(quantized(make))


def test_a_split_along_rows_is_refused() -> None:
    def make(b: GraphBuilder, x: str) -> str:
        top, bottom = b.name("split"), b.name("split")
        b.nodes.append(onnx.helper.make_node("Split", [b.conv(x, 4, 8, pads=[1, 1, 1, 1])], [top, bottom],
                                             name="rows", axis=2, num_outputs=2))
        return b.node("Add", [top, bottom])
    with pytest.raises(UnsupportedModelError, match=r"'rows' \(op Split\): split along axis 2; only channels"):
        load_onnx(quantized(make, opset=18))


def test_a_dynamo_split_into_equal_parts_and_a_shuffle_of_four_groups() -> None:
    """Split by num_outputs (opset 18, what the dynamo exporter writes), then the two halves
    concatenated back in the other order and shuffled in four groups."""
    def make(b: GraphBuilder, x: str) -> str:
        left, right = b.name("split"), b.name("split")
        b.nodes.append(onnx.helper.make_node("Split", [b.node("Relu", [b.conv(x, 4, 8, pads=[1, 1, 1, 1])])],
                                             [left, right], name="halves", axis=1, num_outputs=2))
        return shuffle(b, b.node("Concat", [right, left], axis=1), 8, 4)
    model = quantized(make, seed=3, opset=18)
    graph = optimize(load_onnx(model))
    assert [op.kind for op in graph].count("ChannelSlice") == 2
    assert [op.kind for op in graph].count("ChannelPermute") == 1
    assert compare_with_onnxruntime(model, inputs()).max_lsb == 0


def test_a_slice_onto_another_grid_requantizes() -> None:
    model, calibration = build("slice_channels")
    model = quantize_qdq(model, calibration)
    slice_out = next(node for node in model.graph.node if node.op_type == "Slice").output[0]
    quantizer = next(node for node in model.graph.node if node.op_type == "QuantizeLinear" and node.input[0] == slice_out)
    dequantizer = next(node for node in model.graph.node if node.op_type == "DequantizeLinear"
                       and node.input[0] == quantizer.output[0])
    scale = next(numpy_helper.to_array(init) for init in model.graph.initializer if init.name == quantizer.input[1])
    model.graph.initializer.append(numpy_helper.from_array((scale * 1.7).astype(scale.dtype), "slice_scale"))
    quantizer.input[1] = dequantizer.input[1] = "slice_scale"
    graph = optimize(load_onnx(model))
    (routed,) = [op for op in graph if op.kind == "ChannelSlice"]
    assert not routed.requant.is_identity()
    assert compare_with_onnxruntime(model, inputs(), graph=graph).max_lsb <= 1
