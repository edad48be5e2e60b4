"""The simulate flow: a graph mapped onto a board, simulated, and reported.

What `hwcodesign simulate` does and `compile` starts with: map (the architecture chosen by
`backends.map_to_board`), then simulate the mapping, then (for a sparse network given samples)
profile it frame by frame. The mapper only maps; simulating is this flow's step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from collections.abc import Mapping as MappingType
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from hwcodesign.backends import AnyMapping, backend_of, build_report, map_to_board
from hwcodesign.boards import Board
from hwcodesign.hardware.engine.config import MAX_BATCH, EngineUnsupported
from hwcodesign.hardware.folding import Folding
from hwcodesign.ir.graph import Graph
from hwcodesign.mapper.solver import DEFAULT_TIME_LIMIT
from hwcodesign.mapper.table import MappingInfeasible, chosen_goal
from hwcodesign.partition import Partition
from hwcodesign.passes.input_window import pack_input_window
from hwcodesign.report.host import host_section
from hwcodesign.sim.latency import LatencyReport
from hwcodesign.sim.sparse_latency import SparseProfile
from hwcodesign.sim.sparsity import design_densities

Step = Callable[[str], AbstractContextManager[None]]


@contextmanager
def quiet_step(message: str) -> Iterator[None]:
    yield


@dataclass(frozen=True)
class Simulation:
    mapping: AnyMapping
    latency: LatencyReport
    profile: SparseProfile | None
    report: dict[str, Any]
    graph: Graph  # what was mapped: the graph given, or its rewrite the mapper found faster (`pack-input-window`)


def map_and_simulate(graph: Graph, board: Board, *, goal: str | None = None, fps: float | None = None,
                     caps: dict[str, float] | None = None, architecture: str = "auto", word_bits: int | None = None,
                     samples: MappingType[str, np.ndarray] | None = None, density: float | None = None,
                     percentile: float = 95.0, time_limit: float | None = DEFAULT_TIME_LIMIT,
                     step: Step = quiet_step, pinned: MappingType[str, Folding] | None = None,
                     max_batch: int = MAX_BATCH) -> tuple[AnyMapping, LatencyReport, SparseProfile | None]:
    """Map and simulate: what `compile` and `simulate` share. A sparse network is sized for its
    design densities (the `percentile` of `samples`' active sites, or `density`, else every
    site active) and, given samples, profiled frame by frame (`sim.sparse_latency`). The mapper's
    integer programs get `time_limit` seconds (None: no limit; `mapper.solver`); `pinned` layers
    keep a folding file's foldings (`mapper.folding_file`); an engine runs at most `max_batch`
    frames at a time."""
    densities = design_densities(graph, samples, density, percentile)
    goal = chosen_goal(goal, fps)
    with step(f"mapping onto {board.name} (integer program, goal: {goal}, architecture: {architecture})"):
        mapping = map_to_board(graph, board, goal, fps=fps, caps=caps, architecture=architecture, word_bits=word_bits,
                               densities=densities, time_limit=time_limit, pinned=pinned, max_batch=max_batch)
    backend = backend_of(mapping)
    with step(f"simulating the {backend.label}"):
        latency = backend.simulate(graph, mapping)
        profile = None
        if samples is not None and densities is not None:
            profile = backend.profile(graph, mapping, samples, latency.fifo_rows)
    return mapping, latency, profile


def simulate_model(graph: Graph, board: Board, *, model_path: str | None = None, goal: str | None = None,
                   fps: float | None = None, caps: dict[str, float] | None = None, architecture: str = "auto",
                   word_bits: int | None = None, samples: MappingType[str, np.ndarray] | None = None,
                   density: float | None = None, percentile: float = 95.0,
                   time_limit: float | None = DEFAULT_TIME_LIMIT, step: Step = quiet_step,
                   partition: Partition | None = None, pinned: MappingType[str, Folding] | None = None,
                   pack_input: bool = True, max_batch: int = MAX_BATCH) -> Simulation:
    """`map_and_simulate`, and the report of the result (`backends.build_report`; `model_path`
    names the model in it; `partition`, when the model has host parts, adds their placement and
    estimated time). With `pack_input`, a layer-sequential engine whose first layer's window the
    host can pack into channels (`passes.input_window`) is mapped both ways and the better design
    (the mapper's objective: frame cycles, or resources for goal "resources") is kept, with its graph."""
    def mapped(variant: Graph, chosen: str) -> tuple[AnyMapping, LatencyReport, SparseProfile | None]:
        return map_and_simulate(variant, board, goal=goal, fps=fps, caps=caps, architecture=chosen,
                                word_bits=word_bits, samples=samples, density=density, percentile=percentile,
                                time_limit=time_limit, step=step, pinned=pinned, max_batch=max_batch)

    result = mapped(graph, architecture)
    sparse = any(op.output.sparse for op in graph)  # (the engine runs dense layers only)
    packed = pack_input_window(graph) if pack_input and not sparse else graph
    if packed is not graph and result[0].architecture == "sequential":
        with step("mapping the engine again with the first layer's window packed into the input's channels"):
            try:
                other = mapped(packed, "sequential")
            except (MappingInfeasible, EngineUnsupported):
                other = None
        if other is not None and other[0].objective < result[0].objective:
            reason = getattr(result[0], "reason", "")
            graph, result = packed, (replace(other[0], reason=reason), *other[1:])
    mapping, latency, profile = result
    report = build_report(graph, mapping, latency, model_path=model_path, profile=profile)
    if partition is not None and partition.has_host_parts:
        report["host"] = host_section(partition, board, report["summary"])
    return Simulation(mapping, latency, profile, report, graph)
