"""Lookup tables (every function of support/table_cases.py on one input, uint8 and int8
activations) as dataflow stages: C simulation == golden model on every element, fully folded
(PE=1) and fully parallel (a ROM per channel); the engine refuses them by name."""

from __future__ import annotations

import pytest
from support.codegen import assert_bit_exact, build_all, random_frames, variant_mapping
from support.table_cases import CASES, all_tables_model

from hwcodesign.backends import emit_project
from hwcodesign.boards import load_board
from hwcodesign.codegen.project import Project
from hwcodesign.hardware.engine.config import EngineUnsupported
from hwcodesign.ir.graph import Graph
from hwcodesign.mapper.engine.program import instructions
from hwcodesign.ops import Lookup
from hwcodesign.passes import load_onnx, optimize

FRAMES = 10
VARIANTS = ("serial", "parallel")
ACTIVATIONS = {"uint8": False, "int8": True}


@pytest.fixture(scope="module")
def table_projects(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], tuple[Graph, Project]]:
    board = load_board("ultra96v2")
    root = tmp_path_factory.mktemp("tables")
    projects = {}
    for activations, symmetric in ACTIVATIONS.items():
        graph = optimize(load_onnx(all_tables_model(symmetric)))
        for variant in VARIANTS:
            mapping = variant_mapping(graph, board, variant)
            projects[(activations, variant)] = (graph, emit_project(graph, mapping, root / activations / variant))
    build_all([project for _, project in projects.values()])
    return projects


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("activations", ACTIVATIONS)
def test_csim_equals_golden(table_projects: dict[tuple[str, str], tuple[Graph, Project]], activations: str,
                            variant: str) -> None:
    graph, project = table_projects[(activations, variant)]
    assert sum(isinstance(op, Lookup) for op in graph) == len(CASES)
    assert_bit_exact(graph, project, random_frames(graph, FRAMES, seed=3), f"tables/{activations}/{variant}")


def test_the_engine_refuses_tables_by_name(table_projects: dict[tuple[str, str], tuple[Graph, Project]]) -> None:
    graph, _ = table_projects[("uint8", "serial")]
    with pytest.raises(EngineUnsupported, match=r"\(Lookup\) is a lookup table .* no per-layer table memory"):
        instructions(graph)
