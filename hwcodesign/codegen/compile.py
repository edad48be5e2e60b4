"""The whole compile flow in one call: ONNX -> IR -> passes -> mapper -> simulator -> project.

`hwcodesign compile` and notebooks both use `compile_model`; every stage is also its own public
function (DESIGN.md section 1), so a user can stop anywhere, inspect, pin foldings and resume
with `emit_project`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from collections.abc import Mapping as MappingType
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwcodesign.boards import Board, load_board
from hwcodesign.codegen.project import Project, emit_project
from hwcodesign.ir.graph import Graph
from hwcodesign.mapper import map_to_board
from hwcodesign.mapper.engine_map import EngineMapping
from hwcodesign.mapper.ilp import Mapping
from hwcodesign.mapper.solver import DEFAULT_TIME_LIMIT
from hwcodesign.outputs import PROJECT_KIND, check_destination
from hwcodesign.passes import PassOptions, load_onnx, optimize
from hwcodesign.report import build_report, report_texts
from hwcodesign.sim.latency import LatencyReport, simulate
from hwcodesign.sim.sparse_latency import SparseProfile, sparse_profile
from hwcodesign.sim.sparsity import design_densities

Step = Callable[[str], AbstractContextManager[None]]


@contextmanager
def quiet_step(message: str) -> Iterator[None]:
    yield


@dataclass(frozen=True)
class CompileResult:
    project: Project
    graph: Graph
    mapping: Mapping | EngineMapping
    latency: LatencyReport
    report: dict[str, Any]


def map_and_simulate(graph: Graph, board: Board, *, goal: str = "throughput", fps: float | None = None,
                     caps: dict[str, float] | None = None, architecture: str = "auto", word_bits: int = 64,
                     samples: MappingType[str, np.ndarray] | None = None, density: float | None = None,
                     percentile: float = 95.0, time_limit: float | None = DEFAULT_TIME_LIMIT,
                     step: Step = quiet_step,
                     ) -> tuple[Mapping | EngineMapping, LatencyReport, SparseProfile | None]:
    """Map and simulate: what `compile` and `simulate` share. A sparse network is sized for its
    design densities (the `percentile` of `samples`' active sites, or `density`, else every
    site active) and, given samples, profiled frame by frame (`sim.sparse_latency`). The mapper's
    integer programs get `time_limit` seconds (None: no limit; `mapper.solver`)."""
    densities = design_densities(graph, samples, density, percentile)
    with step(f"mapping onto {board.name} (integer program, goal: {goal}, architecture: {architecture})"):
        mapping = map_to_board(graph, board, goal, fps=fps, caps=caps, architecture=architecture, word_bits=word_bits,
                               densities=densities, time_limit=time_limit)
    with step(f"simulating the {'layer-sequential engine' if mapping.architecture == 'sequential' else 'dataflow pipeline'}"):
        latency = simulate(graph, mapping)
        profile = None
        if samples is not None and densities is not None and isinstance(mapping, Mapping):
            profile = sparse_profile(graph, mapping, samples, latency.fifo_rows)
    return mapping, latency, profile


def compile_model(model: str | os.PathLike[str], board: str | Board, out_dir: str | os.PathLike[str], *,
                  goal: str = "throughput", fps: float | None = None, caps: dict[str, float] | None = None,
                  word_bits: int = 64, name: str | None = None, architecture: str = "auto",
                  samples: MappingType[str, np.ndarray] | None = None, density: float | None = None,
                  time_limit: float | None = DEFAULT_TIME_LIMIT, step: Step = quiet_step,
                  passes: PassOptions | None = None) -> CompileResult:
    """Compile a quantized ONNX model into a project folder for `board` (written atomically).

    `architecture`: "dataflow" (one stage per layer, everything on chip), "sequential" (the
    layer-sequential engine, weights and feature maps in DDR) or "auto" (the pipeline when it
    fits, else the engine; `mapper/architecture.py`). `samples` (integer frames by input tensor
    name) or `density` size a sparse network (`map_and_simulate`).

    `step(message)` wraps each stage (the CLI passes its progress display). The report in the
    project omits the solver's wall-clock time so that the same model always gives
    byte-identical files. `out_dir` is checked before any work (`outputs.check_destination`):
    it may only be new, empty, or a project this tool wrote.
    """
    target = board if isinstance(board, Board) else load_board(board)
    model_path = Path(model)
    check_destination(out_dir, PROJECT_KIND, inputs=(model_path,))
    with step("importing and optimizing the model"):
        options = passes or PassOptions()  # passes disabled, the IR dump (`hwcodesign.passes.PassOptions`)
        graph = optimize(load_onnx(model_path, options), options)
    mapping, latency, profile = map_and_simulate(graph, target, goal=goal, fps=fps, caps=caps, architecture=architecture,
                                                 word_bits=word_bits, samples=samples, density=density,
                                                 time_limit=time_limit, step=step)
    report = build_report(graph, mapping, latency, model_path=model_path.name, profile=profile)
    report.pop("solve_seconds", None)
    out = Path(out_dir)
    with step(f"generating the HLS project in {out}"):
        project = emit_project(graph, mapping, out, name=name or model_path.stem, word_bits=word_bits,
                               fifo_rows=latency.fifo_rows, model_label=model_path.name,
                               extra_files=report_texts(report), model_path=model_path)
    return CompileResult(project, graph, mapping, latency, report)
