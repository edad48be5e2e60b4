"""The mapper's time limit (issue 15, finding 6): a slow integer program returns the best design
found within the limit, marked as not proven optimal; none found is a clear error; `auto` tries
the engine instead of waiting; results proven within the limit do not change."""

from __future__ import annotations

import time
from pathlib import Path

import onnx
import pulp
import pytest
from support.deep_chain import deep_conv_chain
from support.op_cases import build
from support.qdq_by_hand import conv_bn_relu_qdq

import hwcodesign.backends.dataflow as dataflow_backend
import hwcodesign.flows.search as search_module
import hwcodesign.mapper.precision as precision_module
from hwcodesign.backends import build_report, map_to_board
from hwcodesign.backends.dataflow import map_pipeline
from hwcodesign.boards import load_board
from hwcodesign.errors import HwcodesignError
from hwcodesign.flows.simulate import map_and_simulate
from hwcodesign.mapper.solver import Deadline, Outcome, SolverTimeout, solve_within
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.quant.formats import WeightFormat
from hwcodesign.quantize import quantize_qdq
from hwcodesign.report import format_summary

ULTRA96 = load_board("ultra96v2")
SEARCH_FORMATS = [WeightFormat.parse(f) for f in ("int8", "dybit4")]


def test_a_slow_mapping_returns_the_best_design_within_the_limit_with_a_note() -> None:
    graph = deep_conv_chain()
    start = time.perf_counter()
    mapping, latency, _ = map_and_simulate(graph, ULTRA96, goal="latency", architecture="dataflow", time_limit=5)
    assert mapping.solve_seconds < 10, mapping.solve_seconds  # without a limit: over 300 s
    assert time.perf_counter() - start < 30
    assert "not proven optimal" in mapping.note and "within 5 s" in mapping.note
    assert all(mapping.total(r) <= mapping.limits[r] for r in mapping.limits)  # it still fits
    report = build_report(graph, mapping, latency)
    assert report["note"] == mapping.note
    assert f"note: {mapping.note}" in format_summary(report).splitlines()


def cbc_finds_nothing_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("hwcodesign.mapper.table.solve_within", lambda *args, **kwargs: Outcome.TIMEOUT)


def test_without_a_solution_in_time_the_most_frugal_design_is_used_when_it_fits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    cbc_finds_nothing_in_time(monkeypatch)
    mapping = map_pipeline(deep_conv_chain(), ULTRA96, "latency", time_limit=3)
    assert "not proven optimal" in mapping.note
    assert all(mapping.total(r) <= mapping.limits[r] for r in mapping.limits)


def test_no_design_within_the_limit_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    cbc_finds_nothing_in_time(monkeypatch)  # and the most frugal design is too slow for the fps asked
    with pytest.raises(SolverTimeout, match=r"mapping 81 layers: no design found within the 3 s time limit; "
                                            r"raise --time-limit"):
        map_pipeline(deep_conv_chain(), ULTRA96, "latency", fps=2000, time_limit=3)


def test_auto_tries_the_engine_when_the_pipeline_is_not_mapped_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    def out_of_time(*args: object, **kwargs: object) -> None:
        raise SolverTimeout("mapping 81 layers: no design found within the 1 s time limit")

    monkeypatch.setattr(dataflow_backend, "map_pipeline", out_of_time)
    mapping = map_to_board(deep_conv_chain(), ULTRA96, "latency", time_limit=1)
    assert mapping.architecture == "sequential"
    assert mapping.reason.startswith("the dataflow pipeline was not mapped in time")


def test_results_solved_within_the_limit_do_not_change(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    onnx.save(conv_bn_relu_qdq(), path)
    graph = optimize(load_onnx(path))
    unlimited = map_pipeline(graph, ULTRA96, time_limit=None)
    limited = map_pipeline(graph, ULTRA96)  # the default limit
    assert limited.foldings == unlimited.foldings and limited.objective == unlimited.objective
    assert limited.note == unlimited.note == ""
    assert "note" not in build_report(graph, limited, map_and_simulate(graph, ULTRA96)[1])


def test_an_expired_deadline_does_not_start_the_solver() -> None:
    problem = pulp.LpProblem("p", pulp.LpMinimize)
    x = pulp.LpVariable("x", cat=pulp.LpBinary)
    problem += x
    deadline = Deadline(0.5, start=time.perf_counter() - 1)
    assert solve_within(problem, deadline) is Outcome.TIMEOUT
    assert solve_within(problem, Deadline(None)) is Outcome.OPTIMAL
    problem += x >= 2
    assert solve_within(problem, Deadline(5)) is Outcome.INFEASIBLE


@pytest.mark.parametrize("limit", [0, -1, float("nan"), float("inf")])
def test_the_time_limit_must_be_positive_seconds(limit: float) -> None:
    with pytest.raises(HwcodesignError, match="time limit"):
        Deadline(limit)


@pytest.fixture(scope="module")
def gemm_model() -> onnx.ModelProto:
    float_model, calibration = build("flatten_gemm")
    return quantize_qdq(float_model, calibration)


def test_the_search_notes_a_front_cut_short_by_the_time_limit(gemm_model: onnx.ModelProto,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def stopped_on_time(problem: pulp.LpProblem, deadline: Deadline, *args: object) -> Outcome:
        outcome = solve_within(problem, deadline, *args)  # solved, but reported as CBC stopping on time
        return Outcome.FEASIBLE if outcome is Outcome.OPTIMAL else outcome

    monkeypatch.setattr(precision_module, "solve_within", stopped_on_time)
    result = search_module.search(gemm_model, ULTRA96, SEARCH_FORMATS, max_candidates=4, points=3, time_limit=30)
    assert "not proven optimal" in result.note and result.summary()["note"] == result.note
    assert f"note: {result.note}" in precision_module.format_front(result)


def test_a_search_without_a_solution_in_time_is_a_clear_error(gemm_model: onnx.ModelProto,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision_module, "solve_within", lambda *args, **kwargs: Outcome.TIMEOUT)
    with pytest.raises(SolverTimeout, match="the mixed-precision search: no design found within the 7 s time limit"):
        search_module.search(gemm_model, ULTRA96, SEARCH_FORMATS, max_candidates=4, points=3, time_limit=7)
