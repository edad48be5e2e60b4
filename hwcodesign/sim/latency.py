"""Latency and throughput of the dataflow pipeline, simulated row by row.

Every stage works through its frame in steps of one output row (reducing stages, global pool
and fully connected, in steps of one input row). A step starts when
  - the stage finished its previous step (stages are sequential, II = 1 inner loops),
  - every producer has emitted the input rows the step needs (a k x k window with stride s
    needs input row r*s - pad + (k-1)*dilation; elementwise stages need row r), and
  - with bounded FIFOs, every consumer has drained enough that the row fits (back-pressure).
A stage's cycles per frame (the cost model's initiation interval: its loop iterations and ramps)
are shared among its steps in proportion to the plan's `step_trips`, the loop iterations of each
(the window fill in the first, every row's output drain in its own); where the plan has none
(an input's DMA, a sparse stage without frames), evenly. The fill is charged once its rows have
arrived, although the hardware reads them as they come: pessimistic by up to the fill's words
when the producer is slower than a word per cycle.
Input and output move by AXI DMA at the lesser of the board's DDR bandwidth and the stream width.

With unbounded FIFOs the simulation also measures, per edge, the most rows ever waiting: the
FIFO depth that makes back-pressure vanish (what the HLS backend allocates, `stream_fifo_depth`),
and what those FIFOs cost as Vitis HLS builds them (`streams.output_fifos`, one producer word of
PE channels per entry). FIFO depths depend on the schedule, so the mapper re-solves with the
depths this simulation plans until they agree (`ilp.map_dataflow`). Residual branches need deep FIFOs: the shortcut must hold
rows while the main branch fills its windows.
With bounded FIFOs the event times are found by relaxation (a longest-path fixed point); if it
does not settle, the depths deadlock the pipeline and `PipelineDeadlock` says which edge.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping as MappingType
from dataclasses import dataclass, replace

import numpy as np

from hwcodesign.errors import HwcodesignError
from hwcodesign.hardware.folding import Folding
from hwcodesign.hardware.memory import MemoryCost
from hwcodesign.hardware.stream import dma_bytes_per_cycle, stream_cycles, stream_fifo_depth
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.op import Op
from hwcodesign.mapper.cost import dataflow_of, stage_plan
from hwcodesign.mapper.mapping import Mapping
from hwcodesign.mapper.streams import default_fifo_rows, output_fifos, output_lanes, refold_cost
from hwcodesign.sim.sparsity import row_counts

MAX_RELAXATIONS = 2000
PLAN_TOLERANCE = 0.01
INPUT_FIFO_ROWS = 2
"""A DMA can simply wait: a single-consumer input stream gets this FIFO, not a stall-free one."""


class PipelineDeadlock(HwcodesignError):
    """The given FIFO depths cannot hold what reconvergent branches must buffer."""


@dataclass(frozen=True)
class StageTiming:
    name: str
    kind: str
    cycles: int
    first_output: float  # cycle the stage finished its first step of frame 0
    last_output: float  # cycle the stage finished frame 0
    utilisation: float  # busy fraction of the steady-state interval


@dataclass(frozen=True)
class LatencyReport:
    clock_mhz: float
    first_frame_cycles: float
    interval_cycles: float
    dma_in_cycles: float
    dma_out_cycles: float
    stages: tuple[StageTiming, ...]
    fifo_rows: dict[tuple[str, str], int]
    fifo_elements: dict[tuple[str, str], int]
    fifo_memory: MemoryCost
    refold_lut: int = 0
    refold_ff: int = 0
    frame_latencies: tuple[float, ...] = ()  # cycles from each frame's first input word to its outputs

    @property
    def latency_ms(self) -> float:
        return self.first_frame_cycles / (self.clock_mhz * 1e3)

    @property
    def fps(self) -> float:
        return self.clock_mhz * 1e6 / self.interval_cycles

    @property
    def bottleneck(self) -> StageTiming:
        return max(self.stages, key=lambda s: s.cycles)


@dataclass(frozen=True)
class _Stage:
    op: Op
    steps: int
    step_cycles: float
    emits: tuple[int, ...]  # output row finished by each step (-1: none)
    needs: tuple[tuple[str, tuple[int, ...]], ...]  # per input tensor: input row each step needs
    holds_rows: int  # input rows the stage keeps internally (its line buffer)
    row_cycles: tuple[float, ...] | None = None  # a dense stage: its cycles per step, by the loops' iterations
    frame_cycles: tuple[tuple[float, ...], ...] | None = None  # a sparse stage: per frame, per step

    def cycles(self, frame: int, step: int) -> float:
        if self.frame_cycles is not None:
            return self.frame_cycles[frame][step]
        if self.row_cycles is not None:
            return self.row_cycles[step]
        return self.step_cycles


def build_stage(graph: Graph, op: Op, cycles: float, folding: Folding,
                counts: list[dict[str, np.ndarray]] | None = None) -> _Stage:
    """The row-level model of one stage, from its plan: its steps, the output row each emits,
    the input rows each needs and the rows it holds; a step lasts the share of the stage's cycles
    per frame its loop iterations (`step_trips`) have. With `counts` (per frame, the active sites per row of each sparse tensor) a sparse
    stage's steps take the cycles of that frame's rows."""
    inputs = graph.input_tensors(op)
    facet = dataflow_of(op)
    plan = stage_plan(op, inputs, folding)
    needs = tuple((tensor.name, rows) for tensor, rows in zip(inputs, plan.needs, strict=True))
    stage = _Stage(op, plan.steps, cycles / plan.steps, plan.emits, needs, plan.held_rows)
    if plan.step_trips and not plan.sparse:
        total = sum(plan.step_trips)
        stage = replace(stage, row_cycles=tuple(cycles * trips / total for trips in plan.step_trips))
    if counts is None or not plan.sparse:
        return stage
    frames = tuple(tuple(facet.sparse_row_cycles(op, inputs, folding, plan, frame)) for frame in counts)
    return replace(stage, frame_cycles=frames)


def simulate(graph: Graph, mapping: Mapping, frames: int = 3,
             fifo_rows: MappingType[tuple[str, str], int] | None = None,
             inputs: MappingType[str, np.ndarray] | None = None) -> LatencyReport:
    """Simulate `frames` back-to-back frames with the FIFO depths `fifo_rows` gives ((producer
    layer, consumer layer) -> rows of the tensor), or with depths planned here. A layer-sequential
    engine runs its instructions one after another (`simulate_engine`).

    Planning: an unbounded run measures every edge's stall-free depth. Only edges into a join
    (a layer reading two or more tensors: a residual add, a concat, a deformable conv's input
    and offsets) keep it; a plain chain only throttles a faster producer, so its edges get the
    minimum into a stage whose ring reads a row ahead anyway, one row into the others
    (`streams.default_fifo_rows`). A bounded run checks the plan; if it deadlocks or slows the
    pipeline by more than `PLAN_TOLERANCE`, chains get one row, and failing that every edge
    keeps its stall-free depth.
    """
    counts = frame_counts(graph, inputs) if inputs is not None else None
    if fifo_rows is not None:
        return run_pipeline(graph, mapping, frames, fifo_rows, counts)
    free = run_pipeline(graph, mapping, frames, None, counts)
    joins = {op.name for op in graph if len(set(op.inputs)) > 1}
    for shallow in (True, False):
        plan = {(p, c): rows if c in joins else min(rows, default_fifo_rows(graph, c) if shallow else 1)
                for (p, c), rows in free.fifo_rows.items()}
        if plan == free.fifo_rows:
            return free
        try:
            bounded = run_pipeline(graph, mapping, frames, plan, counts)
        except PipelineDeadlock:
            continue
        if bounded.interval_cycles <= free.interval_cycles * (1 + PLAN_TOLERANCE):
            return bounded
    return free


def frame_counts(graph: Graph, inputs: MappingType[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Per frame, the active sites per row of every sparse tensor (inputs: integer frames by
    input tensor name); a dense network has none, and every frame costs the same."""
    counts = row_counts(graph, inputs)
    frames = next(iter(inputs.values())).shape[0]
    return [{name: rows[frame] for name, rows in counts.items()} for frame in range(frames)]


def run_pipeline(graph: Graph, mapping: Mapping, frames: int,
                 fifo_rows: MappingType[tuple[str, str], int] | None,
                 counts: list[dict[str, np.ndarray]] | None = None) -> LatencyReport:
    """One simulation; unbounded FIFOs (whose stall-free depths it reports) unless `fifo_rows`
    gives depths (which it then reports as the allocation). With `counts` (one dict per frame)
    the sparse stages run those frames' active sites."""
    board = mapping.board
    rate = dma_bytes_per_cycle(board.ddr_bandwidth_gbps, board.clock_mhz)
    frames = len(counts) if counts else frames
    stages = {op.name: build_stage(graph, op, mapping.costs[op.name].cycles, mapping.foldings[op.name], counts)
              for op in graph}
    order = [op.name for op in graph]
    producer_of = {op.output.name: op.name for op in graph}
    consumers = {name: [c.name for c in graph.consumers(stages[name].op.output.name)] for name in order}

    # first step of each consumer that needs input row >= j, per (producer, consumer)
    first_step_needing: dict[tuple[str, str], list[int]] = {}
    for name in order:
        stage = stages[name]
        for tensor, rows in stage.needs:
            index, table = 0, []
            for j in range(graph.tensor(tensor).shape[2]):
                while index < len(rows) and rows[index] < j:
                    index += 1
                table.append(index)
            first_step_needing[(producer_of[tensor], name)] = table

    starts = {name: [[0.0] * stages[name].steps for _ in range(frames)] for name in order}
    ends = {name: [[0.0] * stages[name].steps for _ in range(frames)] for name in order}
    row_end = {name: [[0.0] * max(stages[name].op.output.shape[2], 1) for _ in range(frames)] for name in order}

    def one_pass(back_pressure: bool) -> bool:
        changed = False
        for frame in range(frames):
            for name in order:
                stage = stages[name]
                for step in range(stage.steps):
                    ready = ends[name][frame][step - 1] if step else (ends[name][frame - 1][-1] if frame else 0.0)
                    for tensor, rows in stage.needs:
                        ready = max(ready, row_end[producer_of[tensor]][frame][rows[step]])
                    emitted = stage.emits[step]
                    if back_pressure and emitted >= 0 and fifo_rows is not None:
                        for consumer in consumers[name]:
                            depth = fifo_rows.get((name, consumer))
                            if depth is None:
                                continue
                            capacity = depth + stages[consumer].holds_rows
                            blocking_row = emitted - capacity
                            if blocking_row >= 0:
                                step_c = first_step_needing[(name, consumer)][blocking_row]
                                step_c = min(step_c, stages[consumer].steps - 1)
                                ready = max(ready, starts[consumer][frame][step_c])
                    if ready > starts[name][frame][step] or not back_pressure:
                        changed |= ready != starts[name][frame][step]
                        starts[name][frame][step] = ready
                        ends[name][frame][step] = ready + stage.cycles(frame, step)
                        if emitted >= 0:
                            row_end[name][frame][emitted] = ends[name][frame][step]
        return changed

    one_pass(back_pressure=False)
    occupancy = measure_fifo_rows(stages, order, producer_of, first_step_needing, starts, row_end)
    throttled = {(op.name, consumers[op.name][0]): INPUT_FIFO_ROWS for op in graph.inputs if len(consumers[op.name]) == 1}
    requested = fifo_rows is not None
    fifo_rows = {**throttled, **(fifo_rows or {})}
    occupancy.update({edge: min(rows, occupancy[edge]) for edge, rows in throttled.items()})
    if fifo_rows:
        # No schedule is slower than running every step of every stage one after another; a
        # relaxation that passes that bound (or never settles) is waiting on itself.
        serial_bound = sum(stage.cycles(f, step) for stage in stages.values() for f in range(frames)
                           for step in range(stage.steps)) + 1
        for _ in range(MAX_RELAXATIONS):
            if not one_pass(back_pressure=True):
                break
            if max(ends[name][-1][-1] for name in order) > serial_bound:
                raise deadlock(fifo_rows, occupancy)
        else:
            raise deadlock(fifo_rows, occupancy)

    if requested:  # report the allocation that was simulated
        occupancy = {edge: fifo_rows.get(edge, rows) for edge, rows in occupancy.items()}
    outputs = [producer_of[t] for t in graph.outputs]
    dma_out = sum(stream_cycles(graph.tensor(t), rate) for t in graph.outputs)
    finish = [max(ends[name][frame][-1] for name in outputs) for frame in range(frames)]
    interval = finish[-1] - finish[-2] if frames > 1 else finish[0]
    interval = max(interval, dma_out, 1.0)  # output DMA overlaps the next frame but must keep up
    dma_in = sum(mapping.costs[op.name].cycles for op in graph.inputs)
    timings = tuple(
        StageTiming(name, stages[name].op.kind, mapping.costs[name].cycles,
                    next((e for e, row in zip(ends[name][0], stages[name].emits) if row >= 0), 0.0),
                    ends[name][0][-1], mapping.costs[name].cycles / interval)
        for name in order
    )
    elements = {}
    for (producer, consumer), rows in occupancy.items():
        lanes = output_lanes(graph, stages[producer].op, mapping.foldings[producer])
        elements[(producer, consumer)] = stream_fifo_depth(rows, stages[producer].op.output, lanes) * lanes
    fifo_bram, fifo_lut = 0, 0
    for name in order:
        memory = output_fifos(graph, name, mapping.foldings[name], occupancy)
        fifo_bram, fifo_lut = fifo_bram + memory.bram18k, fifo_lut + memory.lut
    refold_lut, refold_ff = refold_cost(graph, mapping.foldings)
    begins = [min(starts[op.name][frame][0] for op in graph.inputs) for frame in range(frames)]
    frame_latencies = tuple(finish[frame] + dma_out - begins[frame] for frame in range(frames))
    return LatencyReport(board.clock_mhz, finish[0] + dma_out, interval, dma_in, dma_out, timings,
                         occupancy, elements, MemoryCost(fifo_bram, fifo_lut), refold_lut, refold_ff, frame_latencies)


def deadlock(fifo_rows: MappingType[tuple[str, str], int], needed: dict[tuple[str, str], int]) -> PipelineDeadlock:
    short = [f"{p} -> {c}: {fifo_rows[(p, c)]} rows, needs {rows}"
             for (p, c), rows in needed.items() if (p, c) in fifo_rows and fifo_rows[(p, c)] < rows]
    return PipelineDeadlock(
        "FIFO depths deadlock the pipeline: a reconvergent branch (e.g. a residual shortcut) cannot "
        "buffer the rows its sibling needs; FIFOs below their stall-free depth: " + "; ".join(short)
    )


def measure_fifo_rows(stages: dict[str, _Stage], order: list[str], producer_of: dict[str, str],
                      first_step_needing: dict[tuple[str, str], list[int]],
                      starts: dict[str, list[list[float]]], row_end: dict[str, list[list[float]]]) -> dict[tuple[str, str], int]:
    """Per edge, the most rows written but not yet taken into the consumer's line buffer (frame 0).

    Row j leaves the FIFO when the consumer starts the first step that needs it; what the
    consumer's own line buffer holds beyond the current window does not occupy the FIFO.
    """
    depths = {}
    for name in order:
        stage = stages[name]
        for tensor, _ in stage.needs:
            producer = producer_of[tensor]
            taken = [starts[name][0][min(step, stage.steps - 1)] for step in first_step_needing[(producer, name)]]
            worst = 1
            for row, time in enumerate(row_end[producer][0]):
                waiting = row + 1 - bisect.bisect_right(taken, time) - stage.holds_rows + 1
                worst = max(worst, waiting)
            depths[(producer, name)] = worst
    return depths
