"""Which architecture, and the public entry points that work for either.

Two architectures (DESIGN.md section 4):
- "dataflow": one stage per layer, all weights, line buffers and FIFOs on chip, every layer
  running concurrently (`dataflow.map_pipeline`). The fastest when it fits.
- "sequential": one engine running the layers one after another, feature maps and weights in
  DDR (`engine_map.map_engine`). Fits networks the pipeline cannot (deep, wide, high-resolution
  detectors on small parts, as CoDeNet runs on the Ultra96), at the price of sequential time.
"auto" (the default) maps the dataflow pipeline and falls back to the engine when the pipeline
does not fit the board, the model has a layer only the engine runs, or the pipeline's integer
program finds no design within the time limit; the report says which architecture was chosen
and why. Each architecture tried gets the whole `time_limit`, so "auto" never waits longer than
the limit on the pipeline before trying the engine.

`simulate`, `build_report` and `emit_project` take a mapping of either architecture and call
the architecture it names (`backend_of`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from collections.abc import Mapping as MappingType
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from hwcodesign.backends.base import PIPELINE_WORD_BITS, AnyMapping, Architecture, MapRequest, ProjectRequest
from hwcodesign.backends.dataflow import DATAFLOW
from hwcodesign.backends.sequential import SEQUENTIAL
from hwcodesign.boards import Board
from hwcodesign.codegen.host_parts import host_files, host_spec
from hwcodesign.codegen.project import Project, c_identifier, write_project
from hwcodesign.errors import HwcodesignError
from hwcodesign.hardware.engine.config import MAX_BATCH, EngineUnsupported
from hwcodesign.hardware.folding import Folding
from hwcodesign.ir.graph import Graph
from hwcodesign.mapper.solver import DEFAULT_TIME_LIMIT, SolverTimeout
from hwcodesign.mapper.table import MappingInfeasible, chosen_goal
from hwcodesign.partition import Partition
from hwcodesign.sim.latency import LatencyReport
from hwcodesign.sim.sparse_latency import SparseProfile

BACKENDS: dict[str, Architecture] = {DATAFLOW.name: DATAFLOW, SEQUENTIAL.name: SEQUENTIAL}
ARCHITECTURES = ("auto", *BACKENDS)


def backend_of(mapping: AnyMapping) -> Architecture:
    """The architecture that made `mapping`."""
    return BACKENDS[mapping.architecture]


def map_to_board(graph: Graph, board: Board, goal: str | None = None, fps: float | None = None,
                 caps: dict[str, float] | None = None, architecture: str = "auto", word_bits: int | None = None,
                 progress: Callable[[str], None] | None = None, max_candidates: int = 96,
                 densities: MappingType[str, float] | None = None,
                 time_limit: float | None = DEFAULT_TIME_LIMIT,
                 pinned: MappingType[str, Folding] | None = None, max_batch: int = MAX_BATCH) -> AnyMapping:
    """Map `graph` onto `board` with the chosen architecture ("auto": the dataflow pipeline if it
    fits, else the layer-sequential engine). Sparse layers are sized for `densities` (design
    densities per sparse tensor, `sim.sparsity.design_densities`; every site active when None).
    Raises MappingInfeasible naming what does not fit. `time_limit` (seconds, None: none) bounds
    the integer programs; a design found when it runs out carries a `note` saying so. `goal`
    None means the least hardware reaching `fps` when it is given, else the fastest design
    (`mapper.table.chosen_goal`). `pinned` layers (a folding file's) keep their foldings: the
    pipeline only. `max_batch`: the most frames one run of an engine may hold."""
    if architecture not in ARCHITECTURES:
        raise HwcodesignError(f"unknown architecture '{architecture}'; choose one of {', '.join(ARCHITECTURES)}")
    request = MapRequest(chosen_goal(goal, fps), fps, caps, word_bits, progress, max_candidates, densities, time_limit,
                         pinned=pinned, max_batch=max_batch)
    if architecture != "auto" or pinned:  # a folding file pins dataflow stages: no engine to fall back to
        return BACKENDS["dataflow" if architecture == "auto" else architecture].map(graph, board, request)
    try:
        return DATAFLOW.map(graph, board, replace(request, suggest_board=False))
    except (MappingInfeasible, SolverTimeout) as error:
        pipeline = error
    why = "was not mapped in time" if isinstance(pipeline, SolverTimeout) else "does not fit"
    if progress:
        progress(f"the {DATAFLOW.label} {why} ({pipeline}); sizing a {SEQUENTIAL.label}")
    try:
        mapping = SEQUENTIAL.map(graph, board, request)
    except (MappingInfeasible, EngineUnsupported, SolverTimeout) as engine:
        raise MappingInfeasible(f"{pipeline}; as a {SEQUENTIAL.label}: {engine}") from None
    return replace(mapping, reason=f"the {DATAFLOW.label} {why}: {pipeline}")


def simulate(graph: Graph, mapping: AnyMapping, frames: int = 3,
             fifo_rows: MappingType[tuple[str, str], int] | None = None,
             inputs: MappingType[str, np.ndarray] | None = None) -> LatencyReport:
    """Latency and throughput of `mapping` (`sim.latency.simulate` has the dataflow pipeline's
    `frames`, `fifo_rows` and `inputs`; the engine's frames all take the same time)."""
    return backend_of(mapping).simulate(graph, mapping, frames, fifo_rows, inputs)


def build_report(graph: Graph, mapping: AnyMapping, latency: LatencyReport, model_path: str | None = None,
                 profile: SparseProfile | None = None) -> dict[str, Any]:
    """Everything `hwcodesign simulate` reports, as a JSON-serialisable dict (`report.summary`),
    with the solver's note when its time limit ran out."""
    report = backend_of(mapping).report(graph, mapping, latency, model_path, profile)
    if mapping.note:  # only then: a design proven optimal keeps the report it always had
        report["note"] = mapping.note
    return report


def emit_project(graph: Graph, mapping: AnyMapping, out_dir: str | os.PathLike[str], *, name: str | None = None,
                 word_bits: int | None = None, fifo_rows: MappingType[tuple[str, str], int] | None = None,
                 model_label: str = "an ONNX model", testbench_seed: int = 0,
                 extra_files: MappingType[str, str | bytes] | None = None,
                 model_path: str | os.PathLike[str] | None = None, partition: Partition | None = None) -> Project:
    """Generate the project for `graph` as mapped by `mapping` into `out_dir` (atomically).

    `fifo_rows` are per-edge FIFO depths in rows (default: the latency simulator's stall-free
    depths); they and `word_bits` (None: `PIPELINE_WORD_BITS`) apply to the dataflow pipeline (an
    engine mapping carries its own word width). `extra_files` (relative path -> content) are written into the same atomic folder,
    e.g. the simulate report. `model_path` (the source .onnx) is copied beside the driver so its
    notebook can compare with onnxruntime. `partition` (when the model has host parts) adds the
    host parts beside the driver and the driver's whole-model `run`.
    """
    out = Path(out_dir)
    host = host_spec(partition, graph) if partition is not None and partition.has_host_parts else None
    request = ProjectRequest(c_identifier(name or out.name), model_label, word_bits or PIPELINE_WORD_BITS, fifo_rows,
                             testbench_seed,
                             model_path, host)
    files = backend_of(mapping).project_files(graph, mapping, request)
    if host is not None and partition is not None:
        files.update(host_files(partition, host))
    files.update(extra_files or {})
    return write_project(out, files, request.name)
