"""Small graph rewrites shared by passes: every pass builds a new graph from new op lists."""

from __future__ import annotations

import dataclasses

from hwcodesign.ir.graph import Graph
from hwcodesign.ir.op import Op


def rename_inputs(op: Op, old: str, new: str) -> Op:
    """The same op reading tensor `new` wherever it read `old`."""
    if old not in op.inputs:
        return op
    return dataclasses.replace(op, inputs=tuple(new if name == old else name for name in op.inputs))


def bypass(graph: Graph, removed: Op, replacement_tensor: str) -> Graph:
    """Drop `removed` and make its consumers (and graph outputs) read `replacement_tensor`."""
    old = removed.output.name
    ops = [rename_inputs(op, old, replacement_tensor) for op in graph if op is not removed]
    outputs = [replacement_tensor if name == old else name for name in graph.outputs]
    return Graph.from_ops(graph.name, ops, outputs)
