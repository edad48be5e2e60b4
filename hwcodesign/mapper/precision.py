"""The mixed-precision search's integer program: every layer's weight format and folding at once.

Per weight layer and candidate format the flow (`flows.search`) measures a sensitivity and the
cost model prices each folding (`SearchSpace`); here one ILP picks a candidate per layer
(binaries x[l, (f, folding)]; T >= every layer's cycles):
    min  sum s[l, f] x            s.t. resources <= board limits, T <= cycle budget (--fps)
and its reverse (fastest mapping within a sensitivity budget). `pareto_front` sweeps the cycle
budget over the cycle counts the candidates can have and keeps, for each, the least-sensitive
mapping (then the fastest among those): the front is monotone by construction, and CBC proves
each point optimal for the cost model. FIFO depths are the mapper's defaults here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pulp

from hwcodesign.boards import Board
from hwcodesign.errors import HwcodesignError
from hwcodesign.hardware.folding import RESOURCES, LayerCost
from hwcodesign.ir.graph import Graph
from hwcodesign.mapper.solver import Deadline, Outcome, solve_within
from hwcodesign.mapper.table import (
    CandidateTable,
    MappingInfeasible,
    chosen_indices,
    one_candidate_per_layer,
    usage,
)
from hwcodesign.quant.formats import WeightFormat
from hwcodesign.tables import format_table

FRONT_POINTS = 12
OBJECTIVES = ("sensitivity", "cycles")


class SearchInfeasible(MappingInfeasible):
    """No combination of formats and foldings meets the target on the board."""


@dataclass(frozen=True)
class Candidate:
    """One option of one layer: its weight format (None for layers without weights) and folding."""

    fmt: WeightFormat | None
    folding: Any
    cost: LayerCost
    sensitivity: float


@dataclass(frozen=True)
class SearchSpace:
    """Everything the ILP chooses from, per IR layer of the uniform-int8 graph."""

    graph: Graph  # the model with every weight layer in int8 (the reference)
    layers: tuple[str, ...]
    candidates: tuple[tuple[Candidate, ...], ...]
    sensitivities: dict[str, dict[str, float]]  # weight layer (its node name) -> format -> sensitivity

    def table(self) -> CandidateTable:
        return CandidateTable(self.layers, tuple(tuple((c.fmt, c.folding) for c in cs) for cs in self.candidates),
                              tuple(tuple(c.cost for c in cs) for cs in self.candidates))


@dataclass(frozen=True)
class Choice:
    """One solved mapping: each layer's candidate, and what it adds up to."""

    picks: tuple[int, ...]
    cycles: int
    sensitivity: float
    totals: dict[str, int]
    formats: dict[str, WeightFormat]  # weight layer (ONNX node name) -> format
    foldings: dict[str, Any] = field(default_factory=dict)  # IR layer -> folding

    def fps(self, board: Board) -> float:
        return board.clock_mhz * 1e6 / max(self.cycles, 1)


def solve(space: SearchSpace, limits: Mapping[str, int], objective: str = "sensitivity",
          max_cycles: int | None = None, max_sensitivity: float | None = None,
          deadline: Deadline | None = None) -> Choice | None:
    """The optimal choice for `objective` ("sensitivity": least proxy error within `max_cycles`;
    "cycles": fastest within `max_sensitivity`), then the other objective as a tie-break; None
    when nothing meets the constraints. Within the time `deadline` has left (none: no limit): a
    choice found when it runs out is returned and marks the deadline; none raises SolverTimeout."""
    deadline = deadline or Deadline(None)
    if objective not in OBJECTIVES:
        raise HwcodesignError(f"unknown search objective '{objective}'; choose one of {', '.join(OBJECTIVES)}")
    table = space.table()
    problem = pulp.LpProblem("mixed_precision", pulp.LpMinimize)
    choice = one_candidate_per_layer(problem, table)
    bottleneck = pulp.LpVariable("bottleneck_cycles", lowBound=0)
    for options, xs in zip(space.candidates, choice):
        problem += bottleneck >= pulp.lpSum(c.cost.cycles * x for c, x in zip(options, xs))
    for resource in RESOURCES:
        problem += usage(table, choice, resource) <= limits[resource], f"limit_{resource}"
    proxy = pulp.lpSum(c.sensitivity * x for options, xs in zip(space.candidates, choice) for c, x in zip(options, xs))
    if max_cycles is not None:
        problem += bottleneck <= max_cycles, "cycle_budget"
    if max_sensitivity is not None:
        problem += proxy <= max_sensitivity, "sensitivity_budget"
    first, second = (proxy, bottleneck) if objective == "sensitivity" else (bottleneck, proxy)
    problem += first
    outcome = solve_within(problem, deadline)
    if outcome is Outcome.TIMEOUT:
        raise deadline.timeout("the mixed-precision search", "raise --time-limit or offer fewer --formats")
    if outcome is Outcome.INFEASIBLE:
        return None
    deadline.stopped_early |= outcome is Outcome.FEASIBLE
    found = chosen_indices(choice)
    best = pulp.value(first)
    problem += first <= best + 1e-9 * max(1.0, abs(best)), "keep_optimum"
    problem.setObjective(second)
    outcome = solve_within(problem, deadline)
    if outcome is Outcome.INFEASIBLE:  # pragma: no cover - CBC tolerance
        raise HwcodesignError("the search's tie-break lost the optimum it had found (solver tolerance)")
    if outcome is Outcome.TIMEOUT:  # the tie-break only refines the choice found
        deadline.stopped_early = True
        return evaluate(space, found)
    deadline.stopped_early |= outcome is Outcome.FEASIBLE
    return evaluate(space, chosen_indices(choice))


def evaluate(space: SearchSpace, picks: Sequence[int]) -> Choice:
    """What one assignment adds up to (the ILP's result, and brute force's)."""
    chosen = [options[p] for options, p in zip(space.candidates, picks)]
    formats = {name: c.fmt for name, c in zip(space.layers, chosen) if c.fmt is not None}
    return Choice(tuple(picks), max(c.cost.cycles for c in chosen), float(sum(c.sensitivity for c in chosen)),
                  {r: sum(c.cost.resource(r) for c in chosen) for r in RESOURCES}, formats,
                  {name: c.folding for name, c in zip(space.layers, chosen)})


def pareto_front(space: SearchSpace, limits: Mapping[str, int], points: int = FRONT_POINTS,
                 deadline: Deadline | None = None) -> list[Choice]:
    """Least-sensitive mappings at a sweep of cycle budgets, non-dominated, fastest first (every
    program within `deadline`, as `solve`)."""
    fastest = solve(space, limits, "cycles", deadline=deadline)
    if fastest is None:
        return []
    best = solve(space, limits, "sensitivity", deadline=deadline)
    assert best is not None
    budgets = sorted({c.cost.cycles for options in space.candidates for c in options
                      if fastest.cycles <= c.cost.cycles <= best.cycles})
    if len(budgets) > points:
        picks = np.unique(np.round(np.geomspace(1, len(budgets), points)).astype(int) - 1)
        budgets = [budgets[i] for i in picks]
    found = [fastest, best]
    for budget in budgets:
        point = solve(space, limits, "sensitivity", max_cycles=budget, deadline=deadline)
        if point is not None:
            found.append(point)
    front: list[Choice] = []
    for point in sorted(found, key=lambda p: (p.cycles, p.sensitivity)):
        if not front or point.sensitivity < front[-1].sensitivity - 1e-15:
            front.append(point)
    return front


@dataclass(frozen=True)
class SearchResult:
    board: Board
    space: SearchSpace
    front: list[Choice]
    chosen: Choice
    uniform_int8: Choice | None  # the fastest mapping with every layer in int8
    target_fps: float | None
    seconds: float
    note: str = ""  # set when the solver's time limit ran out (`mapper.solver.Deadline.note`)

    def summary(self) -> dict[str, Any]:
        board = self.board

        def point(choice: Choice) -> dict[str, Any]:
            return {"cycles": choice.cycles, "fps": round(choice.fps(board), 3),
                    "latency_ms": round(choice.cycles / (board.clock_mhz * 1e3), 4),
                    "sensitivity": choice.sensitivity, "resources": choice.totals,
                    "formats": {n: str(f) for n, f in sorted(choice.formats.items())}}

        return {"board": board.name, "target_fps": self.target_fps, "seconds": round(self.seconds, 2),
                "sensitivities": self.space.sensitivities, "front": [point(p) for p in self.front],
                "chosen": point(self.chosen),
                "uniform_int8": point(self.uniform_int8) if self.uniform_int8 else None,
                **({"note": self.note} if self.note else {})}


def only_format(space: SearchSpace, fmt: WeightFormat) -> SearchSpace:
    """The space restricted to one format for every weight layer (the uniform baselines)."""
    kept = tuple(tuple(c for c in options if c.fmt is None or c.fmt == fmt) for options in space.candidates)
    return replace(space, candidates=kept)


def format_front(result: SearchResult) -> str:
    """The front as a table, the chosen point marked."""
    board = result.board
    rows = []
    for point in result.front:
        kinds = [str(f) for f in point.formats.values()]
        mix = ", ".join(f"{kinds.count(k)}x{k}" for k in sorted(set(kinds), key=kinds.index))
        mark = "*" if point.picks == result.chosen.picks or (point.cycles, point.sensitivity) == \
            (result.chosen.cycles, result.chosen.sensitivity) else ""
        rows.append((mark, f"{point.fps(board):,.1f}", f"{point.cycles / (board.clock_mhz * 1e3):.3f}",
                     f"{point.sensitivity:.3e}", str(point.totals["dsp"]), str(point.totals["bram18k"]),
                     f"{point.totals['lut'] / 1000:.1f}k", mix))
    headers = ("", "fps", "latency ms", "sensitivity", "DSP", "BRAM18K", "LUT", "formats")
    text = format_table(headers, rows, right_align=(1, 2, 3, 4, 5, 6))
    if result.uniform_int8:
        speedup = result.uniform_int8.cycles / max(result.chosen.cycles, 1)
        text += (f"\nuniform int8: {result.uniform_int8.fps(board):,.1f} fps; chosen: "
                 f"{result.chosen.fps(board):,.1f} fps ({speedup:.2f}x), sensitivity {result.chosen.sensitivity:.3e}")
    if result.note:
        text += f"\nnote: {result.note}"
    return text
