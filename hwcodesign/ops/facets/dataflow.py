"""The dataflow facet's interface: how a family runs its ops as stages of the dataflow pipeline.

A family plans each (layer, folding) once: the `StagePlan` holds every number about the stage's
streams, line buffer and loops that more than one consumer needs. The cost model (cycles and
resources), the latency simulator (which input rows each step needs, what the stage holds) and
the HLS config (IN_LANES, RING_ROWS, ROW_STEPS, ...) all read that plan; none recomputes it.
An op a family cannot run as a stage is refused by name (`Refused` in its registration, or
`OpUnsupported` for a case the family rejects), never given a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from hwcodesign.hardware.ctext import Stage
from hwcodesign.hardware.folding import Folding, LayerCost
from hwcodesign.hardware.stream import STREAM_BYTES_PER_CYCLE, input_words
from hwcodesign.ir.op import Op
from hwcodesign.ir.types import Tensor
from hwcodesign.ops.refusal import OpUnsupported


@dataclass(frozen=True)
class StagePlan:
    """One stage's streams, line buffer and loops for one folding.

    Loops (per frame, dense tensors; a sparse stage's depend on its active sites): every count is
    of iterations of the template's pipelined (II=1) loops, as the C simulation counts them
    (HWC_COUNT_LOOPS); tests/codegen/test_dataflow_loop_counts.py holds them equal.
    - `fill_words`: iterations of the `fill` loop before the first output row (hwc_ring_fill);
    - `row_steps`: ROW_STEPS, the LOOP_TRIPCOUNT of the `steps` loop of one output row (for a
      sparse conv: of one active output site);
    - `loop_trips`: every pipelined-loop iteration of the stage in a whole frame, one formula per
      family in its dataflow.py naming the template loop of each term (a concat's links, which
      run as concurrent processes, summed); for an input, the adapter's word loop (for a sparse
      input its bound, every site active); for a sparse conv its compute loop with every site
      active; 0 for the per-token stages (act, add, global pool on tokens), whose loops follow
      the active sites;
    - `step_trips`: those iterations per simulation step (the fill counted in step 0, every
      output row's drain in its own step), summing to `loop_trips` (for a concat: to its last
      link's, the slowest process); the cost model's cycles are their sum plus the pipeline
      ramps the family documents, and the latency simulator shares a stage's cycles among its
      steps in proportion to them. Empty where the stage's cycles are not its loops (an input: the DMA's rate;
      sparse stages: their active sites).
    Simulation: `steps` row-level steps; step i emits output row `emits[i]` (-1: none) and needs
    input row `needs[slot][i]` of every input slot; `held_rows` input rows stay in the stage.
    """

    input_lanes: tuple[int, ...]  # channels per word read on each input slot
    output_lanes: int  # channels per word written
    input_words: int = 0  # words of a frame on input slot 0 at its lanes (IN_WORDS)
    window_rows: int = 0  # rows a window spans (WINDOW_ROWS); 0: no sliding window
    ring_rows: int = 0  # rows the ring buffer holds: the window and the rows read ahead (RING_ROWS)
    held_rows: int = 0  # input rows the stage keeps while it runs (the simulator's back-pressure)
    pixel_ring: bool = False  # a pointwise conv run pixel by pixel (a ring of two pixels)
    fill_cycles: int = 0  # cycles before the window can produce its first output
    fill_words: int = 0
    row_steps: int = 0
    loop_trips: int = 0
    step_trips: tuple[int, ...] = ()
    fifo_rows: int = 1  # rows of the FIFO in front of this stage unless the simulation plans otherwise
    # per input slot, rows of the FIFO in front of it where they differ (empty: `fifo_rows` on every
    # slot); a stage needing a whole frame queued on one input (a gate computed from that input) says so
    input_fifo_rows: tuple[int, ...] = ()
    steps: int = 1
    emits: tuple[int, ...] = (0,)
    needs: tuple[tuple[int, ...], ...] = ()
    sparse: bool = False  # runs on tokens: cycles follow the active sites

    def __post_init__(self) -> None:
        assert not self.step_trips or len(self.step_trips) == self.steps, "one step_trips entry per simulation step"
        assert not self.input_fifo_rows or len(self.input_fifo_rows) == len(self.input_lanes), "one entry per input slot"


@dataclass(frozen=True)
class CostTarget:
    """What a stage's cost depends on besides its plan: the device family (DSP packing), the DMA
    rate (bytes per cycle) for the boundary, and the design densities of sparse tensors."""

    ps_type: str = "zynq_ultrascale"
    dma_rate: float = STREAM_BYTES_PER_CYCLE
    densities: Mapping[str, float] | None = None


@dataclass(frozen=True)
class StageWiring:
    """Where a stage sits in the generated top: its C identifier, the tensors and streams it
    reads, the stream it writes, and the boundary's AXI4-Stream width."""

    ident: str
    sources: tuple[Tensor, ...]
    in_streams: tuple[str, ...]
    out_stream: str
    word_bits: int


@dataclass(frozen=True)
class StageCode:
    """What a layer adds to the top: its stages (config structs, tables, calls), the intermediate
    streams they add (name, tensor, in words of the folding's PE channels), and the calls in order."""

    stages: tuple[Stage, ...] = ()
    links: tuple[tuple[str, Tensor], ...] = ()
    calls: tuple[str, ...] = ()

    @classmethod
    def of(cls, *stages: Stage, links: tuple[tuple[str, Tensor], ...] = ()) -> StageCode:
        return cls(tuple(stages), links, tuple(stage.call for stage in stages))


class DataflowFacet:
    """A family's dataflow stages. Families override every method their ops support; sparse
    frames are asked only of plans marked sparse."""

    def candidate_foldings(self, op: Op, inputs: list[Tensor]) -> list[Folding]:
        raise NotImplementedError

    def plan(self, op: Op, inputs: list[Tensor], folding: Folding) -> StagePlan:
        raise NotImplementedError

    def cost(self, op: Op, inputs: list[Tensor], folding: Folding, plan: StagePlan, target: CostTarget) -> LayerCost:
        raise NotImplementedError

    def stage(self, op: Op, wiring: StageWiring, folding: Folding, plan: StagePlan) -> StageCode:
        raise NotImplementedError

    def sparse_row_cycles(self, op: Op, inputs: list[Tensor], folding: Folding, plan: StagePlan,
                          counts: Mapping[str, np.ndarray]) -> list[float]:
        """Cycles of each step of a sparse stage for one frame whose sparse tensors have
        `counts[tensor][row]` active sites."""
        raise OpUnsupported(f"layer '{op.name}': {op.kind} has no sparse stage")


def dense_only(op: Op, inputs: list[Tensor]) -> None:
    """Refuse a sparse tensor where a family runs dense stages only (validation keeps them out)."""
    if op.output.sparse or any(t.sparse for t in inputs):
        raise OpUnsupported(f"layer '{op.name}': {op.kind} has no stage for sparse tensors")


def row_emits(rows: int) -> tuple[int, ...]:
    """Steps that each finish one output row."""
    return tuple(range(rows))


def reducing_emits(in_rows: int) -> tuple[int, ...]:
    """Steps of a reducing stage (one per input row): only the last emits, the single output row."""
    return tuple(-1 for _ in range(in_rows - 1)) + (0,)


def loop_steps(fill: int, row_trips: tuple[int, ...], rows_per_step: int = 1) -> tuple[int, ...]:
    """Per simulation step the iterations of `rows_per_step` loop rows (a pixel-by-pixel stage's
    loop rows are pixels), the fill loop's before the first."""
    steps = [sum(row_trips[i:i + rows_per_step]) for i in range(0, len(row_trips), rows_per_step)]
    steps[0] += fill
    return tuple(steps)


def pixel_needs(inputs: list[Tensor], out_rows: int) -> tuple[tuple[int, ...], ...]:
    """Per input, the row each output row of a per-pixel stage needs: the same row."""
    return tuple(tuple(min(r, t.shape[2] - 1) for r in range(out_rows)) for t in inputs)


def streamed_plan(inputs: list[Tensor], pe: int, rows: int, row_words: int) -> StagePlan:
    """A dense per-pixel stage with one loop of `row_words` iterations per output row (a word of
    PE channels of each input per iteration): activations, adds, lookup tables, channel slices."""
    return StagePlan(tuple(pe for _ in inputs), pe, input_words=input_words(inputs[0], pe),
                     loop_trips=rows * row_words, step_trips=(row_words,) * rows, steps=rows,
                     emits=row_emits(rows), needs=pixel_needs(inputs, rows))


class PerOp(DataflowFacet):
    """A family's dataflow facet when its ops differ enough to have one each: every call goes to
    the facet registered for the op's exact class."""

    def __init__(self, facets: Mapping[type[Op], DataflowFacet]) -> None:
        self.facets = dict(facets)

    def of(self, op: Op) -> DataflowFacet:
        facet = self.facets.get(type(op))
        if facet is None:
            raise OpUnsupported(f"layer '{op.name}': {op.kind} has no dataflow stage in its family")
        return facet

    def candidate_foldings(self, op: Op, inputs: list[Tensor]) -> list[Folding]:
        return self.of(op).candidate_foldings(op, inputs)

    def plan(self, op: Op, inputs: list[Tensor], folding: Folding) -> StagePlan:
        return self.of(op).plan(op, inputs, folding)

    def cost(self, op: Op, inputs: list[Tensor], folding: Folding, plan: StagePlan, target: CostTarget) -> LayerCost:
        return self.of(op).cost(op, inputs, folding, plan, target)

    def stage(self, op: Op, wiring: StageWiring, folding: Folding, plan: StagePlan) -> StageCode:
        return self.of(op).stage(op, wiring, folding, plan)

    def sparse_row_cycles(self, op: Op, inputs: list[Tensor], folding: Folding, plan: StagePlan,
                          counts: Mapping[str, np.ndarray]) -> list[float]:
        return self.of(op).sparse_row_cycles(op, inputs, folding, plan, counts)
