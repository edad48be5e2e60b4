"""The whole lowering after import, in order. A reader sees every rewrite here at a glance.

Folding BatchNorm, bias adds and activations into each layer's integer output stage happens
during import (`frontend.lowering`), where the float epilogue is still visible; the passes
below only rewrite the integer graph and never change an output integer.
"""

from __future__ import annotations

from collections.abc import Callable

from hwcodesign.ir.graph import Graph
from hwcodesign.passes.cleanup import remove_dead_layers, remove_identity_acts
from hwcodesign.passes.fusion import fuse_activations

Pass = Callable[[Graph], Graph]

PIPELINE: tuple[Pass, ...] = (
    remove_dead_layers,
    remove_identity_acts,
    fuse_activations,
)


def optimize(graph: Graph) -> Graph:
    """Run every pass in `PIPELINE`, checking the graph after each one."""
    for rewrite in PIPELINE:
        graph = rewrite(graph)
        graph.check()
    return graph
