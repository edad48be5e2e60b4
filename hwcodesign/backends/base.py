"""What every hardware architecture offers the flows: one interface, two implementations.

An `Architecture` maps a graph onto a board, simulates the mapping, builds its report and the
files of its project. The flows (`hwcodesign.flows`) and the public `map_to_board`,
`simulate`, `build_report` and `emit_project` (`backends.choose`) call these methods on the
architecture a mapping names (`mapping.architecture`) instead of asking which mapping they hold.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from collections.abc import Mapping as MappingType
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from hwcodesign.boards import Board
from hwcodesign.hardware.engine.config import MAX_BATCH
from hwcodesign.hardware.folding import Folding
from hwcodesign.ir.graph import Graph
from hwcodesign.mapper.engine_map import EngineMapping
from hwcodesign.mapper.mapping import Mapping
from hwcodesign.mapper.solver import DEFAULT_TIME_LIMIT
from hwcodesign.sim.latency import LatencyReport
from hwcodesign.sim.sparse_latency import SparseProfile

AnyMapping = Mapping | EngineMapping
PIPELINE_WORD_BITS = 64
"""The dataflow pipeline's stream word when the user names none (`--word-bits`)."""


@dataclass(frozen=True)
class MapRequest:
    """What the user asks of a mapping, whatever the architecture (each uses what applies to it:
    the engine has its own word width in `word_bits`, only the pipeline sizes for `densities`)."""

    goal: str = "throughput"
    fps: float | None = None
    caps: dict[str, float] | None = None
    word_bits: int | None = None  # the engine's feature-map AXI word; None: the mapper's choice (`engine_word_widths`)
    progress: Callable[[str], None] | None = None
    max_candidates: int = 96
    densities: MappingType[str, float] | None = None
    time_limit: float | None = DEFAULT_TIME_LIMIT
    suggest_board: bool = True  # name a larger board that fits when nothing does
    pinned: MappingType[str, Folding] | None = None  # dataflow stages pinned by a folding file
    max_batch: int = MAX_BATCH  # the most frames one run of a layer-sequential engine may hold


@dataclass(frozen=True)
class ProjectRequest:
    """How to write a project (`choose.emit_project` has the meaning of each)."""

    name: str
    model_label: str = "an ONNX model"
    word_bits: int = PIPELINE_WORD_BITS
    fifo_rows: MappingType[tuple[str, str], int] | None = None
    testbench_seed: int = 0
    model_path: str | os.PathLike[str] | None = None
    host: MappingType[str, Any] | None = None  # the host parts' spec (`codegen.host_parts.host_spec`), if any


class Architecture(Protocol):
    name: str  # as `--architecture` and a mapping's `architecture` spell it
    label: str  # as messages and progress lines name it

    def map(self, graph: Graph, board: Board, request: MapRequest) -> AnyMapping: ...

    def simulate(self, graph: Graph, mapping: Any, frames: int = 3,
                 fifo_rows: MappingType[tuple[str, str], int] | None = None,
                 inputs: MappingType[str, np.ndarray] | None = None) -> LatencyReport: ...

    def profile(self, graph: Graph, mapping: Any, samples: MappingType[str, np.ndarray],
                fifo_rows: MappingType[tuple[str, str], int]) -> SparseProfile | None: ...

    def report(self, graph: Graph, mapping: Any, latency: LatencyReport, model_path: str | None,
               profile: SparseProfile | None) -> dict[str, Any]: ...

    def project_files(self, graph: Graph, mapping: Any, request: ProjectRequest) -> dict[str, str | bytes]: ...
