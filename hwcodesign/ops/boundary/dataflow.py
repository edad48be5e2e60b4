"""The input boundary as a dataflow stage: the AXI DMA's stream turned into pixels (or, for a
sparse input, tokens of its active sites) by an adapter in the top (templates/hls/layers/
hwc_axis.h, hwc_sparse.h). Its cycles are the frame's transfer time at the DMA rate, or the
adapter's loop where that is longer (a pixel per cycle where narrow pixels share words), so an
input-bandwidth-bound design shows up as such."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hwcodesign.hardware.ctext import axis_adapter, c_type
from hwcodesign.hardware.folding import Folding, LayerCost
from hwcodesign.hardware.stream import STREAM_WORD_BITS, density_of, stream_cycles, token_words
from hwcodesign.ir.op import Op
from hwcodesign.ir.stream_layout import layout_of
from hwcodesign.ir.types import Tensor
from hwcodesign.ops.facets.dataflow import (
    CostTarget,
    DataflowFacet,
    StageCode,
    StagePlan,
    StageWiring,
    row_emits,
)


class InputDataflow(DataflowFacet):
    def candidate_foldings(self, op: Op, inputs: list[Tensor]) -> list[Folding]:
        return [Folding()]

    def plan(self, op: Op, inputs: list[Tensor], folding: Folding) -> StagePlan:
        out = op.output
        rows = out.shape[2]
        layout = layout_of(out.shape, out.dtype, STREAM_WORD_BITS)
        # the adapter's loop: a word or a pixel per step (`adapter_steps`), or at most every site's
        # token and the end
        trips = layout.pixels * (1 + layout.words_per_pixel) + 1 if out.sparse else layout.adapter_steps
        return StagePlan((), out.channels, loop_trips=trips, steps=rows, emits=row_emits(rows), sparse=out.sparse)

    def cost(self, op: Op, inputs: list[Tensor], folding: Folding, plan: StagePlan, target: CostTarget) -> LayerCost:
        out = op.output
        if out.sparse:
            words = token_words(out, density_of(out, target.densities))
            return LayerCost(int(-(-max(words, words * STREAM_WORD_BITS / 8 / target.dma_rate) // 1)), 0, 0, 0, 0, 0)
        return LayerCost(stream_cycles(out, target.dma_rate), 0, 0, 0, 0, 0)

    def stage(self, op: Op, wiring: StageWiring, folding: Folding, plan: StagePlan) -> StageCode:
        out = op.output
        pixels = out.shape[2] * out.shape[3]
        if out.sparse:
            call = (f"hwc_axis_to_tokens<{wiring.word_bits}, {c_type(out.dtype)}, {out.channels}, {pixels}>"
                    f"({wiring.in_streams[0]}, {wiring.out_stream});")
        else:
            call = f"{axis_adapter('hwc_axis_to_pixels', out, wiring.word_bits)}({wiring.in_streams[0]}, {wiring.out_stream});"
        return StageCode(calls=(call,))

    def sparse_row_cycles(self, op: Op, inputs: list[Tensor], folding: Folding, plan: StagePlan,
                          counts: Mapping[str, np.ndarray]) -> list[float]:
        """A header and the pixel's words per active site of each row, and the end token."""
        out = op.output
        per_site = 1 + layout_of(out.shape, out.dtype, STREAM_WORD_BITS).words_per_pixel
        return [float(n * per_site + (1 if r == out.shape[2] - 1 else 0)) for r, n in enumerate(counts[out.name])]


DATAFLOW = InputDataflow()
