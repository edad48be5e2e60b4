"""The layer-sequential engine as an `Architecture`: one set of units running the layers in turn,
feature maps and weights in DDR. Its mapping carries every instruction's timing, so simulating
it needs no pipeline simulation, and it has no sparse profile (the engine refuses sparse layers)."""

from __future__ import annotations

from collections.abc import Mapping as MappingType
from pathlib import Path
from typing import Any

import numpy as np

from hwcodesign.backends.base import MapRequest, ProjectRequest
from hwcodesign.boards import Board
from hwcodesign.codegen.engine_project import engine_project_files
from hwcodesign.codegen.project import TESTBENCH_FRAMES
from hwcodesign.ir.graph import Graph
from hwcodesign.mapper.engine_map import EngineMapping, map_engine
from hwcodesign.mapper.folding_file import FoldingFileError
from hwcodesign.report.summary import build_engine_report
from hwcodesign.sim.engine_latency import simulate_engine
from hwcodesign.sim.latency import LatencyReport
from hwcodesign.sim.sparse_latency import SparseProfile


class Sequential:
    name = "sequential"
    label = "layer-sequential engine"

    def map(self, graph: Graph, board: Board, request: MapRequest) -> EngineMapping:
        if request.pinned:
            raise FoldingFileError("a folding file pins dataflow stages; the layer-sequential engine is one "
                                   "configuration for every layer (use --architecture dataflow)")
        return map_engine(graph, board, request.goal, request.fps, request.caps, request.word_bits, request.progress,
                          request.time_limit, request.max_batch)

    def simulate(self, graph: Graph, mapping: EngineMapping, frames: int = 3,
                 fifo_rows: MappingType[tuple[str, str], int] | None = None,
                 inputs: MappingType[str, np.ndarray] | None = None) -> LatencyReport:
        """Every frame takes the same time: `frames`, `fifo_rows` and `inputs` change nothing."""
        return simulate_engine(mapping)

    def profile(self, graph: Graph, mapping: EngineMapping, samples: MappingType[str, np.ndarray],
                fifo_rows: MappingType[tuple[str, str], int]) -> SparseProfile | None:
        return None

    def report(self, graph: Graph, mapping: EngineMapping, latency: LatencyReport, model_path: str | None,
               profile: SparseProfile | None) -> dict[str, Any]:
        return build_engine_report(graph, mapping, latency, model_path)

    def project_files(self, graph: Graph, mapping: EngineMapping, request: ProjectRequest) -> dict[str, str | bytes]:
        """The engine's own sources and driver; it carries its word width (`request.word_bits` and
        `fifo_rows` are the pipeline's)."""
        return engine_project_files(graph, mapping, request.name, request.model_label, TESTBENCH_FRAMES,
                                    request.testbench_seed, Path(request.model_path) if request.model_path else None,
                                    request.host)


SEQUENTIAL = Sequential()
