"""The mapper: one integer program picks every layer's folding under the board's resources.

Variables: x[l, c] in {0, 1}: layer l takes candidate c; sum_c x[l, c] = 1.
Resources: for r in DSP, BRAM18K, LUT, FF: sum_{l,c} cost_r[l, c] x[l, c] <= cap_r * board_r.
Goals (T is a continuous variable bounded below by every layer's cycles, so at the optimum it
equals the bottleneck initiation interval of the dataflow pipeline):
- "throughput": minimise T (frames per second = clock / T);
- "latency": minimise T + sum_l depth[l, c] x[l, c] (first-frame latency of the pipeline:
  fill of every stage plus one bottleneck interval), optionally with T <= clock / fps.
CBC (bundled with PuLP) proves optimality of the returned solution for this model.

The streams between stages need memory too. Each candidate's cost includes the FIFOs the
layer writes into, in its own word width, so the program sees how a folding packs them; their
depth (rows per edge) comes from the pipeline simulation, which depends on the foldings.
`map_dataflow` therefore solves with default depths (`streams.default_fifo_rows`), simulates the chosen mapping to plan the
depths (deep FIFOs only where branches rejoin), and re-solves with those depths (and the width
converters' LUTs/FFs reserved) until the plan fits what was assumed; the result is optimal for
the cost model given those depths.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from collections.abc import Mapping as MappingType
from dataclasses import dataclass, field
from typing import Any

import pulp

from hwcodesign.boards import Board, available_boards
from hwcodesign.errors import HwcodesignError
from hwcodesign.hardware.folding import RESOURCES, Folding, LayerCost
from hwcodesign.hardware.stream import dma_bytes_per_cycle
from hwcodesign.ir.graph import Graph
from hwcodesign.mapper.cost import candidate_foldings, layer_cost
from hwcodesign.mapper.solver import DEFAULT_TIME_LIMIT, Deadline, Outcome, SolverTimeout, solve_within
from hwcodesign.mapper.streams import default_fifo_rows, output_fifos, with_output_fifos

DEFAULT_CAPS = {"dsp": 0.9, "bram18k": 0.8, "lut": 0.8, "ff": 0.8}
FIFO_ROUNDS = 6
GOALS = ("throughput", "latency")
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


@dataclass(frozen=True)
class Mapping:
    board: Board
    goal: str
    foldings: dict[str, Folding]
    costs: dict[str, LayerCost]
    objective: float
    solve_seconds: float
    limits: dict[str, int] = field(default_factory=dict)
    reserved: dict[str, int] = field(default_factory=dict)
    fifo_rows: dict[tuple[str, str], int] = field(default_factory=dict)
    densities: dict[str, float] = field(default_factory=dict)  # design densities of sparse tensors
    note: str = ""  # set when the solver's time limit ran out (`solver.Deadline.note`)

    architecture = "dataflow"

    @property
    def bottleneck_cycles(self) -> int:
        return max((c.cycles for c in self.costs.values()), default=0)

    @property
    def fps(self) -> float:
        return self.board.clock_mhz * 1e6 / max(self.bottleneck_cycles, 1)

    def total(self, resource: str) -> int:
        """The layers' use of `resource`, each with the FIFOs it writes into (width converters
        are in `reserved`)."""
        return sum(c.resource(resource) for c in self.costs.values())


def candidate_table(graph: Graph, board: Board, max_candidates: int = 96,
                    fifo_rows: MappingType[tuple[str, str], int] | None = None,
                    densities: MappingType[str, float] | None = None) -> CandidateTable:
    """Every layer's candidate foldings and their costs, each including the FIFOs the layer
    writes into at `fifo_rows` rows per edge (a stage's word width decides how they pack)."""
    return with_output_fifos_table(graph, stage_table(graph, board, max_candidates, densities), fifo_rows)


def stage_table(graph: Graph, board: Board, max_candidates: int = 96,
                densities: MappingType[str, float] | None = None) -> CandidateTable:
    """Every layer's candidate foldings and the costs of the stages alone (no FIFOs); sparse
    layers at the design `densities` (active fraction per sparse tensor; 1.0 when absent)."""
    rate = dma_bytes_per_cycle(board.ddr_bandwidth_gbps, board.clock_mhz)
    layers, foldings, costs = [], [], []
    for op in graph:
        inputs = graph.input_tensors(op)
        options = tuple(candidate_foldings(op, inputs, max_candidates))
        layers.append(op.name)
        foldings.append(options)
        costs.append(tuple(layer_cost(op, inputs, f, board.ps_type, rate, densities) for f in options))
    return CandidateTable(tuple(layers), tuple(foldings), tuple(costs))


def with_output_fifos_table(graph: Graph, stages: CandidateTable,
                            fifo_rows: MappingType[tuple[str, str], int] | None) -> CandidateTable:
    """`stages` with each candidate's output FIFOs at `fifo_rows` added (the stage costs do not
    depend on the depths, so the mapper's rounds reuse them)."""
    costs = tuple(
        tuple(with_output_fifos(cost, output_fifos(graph, name, folding, fifo_rows)) for folding, cost in zip(options, layer_costs))
        for name, options, layer_costs in zip(stages.layers, stages.foldings, stages.costs)
    )
    return CandidateTable(stages.layers, stages.foldings, costs)


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


def solve_table(table: CandidateTable, limits: dict[str, int], goal: str, max_cycles: int | None = None,
                deadline: Deadline | None = None, start: Sequence[int] | None = None,
                what: str = "", hint: str = TIMEOUT_HINT) -> tuple[list[int], float] | None:
    """Optimal candidate index per layer and the objective; None when infeasible. Within the
    time `deadline` has left (none: no limit): a solution found when it runs out is returned
    and marks the deadline `stopped_early`; none found raises SolverTimeout naming `what` (by
    default the layers mapped) with `hint`. `start`: a candidate per layer CBC starts from."""
    if goal not in GOALS:
        raise HwcodesignError(f"unknown goal '{goal}'; choose one of {', '.join(GOALS)}")
    deadline = deadline or Deadline(None)
    remaining = deadline.remaining()
    if remaining is not None and remaining <= 0:  # no time to even build the program
        return timed_out(table, limits, goal, max_cycles, deadline, start, what, hint)
    problem = pulp.LpProblem("mapping", pulp.LpMinimize)
    choice = one_candidate_per_layer(problem, table)
    bottleneck = pulp.LpVariable("bottleneck_cycles", lowBound=0)
    for layer, options in enumerate(table.costs):
        problem += bottleneck >= pulp.lpSum(cost.cycles * x for cost, x in zip(options, choice[layer]))
    for resource in RESOURCES:
        problem += usage(table, choice, resource) <= limits[resource], f"limit_{resource}"
    if max_cycles is not None:
        problem += bottleneck <= max_cycles
    fill = pulp.lpSum(cost.depth * x for options, xs in zip(table.costs, choice) for cost, x in zip(options, xs))
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
    objective = evaluate(table, picks, goal)
    if outcome is Outcome.FEASIBLE:  # the time is up: no tie-break among mappings not proven optimal
        deadline.stopped_early = True
        return picks, objective
    # Second phase: among optimal mappings, use the fewest resources (relative to the limits),
    # so layers off the critical path are not given parallelism they cannot use. It only refines
    # the first phase's answer, so running out of time here keeps that answer.
    problem += goal_expression <= objective, "keep_optimum"
    problem.setObjective(pulp.lpSum(
        cost.resource(r) / max(limits[r], 1) * x
        for options, xs in zip(table.costs, choice) for cost, x in zip(options, xs) for r in RESOURCES
    ))
    outcome = solve_within(problem, deadline, share=0.5)
    if outcome in (Outcome.OPTIMAL, Outcome.FEASIBLE):
        frugal = chosen_indices(choice)
        if evaluate(table, frugal, goal) <= objective:
            picks = frugal
    deadline.stopped_early |= outcome in (Outcome.FEASIBLE, Outcome.TIMEOUT)
    return picks, objective


def timed_out(table: CandidateTable, limits: dict[str, int], goal: str, max_cycles: int | None, deadline: Deadline,
              start: Sequence[int] | None, what: str, hint: str) -> tuple[list[int], float]:
    """The answer when CBC found nothing in time: the start, or every layer at its most frugal
    candidate, is still a design when it fits (checked here directly); else SolverTimeout."""
    fallback = next((picks for picks in (start, frugal_picks(table, limits))
                     if picks is not None and fits(table, picks, limits, max_cycles)), None)
    if fallback is None:
        raise deadline.timeout(what or f"mapping {len(table.layers)} layers", hint)
    deadline.stopped_early = True
    return list(fallback), evaluate(table, fallback, goal)


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


def usage(table: CandidateTable, choice: list[list[pulp.LpVariable]], resource: str) -> pulp.LpAffineExpression:
    """How much of `resource` the chosen candidates take, as a linear expression."""
    return pulp.lpSum(cost.resource(resource) * x for options, xs in zip(table.costs, choice) for cost, x in zip(options, xs))


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


def evaluate(table: CandidateTable, picks: Sequence[int], goal: str) -> float:
    """The objective of one assignment, computed directly (used by the ILP and by brute force)."""
    chosen = [options[c] for options, c in zip(table.costs, picks)]
    bottleneck = max(cost.cycles for cost in chosen)
    return float(bottleneck if goal == "throughput" else bottleneck + sum(cost.depth for cost in chosen))


def map_dataflow(graph: Graph, board: Board, goal: str = "throughput", fps: float | None = None,
                 caps: dict[str, float] | None = None, max_candidates: int = 96,
                 progress: Callable[[str], None] | None = None, plan_streams: bool = True,
                 suggest_board: bool = True, densities: MappingType[str, float] | None = None,
                 time_limit: float | Deadline | None = DEFAULT_TIME_LIMIT) -> Mapping:
    """Choose every layer's folding optimally for the cost model; explain when nothing fits.

    With `plan_streams` the FIFO depths and width converters are planned with the pipeline
    simulation and counted (module doc); without, FIFOs keep their default depths
    (`streams.default_fifo_rows`). Every integer program solved shares `time_limit` (seconds,
    or a caller's Deadline; None: no limit): when it runs out, the best mapping found is returned
    with a `note` saying so, and SolverTimeout is raised when none was found.
    """
    start = time.perf_counter()
    deadline = Deadline.of(time_limit)
    limits = resource_limits(board, caps)
    max_cycles = cycle_budget(board, fps)
    stages = stage_table(graph, board, max_candidates, densities)
    rows: dict[tuple[str, str], int] = {}
    reserved = {r: 0 for r in RESOURCES}
    previous: list[int] | None = None  # the last round's picks
    for attempt in range(FIFO_ROUNDS):
        table = with_output_fifos_table(graph, stages, rows)
        if progress and attempt == 0:
            progress(f"solving {sum(len(c) for c in table.costs)} choices over {len(table.layers)} layers")
        budget = {r: limits[r] - reserved[r] for r in RESOURCES}
        # a round after one cut short by the time limit starts from that round's mapping
        start_from = previous if deadline.stopped_early else None
        solution = (solve_table(table, budget, goal, max_cycles, deadline, start_from)
                    if min(budget.values()) >= 0 else None)
        if solution is None:
            raise MappingInfeasible(explain_infeasible(graph, table, board, limits, fps, caps, max_candidates,
                                                       reserved, suggest_board and plan_streams, deadline))
        picks, objective = solution
        previous = picks
        mapping = Mapping(
            board, goal,
            {name: options[c] for name, options, c in zip(table.layers, table.foldings, picks)},
            {name: options[c] for name, options, c in zip(table.layers, table.costs, picks)},
            objective, time.perf_counter() - start, limits, dict(reserved), dict(rows), dict(densities or {}),
            deadline.note,
        )
        if not plan_streams:
            return mapping
        planned, needed = stream_plan(graph, mapping)
        if all(depth <= rows.get(edge, default_fifo_rows(graph, edge[1])) for edge, depth in planned.items()) and \
                all(needed[r] <= reserved[r] for r in RESOURCES):
            return mapping
        # follow the latest mapping's plan at first (a slower mapping may need less), then only
        # grow, so the rounds cannot cycle
        settle = attempt >= FIFO_ROUNDS // 2
        rows = {edge: max(depth, rows.get(edge, 0)) if settle else depth for edge, depth in planned.items()}
        reserved = {r: max(reserved[r], needed[r]) if settle else needed[r] for r in RESOURCES}
    raise MappingInfeasible(
        f"model does not fit {board.name}: the stream FIFO depths did not settle in {FIFO_ROUNDS} rounds "
        f"(the pipeline simulation keeps asking for deeper FIFOs than the mapping can afford)"
    )


def stream_plan(graph: Graph, mapping: Mapping) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
    """The FIFO rows the pipeline simulation plans for `mapping`, and the LUTs/FFs its width
    converters take (reserved, since they depend on two neighbours' foldings)."""
    from hwcodesign.sim.latency import simulate  # the simulator builds on this module's Mapping

    report = simulate(graph, mapping, frames=2)
    return dict(report.fifo_rows), {"dsp": 0, "bram18k": 0, "lut": report.refold_lut, "ff": report.refold_ff}


def explain_infeasible(graph: Graph, table: CandidateTable, board: Board, limits: dict[str, int],
                       fps: float | None, caps: dict[str, float] | None, max_candidates: int,
                       reserved: dict[str, int] | None = None, suggest_board: bool = True,
                       deadline: Deadline | None = None) -> str:
    """Name the resource that cannot fit even at minimum folding, and the smallest board that fits.
    The explanation's own programs share `deadline`; what it cannot settle in time is left out."""
    deadline = deadline or Deadline(None)
    reserved = reserved or {r: 0 for r in RESOURCES}
    reasons = []
    for resource in RESOURCES:
        per_layer = [min(cost.resource(resource) for cost in options) for options in table.costs]
        least = sum(per_layer)
        if least + reserved[resource] > limits[resource]:
            fifo_note = f" plus {reserved[resource]} for the width converters" if reserved[resource] else ""
            largest = max(range(len(per_layer)), key=per_layer.__getitem__)
            reasons.append(f"{resource.upper()} needs at least {least}{fifo_note} (the most, {per_layer[largest]}, "
                           f"in layer '{table.layers[largest]}') but {board.name} allows {limits[resource]}"
                           f"{cap_note(caps, resource)}")
    if not reasons and fps:
        reasons.append(f"no folding reaches {cycle_budget(board, fps)} cycles per frame (the requested fps) within the resources")
    if not reasons:
        budget = {r: limits[r] - reserved[r] for r in RESOURCES}
        for resource in RESOURCES:
            least = least_within_limits(table, budget, resource, deadline)
            if least is not None and least > budget[resource]:
                others = ", ".join(r.upper() for r in RESOURCES if r != resource)
                reasons.append(f"{resource.upper()} needs at least {least} while {others} stay within their "
                               f"limits, but {board.name} allows {budget[resource]}{cap_note(caps, resource)}")
    if not reasons:
        fifos = (f" once {reserved['lut']} LUT and {reserved['ff']} FF are kept for the width converters"
                 if any(reserved.values()) else "")
        reasons.append(f"the resources cannot all be met at once by any combination of foldings{fifos}")
    larger = [b for b in available_boards() if b.resources.dsp >= board.resources.dsp and b.name != board.name]
    message = f"model does not fit {board.name}: " + "; ".join(reasons)
    if not suggest_board:
        return message
    try:
        fits = next((b.name for b in larger if board_fits(graph, b, fps, caps, max_candidates, deadline)), None)
    except SolverTimeout:
        return message + "; the time limit ran out before a larger board that fits was found"
    return message + (f"; smallest board that fits: {fits}" if fits else "; no board in boards/ fits this model")


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


def board_fits(graph: Graph, board: Board, fps: float | None, caps: dict[str, float] | None,
               max_candidates: int, deadline: Deadline | None = None) -> bool:
    """Whether `map_dataflow` finds a mapping on `board` (FIFOs included); SolverTimeout when
    `deadline` runs out before that is known."""
    try:
        map_dataflow(graph, board, "throughput", fps, caps, max_candidates, suggest_board=False,
                     time_limit=deadline or Deadline(None))
    except MappingInfeasible:
        return False
    return True


def fixed_mapping(graph: Graph, board: Board, foldings: dict[str, Folding],
                  densities: MappingType[str, float] | None = None) -> Mapping:
    """The mapping for foldings chosen by hand (layers not named keep PE=1, SIMD=1).

    Costs come from the same cost model, so reports, the simulator and the generated project
    treat a pinned folding exactly like one the ILP chose (FIFOs counted one row deep).
    Resources are not checked here.
    """
    unknown = set(foldings) - {op.name for op in graph}
    if unknown:
        raise HwcodesignError(f"foldings name layers not in the graph: {', '.join(sorted(unknown))}")
    rate = dma_bytes_per_cycle(board.ddr_bandwidth_gbps, board.clock_mhz)
    chosen = {op.name: foldings.get(op.name, Folding()) for op in graph}
    costs = {op.name: with_output_fifos(layer_cost(op, graph.input_tensors(op), chosen[op.name], board.ps_type, rate,
                                                   densities),
                                        output_fifos(graph, op.name, chosen[op.name]))
             for op in graph}
    bottleneck = max((c.cycles for c in costs.values()), default=0)
    return Mapping(board, "fixed", chosen, costs, float(bottleneck), 0.0, resource_limits(board),
                   densities=dict(densities or {}))
