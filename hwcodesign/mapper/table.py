"""One candidate per layer under the board's limits: the integer program both architectures solve.

A `CandidateTable` lists, per layer, the options (a dataflow stage's foldings, or the engine's
configurations as one "layer") and their costs; `solve_table` picks one per layer for the goal
within the resource limits and a cycle budget, and `least_within_limits` says which trade-off
makes a model not fit. The dataflow mapper (`ilp`), the engine mapper (`engine_map`) and the
mixed-precision search share these, so none of them imports another.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pulp

from hwcodesign.boards import Board
from hwcodesign.errors import HwcodesignError
from hwcodesign.hardware.folding import RESOURCES
from hwcodesign.mapper.cost import LayerCost
from hwcodesign.mapper.solver import Deadline, Outcome, solve_within

DEFAULT_CAPS = {"dsp": 0.9, "bram18k": 0.8, "uram": 0.8, "lut": 0.8, "ff": 0.8}
GOALS = ("throughput", "latency", "resources")
# The slowest frame rate a user may ask for: below it the cycle budget (clock / fps) outgrows what
# a solver handles exactly, and no design is slow enough for the bound to matter.
MIN_FPS = 1e-3
TIMEOUT_HINT = "raise --time-limit, loosen --fps or the --cap limits, or try --architecture sequential"


class MappingInfeasible(HwcodesignError):
    """No folding fits the board; the message names the binding resource and a board that fits."""


@dataclass(frozen=True)
class CandidateTable:
    """Per layer: its candidate foldings and their costs (what the ILP chooses from)."""

    layers: tuple[str, ...]
    foldings: tuple[tuple[Any, ...], ...]  # Folding per dataflow stage; EngineConfig for the engine
    costs: tuple[tuple[LayerCost, ...], ...]


def cost_vector(cost: LayerCost) -> tuple[int, ...]:
    """What every goal and limit reads of a candidate: cycles, fill depth and the resources."""
    return (cost.cycles, cost.depth, *(cost.resource(r) for r in RESOURCES))


def non_dominated(vectors: Sequence[Sequence[float]]) -> list[int]:
    """Indices (in order) of the vectors no other one matches or beats everywhere: a candidate
    with no fewer cycles, no less fill and no less of any resource than another (the first of
    exact ties kept) can be replaced by it in any assignment without breaking a limit or
    worsening any goal, so dropping it keeps every optimum and shrinks the integer program."""
    if len(vectors) <= 1:
        return list(range(len(vectors)))
    v = np.asarray(vectors, dtype=float)
    no_worse = (v[:, None, :] <= v[None, :, :]).all(axis=-1)  # [j, i]: j is no worse than i anywhere
    better = (v[:, None, :] < v[None, :, :]).any(axis=-1)
    earlier = np.triu(np.ones((len(v), len(v)), dtype=bool), k=1)  # [j, i]: j comes before i
    dominated = (no_worse & (better | earlier)).any(axis=0)
    return [i for i in range(len(v)) if not dominated[i]]


def without_dominated(table: CandidateTable) -> CandidateTable:
    """`table` with each layer's dominated candidates dropped (`non_dominated`)."""
    kept = [non_dominated([cost_vector(c) for c in costs]) for costs in table.costs]
    return CandidateTable(table.layers,
                          tuple(tuple(options[i] for i in keep) for options, keep in zip(table.foldings, kept)),
                          tuple(tuple(costs[i] for i in keep) for costs, keep in zip(table.costs, kept)))


def resource_limits(board: Board, caps: dict[str, float] | None = None) -> dict[str, int]:
    caps = {**DEFAULT_CAPS, **(caps or {})}
    available = board.resources.as_dict()
    return {r: int(available[r] * caps[r]) for r in RESOURCES}


def cap_note(caps: dict[str, float] | None, resource: str) -> str:
    """' under --cap lut=0.5' when the user capped `resource`: the limit is theirs, not the board's."""
    return f" under --cap {resource}={caps[resource]:g}" if caps and resource in caps else ""


def limits_text(limits: dict[str, int], caps: dict[str, float] | None) -> str:
    """'DSP 324, BRAM18K 345, LUT 0 under --cap lut=1e-300, FF 112,896': the limits a mapping met."""
    return ", ".join(f"{r.upper()} {limits[r]:,}{cap_note(caps, r)}" for r in RESOURCES)


def chosen_goal(goal: str | None, fps: float | None) -> str:
    """The goal a request means: as given, else the least hardware that reaches `fps` when a
    frame rate is given (what a FINN user asks for) and the fastest design when none is."""
    if goal is None:
        return "resources" if fps is not None else "throughput"
    if goal not in GOALS:
        raise HwcodesignError(f"unknown goal '{goal}'; choose one of {', '.join(GOALS)}")
    if goal == "resources" and fps is None:
        raise HwcodesignError("the resources goal finds the least hardware that reaches a frame rate: give --fps")
    return goal


SUM_WEIGHT = 0.25
"""The `resources` goal's weight of the total beside the largest fraction (`resource_cost`)."""


def resource_cost(table: CandidateTable, picks: Sequence[int], limits: dict[str, int]) -> tuple[float, float]:
    """The `resources` goal's cost of one assignment, compared in order: the largest fraction of
    any resource's limit the design takes (what decides whether it fits a smaller board or leaves
    room beside it) plus `SUM_WEIGHT` times the sum of the five fractions (the hardware in all:
    without it, saving one BRAM of the binding resource would be worth a hundred DSPs), then the
    sum itself (the tie-break every goal shares)."""
    chosen = [options[c] for options, c in zip(table.costs, picks)]
    fractions = [sum(cost.resource(r) for cost in chosen) / max(limits[r], 1) for r in RESOURCES]
    return max(fractions) + SUM_WEIGHT * sum(fractions), sum(fractions)


def solve_table(table: CandidateTable, limits: dict[str, int], goal: str, max_cycles: int | None = None,
                deadline: Deadline | None = None, start: Sequence[int] | None = None,
                what: str = "", hint: str = TIMEOUT_HINT) -> tuple[list[int], float] | None:
    """Optimal candidate index per layer and the objective; None when infeasible. Within the
    time `deadline` has left (none: no limit): a solution found when it runs out is returned
    and marks the deadline `stopped_early`; none found raises SolverTimeout naming `what` (by
    default the layers mapped) with `hint`. `start`: a candidate per layer CBC starts from."""
    if goal not in GOALS:
        raise HwcodesignError(f"unknown goal '{goal}'; choose one of {', '.join(GOALS)}")
    if goal == "resources" and max_cycles is None:
        raise HwcodesignError("the resources goal needs a frame rate (a cycle budget) to reach")
    if len(table.costs) == 1:
        return single_choice(table, limits, goal, max_cycles)
    deadline = deadline or Deadline(None)
    remaining = deadline.remaining()
    if remaining is not None and remaining <= 0:  # no time to even build the program
        return timed_out(table, limits, goal, max_cycles, deadline, start, what, hint)
    problem = pulp.LpProblem("mapping", pulp.LpMinimize)
    choice = one_candidate_per_layer(problem, table)
    bottleneck = pulp.LpVariable("bottleneck_cycles", lowBound=0)
    for layer, options in enumerate(table.costs):
        problem += bottleneck >= pulp.LpAffineExpression([(x, cost.cycles) for cost, x in zip(options, choice[layer])])
    for resource in RESOURCES:
        problem += usage(table, choice, resource) <= limits[resource], f"limit_{resource}"
    if max_cycles is not None:
        problem += bottleneck <= max_cycles
    fill = weighted(table, choice, lambda cost: cost.depth)
    if goal == "resources":  # the largest fraction of a limit and a quarter of their sum (`resource_cost`)
        largest = pulp.LpVariable("largest_fraction", lowBound=0)
        fractions = [weighted(table, choice, lambda cost, r=resource: cost.resource(r) / max(limits[r], 1))
                     for resource in RESOURCES]
        for fraction in fractions:
            problem += largest >= fraction
        goal_expression = largest + SUM_WEIGHT * pulp.lpSum(fractions)
    else:
        goal_expression = bottleneck if goal == "throughput" else bottleneck + fill
    problem += goal_expression
    if start is not None:
        for xs, pick in zip(choice, start):
            for c, x in enumerate(xs):
                x.setInitialValue(int(c == pick))
        bottleneck.setInitialValue(max(options[pick].cycles for options, pick in zip(table.costs, start)))
    # half of the time left, so the tie-break below and the FIFO re-solves of `map_dataflow` get
    # time too (a program CBC proves quickly takes only what it needs)
    outcome = solve_within(problem, deadline, share=0.5, warm_start=start is not None)
    if outcome is Outcome.TIMEOUT:
        return timed_out(table, limits, goal, max_cycles, deadline, start, what, hint)
    if outcome is Outcome.INFEASIBLE:
        return None
    picks = chosen_indices(choice)
    objective = evaluate(table, picks, goal, limits)
    if outcome is Outcome.FEASIBLE:  # the time is up: no tie-break among mappings not proven optimal
        deadline.stopped_early = True
        return picks, objective
    # Second phase: among optimal mappings, use the fewest resources (relative to the limits),
    # so layers off the critical path are not given parallelism they cannot use. It only refines
    # the first phase's answer, so running out of time here keeps that answer.
    problem += goal_expression <= objective * (1 + 1e-9), "keep_optimum"  # (the float goal's rounding)
    problem.setObjective(weighted(table, choice, lambda cost: sum(cost.resource(r) / max(limits[r], 1) for r in RESOURCES)))
    outcome = solve_within(problem, deadline, share=0.5)
    if outcome in (Outcome.OPTIMAL, Outcome.FEASIBLE):
        frugal = chosen_indices(choice)
        if evaluate(table, frugal, goal, limits) <= objective:
            picks = frugal
    deadline.stopped_early |= outcome in (Outcome.FEASIBLE, Outcome.TIMEOUT)
    return picks, objective


def single_choice(table: CandidateTable, limits: dict[str, int], goal: str,
                  max_cycles: int | None) -> tuple[list[int], float] | None:
    """The integer program of a one-layer table (the engine's: one configuration for the whole
    model) picks one candidate, so its two phases are a scan over the candidates (tens of
    thousands on a big board, which CBC takes seconds to read): the least objective among those
    within the limits and the cycle budget, then among the candidates at it the least sum of
    fractions of the limits (the second phase's objective), the first of exact ties. None when
    no candidate fits."""
    fitting = [c for c in range(len(table.costs[0])) if fits(table, [c], limits, max_cycles)]
    if not fitting:
        return None
    objectives = {c: evaluate(table, [c], goal, limits) for c in fitting}
    best = min(objectives.values())
    optimal = [c for c in fitting if objectives[c] <= best * (1 + 1e-9)]
    options = table.costs[0]
    frugal = min(optimal, key=lambda c: sum(options[c].resource(r) / max(limits[r], 1) for r in RESOURCES))
    return [frugal], best


def timed_out(table: CandidateTable, limits: dict[str, int], goal: str, max_cycles: int | None, deadline: Deadline,
              start: Sequence[int] | None, what: str, hint: str) -> tuple[list[int], float]:
    """The answer when CBC found nothing in time: the start, or every layer at its most frugal
    candidate, is still a design when it fits (checked here directly); else SolverTimeout."""
    fallback = next((picks for picks in (start, frugal_picks(table, limits))
                     if picks is not None and fits(table, picks, limits, max_cycles)), None)
    if fallback is None:
        raise deadline.timeout(what or f"mapping {len(table.layers)} layers", hint)
    deadline.stopped_early = True
    return list(fallback), evaluate(table, fallback, goal, limits)


def frugal_picks(table: CandidateTable, limits: dict[str, int]) -> list[int]:
    """Each layer's candidate using the least of the resources together (relative to the limits)."""
    return [min(range(len(options)), key=lambda c: sum(options[c].resource(r) / max(limits[r], 1) for r in RESOURCES))
            for options in table.costs]


def fits(table: CandidateTable, picks: Sequence[int], limits: dict[str, int], max_cycles: int | None) -> bool:
    """Whether one candidate per layer meets every resource limit and the cycle budget."""
    chosen = [options[c] for options, c in zip(table.costs, picks)]
    return all(sum(cost.resource(r) for cost in chosen) <= limits[r] for r in RESOURCES) and \
        (max_cycles is None or max(cost.cycles for cost in chosen) <= max_cycles)


def one_candidate_per_layer(problem: pulp.LpProblem, table: CandidateTable) -> list[list[pulp.LpVariable]]:
    """Binaries x[layer][candidate] with exactly one candidate chosen per layer."""
    choice = [
        [pulp.LpVariable(f"x_{layer}_{c}", cat=pulp.LpBinary) for c in range(len(options))]
        for layer, options in enumerate(table.costs)
    ]
    for xs in choice:
        problem += pulp.lpSum(xs) == 1
    return choice


def weighted(table: CandidateTable, choice: list[list[pulp.LpVariable]],
             value: Callable[[LayerCost], float]) -> pulp.LpAffineExpression:
    """The sum of `value(cost)` over the chosen candidates, as a linear expression built from its
    coefficients (PuLP's `value * x` makes an expression per term, which took half the time of a
    mapping)."""
    return pulp.LpAffineExpression([(x, value(cost)) for options, xs in zip(table.costs, choice)
                                    for cost, x in zip(options, xs)])


def usage(table: CandidateTable, choice: list[list[pulp.LpVariable]], resource: str) -> pulp.LpAffineExpression:
    """How much of `resource` the chosen candidates take, as a linear expression."""
    return weighted(table, choice, lambda cost: cost.resource(resource))


def chosen_indices(choice: list[list[pulp.LpVariable]]) -> list[int]:
    """The candidate each layer's binaries select in the solver's current solution."""
    return [max(range(len(xs)), key=lambda c: xs[c].value() or 0) for xs in choice]


def cycle_budget(board: Board, fps: float | None) -> int | None:
    """The largest bottleneck interval (cycles) that still reaches `fps` at the board clock."""
    if fps is None:
        return None
    if not (math.isfinite(fps) and fps >= MIN_FPS):
        raise HwcodesignError(f"fps {fps:g}: the frame rate must be a finite number of at least {MIN_FPS:g}")
    return int(board.clock_mhz * 1e6 // fps)


def evaluate(table: CandidateTable, picks: Sequence[int], goal: str, limits: dict[str, int] | None = None) -> float:
    """The objective of one assignment, computed directly (used by the ILP and by brute force);
    the `resources` goal's is its largest fraction of `limits` (`resource_cost`)."""
    if goal == "resources":
        assert limits is not None, "the resources goal is measured against limits"
        return resource_cost(table, picks, limits)[0]
    chosen = [options[c] for options, c in zip(table.costs, picks)]
    bottleneck = max(cost.cycles for cost in chosen)
    return float(bottleneck if goal == "throughput" else bottleneck + sum(cost.depth for cost in chosen))


def least_within_limits(table: CandidateTable, limits: dict[str, int], resource: str,
                        deadline: Deadline | None = None) -> int | None:
    """The least `resource` any mapping takes while the other resources stay within `limits`
    (None when even those cannot be met, or when `deadline` runs out before it is proven):
    which trade-off makes a model not fit."""
    problem = pulp.LpProblem("least_" + resource, pulp.LpMinimize)
    choice = one_candidate_per_layer(problem, table)
    for other in RESOURCES:
        if other != resource:
            problem += usage(table, choice, other) <= limits[other]
    problem += usage(table, choice, resource)
    if solve_within(problem, deadline or Deadline(None)) is not Outcome.OPTIMAL:
        return None
    return int(round(pulp.value(problem.objective)))
