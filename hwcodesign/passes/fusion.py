"""Fusing standalone activations into the layer that produces their input.

QDQ exporters sometimes leave `Conv -> Q -> DQ -> Relu -> Q` with the same grid on both sides of
the ReLU. On one grid a ReLU or Clip is just a narrower clamp of the producer's output stage, so
fusing it removes a hardware stage without changing a single output integer.
"""

from __future__ import annotations

import dataclasses

from hwcodesign.ir.graph import Graph
from hwcodesign.ir.op import Input, Op
from hwcodesign.ops import Act
from hwcodesign.passes.rewrite import bypass


def _fusable(graph: Graph, act: Act) -> Op | None:
    if act.function not in ("relu", "clip") or not act.requant.is_identity():
        return None
    source = graph.tensor(act.inputs[0])
    producer = graph.producer(source.name)
    if isinstance(producer, Input) or len(producer.requants()) != 1:
        return None
    if len(graph.consumers(source.name)) != 1 or source.name in graph.outputs:
        return None
    same_grid = (source.dtype, source.scale, source.zero_point) == (
        act.output.dtype, act.output.scale, act.output.zero_point
    )
    return producer if same_grid else None


def fuse_activations(graph: Graph) -> Graph:
    """Merge single-consumer ReLU/Clip Acts on an unchanged grid into their producer's clamp."""
    for op in graph:
        if not isinstance(op, Act):
            continue
        producer = _fusable(graph, op)
        if producer is None:
            continue
        requant = producer.requants()[0]
        narrowed = dataclasses.replace(
            requant, lo=max(requant.lo, op.requant.lo), hi=min(requant.hi, op.requant.hi)
        )
        fused = dataclasses.replace(producer, requant=narrowed)
        swapped = [fused if other is producer else other for other in graph]
        graph = Graph.from_ops(graph.name, swapped, graph.outputs)
        return fuse_activations(bypass(graph, graph.op(op.name), producer.output.name))
    return graph
