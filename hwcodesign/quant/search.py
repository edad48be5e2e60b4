"""Hardware-aware mixed-precision search: every layer's weight format and folding in one ILP.

Per weight layer (Conv, Gemm/MatMul) and candidate format f (int8, int4, dybit4, ...):
- a **sensitivity** s[l, f]: the error the model's output takes when only layer l is given
  format f, measured with the golden model on calibration frames (mean squared difference of
  the dequantized outputs from the uniform-int8 model's, relative to their mean square). The
  sum over layers is the accuracy proxy (additive, as HAWQ-style searches assume);
- for each of its candidate foldings, the layer's cycles and resources in that format (the
  mapper's cost model: the code's storage width, the decoded value's multipliers, DyBit's
  decoders; `mapper/cost.py`).

The integer program (binaries x[l, (f, folding)], one per layer; T >= every layer's cycles):
    min  sum s[l, f] x            s.t. resources <= board limits, T <= cycle budget (--fps)
and its reverse (fastest mapping within a sensitivity budget). `pareto_front` sweeps the cycle
budget over the cycle counts the candidates can have and keeps, for each, the least-sensitive
mapping (then the fastest among those): the front is monotone by construction, and CBC proves
each point optimal for the cost model. FIFO depths are the mapper's defaults here; compiling
the chosen formats re-runs the full mapper (stream planning included).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import onnx
import pulp

from hwcodesign.boards import Board
from hwcodesign.errors import HwcodesignError
from hwcodesign.frontend import load_onnx
from hwcodesign.frontend.formats import weight_nodes, with_weight_formats
from hwcodesign.hardware.folding import RESOURCES, LayerCost
from hwcodesign.hardware.stream import dma_bytes_per_cycle
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.op import Op
from hwcodesign.mapper.cost import candidate_foldings, layer_cost
from hwcodesign.mapper.ilp import (
    CandidateTable,
    MappingInfeasible,
    chosen_indices,
    cycle_budget,
    limits_text,
    one_candidate_per_layer,
    resource_limits,
    usage,
)
from hwcodesign.mapper.solver import DEFAULT_TIME_LIMIT, Deadline, Outcome, solve_within
from hwcodesign.mapper.streams import output_fifos, with_output_fifos
from hwcodesign.ops import Conv, Linear
from hwcodesign.passes import optimize
from hwcodesign.quant.formats import INT8, WeightFormat
from hwcodesign.sim.golden import dequantize_outputs, run_golden

DEFAULT_FORMATS = ("int8", "int4", "dybit4", "dybit3", "dybit2")
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


def calibration_frames(graph: Graph, frames: np.ndarray | None, count: int = 16, seed: int = 0) -> np.ndarray:
    """Integer input frames for the sensitivities: the given float (quantized here) or integer
    frames, else `count` frames uniform over the input's quantized range (a data-free proxy)."""
    tensor = graph.inputs[0].output
    if frames is None:
        rng = np.random.default_rng(seed)
        return rng.integers(tensor.dtype.min, tensor.dtype.max + 1, (count,) + tensor.shape[1:])
    frames = np.asarray(frames)
    frames = frames[None] if frames.ndim == 3 else frames
    return tensor.quantize(frames) if np.issubdtype(frames.dtype, np.floating) else frames.astype(np.int64)


def output_error(graph: Graph, frames: np.ndarray, reference: Mapping[str, np.ndarray]) -> float:
    """Mean squared difference of `graph`'s dequantized outputs from `reference`, relative to
    the reference's mean square (summed over outputs)."""
    outputs = dequantize_outputs(graph, run_golden(graph, frames))
    return float(sum(np.mean((outputs[n] - r) ** 2) / max(np.mean(r ** 2), 1e-12) for n, r in reference.items()))


def check_weight_layers(graph: Graph, node_names: Sequence[str]) -> None:
    """The weight layers must keep their node names in the IR (the frontend keeps them unless
    two nodes share one): formats are written by node name and costed by IR layer."""
    ir_names = {op.name for op in graph if isinstance(op, Conv | Linear)}
    missing = [n for n in node_names if n not in ir_names]
    if missing:
        raise HwcodesignError(f"weight layers {', '.join(missing)} do not appear under their node names in the "
                              "lowered graph; give the model's Conv/Gemm/MatMul nodes unique names")


def build_space(model: onnx.ModelProto, board: Board, formats: Sequence[WeightFormat],
                frames: np.ndarray | None = None, max_candidates: int = 96,
                progress: Callable[[str], None] | None = None) -> SearchSpace:
    """Sensitivities and costs of every (layer, format, folding) of `model` on `board`."""
    load_onnx(model)  # the model as given must be valid: its weights are re-quantized below, hiding their types
    nodes = sorted(weight_nodes(model))
    if not nodes:
        raise HwcodesignError("the model has no named Conv/Gemm/MatMul node: nothing to choose formats for")
    base_model = with_weight_formats(model, {n: INT8 for n in nodes})
    base = optimize(load_onnx(base_model))
    check_weight_layers(base, nodes)
    calibration = calibration_frames(base, frames)
    reference = dequantize_outputs(base, run_golden(base, calibration))
    sensitivities: dict[str, dict[str, float]] = {n: {} for n in nodes}
    typed_ops: dict[tuple[str, str], Op] = {}  # (layer, format) -> the layer's op in that format
    for count, node in enumerate(nodes, 1):
        if progress:
            progress(f"sensitivity of layer {count}/{len(nodes)} ({node}) to {', '.join(map(str, formats))}")
        for fmt in formats:
            graph = base if fmt == INT8 else optimize(load_onnx(with_weight_formats(base_model, {node: fmt})))
            typed_ops[(node, fmt.name)] = graph.op(node)
            sensitivities[node][fmt.name] = 0.0 if fmt == INT8 else output_error(graph, calibration, reference)
    rate = dma_bytes_per_cycle(board.ddr_bandwidth_gbps, board.clock_mhz)
    layers, candidates = [], []
    for op in base:
        inputs = base.input_tensors(op)
        options: list[Candidate] = []
        variants = [(fmt, typed_ops[(op.name, fmt.name)]) for fmt in formats] if op.name in sensitivities \
            else [(None, op)]
        for fmt, typed in variants:
            sensitivity = sensitivities[op.name][fmt.name] if fmt is not None else 0.0
            for folding in candidate_foldings(typed, inputs, max_candidates):
                cost = with_output_fifos(layer_cost(typed, inputs, folding, board.ps_type, rate),
                                         output_fifos(base, op.name, folding))
                options.append(Candidate(fmt, folding, cost, sensitivity))
        layers.append(op.name)
        candidates.append(tuple(options))
    return SearchSpace(base, tuple(layers), tuple(candidates), sensitivities)


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


def search(model: onnx.ModelProto, board: Board, formats: Sequence[WeightFormat] | None = None,
           fps: float | None = None, max_sensitivity: float | None = None, frames: np.ndarray | None = None,
           caps: dict[str, float] | None = None, max_candidates: int = 96, points: int = FRONT_POINTS,
           progress: Callable[[str], None] | None = None,
           time_limit: float | None = DEFAULT_TIME_LIMIT) -> SearchResult:
    """Front and chosen formats: the least-sensitive mapping reaching `fps` (default: the
    fastest mapping within `max_sensitivity`, else the least-sensitive one). Every integer
    program shares `time_limit` seconds (None: no limit; `mapper.solver`)."""
    start = time.perf_counter()
    formats = list(formats or [WeightFormat.parse(f) for f in DEFAULT_FORMATS])
    if INT8 not in formats:
        formats.insert(0, INT8)
    space = build_space(model, board, formats, frames, max_candidates, progress)
    limits = resource_limits(board, caps)
    if progress:
        progress(f"solving the joint ILP ({sum(len(c) for c in space.candidates)} choices over {len(space.layers)} layers)")
    deadline = Deadline(time_limit)
    front = pareto_front(space, limits, points, deadline)
    if not front:
        raise SearchInfeasible(f"model does not fit {board.name} in any format and folding "
                               f"(even {min(map(str, formats))} everywhere at minimum folding) within "
                               f"{limits_text(limits, caps)}")
    if fps is not None:
        chosen = solve(space, limits, "sensitivity", max_cycles=cycle_budget(board, fps), deadline=deadline)
        if chosen is None:
            raise SearchInfeasible(f"no choice of formats {', '.join(map(str, formats))} reaches {fps:g} fps on "
                                   f"{board.name}: the fastest is {front[0].fps(board):.1f} fps")
    elif max_sensitivity is not None:
        chosen = solve(space, limits, "cycles", max_sensitivity=max_sensitivity, deadline=deadline)
        if chosen is None:
            raise SearchInfeasible(f"no mapping on {board.name} keeps the sensitivity within {max_sensitivity:g}")
    else:
        chosen = front[-1]
    uniform = solve(only_format(space, INT8), limits, "cycles", deadline=deadline)
    return SearchResult(board, space, front, chosen, uniform, fps, time.perf_counter() - start, deadline.note)


def format_front(result: SearchResult) -> str:
    """The front as a table, the chosen point marked."""
    from hwcodesign.tables import format_table

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

