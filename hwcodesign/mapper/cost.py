"""The cost model: cycles and resources of one streaming stage for one folding, by family.

Each op family computes its stage plan and cost in `hwcodesign/ops/<family>/dataflow.py`; this
module dispatches to it (`family_of(op).dataflow`) and states the model they share.

A stage with PE output-channel lanes and SIMD input-channel lanes computes PE x SIMD MACs per
cycle with an II=1 inner loop, as FINN's MVAU/SWG do (Umuroglu et al., "FINN", FPGA'17;
Blott et al., "FINN-R", TRETS 2018). Its compute steps per frame are therefore

    output_pixels * groups * (out_per_group / PE) * (in_per_group * kh * kw / SIMD)

and its initiation interval per frame (`cycles`) is the iterations its template's pipelined loops
run (the stage plan's `loop_trips`, one formula per family naming each loop), plus the pipeline
ramps a family documents (a pointwise conv run pixel by pixel: one per pixel): for a window stage
the fill loop before output row 0, then per output row the compute steps and the shared output
stages' drain, or the words of the rows the next output row adds if more.

Streams between stages are folded as in FINN: a stage writes one word of PE channels per
output fold and reads words of its own input width (the plan's `input_lanes`: the channels its line
buffer takes per cycle); the compiler inserts a re-folding converter where a producer's words differ
from what the consumer reads. The input streams in one word per cycle inside the same loop (the
generated stages read the next window rows while computing, `templates/hls/layers/hwc_window.h`),
so a stage never runs faster than its input words.

SIMD walks the im2col row of a pixel: up to the input channels it parallelises channels (as in
FINN), beyond them whole kernel taps, so low-channel layers (an RGB stem) can still be unrolled;
the window buffer then needs one read port per tap (counted as copies). Depthwise conv runs PE
channels and SIMD taps per cycle; elementwise stages (pool, add, resize, activation, concat)
process PE channels per cycle.

Resources:
- DSP: one multiplier per MAC lane; on DSP48E2 (Zynq UltraScale+) two multiplies of <= 8-bit
  operands that share one input pack into one DSP (Xilinx WP486, "Deep Learning with INT8
  Optimization on Xilinx Devices"); DSP48E1 (Zynq-7000) gets no packing here. With <= 4-bit
  weights and activations a MAC can instead be built from LUTs (`mac="lut"`), costing about
  weight_bits * activation_bits LUTs per lane (FINN-R, Sec. 5 LUT cost of binary/low-bit MACs).
  Requantization takes a 24-bit x accumulator multiply: two DSP48 (27x18) per unit, one unit
  per output finished per cycle (a PE finishes one output per im2col row / SIMD cycles, so long
  rows share one unit across PEs; elementwise stages need one per PE).
- BRAM18K: weights as PE memories of (O/PE)*(K/SIMD) words x SIMD*weight_bits (FINN's weight
  layout), in block RAM or LUTRAM as the folding names (`Folding.weights`; both offered where a
  real trade-off, `memory.weight_memories`), sliding-window line buffers of (kernel-1)*dilation+1
  rows of centred (bits+1)-wide values partitioned by SIMD, both packed per UG573 (see
  `hardware/memory.py`). The per-channel bias
  and requantization constants are LUT ROMs (their real widths, banked per output stage): as
  BRAM they would take two blocks per layer for a few hundred bytes.
- LUT/FF: linear estimates (control, adder trees, accumulators, pipeline registers); they are
  rough (+-30% against FINN's published post-synthesis numbers) and labelled as estimates.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from hwcodesign.hardware.folding import Folding, LayerCost, by_lanes, thin
from hwcodesign.hardware.stream import STREAM_BYTES_PER_CYCLE
from hwcodesign.ir.op import Op
from hwcodesign.ir.types import Tensor
from hwcodesign.mapper.folding_file import FoldingFileError
from hwcodesign.ops import OpUnsupported, Refused, family_of
from hwcodesign.ops.facets.dataflow import CostTarget, DataflowFacet, StagePlan


def dataflow_of(op: Op) -> DataflowFacet:
    """The dataflow facet of `op`'s family; `OpUnsupported` says why a family refuses it."""
    facet = family_of(op).dataflow
    if isinstance(facet, Refused):
        raise OpUnsupported(f"layer '{op.name}': {op.kind} cannot run as a dataflow stage: {facet.reason}")
    assert isinstance(facet, DataflowFacet)
    return facet


def stage_plan(op: Op, inputs: list[Tensor], folding: Folding) -> StagePlan:
    """The stage plan of `op` under `folding` (streams, line buffer, loops), from its family:
    made once per (layer, folding) and shared by the cost model, the stream widths, the latency
    simulator and the code generator."""
    return _planned(op, tuple(inputs), folding)


@lru_cache(maxsize=1 << 14)
def _planned(op: Op, inputs: tuple[Tensor, ...], folding: Folding) -> StagePlan:
    # IR ops compare by identity and never change, so a plan stays valid as long as its op lives
    return dataflow_of(op).plan(op, list(inputs), folding)


def candidate_foldings(op: Op, inputs: list[Tensor], max_candidates: int = 96) -> list[Folding]:
    """Foldings worth considering: what the family supports, thinned to at most `max_candidates`
    (the extremes kept and the rest spread evenly in MAC lanes, so a larger candidate set only
    refines the trade-off curve)."""
    return thin(dataflow_of(op).candidate_foldings(op, inputs), max_candidates)


def smallest_folding(op: Op, inputs: list[Tensor]) -> Folding:
    """The layer's most folded candidate: PE=1, SIMD=1 in its first implementation (DSP MACs where
    it builds them, the multiplier output stage, the weights in their automatic memory)."""
    return candidate_foldings(op, inputs)[0]


def pinned_folding(op: Op, inputs: list[Tensor], folding: Folding) -> Folding:
    """`folding` when the layer's family builds it (any of its foldings, not only the candidates
    the mapper samples; its weights in either memory: every weight ROM builds in both, and the
    mapper is offered only the memory that is a real trade-off, `memory.weight_memories`, while
    a folding file may pin either); else FoldingFileError naming the layer and some foldings it
    does build."""
    options = dataflow_of(op).candidate_foldings(op, inputs)
    shapes = sorted({(f.pe, f.simd) for f in options}, key=by_lanes)
    implementations = sorted({(f.mac, f.output) for f in options if (f.pe, f.simd) == (folding.pe, folding.simd)})
    if (folding.mac, folding.output) in implementations:
        return folding
    if implementations:
        choices = ", ".join(f"mac {mac} output {output}" for mac, output in implementations)
        raise FoldingFileError(f"layer '{op.name}' ({op.kind}): {folding} is not built; PE{folding.pe} SIMD{folding.simd} "
                               f"comes with {choices}")
    sample = ", ".join(f"PE{pe} SIMD{simd}" for pe, simd in shapes[:: max(1, len(shapes) // 8)][:8])
    raise FoldingFileError(f"layer '{op.name}' ({op.kind}): PE{folding.pe} SIMD{folding.simd} is not a folding it "
                           f"builds ({len(shapes)} shapes, e.g. {sample})")


def layer_cost(op: Op, inputs: list[Tensor], folding: Folding, ps_type: str = "zynq_ultrascale",
               dma_rate: float = STREAM_BYTES_PER_CYCLE, densities: Mapping[str, float] | None = None) -> LayerCost:
    """Cycles and resources of `op` under `folding` (formulas and sources in the module doc).

    An Input is the DMA feeding the stream: its cycles are the frame's transfer time at
    `dma_rate` bytes per cycle. Sparse layers' cycles follow their tensors' design densities
    (1.0 when not given).
    """
    plan = stage_plan(op, inputs, folding)
    return dataflow_of(op).cost(op, inputs, folding, plan, CostTarget(ps_type, dma_rate, densities))
