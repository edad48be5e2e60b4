"""The dataflow stages' loops, counted in C simulation, against the cost model's loop trip counts.

Every op case of support/op_cases.py at three foldings of each layer: the smallest, a middle one
and the largest of `candidate_foldings`. The smallest and largest are the 'serial' and 'parallel'
projects test_csim_ops simulates (the same sources, so the same cached C build); the middle one
is a single project holding every case on one input (one build).

Per stage, two checks: the counted iterations equal the generated loops' bounds
(`template_loop_trips`: the counters count what they should), and they equal the cost model's
term (`expected_loop_trips`). A stage whose loops run iterations the model leaves out is a
finding (`MODEL_GAPS` lists the kinds and what the model leaves out): the case is reported as an
expected failure naming each such stage with both numbers. Any other difference fails.
"""

from __future__ import annotations

import pytest
from support.codegen import build_all, random_frames, widest_folding
from support.loop_counts import (
    MODEL_GAPS,
    counted_trips,
    emit_middle_project,
    expected_loop_trips,
    middle_folding,
    stage_names,
    template_loop_trips,
)
from support.op_cases import CASES

from hwcodesign.boards import load_board
from hwcodesign.codegen.csim import counted_loops
from hwcodesign.codegen.project import Project
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.op import Op
from hwcodesign.mapper.cost import Folding, candidate_foldings

FOLDINGS = ("smallest", "middle", "largest")
VARIANT_OF = {"smallest": "serial", "largest": "parallel"}  # op_projects' names for them


def folding_of(graph: Graph, op: Op, which: str) -> Folding:
    if which == "smallest":
        return Folding()
    if which == "largest":
        return widest_folding(graph, op.name)
    return middle_folding(graph, op)


Counts = dict[tuple[str, str], tuple[Graph, list[Op], Project, dict[str, int]]]


@pytest.fixture(scope="module")
def loop_counts(op_projects: dict[tuple[str, str], tuple[Graph, Project]],
                tmp_path_factory: pytest.TempPathFactory) -> Counts:
    """Per (case, folding): the graph, the case's layers, the project and its counted loops."""
    graph, members, middle = emit_middle_project(load_board("ultra96v2"), tmp_path_factory.mktemp("loops"))
    projects = [middle] + [op_projects[(case, variant)][1] for case in CASES for variant in VARIANT_OF.values()]
    build_all(projects)
    middle.csim(random_frames(graph, 2, seed=0))
    counts: Counts = {}
    middle_counted = counted_loops(middle)
    for case in CASES:
        counts[(case, "middle")] = (graph, members[case], middle, middle_counted)
        for which, variant in VARIANT_OF.items():
            case_graph, project = op_projects[(case, variant)]
            project.csim(random_frames(case_graph, 2, seed=sum(map(ord, case))))
            counts[(case, which)] = (case_graph, list(case_graph), project, counted_loops(project))
    return counts


@pytest.mark.parametrize("which", FOLDINGS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_counted_loops_equal_the_cost_model(loop_counts: Counts, case: str, which: str) -> None:
    graph, ops, project, counted = loop_counts[(case, which)]
    findings = []
    for op in ops:
        folding = folding_of(graph, op, which)
        inputs = graph.input_tensors(op)
        loops = counted_trips(counted, stage_names(graph, op))
        assert loops == template_loop_trips(project, graph, op, folding), f"{op.name} ({folding})"
        model = expected_loop_trips(op, inputs, folding)
        if loops != model:
            label = f"{type(op).__name__} {op.name} {folding}: counted {loops}, model {model}"
            assert type(op) in MODEL_GAPS and loops > model, f"an unknown gap: {label}"
            findings.append(f"{label} ({MODEL_GAPS[type(op)]})")
    if findings:
        pytest.xfail("the cost model leaves out loop iterations: " + "; ".join(findings))


@pytest.mark.parametrize("which", ["smallest", "largest"])
def test_the_variants_are_the_extreme_candidate_foldings(op_projects: dict[tuple[str, str], tuple[Graph, Project]],
                                                         which: str) -> None:
    """Guard: test_csim_ops' serial and parallel foldings are candidate_foldings' first and last."""
    for case in CASES:
        graph, project = op_projects[(case, VARIANT_OF[which])]
        written = {layer["name"]: layer["folding"] for layer in project.meta["layers"]}
        for op in graph:
            options = candidate_foldings(op, graph.input_tensors(op))
            assert folding_of(graph, op, which) == options[0 if which == "smallest" else -1], f"{case}: {op.name}"
            assert written[op.name] == str(folding_of(graph, op, which))


def test_a_stage_counts_each_frame_afresh(loop_counts: Counts) -> None:
    """The counters hold the last frame's iterations, not a running total over frames."""
    graph, _, project, counted = loop_counts[("residual_add", "smallest")]
    project.csim(random_frames(graph, 5, seed=1))
    assert counted_loops(project) == counted
