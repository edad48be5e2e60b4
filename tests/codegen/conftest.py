from __future__ import annotations

import pytest
from support.codegen import VARIANTS, variant_mapping
from support.op_cases import CASES, build

from hwcodesign.backends import emit_project
from hwcodesign.boards import load_board
from hwcodesign.codegen.project import Project
from hwcodesign.ir.graph import Graph
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.quantize import quantize_qdq


@pytest.fixture(scope="session")
def op_projects(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], tuple[Graph, Project]]:
    """Every op case at every folding variant, emitted once (not compiled) for the session."""
    root = tmp_path_factory.mktemp("op_projects")
    board = load_board("ultra96v2")
    projects = {}
    for case in sorted(CASES):
        model, calibration = build(case)
        graph = optimize(load_onnx(quantize_qdq(model, calibration)))
        for variant in VARIANTS:
            mapping = variant_mapping(graph, board, variant)
            projects[(case, variant)] = (graph, emit_project(graph, mapping, root / case / variant))
    return projects
