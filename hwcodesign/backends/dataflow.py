"""The dataflow pipeline as an `Architecture`: one stage per layer, everything on chip.

Mapping it needs the pipeline simulation: the FIFO depths between stages follow from the
schedule, which follows from the foldings, so the mapper re-solves with the depths the simulator
plans (`ilp.map_dataflow`). The simulator reads mappings and so sits above the mapper; this
module, above both, hands the mapper the simulator as its `stream_planner` (`map_pipeline`).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping as MappingType
from typing import Any

import numpy as np

from hwcodesign.backends.base import MapRequest, ProjectRequest
from hwcodesign.boards import Board
from hwcodesign.codegen.project import dataflow_project_files
from hwcodesign.hardware.folding import Folding
from hwcodesign.ir.graph import Graph
from hwcodesign.mapper.ilp import StreamPlan, map_dataflow
from hwcodesign.mapper.mapping import Mapping
from hwcodesign.mapper.solver import DEFAULT_TIME_LIMIT, Deadline
from hwcodesign.report.summary import build_dataflow_report
from hwcodesign.sim.latency import LatencyReport, simulate
from hwcodesign.sim.sparse_latency import SparseProfile, sparse_profile


def plan_streams(graph: Graph, mapping: Mapping) -> StreamPlan:
    """The FIFO rows the pipeline simulation plans for `mapping`, and the LUTs/FFs its width
    converters take (reserved, since they depend on two neighbours' foldings)."""
    report = simulate(graph, mapping, frames=2)
    return dict(report.fifo_rows), {"dsp": 0, "bram18k": 0, "uram": 0, "lut": report.refold_lut, "ff": report.refold_ff}


def map_pipeline(graph: Graph, board: Board, goal: str = "throughput", fps: float | None = None,
                 caps: dict[str, float] | None = None, max_candidates: int = 96,
                 progress: Callable[[str], None] | None = None, suggest_board: bool = True,
                 densities: MappingType[str, float] | None = None,
                 time_limit: float | Deadline | None = DEFAULT_TIME_LIMIT,
                 pinned: MappingType[str, Folding] | None = None) -> Mapping:
    """`ilp.map_dataflow` with the streams planned by the pipeline simulation: the mapping
    `compile` builds (arguments as there)."""
    return map_dataflow(graph, board, goal, fps, caps, max_candidates, progress, plan_streams, suggest_board,
                        densities, time_limit, pinned)


class Dataflow:
    name = "dataflow"
    label = "dataflow pipeline"

    def map(self, graph: Graph, board: Board, request: MapRequest) -> Mapping:
        return map_pipeline(graph, board, request.goal, request.fps, request.caps, request.max_candidates,
                            request.progress, request.suggest_board, request.densities, request.time_limit,
                            request.pinned)

    def simulate(self, graph: Graph, mapping: Mapping, frames: int = 3,
                 fifo_rows: MappingType[tuple[str, str], int] | None = None,
                 inputs: MappingType[str, np.ndarray] | None = None) -> LatencyReport:
        return simulate(graph, mapping, frames, fifo_rows, inputs)

    def profile(self, graph: Graph, mapping: Mapping, samples: MappingType[str, np.ndarray],
                fifo_rows: MappingType[tuple[str, str], int]) -> SparseProfile | None:
        return sparse_profile(graph, mapping, samples, fifo_rows)

    def report(self, graph: Graph, mapping: Mapping, latency: LatencyReport, model_path: str | None,
               profile: SparseProfile | None) -> dict[str, Any]:
        return build_dataflow_report(graph, mapping, latency, model_path, profile)

    def project_files(self, graph: Graph, mapping: Mapping, request: ProjectRequest) -> dict[str, str | bytes]:
        """Without `request.fifo_rows`, the FIFOs get the simulator's planned depths."""
        fifo_rows = request.fifo_rows
        if fifo_rows is None:
            fifo_rows = simulate(graph, mapping).fifo_rows
        return dataflow_project_files(graph, mapping, request.name, request.model_label, request.word_bits, fifo_rows,
                                      request.testbench_seed, request.model_path, request.host)


DATAFLOW = Dataflow()
