"""Cost model of the submanifold sparse stages (templates/hls/layers/hwc_sparse.h): cycles that
scale with the active sites, resources as the templates build them.

A sparse tensor's density d is the fraction of its H x W sites that are active; it depends on
the input (an event frame), so cycles are a function of it. The mapper sizes for a design
density per tensor (`measure_densities`: a percentile over sample inputs, or 1.0, the dense
worst case); the latency simulator takes a frame's real active sites.

Per frame, following the loops:
- input tokens: d_in * H_in * W_in reads, plus one end-of-frame token;
- a sparse conv per output row: its read loop (the row's new tokens, plus one look at the next
  token), the window's bitmap OR, and, if any output of the row is active, a pipelined loop of
  (active outputs) x folds x steps (steps: kernel taps x input chunks, or taps for depthwise);
- elementwise layers and the global pool: FOLDS = C / PE cycles per token.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hwcodesign.hardware.folding import Folding, LayerCost, divisors
from hwcodesign.hardware.memory import lut_rom, memory_cost
from hwcodesign.hardware.stream import STREAM_WORD_BITS, density_of, sites, token_words
from hwcodesign.hardware.units import (
    ACCUMULATOR_BITS,
    PIPELINE_RAMP,
    REQUANT_DSP_PER_PE,
    STAGE_BASE_FF,
    STAGE_BASE_LUT,
    macs_per_dsp,
)
from hwcodesign.ir.op import Input, Op
from hwcodesign.ir.stream_layout import layout_of
from hwcodesign.ir.types import Tensor
from hwcodesign.ops import Act, Add, GlobalAvgPool, SubmanifoldConv

ROW_OVERHEAD = PIPELINE_RAMP + 3
"""A sparse conv's cycles per output row besides its MACs: the read loop's ramp, the look at the
next token, the bitmap OR and the window's clear."""


def is_sparse_layer(op: Op, inputs: list[Tensor]) -> bool:
    return isinstance(op, SubmanifoldConv) or op.output.sparse or any(t.sparse for t in inputs)


def sparse_foldings(op: Op, inputs: list[Tensor]) -> list[Folding]:
    """Foldings the sparse stages support: a depthwise sparse conv PE channels x 1 tap, a dense
    one PE outputs x SIMD channels of a tap, per-token stages PE channels."""
    if isinstance(op, SubmanifoldConv):
        if op.depthwise:
            return [Folding(pe, 1) for pe in divisors(op.out_channels)]
        return [Folding(pe, simd) for pe in divisors(op.out_channels) for simd in divisors(inputs[0].channels)]
    channels = inputs[0].channels if isinstance(op, GlobalAvgPool) else op.output.channels
    return [Folding(pe, 1) for pe in divisors(channels)]


def sparse_conv_cycles(op: SubmanifoldConv, source: Tensor, folding: Folding, density_in: float,
                       density_out: float) -> int:
    out = op.output
    out_rows, out_width = out.shape[2], out.shape[3]
    folds = op.out_channels // folding.pe
    steps = op.kernel[0] * op.kernel[1] * (1 if op.depthwise else source.channels // folding.simd)
    busy_rows = out_rows * (1 - (1 - density_out) ** out_width)  # rows with at least one active output
    cycles = (sites(source, density_in) + out_rows * ROW_OVERHEAD + sites(out, density_out) * folds * steps
              + busy_rows * PIPELINE_RAMP + 1)
    return int(-(-cycles // 1))


def sparse_stage_cost(op: Op, inputs: list[Tensor], folding: Folding, ps_type: str, dma_rate: float,
                      densities: Mapping[str, float] | None) -> LayerCost:
    """Cycles at the design densities and resources of a sparse stage (or a sparse input)."""
    out = op.output
    if isinstance(op, Input):
        words = token_words(out, density_of(out, densities))
        return LayerCost(int(-(-max(words, words * STREAM_WORD_BITS / 8 / dma_rate) // 1)), 0, 0, 0, 0, 0)
    source = inputs[0]
    pe = folding.pe
    if isinstance(op, SubmanifoldConv):
        return subm_conv_cost(op, source, folding, ps_type, density_of(source, densities), density_of(out, densities))
    folds = source.channels // pe
    tokens = sites(source, density_of(source, densities)) + 1
    cycles = int(-(-(tokens * folds + PIPELINE_RAMP + (folds if isinstance(op, GlobalAvgPool) else 0)) // 1))
    tables = lut_rom(out.channels, sum(r.entry_bits for r in op.requants()), pe)
    dsp = REQUANT_DSP_PER_PE * pe + (2 * pe if isinstance(op, Add) else 0)
    lut = STAGE_BASE_LUT + pe * (out.dtype.bits * 6 + ACCUMULATOR_BITS) + tables.lut
    ff = STAGE_BASE_FF + pe * (out.dtype.bits + ACCUMULATOR_BITS) * 2
    if isinstance(op, GlobalAvgPool):
        ff += source.channels * ACCUMULATOR_BITS
    if not isinstance(op, Act | Add | GlobalAvgPool):
        raise AssertionError(f"no sparse cost for {op.kind}")
    return LayerCost(cycles, PIPELINE_RAMP + folds, dsp, 0, lut, ff)


def subm_conv_cost(op: SubmanifoldConv, source: Tensor, folding: Folding, ps_type: str, density_in: float,
                   density_out: float) -> LayerCost:
    """The sparse conv: MACs only at active outputs; its line buffer holds the window's rows of
    the input (centred values, channel-partitioned by the lanes it reads) and their bitmaps."""
    pe, simd = folding.pe, folding.simd
    wbits, abits = op.weight_type.bits, source.dtype.bits
    taps = op.kernel[0] * op.kernel[1]
    folds = op.out_channels // pe
    steps = taps * (1 if op.depthwise else source.channels // simd)
    lanes = pe * simd
    weights = memory_cost(folds * steps, simd * wbits, pe)
    window_rows = (op.kernel[0] - 1) * op.dilation[0] + 1
    in_lanes = pe if op.depthwise else simd
    ring = memory_cost(window_rows * source.shape[3] * -(-source.channels // in_lanes), in_lanes * (abits + 1))
    bias_bits = max(2, int(abs(op.bias).max(initial=0)).bit_length() + 1)
    constants = lut_rom(op.out_channels, bias_bits + op.requant.entry_bits, pe)
    mac_dsp = -(-lanes // macs_per_dsp(wbits, abits, ps_type)) if folding.mac == "dsp" else 0
    dsp = mac_dsp + REQUANT_DSP_PER_PE * pe
    out_width = op.output.shape[3]
    selector_lut = out_width * (4 + op.kernel[1]) + window_rows * source.shape[3] // 4  # encoder, window OR
    mac_lut = lanes * (wbits * abits + 8) if folding.mac == "lut" else lanes * 6
    lut = (STAGE_BASE_LUT + mac_lut + lanes * (wbits + abits) + weights.lut + constants.lut + ring.lut + selector_lut)
    ff = (STAGE_BASE_FF + lanes * (wbits + abits) + pe * ACCUMULATOR_BITS * 2 + window_rows * source.shape[3]
          + op.out_channels * op.output.dtype.bits)
    cycles = sparse_conv_cycles(op, source, folding, density_in, density_out)
    depth = window_rows * source.shape[3] + folds * steps + PIPELINE_RAMP
    return LayerCost(cycles, depth, dsp, weights.bram18k + ring.bram18k, lut, ff)


def sparse_row_cycles(op: Op, inputs: list[Tensor], folding: Folding, counts: Mapping[str, np.ndarray]) -> list[float]:
    """Cycles of each step (output row) of a sparse stage for one frame whose sparse tensors have
    `counts[tensor][row]` active sites: the loops of `sparse_conv_cycles`, row by row."""
    out = op.output
    if isinstance(op, Input):
        per_site = 1 + layout_of(out.shape, out.dtype, STREAM_WORD_BITS).words_per_pixel
        return [float(n * per_site + (1 if r == out.shape[2] - 1 else 0)) for r, n in enumerate(counts[out.name])]
    source = inputs[0]
    if isinstance(op, SubmanifoldConv):
        folds = op.out_channels // folding.pe
        steps = op.kernel[0] * op.kernel[1] * (1 if op.depthwise else source.channels // folding.simd)
        window = (op.kernel[0] - 1) * op.dilation[0] + 1
        read_until = -1
        rows = []
        for r, active in enumerate(counts[out.name]):
            last = min(source.shape[2] - 1, r * op.stride[0] - op.pads[0] + window - 1)
            tokens = float(np.sum(counts[source.name][read_until + 1:last + 1])) if last > read_until else 0.0
            read_until = max(read_until, last)
            rows.append(tokens + ROW_OVERHEAD + active * folds * steps + (PIPELINE_RAMP if active else 0))
        rows[-1] += float(np.sum(counts[source.name][read_until + 1:])) + 1  # the drain and the end token
        return rows
    folds = source.channels // folding.pe
    if isinstance(op, GlobalAvgPool):  # steps are input rows (a reducing stage)
        rows = [float(n * folds) for n in counts[source.name]]
        rows[-1] += folds + PIPELINE_RAMP
        return rows
    return [float(n * folds) + (PIPELINE_RAMP if r == 0 else 0) for r, n in enumerate(counts[out.name])]
