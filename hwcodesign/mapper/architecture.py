"""`map_to_board`: pick the hardware architecture, then map the model onto it.

Two architectures (DESIGN.md section 4):
- "dataflow": one stage per layer, all weights, line buffers and FIFOs on chip, every layer
  running concurrently (`ilp.map_dataflow`). The fastest when it fits.
- "sequential": one engine running the layers one after another, feature maps and weights in
  DDR (`engine_map.map_engine`). Fits networks the pipeline cannot (deep, wide, high-resolution
  detectors on small parts, as CoDeNet runs on the Ultra96), at the price of sequential time.
"auto" (the default) maps the dataflow pipeline and falls back to the engine when the pipeline
does not fit the board, the model has a layer only the engine runs, or the pipeline's integer
program finds no design within the time limit; the report says which architecture was chosen
and why. Each architecture tried gets the whole `time_limit`, so "auto" never waits longer than
the limit on the pipeline before trying the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping as MappingType
from dataclasses import replace

from hwcodesign.boards import Board
from hwcodesign.errors import HwcodesignError
from hwcodesign.hardware.engine.config import EngineUnsupported
from hwcodesign.ir.graph import Graph
from hwcodesign.mapper.engine_map import EngineMapping, map_engine
from hwcodesign.mapper.ilp import Mapping, MappingInfeasible, map_dataflow
from hwcodesign.mapper.solver import DEFAULT_TIME_LIMIT, SolverTimeout

ARCHITECTURES = ("auto", "dataflow", "sequential")
AnyMapping = Mapping | EngineMapping


def map_to_board(graph: Graph, board: Board, goal: str = "throughput", fps: float | None = None,
                 caps: dict[str, float] | None = None, architecture: str = "auto", word_bits: int = 64,
                 progress: Callable[[str], None] | None = None, max_candidates: int = 96,
                 densities: MappingType[str, float] | None = None,
                 time_limit: float | None = DEFAULT_TIME_LIMIT) -> AnyMapping:
    """Map `graph` onto `board` with the chosen architecture ("auto": the dataflow pipeline if it
    fits, else the layer-sequential engine). Sparse layers are sized for `densities` (design
    densities per sparse tensor, `sim.sparsity.design_densities`; every site active when None).
    Raises MappingInfeasible naming what does not fit. `time_limit` (seconds, None: none) bounds
    the integer programs; a design found when it runs out carries a `note` saying so."""
    if architecture not in ARCHITECTURES:
        raise HwcodesignError(f"unknown architecture '{architecture}'; choose one of {', '.join(ARCHITECTURES)}")
    if architecture == "dataflow":
        return map_dataflow(graph, board, goal, fps, caps, max_candidates, progress, densities=densities,
                            time_limit=time_limit)
    if architecture == "sequential":
        return map_engine(graph, board, goal, fps, caps, word_bits, progress, time_limit)
    try:
        return map_dataflow(graph, board, goal, fps, caps, max_candidates, progress, suggest_board=False,
                            densities=densities, time_limit=time_limit)
    except (MappingInfeasible, SolverTimeout) as error:
        pipeline = error
    why = "was not mapped in time" if isinstance(pipeline, SolverTimeout) else "does not fit"
    if progress:
        progress(f"the dataflow pipeline {why} ({pipeline}); sizing a layer-sequential engine")
    try:
        mapping = map_engine(graph, board, goal, fps, caps, word_bits, progress, time_limit)
    except (MappingInfeasible, EngineUnsupported, SolverTimeout) as engine:
        raise MappingInfeasible(f"{pipeline}; as a layer-sequential engine: {engine}") from None
    return replace(mapping, reason=f"the dataflow pipeline {why}: {pipeline}")

