"""The dataflow stages' loops, counted in C simulation, against the cost model's loop trip counts.

Every op case of support/op_cases.py at three foldings of each layer: the smallest, a middle one
and the largest of `candidate_foldings`: op_suite's 'serial', 'middle' and 'parallel' projects
(support/op_suite.py, every case in one project per folding). The serial and parallel ones are
those test_csim_ops simulates: the session's shared C-simulation cache (tests/conftest.py) builds
them once. The deformable conv cases run as support/deform_suite.py puts them (every case in one
project per folding: fully folded, the ILP's, fully parallel), test_csim_deform's builds too.

Per stage, two checks: the counted iterations equal the generated loops' bounds
(`template_loop_trips`: the counters count what they should), and they equal the stage plan's
`loop_trips` (`expected_loop_trips`), the loops the cost model prices. Any difference fails.
Sparse per-token stages (loops following the active sites) are not among the cases.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest
from support.codegen import build_all, random_frames, widest_folding
from support.deform_cases import DeformCase
from support.deform_suite import CASES as DEFORM_CASES
from support.deform_suite import DeformSuite
from support.loop_counts import (
    counted_trips,
    expected_loop_trips,
    middle_folding,
    model_cycles,
    stage_names,
    template_loop_trips,
)
from support.op_cases import CASES
from support.op_suite import OpSuite
from support.table_cases import all_tables_model

from hwcodesign.backends import emit_project
from hwcodesign.boards import load_board
from hwcodesign.codegen.csim import counted_loops
from hwcodesign.codegen.project import Project
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.op import Input, Op
from hwcodesign.mapper.cost import Folding, candidate_foldings, layer_cost, smallest_folding
from hwcodesign.mapper.ilp import fixed_mapping
from hwcodesign.ops import Lookup
from hwcodesign.passes import load_onnx, optimize

FOLDINGS = ("smallest", "middle", "largest")
VARIANT_OF = {"smallest": "serial", "middle": "middle", "largest": "parallel"}  # op_suite's names for them
DEFORM_VARIANTS = ("serial", "mapped", "parallel")  # the deformable suite's (the ILP's choice between)


def folding_of(graph: Graph, op: Op, which: str) -> Folding:
    """The layer's folding in the `which` project (the guard test below checks the extremes)."""
    if which == "smallest":
        return smallest_folding(op, graph.input_tensors(op))
    if which == "largest":
        return widest_folding(graph, op.name)
    return middle_folding(graph, op)


class Run(NamedTuple):
    """One project's C simulation: its graph, the layers under test, their foldings, the counts."""

    graph: Graph
    ops: list[Op]
    foldings: dict[str, Folding]
    project: Project
    counted: dict[str, int]


Counts = dict[tuple[str, str], Run]


@pytest.fixture(scope="module")
def loop_counts(op_suite: OpSuite) -> Counts:
    """Per (case, folding): the all-cases graph, the case's layers, the project and its counted
    loops (one C simulation per folding, every case in it)."""
    projects = {which: op_suite.projects[VARIANT_OF[which]] for which in FOLDINGS}
    build_all(list(projects.values()))
    counts: Counts = {}
    for which, project in projects.items():
        project.csim(random_frames(op_suite.graph, 2, seed=0))
        counted = counted_loops(project)
        foldings = {op.name: folding_of(op_suite.graph, op, which) for op in op_suite.graph}
        for case in CASES:
            counts[(case, which)] = Run(op_suite.graph, op_suite.members[case], foldings, project, counted)
    return counts


@pytest.fixture(scope="module")
def deform_loop_counts(deform_suite: DeformSuite) -> Counts:
    """test_csim_deform's projects (support/deform_suite.py, its cached C builds), at its three
    foldings: every case's layer in one C simulation per folding."""
    build_all(list(deform_suite.projects.values()))
    counts: Counts = {}
    for variant, project in deform_suite.projects.items():
        project.csim(deform_suite.inputs(frames=2, seed=5))
        counted = counted_loops(project)
        for label, layer in deform_suite.layers.items():
            counts[(label, variant)] = Run(deform_suite.graph, list(layer.graph), deform_suite.foldings[variant],
                                           project, counted)
    return counts


@pytest.fixture(scope="module")
def table_loop_counts(tmp_path_factory: pytest.TempPathFactory) -> Counts:
    """Every lookup-table function of support/table_cases.py on one input, at the three foldings."""
    root = tmp_path_factory.mktemp("table_loops")
    board = load_board("ultra96v2")
    graph = optimize(load_onnx(all_tables_model(symmetric=False)))
    runs = {}
    for which in FOLDINGS:
        foldings = {op.name: folding_of(graph, op, which) for op in graph}
        runs[which] = (foldings, emit_project(graph, fixed_mapping(graph, board, foldings), root / which))
    build_all([project for _, project in runs.values()])
    counts: Counts = {}
    for which, (foldings, project) in runs.items():
        project.csim(random_frames(graph, 2, seed=4))
        tables = [op for op in graph if isinstance(op, Lookup)]
        counts[("tables", which)] = Run(graph, tables, foldings, project, counted_loops(project))
    return counts


def check_stages(run: Run) -> None:
    """Counted == the loops' bounds == the plan's loop trips, for every stage; the cost model's
    cycles are those loops plus the documented ramps."""
    for op in run.ops:
        folding, inputs = run.foldings[op.name], run.graph.input_tensors(op)
        loops = counted_trips(run.counted, stage_names(run.project, run.graph, op))
        assert loops == template_loop_trips(run.project, run.graph, op, folding), f"{op.name} ({folding})"
        model = expected_loop_trips(op, inputs, folding)
        assert loops == model, f"{type(op).__name__} {op.name} {folding}: counted {loops}, plan {model}"
        if not isinstance(op, Input):
            assert layer_cost(op, inputs, folding).cycles == model_cycles(op, inputs, folding), op.name


@pytest.mark.parametrize("which", FOLDINGS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_counted_loops_equal_the_cost_model(loop_counts: Counts, case: str, which: str) -> None:
    check_stages(loop_counts[(case, which)])


@pytest.mark.parametrize("which", FOLDINGS)
def test_table_counted_loops_equal_the_cost_model(table_loop_counts: Counts, which: str) -> None:
    run = table_loop_counts[("tables", which)]
    assert run.ops, "the lookup tables are among the stages checked"
    check_stages(run)


@pytest.mark.parametrize("variant", DEFORM_VARIANTS)
@pytest.mark.parametrize("case", DEFORM_CASES, ids=lambda c: c.label)
def test_deform_counted_loops_equal_the_cost_model(deform_loop_counts: Counts, case: DeformCase, variant: str) -> None:
    check_stages(deform_loop_counts[(case.label, variant)])


@pytest.mark.parametrize("which", ["smallest", "largest"])
def test_the_variants_are_the_extreme_candidate_foldings(op_suite: OpSuite, which: str) -> None:
    """Guard: test_csim_ops' serial and parallel foldings are candidate_foldings' first and last."""
    graph, project = op_suite.graph, op_suite.projects[VARIANT_OF[which]]
    written = {layer["name"]: layer["folding"] for layer in project.meta["layers"]}
    for op in graph:
        options = candidate_foldings(op, graph.input_tensors(op))
        folding, extreme = folding_of(graph, op, which), options[0 if which == "smallest" else -1]
        # the extreme shape; the largest in DSP MACs where the family offers LUT MACs beside them
        assert folding in options and (folding.pe, folding.simd) == (extreme.pe, extreme.simd), op.name
        assert written[op.name] == str(folding_of(graph, op, which))


def test_a_stage_counts_each_frame_afresh(loop_counts: Counts) -> None:
    """The counters hold the last frame's iterations, not a running total over frames."""
    run = loop_counts[("residual_add", "smallest")]
    run.project.csim(random_frames(run.graph, 5, seed=1))
    assert counted_loops(run.project) == run.counted
