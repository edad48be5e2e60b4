"""Graph validation catches each kind of inconsistency; passes return new graphs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from support.qdq_by_hand import conv_bn_relu_qdq

from hwcodesign.errors import GraphError
from hwcodesign.ir import Graph, Input, IntType, Tensor, identity_requant
from hwcodesign.ops import Act, Conv
from hwcodesign.passes import load_onnx, optimize

UINT8 = IntType(8, False)


def small_graph() -> tuple[Input, Conv]:
    x = Tensor("x", (1, 2, 5, 5), UINT8, 0.1, 3)
    y = Tensor("y", (1, 4, 5, 5), UINT8, 0.2, 0)
    conv = Conv("conv", ("x",), y, np.ones((4, 2, 3, 3), np.int64), IntType(8, True), np.zeros(4, np.int64),
                (1, 1), (1, 1, 1, 1), (1, 1), 1, identity_requant(4, 0, 0, 255))
    return Input("in", (), x), conv


def test_valid_graph_checks_and_iterates_in_topological_order() -> None:
    source, conv = small_graph()
    graph = Graph.from_ops("g", [conv, source], ["y"])  # order given backwards on purpose
    assert [op.name for op in graph] == ["in", "conv"]
    assert graph.consumers("x") == [conv] and graph.producer("y") is conv
    assert graph.dag.edges["in", "conv"]["tensor"].name == "x"


def test_dangling_edge() -> None:
    source, conv = small_graph()
    with pytest.raises(GraphError, match="reads tensor 'missing'"):
        Graph.from_ops("g", [source, dataclasses.replace(conv, inputs=("missing",))], ["y"])


def test_missing_output() -> None:
    source, conv = small_graph()
    with pytest.raises(GraphError, match="graph output 'nowhere'"):
        Graph.from_ops("g", [source, conv], ["nowhere"])


def test_shape_mismatch() -> None:
    source, conv = small_graph()
    wrong = dataclasses.replace(conv, output=dataclasses.replace(conv.output, shape=(1, 4, 4, 4)))
    with pytest.raises(GraphError, match="output shape"):
        Graph.from_ops("g", [source, wrong], ["y"])


def test_channel_mismatch() -> None:
    source, conv = small_graph()
    wrong = dataclasses.replace(conv, weight=np.ones((4, 3, 3, 3), np.int64))
    with pytest.raises(GraphError, match="input channels"):
        Graph.from_ops("g", [source, wrong], ["y"])


def test_type_mismatches() -> None:
    source, conv = small_graph()
    too_wide = dataclasses.replace(conv, weight=np.full((4, 2, 3, 3), 300, np.int64))
    with pytest.raises(GraphError, match="exceed their type"):
        Graph.from_ops("g", [source, too_wide], ["y"])
    clamp = dataclasses.replace(conv, requant=identity_requant(4, 0, -5, 255))
    with pytest.raises(GraphError, match="outside type uint8"):
        Graph.from_ops("g", [source, clamp], ["y"])


def test_duplicate_producer_and_cycle() -> None:
    source, conv = small_graph()
    with pytest.raises(GraphError, match="two producers"):
        Graph.from_ops("g", [source, conv, dataclasses.replace(conv, name="conv2")], ["y"])
    act = Act("act", ("y",), Tensor("x", (1, 2, 5, 5), UINT8, 0.1, 3), "identity", identity_requant(1, 3, 0, 255))
    with pytest.raises(GraphError):
        Graph.from_ops("g", [dataclasses.replace(conv, inputs=("x",)), act], ["y"])


def test_optimize_does_not_mutate_its_input() -> None:
    graph = load_onnx(conv_bn_relu_qdq())
    before = [(op.name, op.inputs, op.output) for op in graph]
    optimized = optimize(graph)
    assert [(op.name, op.inputs, op.output) for op in graph] == before
    assert optimized is not graph or len(optimized) == len(graph)
