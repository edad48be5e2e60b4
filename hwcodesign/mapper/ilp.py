"""The mapper: one integer program picks every layer's folding under the board's resources.

Variables: x[l, c] in {0, 1}: layer l takes candidate c; sum_c x[l, c] = 1.
Resources: for r in DSP, BRAM18K, LUT, FF: sum_{l,c} cost_r[l, c] x[l, c] <= cap_r * board_r.
Goals (T is a continuous variable bounded below by every layer's cycles, so at the optimum it
equals the bottleneck initiation interval of the dataflow pipeline):
- "throughput": minimise T (frames per second = clock / T);
- "latency": minimise T + sum_l depth[l, c] x[l, c] (first-frame latency of the pipeline:
  fill of every stage plus one bottleneck interval), optionally with T <= clock / fps.
CBC (bundled with PuLP) proves optimality of the returned solution for this model
(`table.solve_table`, the program the engine's mapper shares).

The streams between stages need memory too. Each candidate's cost includes the FIFOs the
layer writes into, in its own word width, so the program sees how a folding packs them; their
depth (rows per edge) comes from the pipeline simulation, which depends on the foldings.
`map_dataflow` therefore solves with default depths (`streams.default_fifo_rows`), has its
`stream_planner` simulate the chosen mapping to plan the depths (deep FIFOs only where branches
rejoin), and re-solves with those depths (and the width converters' LUTs/FFs reserved) until the
plan fits what was assumed; the result is optimal for the cost model given those depths. The
planner is passed in (`backends.dataflow.map_pipeline` passes the simulator's) because the
simulator reads mappings and so sits above the mapper.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Mapping as MappingType

from hwcodesign.boards import Board, available_boards
from hwcodesign.errors import HwcodesignError
from hwcodesign.hardware.folding import RESOURCES, Folding
from hwcodesign.hardware.stream import dma_bytes_per_cycle
from hwcodesign.ir.graph import Graph
from hwcodesign.mapper.cost import candidate_foldings, layer_cost, pinned_folding, smallest_folding
from hwcodesign.mapper.folding_file import FoldingFileError
from hwcodesign.mapper.mapping import Mapping
from hwcodesign.mapper.solver import DEFAULT_TIME_LIMIT, Deadline, SolverTimeout
from hwcodesign.mapper.streams import default_fifo_rows, output_fifos, with_output_fifos
from hwcodesign.mapper.table import (
    CandidateTable,
    MappingInfeasible,
    cap_note,
    cycle_budget,
    least_within_limits,
    resource_limits,
    solve_table,
    without_dominated,
)

StreamPlan = tuple[dict[tuple[str, str], int], dict[str, int]]
StreamPlanner = Callable[[Graph, Mapping], StreamPlan]
"""Plans a mapping's FIFO depths (rows per edge) and the LUTs/FFs its width converters reserve:
the pipeline simulation does it (`backends.dataflow.plan_streams`), which sits above the mapper."""
FIFO_ROUNDS = 6


def candidate_table(graph: Graph, board: Board, max_candidates: int = 96,
                    fifo_rows: MappingType[tuple[str, str], int] | None = None,
                    densities: MappingType[str, float] | None = None) -> CandidateTable:
    """Every layer's candidate foldings and their costs, each including the FIFOs the layer
    writes into at `fifo_rows` rows per edge (a stage's word width decides how they pack)."""
    return with_output_fifos_table(graph, stage_table(graph, board, max_candidates, densities), fifo_rows)


def stage_table(graph: Graph, board: Board, max_candidates: int = 96,
                densities: MappingType[str, float] | None = None,
                pinned: MappingType[str, Folding] | None = None) -> CandidateTable:
    """Every layer's candidate foldings and the costs of the stages alone (no FIFOs); sparse
    layers at the design `densities` (active fraction per sparse tensor; 1.0 when absent); a
    `pinned` layer (a folding file's) has its one folding."""
    rate = dma_bytes_per_cycle(board.ddr_bandwidth_gbps, board.clock_mhz)
    pinned = pinned or {}
    unknown = sorted(set(pinned) - {op.name for op in graph})
    if unknown:
        names = ", ".join(op.name for op in list(graph)[:6])
        raise FoldingFileError(f"the folding file names layer '{unknown[0]}', which the model does not have "
                               f"(its layers, as `inspect` lists them: {names}, ...)")
    layers, foldings, costs = [], [], []
    for op in graph:
        inputs = graph.input_tensors(op)
        options = ((pinned_folding(op, inputs, pinned[op.name]),) if op.name in pinned
                   else tuple(candidate_foldings(op, inputs, max_candidates)))
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


def picks_of(table: CandidateTable, foldings: list[Folding]) -> list[int] | None:
    """The indices of `foldings` in `table` (a later round's, pruned afresh), None when one of
    them was dropped as dominated there."""
    try:
        return [options.index(folding) for options, folding in zip(table.foldings, foldings)]
    except ValueError:
        return None


def map_dataflow(graph: Graph, board: Board, goal: str = "throughput", fps: float | None = None,
                 caps: dict[str, float] | None = None, max_candidates: int = 96,
                 progress: Callable[[str], None] | None = None, stream_planner: StreamPlanner | None = None,
                 suggest_board: bool = True, densities: MappingType[str, float] | None = None,
                 time_limit: float | Deadline | None = DEFAULT_TIME_LIMIT,
                 pinned: MappingType[str, Folding] | None = None) -> Mapping:
    """Choose every layer's folding optimally for the cost model; explain when nothing fits.
    `pinned` layers keep the folding given (`folding_file.read_folding_file`); the rest are chosen.

    With a `stream_planner` the FIFO depths and width converters are planned (by the pipeline
    simulation, module doc) and counted; without, FIFOs keep their default depths
    (`streams.default_fifo_rows`). Every integer program solved shares `time_limit` (seconds,
    or a caller's Deadline; None: no limit): when it runs out, the best mapping found is returned
    with a `note` saying so, and SolverTimeout is raised when none was found.
    """
    start = time.perf_counter()
    deadline = Deadline.of(time_limit)
    limits = resource_limits(board, caps)
    max_cycles = cycle_budget(board, fps)
    stages = stage_table(graph, board, max_candidates, densities, pinned)
    rows: dict[tuple[str, str], int] = {}
    reserved = {r: 0 for r in RESOURCES}
    previous: list[Folding] | None = None  # the last round's foldings
    for attempt in range(FIFO_ROUNDS):
        table = without_dominated(with_output_fifos_table(graph, stages, rows))
        if progress and attempt == 0:
            progress(f"solving {sum(len(c) for c in table.costs)} choices over {len(table.layers)} layers")
        budget = {r: limits[r] - reserved[r] for r in RESOURCES}
        # a round after one cut short by the time limit starts from that round's mapping
        start_from = picks_of(table, previous) if deadline.stopped_early and previous else None
        solution = (solve_table(table, budget, goal, max_cycles, deadline, start_from)
                    if min(budget.values()) >= 0 else None)
        if solution is None:
            raise MappingInfeasible(explain_infeasible(graph, table, board, limits, fps, caps, max_candidates,
                                                       reserved, stream_planner if suggest_board else None,
                                                       deadline))
        picks, objective = solution
        previous = [options[c] for options, c in zip(table.foldings, picks)]
        mapping = Mapping(
            board, goal,
            {name: options[c] for name, options, c in zip(table.layers, table.foldings, picks)},
            {name: options[c] for name, options, c in zip(table.layers, table.costs, picks)},
            objective, time.perf_counter() - start, limits, dict(reserved), dict(rows), dict(densities or {}),
            deadline.note,
        )
        if stream_planner is None:
            return mapping
        planned, needed = stream_planner(graph, mapping)
        if all(depth <= rows.get(edge, default_fifo_rows(graph, edge[1], graph.op(edge[0]).output.name)) for edge, depth in planned.items()) and \
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


def explain_infeasible(graph: Graph, table: CandidateTable, board: Board, limits: dict[str, int],
                       fps: float | None, caps: dict[str, float] | None, max_candidates: int,
                       reserved: dict[str, int] | None = None, stream_planner: StreamPlanner | None = None,
                       deadline: Deadline | None = None) -> str:
    """Name the resource that cannot fit even at minimum folding, and (given the `stream_planner`
    that maps it in full) the smallest board that fits. The explanation's own programs share
    `deadline`; what it cannot settle in time is left out."""
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
    if stream_planner is None:
        return message
    try:
        fits = next((b.name for b in larger
                     if board_fits(graph, b, fps, caps, max_candidates, stream_planner, deadline)), None)
    except SolverTimeout:
        return message + "; the time limit ran out before a larger board that fits was found"
    return message + (f"; smallest board that fits: {fits}" if fits else "; no board in boards/ fits this model")


def board_fits(graph: Graph, board: Board, fps: float | None, caps: dict[str, float] | None,
               max_candidates: int, stream_planner: StreamPlanner, deadline: Deadline | None = None) -> bool:
    """Whether `map_dataflow` finds a mapping on `board` (FIFOs planned by `stream_planner`);
    SolverTimeout when `deadline` runs out before that is known."""
    try:
        map_dataflow(graph, board, "throughput", fps, caps, max_candidates, stream_planner=stream_planner,
                     suggest_board=False, time_limit=deadline or Deadline(None))
    except MappingInfeasible:
        return False
    return True


def fixed_mapping(graph: Graph, board: Board, foldings: dict[str, Folding],
                  densities: MappingType[str, float] | None = None) -> Mapping:
    """The mapping for foldings chosen by hand (layers not named take their smallest candidate,
    `cost.smallest_folding`: PE=1, SIMD=1, their weights where they would go without a choice).

    Costs come from the same cost model, so reports, the simulator and the generated project
    treat a pinned folding exactly like one the ILP chose (FIFOs counted one row deep).
    Resources are not checked here.
    """
    unknown = set(foldings) - {op.name for op in graph}
    if unknown:
        raise HwcodesignError(f"foldings name layers not in the graph: {', '.join(sorted(unknown))}")
    rate = dma_bytes_per_cycle(board.ddr_bandwidth_gbps, board.clock_mhz)
    chosen = {op.name: foldings.get(op.name) or smallest_folding(op, graph.input_tensors(op)) for op in graph}
    costs = {op.name: with_output_fifos(layer_cost(op, graph.input_tensors(op), chosen[op.name], board.ps_type, rate,
                                                   densities),
                                        output_fifos(graph, op.name, chosen[op.name]))
             for op in graph}
    bottleneck = max((c.cycles for c in costs.values()), default=0)
    return Mapping(board, "fixed", chosen, costs, float(bottleneck), 0.0, resource_limits(board),
                   densities=dict(densities or {}))
