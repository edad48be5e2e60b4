"""`pack-input-window`: the rewritten graph computes exactly the original's integers on every
frame, for the first-layer shapes CNNs use, signed and unsigned inputs off zero."""

from __future__ import annotations

import numpy as np
import pytest

from hwcodesign.ir.graph import Graph
from hwcodesign.ir.op import Input
from hwcodesign.ir.requant import make_requant
from hwcodesign.ir.types import IntType, Tensor
from hwcodesign.ops import Act
from hwcodesign.ops.conv.ir import Conv
from hwcodesign.passes.input_window import pack_input_window
from hwcodesign.sim.golden import quantize_input, run_golden

# (kernel, stride, pads top/left/bottom/right, dilation)
SHAPES = {
    "7x7/2 pad 3": ((7, 7), (2, 2), (3, 3, 3, 3), (1, 1)),
    "3x3/1 pad 1": ((3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    "3x3/2 pad 1": ((3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    "asymmetric 3x5/(1,2) pads 0,2,2,1 dilation (2,1)": ((3, 5), (1, 2), (0, 2, 2, 1), (2, 1)),
}
INPUTS = {"unsigned zp 128": (IntType(8, False), 128), "signed zp -7": (IntType(8, True), -7)}


def first_layer_graph(kernel, stride, pads, dilation, dtype: IntType, zero_point: int, seed: int) -> Graph:
    """Input (3 channels, 17x19) -> Conv -> Relu-clamped requant -> a second 3x3 Conv: the
    rewrite must leave the layer after the first untouched."""
    rng = np.random.default_rng(seed)
    x = Tensor("x", (1, 3, 17, 19), dtype, 0.02, zero_point)
    probe = Conv("c1", ("x",), Tensor("y", (1, 8, 1, 1), IntType(8, False), 0.05, 3),
                 np.zeros((8, 3, *kernel), np.int64), IntType(8, True), np.zeros(8, np.int64), stride, pads, dilation, 1,
                 make_requant(np.full(8, 0.004), 3, 0, 255))
    _, _, oh, ow = probe.output_shape([x.shape])
    y = Tensor("y", (1, 8, oh, ow), IntType(8, False), 0.05, 3)
    first = Conv("c1", ("x",), y, rng.integers(-128, 128, (8, 3, *kernel)), IntType(8, True),
                 rng.integers(-3000, 3000, 8), stride, pads, dilation, 1, make_requant(rng.uniform(0.001, 0.01, 8), 3, 0, 255))
    z = Tensor("z", (1, 4, oh, ow), IntType(8, True), 0.1, 0)
    second = Conv("c2", ("y",), z, rng.integers(-128, 128, (4, 8, 3, 3)), IntType(8, True), np.zeros(4, np.int64),
                  (1, 1), (1, 1, 1, 1), (1, 1), 1, make_requant(rng.uniform(0.001, 0.01, 4), 0, -128, 127))
    return Graph.from_ops("first_layer", [Input("x", (), x), first, second], ["z"])


@pytest.mark.parametrize("dtype_case", INPUTS)
@pytest.mark.parametrize("shape_case", SHAPES)
def test_packed_graph_equals_original_on_every_output(shape_case: str, dtype_case: str) -> None:
    dtype, zero_point = INPUTS[dtype_case]
    graph = first_layer_graph(*SHAPES[shape_case], dtype, zero_point, seed=len(shape_case))
    packed = pack_input_window(graph)
    window = packed.inputs[0].window
    assert window is not None and packed.op("c1").kernel == (1, 1)
    assert packed.inputs[0].output.shape[1:] == (3 * np.prod(SHAPES[shape_case][0]), *graph.tensor("y").shape[2:])
    frames = np.random.default_rng(1).uniform(-4, 4, (5, 3, 17, 19)).astype(np.float32)  # clamps at both ends
    expected = run_golden(graph, quantize_input(graph, frames), keep_intermediates=True)
    actual = run_golden(packed, quantize_input(packed, frames), keep_intermediates=True)
    for name in ("y", "z"):
        assert np.array_equal(actual[name], expected[name]), f"{shape_case}, {dtype_case}: '{name}' differs"


def test_padding_is_the_input_zero_point() -> None:
    graph = pack_input_window(first_layer_graph(*SHAPES["3x3/1 pad 1"], IntType(8, True), -7, seed=0))
    columns = graph.inputs[0].from_frames(np.full((1, 3, 17, 19), 50, np.int64))
    corner = columns[0, :, 0, 0].reshape(3, 3, 3)
    assert (corner[:, 0, :] == -7).all() and (corner[:, :, 0] == -7).all() and (corner[:, 1:, 1:] == 50).all()


def test_graphs_it_does_not_apply_to_are_unchanged() -> None:
    graph = first_layer_graph(*SHAPES["3x3/1 pad 1"], IntType(8, False), 128, seed=0)
    packed = pack_input_window(graph)
    assert pack_input_window(packed) is packed  # its input is packed already
    wide = Tensor("x", (1, 16, 8, 8), IntType(8, False), 0.02, 0)
    out = Tensor("y", (1, 4, 8, 8), IntType(8, False), 0.02, 0)
    conv = Conv("c", ("x",), out, np.ones((4, 16, 3, 3), np.int64), IntType(8, True), np.zeros(4, np.int64), (1, 1),
                (1, 1, 1, 1), (1, 1), 1, make_requant(np.full(4, 0.01), 0, 0, 255))
    sixteen_channels = Graph.from_ops("wide", [Input("x", (), wide), conv], ["y"])
    assert pack_input_window(sixteen_channels) is sixteen_channels
    relu = Act("r", ("x",), Tensor("r", (1, 16, 8, 8), IntType(8, False), 0.02, 0), "relu",
               make_requant(np.ones(1), 0, 0, 255))
    not_conv = Graph.from_ops("act", [Input("x", (), wide), relu], ["r"])
    assert pack_input_window(not_conv) is not_conv


def test_frames_of_another_shape_are_refused_in_one_line() -> None:
    graph = pack_input_window(first_layer_graph(*SHAPES["3x3/2 pad 1"], IntType(8, False), 128, seed=0))
    with pytest.raises(ValueError, match=r"^an input whose first-layer window is packed takes frames "
                                         r"\(N, 3, 17, 19\), got \(2, 3, 17, 18\)$"):
        graph.inputs[0].from_frames(np.zeros((2, 3, 17, 18), np.int64))
