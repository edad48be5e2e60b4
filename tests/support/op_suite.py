"""Every dataflow op case of support/op_cases.py in one project per folding.

The cases share one input and keep one output each, quantized and optimized as one graph; each
folding variant ('serial', 'parallel', 'mapped' as `variant_mapping` makes them, and 'middle',
the middle of each layer's candidate foldings) is one project, so one g++ build serves every case
at that folding (a project per case and folding took 99 builds of about a second each, most of
it parsing the same headers). A case's layers are those its output depends on; what is checked
of a case is its own output and its own layers' stages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np

from hwcodesign.backends import emit_project
from hwcodesign.boards import Board
from hwcodesign.codegen.project import Project
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.op import Op
from hwcodesign.mapper.ilp import Mapping, fixed_mapping
from hwcodesign.passes import load_onnx, optimize
from support.codegen import VARIANTS, variant_mapping
from support.loop_counts import middle_folding
from support.onnx_models import GraphBuilder, quantize_qdq
from support.op_cases import CASES, SHAPE

SUITE_VARIANTS = (*VARIANTS, "middle")


@dataclass(frozen=True)
class OpSuite:
    """The all-cases graph, each case's layers and output tensor, and a project per variant
    (emitted, not compiled: a module builds the ones it runs)."""

    graph: Graph
    members: dict[str, list[Op]]
    outputs: dict[str, str]
    projects: dict[str, Project]


def all_cases_graph() -> tuple[Graph, dict[str, list[Op]], dict[str, str]]:
    """Every op case on one shared input, one output each, quantized and optimized as one graph;
    each case's layers (those its output depends on) and its output tensor."""
    b = GraphBuilder(0)
    x = b.input(SHAPE)
    outputs = [CASES[case](b, x) for case in sorted(CASES)]
    rng = np.random.default_rng(1)
    samples = [rng.normal(0, 1, SHAPE).astype(np.float32) for _ in range(16)]
    graph = optimize(load_onnx(quantize_qdq(b.model(outputs), samples)))
    assert len(graph.outputs) == len(CASES)
    members, tensors = {}, {}
    for case, tensor in zip(sorted(CASES), graph.outputs, strict=True):
        last = graph.producer(tensor).name
        names = nx.ancestors(graph.dag, last) | {last}
        members[case], tensors[case] = [op for op in graph if op.name in names], tensor
    return graph, members, tensors


def suite_mapping(graph: Graph, board: Board, variant: str) -> Mapping:
    if variant == "middle":
        return fixed_mapping(graph, board, {op.name: middle_folding(graph, op) for op in graph})
    return variant_mapping(graph, board, variant)


def emit_op_suite(board: Board, root: Path) -> OpSuite:
    graph, members, outputs = all_cases_graph()
    projects = {variant: emit_project(graph, suite_mapping(graph, board, variant), root / variant)
                for variant in SUITE_VARIANTS}
    return OpSuite(graph, members, outputs, projects)
