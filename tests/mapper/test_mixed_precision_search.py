"""The joint format + folding ILP (`hwcodesign.mapper.precision`, `hwcodesign.flows.search`) against brute force.

A conv + gemm model with three candidate formats (int8, dybit4, dybit2) and a handful of
foldings per layer is small enough to enumerate every assignment. Under resource limits tight
enough to bind, the ILP's least sensitivity within a cycle budget equals the brute-force minimum
for every budget the candidates can produce, the reverse objective (fastest within a sensitivity
budget) equals brute force too, and the Pareto front is monotone: each point faster than the
next and strictly more sensitive, each the brute-force optimum at its latency.
"""

from __future__ import annotations

import itertools

import pytest
from support.op_cases import build

from hwcodesign.boards import load_board
from hwcodesign.flows.search import build_space, search
from hwcodesign.hardware.folding import RESOURCES
from hwcodesign.mapper.precision import SearchInfeasible, evaluate, pareto_front, solve
from hwcodesign.quant.formats import WeightFormat
from hwcodesign.quantize import quantize_qdq

FORMATS = [WeightFormat.parse(f) for f in ("int8", "dybit4", "dybit2")]


@pytest.fixture(scope="module")
def model():
    float_model, calibration = build("flatten_gemm")
    return quantize_qdq(float_model, calibration)


@pytest.fixture(scope="module")
def space(model):
    return build_space(model, load_board("ultra96v2"), FORMATS, max_candidates=4)


def brute_force(space, limits):
    """Every assignment that fits `limits`, evaluated directly."""
    choices = []
    for picks in itertools.product(*(range(len(options)) for options in space.candidates)):
        choice = evaluate(space, picks)
        if all(choice.totals[r] <= limits[r] for r in RESOURCES):
            choices.append(choice)
    return choices


@pytest.fixture(scope="module")
def tight(space):
    """Limits at 60% of the most any assignment takes of each resource: they bind whether the
    MACs are in DSPs or in LUTs, so narrower formats buy speed."""
    every = brute_force(space, {r: float("inf") for r in RESOURCES})
    least = evaluate(space, [0 for _ in space.candidates])
    return {r: max(least.totals[r], int(0.6 * max(c.totals[r] for c in every))) for r in RESOURCES}


def test_space_is_small_and_has_every_format(space) -> None:
    assert 20 <= len(list(itertools.product(*(range(len(o)) for o in space.candidates)))) <= 50_000
    weight_layers = [options for options in space.candidates if options[0].fmt is not None]
    assert len(weight_layers) == 2
    for options in weight_layers:
        assert {str(c.fmt) for c in options} == {"int8", "dybit4", "dybit2"}
        for fmt in ("int8", "dybit4", "dybit2"):  # LUT and DSP MACs for every format at 8-bit activations
            assert {c.folding.mac for c in options if str(c.fmt) == fmt} == {"lut", "dsp"}


def test_least_sensitivity_matches_brute_force_at_every_budget(space, tight) -> None:
    feasible = brute_force(space, tight)
    assert feasible, "the test's limits must leave some assignment feasible"
    budgets = sorted({c.cycles for c in feasible})
    assert len(budgets) >= 3
    for budget in budgets:
        expected = min(c.sensitivity for c in feasible if c.cycles <= budget)
        got = solve(space, tight, "sensitivity", max_cycles=budget)
        assert got is not None and got.cycles <= budget
        assert got.sensitivity == pytest.approx(expected, rel=1e-9, abs=1e-15)
        assert all(got.totals[r] <= tight[r] for r in RESOURCES)
    assert solve(space, tight, "sensitivity", max_cycles=budgets[0] - 1) is None


def test_fastest_within_sensitivity_matches_brute_force(space, tight) -> None:
    feasible = brute_force(space, tight)
    for bound in sorted({c.sensitivity for c in feasible})[:6]:
        expected = min(c.cycles for c in feasible if c.sensitivity <= bound + 1e-15)
        got = solve(space, tight, "cycles", max_sensitivity=bound)
        assert got is not None and got.cycles == expected


def test_front_is_monotone_and_optimal(space, tight) -> None:
    feasible = brute_force(space, tight)
    front = pareto_front(space, tight, points=50)
    assert len(front) >= 2
    for faster, slower in zip(front, front[1:]):
        assert faster.cycles < slower.cycles
        assert faster.sensitivity > slower.sensitivity
    for point in front:
        assert point.sensitivity == pytest.approx(min(c.sensitivity for c in feasible if c.cycles <= point.cycles),
                                                  rel=1e-9, abs=1e-15)
    # the ends: the fastest feasible mapping, and the least sensitive one (all int8 here)
    assert front[0].cycles == min(c.cycles for c in feasible)
    assert front[-1].sensitivity == min(c.sensitivity for c in feasible) == 0.0
    assert set(map(str, front[-1].formats.values())) == {"int8"}


def test_sensitivities_grow_as_formats_narrow(space) -> None:
    for layer, by_format in space.sensitivities.items():
        assert by_format["int8"] == 0.0
        assert 0 < by_format["dybit4"] < by_format["dybit2"], layer


def test_unreachable_fps_names_the_fastest(model) -> None:
    with pytest.raises(SearchInfeasible, match="reaches 1e\\+09 fps.*the fastest is"):
        search(model, load_board("ultra96v2"), FORMATS, fps=1e9, max_candidates=4)
