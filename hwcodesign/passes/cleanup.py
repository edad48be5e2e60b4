"""Passes that remove layers which compute nothing the outputs need."""

from __future__ import annotations

import networkx as nx

from hwcodesign.ir.graph import Graph
from hwcodesign.ir.op import Input
from hwcodesign.ops import Act
from hwcodesign.passes.rewrite import bypass


def remove_dead_layers(graph: Graph) -> Graph:
    """Keep only layers some graph output depends on (inputs are always kept: the driver feeds them)."""
    needed: set[str] = set()
    for tensor in graph.outputs:
        producer = graph.producer(tensor).name
        needed |= nx.ancestors(graph.dag, producer) | {producer}
    ops = [op for op in graph if op.name in needed or isinstance(op, Input)]
    if len(ops) == len(graph):
        return graph
    return Graph.from_ops(graph.name, ops, graph.outputs)


def remove_identity_acts(graph: Graph) -> Graph:
    """An Act that maps every input integer to itself (same grid, full range) is a wire."""
    for op in graph:
        if not isinstance(op, Act):
            continue
        source = graph.tensor(op.inputs[0])
        requant = op.requant
        same_grid = source.dtype == op.output.dtype and source.zero_point == op.output.zero_point
        full_range = (requant.lo, requant.hi) == (op.output.dtype.min, op.output.dtype.max)
        if same_grid and full_range and requant.is_identity():
            return remove_identity_acts(bypass(graph, op, source.name))
    return graph
