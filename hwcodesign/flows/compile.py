"""The whole compile flow in one call: ONNX -> IR -> passes -> mapper -> simulator -> project.

`hwcodesign compile` and notebooks both use `compile_model`; every stage is also its own public
function (DESIGN.md section 1), so a user can stop anywhere, inspect, pin foldings and resume
with `emit_project`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping as MappingType
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwcodesign.backends import AnyMapping, emit_project
from hwcodesign.boards import Board, load_board
from hwcodesign.codegen.project import Project
from hwcodesign.flows.simulate import Step, quiet_step, simulate_model
from hwcodesign.hardware.engine.config import MAX_BATCH
from hwcodesign.hardware.folding import Folding
from hwcodesign.ir.graph import Graph
from hwcodesign.mapper.solver import DEFAULT_TIME_LIMIT
from hwcodesign.outputs import PROJECT_KIND, check_destination
from hwcodesign.partition import HostOptions, Partition, load_partitioned
from hwcodesign.passes import PACK_INPUT_WINDOW, PassOptions, optimize
from hwcodesign.report import report_texts
from hwcodesign.sim.latency import LatencyReport


@dataclass(frozen=True)
class CompileResult:
    project: Project
    graph: Graph
    mapping: AnyMapping
    latency: LatencyReport
    report: dict[str, Any]
    partition: Partition


def compile_model(model: str | os.PathLike[str], board: str | Board, out_dir: str | os.PathLike[str], *,
                  goal: str | None = None, fps: float | None = None, caps: dict[str, float] | None = None,
                  word_bits: int | None = None, name: str | None = None, architecture: str = "auto",
                  samples: MappingType[str, np.ndarray] | None = None, density: float | None = None,
                  time_limit: float | None = DEFAULT_TIME_LIMIT, step: Step = quiet_step,
                  passes: PassOptions | None = None, host: HostOptions | None = None,
                  pinned: MappingType[str, Folding] | None = None, max_batch: int = MAX_BATCH) -> CompileResult:
    """Compile a quantized ONNX model into a project folder for `board` (written atomically).

    `architecture`: "dataflow" (one stage per layer, everything on chip), "sequential" (the
    layer-sequential engine, weights and feature maps in DDR) or "auto" (the pipeline when it
    fits, else the engine; `backends.map_to_board`). `samples` (integer frames by input tensor
    name) or `density` size a sparse network (`flows.simulate.map_and_simulate`).

    `step(message)` wraps each stage (the CLI passes its progress display). The report in the
    project omits the solver's wall-clock time so that the same model always gives
    byte-identical files. `out_dir` is checked before any work (`outputs.check_destination`):
    it may only be new, empty, or a project this tool wrote. `host` puts named nodes or op types
    on the board's CPU (`partition.HostOptions`); a model's float parts before its first
    quantizer and after its last dequantizer go there anyway, and the project's driver runs them.
    `pinned` layers keep a folding file's foldings (`mapper.folding_file`); the project's
    folding.json records every stage's, to pin or reproduce the design. `max_batch` bounds the
    frames one run of a layer-sequential engine holds (`mapper.engine_map`).
    """
    target = board if isinstance(board, Board) else load_board(board)
    model_path = Path(model)
    check_destination(out_dir, PROJECT_KIND, inputs=(model_path,))
    with step("importing and optimizing the model"):
        options = passes or PassOptions()  # passes disabled, the IR dump (`hwcodesign.passes.PassOptions`)
        partition, graph = load_partitioned(model_path, options, host)
        graph = optimize(graph, options)
    simulation = simulate_model(graph, target, model_path=model_path.name, goal=goal, fps=fps, caps=caps,
                                architecture=architecture, word_bits=word_bits, samples=samples, density=density,
                                time_limit=time_limit, step=step, partition=partition, pinned=pinned,
                                pack_input=options.enabled(PACK_INPUT_WINDOW), max_batch=max_batch)
    mapping, latency, report, graph = simulation.mapping, simulation.latency, simulation.report, simulation.graph
    if any(op.window for op in graph.inputs):  # the mapper took the rewrite
        options.dump_graph(PACK_INPUT_WINDOW, graph)
    report.pop("solve_seconds", None)
    out = Path(out_dir)
    with step(f"generating the HLS project in {out}"):
        project = emit_project(graph, mapping, out, name=name or model_path.stem, word_bits=word_bits,
                               fifo_rows=latency.fifo_rows, model_label=model_path.name,
                               extra_files=report_texts(report), model_path=model_path, partition=partition)
    return CompileResult(project, graph, mapping, latency, report, partition)
