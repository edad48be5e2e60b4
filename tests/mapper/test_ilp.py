"""The ILP is optimal for its cost model (checked by brute force) and explains infeasibility."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hwcodesign.backends.choose import map_to_board
from hwcodesign.backends.dataflow import map_pipeline, plan_streams
from hwcodesign.boards import load_board
from hwcodesign.errors import HwcodesignError
from hwcodesign.hardware.folding import RESOURCES, LayerCost
from hwcodesign.hardware.memory import bram18k_blocks
from hwcodesign.ir import Graph, Input, IntType, Tensor, make_requant
from hwcodesign.mapper.ilp import StreamPlan, candidate_table, map_dataflow
from hwcodesign.mapper.mapping import Mapping
from hwcodesign.mapper.table import (
    CandidateTable,
    MappingInfeasible,
    evaluate,
    fits,
    least_within_limits,
    non_dominated,
    resource_cost,
    solve_table,
    without_dominated,
)
from hwcodesign.ops import Conv

UINT8 = IntType(8, False)


def conv_chain(rng: np.random.Generator, channels: list[int], size: int = 16, weight_bits: int = 8) -> Graph:
    ops = [Input("in", (), Tensor("t0", (1, channels[0], size, size), UINT8, 0.05, 0))]
    for i, (c_in, c_out) in enumerate(zip(channels, channels[1:]), start=1):
        k = int(rng.choice([1, 3]))
        weight = rng.integers(-(2 ** (weight_bits - 1)), 2 ** (weight_bits - 1), (c_out, c_in, k, k))
        out = Tensor(f"t{i}", (1, c_out, size, size), UINT8, 0.05, 0)
        requant = make_requant(np.full(c_out, 0.01), 0, 0, 255)
        ops.append(Conv(f"conv{i}", (f"t{i - 1}",), out, weight, IntType(weight_bits, True),
                        np.zeros(c_out, np.int64), (1, 1), (k // 2,) * 4, (1, 1), 1, requant))
    return Graph.from_ops("chain", ops, [ops[-1].output.name])


def brute_force(table, limits, goal):
    best = None
    for picks in itertools.product(*(range(len(options)) for options in table.costs)):
        used = {r: sum(table.costs[layer][c].resource(r) for layer, c in enumerate(picks)) for r in RESOURCES}
        if any(used[r] > limits[r] for r in RESOURCES):
            continue
        value = evaluate(table, picks, goal)
        best = value if best is None else min(best, value)
    return best


@pytest.mark.parametrize("seed", range(24))
def test_ilp_matches_exhaustive_search(seed: int) -> None:
    rng = np.random.default_rng(seed)
    layers = int(rng.integers(3, 7))
    channels = [int(rng.choice([2, 4, 6, 8, 12])) for _ in range(layers)]
    graph = conv_chain(rng, channels)
    table = candidate_table(graph, load_board("zcu102"), max_candidates=4)
    total_max = {r: sum(max(c.resource(r) for c in options) for options in table.costs) for r in RESOURCES}
    # limits between the minimum and maximum usage so the constraints bind
    limits = {r: int(total_max[r] * rng.uniform(0.35, 0.8)) for r in RESOURCES}
    goal = "throughput" if seed % 2 == 0 else "latency"
    expected = brute_force(table, limits, goal)
    solution = solve_table(table, limits, goal)
    if expected is None:
        assert solution is None
        return
    assert solution is not None
    picks, objective = solution
    assert objective == expected
    assert evaluate(table, picks, goal) == expected
    for r in RESOURCES:
        assert sum(table.costs[layer][c].resource(r) for layer, c in enumerate(picks)) <= limits[r]


def brute_force_resources(table, limits, max_cycles):
    """The least (largest fraction, sum of fractions) over every assignment reaching `max_cycles`."""
    costs = [resource_cost(table, picks, limits)
             for picks in itertools.product(*(range(len(options)) for options in table.costs))
             if fits(table, picks, limits, max_cycles)]
    return min(costs, default=None)


@pytest.mark.parametrize("seed", range(24))
def test_least_hardware_at_a_frame_rate_matches_exhaustive_search(seed: int) -> None:
    """The `resources` goal: of the designs reaching the cycle budget, the one of least largest
    fraction of a limit plus a quarter of their sum, then the least sum of fractions."""
    rng = np.random.default_rng(300 + seed)
    channels = [int(rng.choice([2, 4, 6, 8, 12])) for _ in range(int(rng.integers(3, 7)))]
    table = candidate_table(conv_chain(rng, channels), load_board("zcu102"), max_candidates=4)
    total_max = {r: sum(max(c.resource(r) for c in options) for options in table.costs) for r in RESOURCES}
    limits = {r: max(1, int(total_max[r] * rng.uniform(0.5, 1.0))) for r in RESOURCES}
    cycles = sorted({cost.cycles for options in table.costs for cost in options})
    max_cycles = cycles[int(rng.integers(len(cycles) // 3, len(cycles)))]  # binding, mostly reachable
    expected = brute_force_resources(table, limits, max_cycles)
    solution = solve_table(table, limits, "resources", max_cycles)
    if expected is None:
        assert solution is None
        return
    assert solution is not None
    picks, objective = solution
    assert fits(table, picks, limits, max_cycles)
    largest, total = resource_cost(table, picks, limits)
    assert objective == pytest.approx(largest, rel=1e-12)
    assert largest <= expected[0] * (1 + 1e-9) and total <= expected[1] + 1e-9


@pytest.mark.parametrize("seed", range(12))
def test_the_weight_memory_choice_is_optimal_too(seed: int) -> None:
    """Wider layers, whose kept foldings offer their weights in block RAM or LUTRAM
    (`memory.weight_memories`): every goal still matches exhaustive search."""
    rng = np.random.default_rng(600 + seed)
    channels = [int(rng.choice([16, 24, 32])) for _ in range(int(rng.integers(3, 5)))]
    table = candidate_table(conv_chain(rng, channels), load_board("zcu102"), max_candidates=6)
    assert any({f.weights for f in options if (f.pe, f.simd) == (g.pe, g.simd)} == {"bram", "lutram"}
               for options in table.foldings for g in options)
    total_max = {r: sum(max(c.resource(r) for c in options) for options in table.costs) for r in RESOURCES}
    limits = {r: max(1, int(total_max[r] * rng.uniform(0.35, 0.8))) for r in RESOURCES}
    goal = ("throughput", "latency", "resources")[seed % 3]
    if goal == "resources":
        cycles = sorted({cost.cycles for options in table.costs for cost in options})
        max_cycles = cycles[int(rng.integers(len(cycles) // 3, len(cycles)))]
        expected = brute_force_resources(table, limits, max_cycles)
        solution = solve_table(table, limits, goal, max_cycles)
        assert (solution is None) == (expected is None)
        if solution is not None:
            assert resource_cost(table, solution[0], limits)[0] <= expected[0] * (1 + 1e-9)
        return
    expected = brute_force(table, limits, goal)
    solution = solve_table(table, limits, goal)
    assert (solution is None) == (expected is None)
    if solution is not None:
        assert solution[1] == expected == evaluate(table, solution[0], goal)


def test_a_frame_rate_without_a_goal_asks_for_the_least_hardware_reaching_it() -> None:
    graph = conv_chain(np.random.default_rng(9), [3, 16, 32, 32])
    board = load_board("ultra96v2")
    fastest = map_pipeline(graph, board)
    target = fastest.fps / 8
    least = map_pipeline(graph, board, "resources", fps=target)
    assert least.goal == "resources" and least.fps >= target
    assert max(least.total(r) / max(least.limits[r], 1) for r in RESOURCES) < \
        max(fastest.total(r) / max(fastest.limits[r], 1) for r in RESOURCES)  # (a board without URAM has limit 0)
    with pytest.raises(HwcodesignError, match="give --fps"):
        map_to_board(graph, board, "resources")
    assert map_to_board(graph, board, fps=target).goal == "resources"
    assert map_to_board(graph, board).goal == "throughput"


@pytest.mark.parametrize("seed", range(8))
def test_least_resource_within_the_other_limits_matches_exhaustive_search(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    graph = conv_chain(rng, [int(rng.choice([2, 4, 8])) for _ in range(4)])
    table = candidate_table(graph, load_board("zcu102"), max_candidates=4)
    total_max = {r: sum(max(c.resource(r) for c in options) for options in table.costs) for r in RESOURCES}
    limits = {r: int(total_max[r] * rng.uniform(0.4, 0.9)) for r in RESOURCES}
    resource = RESOURCES[seed % len(RESOURCES)]
    best = None
    for picks in itertools.product(*(range(len(options)) for options in table.costs)):
        used = {r: sum(table.costs[layer][c].resource(r) for layer, c in enumerate(picks)) for r in RESOURCES}
        if all(used[r] <= limits[r] for r in RESOURCES if r != resource):
            best = used[resource] if best is None else min(best, used[resource])
    assert least_within_limits(table, limits, resource) == best


def test_mapping_respects_every_board_limit() -> None:
    graph = conv_chain(np.random.default_rng(1), [3, 16, 32, 32, 64])
    for board_name in ("pynqz2", "ultra96v2", "zcu104"):
        mapping = map_pipeline(graph, load_board(board_name))
        for r in RESOURCES:
            assert mapping.total(r) <= mapping.limits[r]
        assert mapping.fps > 0


def test_faster_board_is_never_slower() -> None:
    graph = conv_chain(np.random.default_rng(2), [3, 16, 32, 64])
    small = map_pipeline(graph, load_board("pynqz2"))
    large = map_pipeline(graph, load_board("zcu102"))
    assert large.bottleneck_cycles <= small.bottleneck_cycles


def test_too_big_for_pynq_z2_names_the_resource_and_a_board_that_fits() -> None:
    graph = conv_chain(np.random.default_rng(3), [64, 256, 256, 256, 256], size=8)
    with pytest.raises(MappingInfeasible) as error:
        map_pipeline(graph, load_board("pynqz2"))
    message = str(error.value)
    assert "BRAM18K needs at least" in message and "pynqz2" in message
    assert "smallest board that fits" in message


def test_fps_floor_out_of_reach_is_explained() -> None:
    graph = conv_chain(np.random.default_rng(4), [3, 8, 8])
    with pytest.raises(MappingInfeasible, match="requested fps"):
        map_pipeline(graph, load_board("pynqz2"), goal="latency", fps=1e9)


@pytest.mark.parametrize(("depth", "width", "blocks"), [
    (1024, 18, 1), (2048, 18, 2), (512, 36, 1), (16384, 1, 1), (1000, 40, 3), (4096, 8, 2), (100, 288, 8),
])
def test_bram18k_packing(depth: int, width: int, blocks: int) -> None:
    assert bram18k_blocks(depth, width) == blocks


def test_input_dma_bounds_the_frame_rate() -> None:
    board = load_board("pynqz2")
    # 64 KiB per frame, tiny compute: 16 channels in two DMA words a pixel, one output channel,
    # so the conv (a pixel a cycle, plus its window fill and output drain) outpaces the DMA
    graph = conv_chain(np.random.default_rng(5), [16, 1], size=64)
    mapping = map_pipeline(graph, board)
    dma_cycles = mapping.costs["in"].cycles
    assert dma_cycles == 16 * 64 * 64 // 8  # 8 bytes per cycle: the 64-bit stream binds, not DDR
    assert mapping.bottleneck_cycles == dma_cycles


def test_the_mapper_plans_streams_only_through_the_planner_it_is_given() -> None:
    """The mapper does not call the simulator (it sits below it): without a planner every FIFO keeps
    its default depth; `map_pipeline` hands it the simulator's plan, which it follows to the same
    mapping a planner returning that plan gives."""
    board = load_board("pynqz2")
    graph = conv_chain(np.random.default_rng(7), [4, 8, 8])
    unplanned = map_dataflow(graph, board)
    assert unplanned.fifo_rows == {} and not any(unplanned.reserved.values())
    planned = map_pipeline(graph, board)
    calls = []

    def planner(g: Graph, mapping: Mapping) -> StreamPlan:
        calls.append(mapping)
        return plan_streams(g, mapping)

    same = map_dataflow(graph, board, stream_planner=planner)
    assert calls and (same.foldings, same.fifo_rows, same.reserved) == (planned.foldings, planned.fifo_rows,
                                                                       planned.reserved)


def naive_non_dominated(vectors: list[tuple[int, ...]]) -> list[int]:
    """The definition, spelled out: i is dropped when an earlier vector equals it or any vector
    is no worse everywhere and better somewhere."""
    def beats(j: int, i: int) -> bool:
        a, b = vectors[j], vectors[i]
        return all(x <= y for x, y in zip(a, b)) and (a != b or j < i)
    return [i for i in range(len(vectors)) if not any(beats(j, i) for j in range(len(vectors)) if j != i)]


@pytest.mark.parametrize("seed", range(6))
def test_non_dominated_is_the_pareto_set_with_ties_kept_once(seed: int) -> None:
    rng = np.random.default_rng(700 + seed)
    vectors = [tuple(int(x) for x in rng.integers(0, 4, size=3)) for _ in range(int(rng.integers(1, 40)))]
    assert non_dominated(vectors) == naive_non_dominated(vectors)


def random_table(rng: np.random.Generator, layers: int, options: int) -> CandidateTable:
    """Candidates with small random costs, so many are dominated or tied."""
    costs = tuple(tuple(LayerCost(*(int(v) for v in rng.integers(1, 6, size=6))) for _ in range(options))
                  for _ in range(layers))
    return CandidateTable(tuple(f"l{i}" for i in range(layers)), tuple(tuple(range(options)) for _ in range(layers)),
                          costs)


@pytest.mark.parametrize("seed", range(12))
def test_dropping_dominated_candidates_keeps_every_goals_optimum(seed: int) -> None:
    """Brute force over the full table equals the integer program over the pruned one, for the
    three goals: what `map_dataflow` solves is smaller, never worse."""
    rng = np.random.default_rng(900 + seed)
    table = random_table(rng, layers=4, options=7)
    pruned = without_dominated(table)
    assert sum(map(len, pruned.costs)) < sum(map(len, table.costs))
    assert all(set(kept) <= set(full) for kept, full in zip(pruned.costs, table.costs))
    total = {r: sum(cost.resource(r) for options in table.costs for cost in options) / 7 for r in RESOURCES}
    limits = {r: int(total[r] * rng.uniform(0.8, 1.3)) for r in RESOURCES}
    for goal in ("throughput", "latency"):
        expected = brute_force(table, limits, goal)
        solution = solve_table(pruned, limits, goal)
        assert (solution is None) == (expected is None)
        if solution is not None:
            assert solution[1] == expected
    for max_cycles in (2, 3, 4):
        expected = brute_force_resources(table, limits, max_cycles)
        solution = solve_table(pruned, limits, "resources", max_cycles)
        assert (solution is None) == (expected is None)
        if solution is not None:
            assert resource_cost(pruned, solution[0], limits)[0] == pytest.approx(expected[0], rel=1e-9)
