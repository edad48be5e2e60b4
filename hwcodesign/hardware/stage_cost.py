"""Resources and cycles of the stage kinds several families build: a MAC stage (weights, MAC
lanes, requantization units, its bias and requantization tables), a per-pixel stage (PE channels
per cycle, a requantization per lane), a per-token stage on a sparse tensor, and a ring buffer.

The formulas and their sources are in `hwcodesign/mapper/cost.py`'s module doc; the families'
dataflow facets (`hwcodesign/ops/*/dataflow.py`) fill in the numbers their loops give.
"""

from __future__ import annotations

import numpy as np

from hwcodesign.hardware.folding import Folding, LayerCost
from hwcodesign.hardware.memory import MemoryCost, lut_rom, memory_cost, weight_memory_cost
from hwcodesign.hardware.units import (
    ACCUMULATOR_BITS,
    PIPELINE_RAMP,
    REQUANT_DSP_PER_PE,
    STAGE_BASE_FF,
    STAGE_BASE_LUT,
    adder_tree_luts,
    lut_mac_cost,
    macs_per_dsp,
    output_stage_cost,
    requant_units,
    weight_decoder_luts,
)
from hwcodesign.ir.op import Op
from hwcodesign.ir.requant import Requant, signed_bits
from hwcodesign.ir.types import Tensor, WeightType

ROW_OVERHEAD = PIPELINE_RAMP + 3
"""A sparse conv's cycles per output row besides its MACs: the read loop's ramp, the look at the
next token, the bitmap OR and the window's clear."""


def ring_buffer(rows: int, row_pixels: int, source: Tensor, channels_per_read: int, taps_per_cycle: int = 1) -> MemoryCost:
    """The ring buffer of `rows` rows of `row_pixels` pixels: `channels_per_read` channels wide,
    one copy per tap read per cycle. Reading several kernel taps per cycle needs as many read
    ports; Vitis HLS gets them by replicating (or cyclically partitioning) the array, which we
    count as copies. It holds centred values x - zero_point, one bit wider (hwc_window.h)."""
    if rows == 0:
        return memory_cost(0, 0)
    depth = rows * row_pixels * -(-source.channels // channels_per_read)
    return memory_cost(depth, channels_per_read * (source.dtype.bits + 1), taps_per_cycle)


def channel_constants(bias: np.ndarray, requant: Requant, out_channels: int, banks: int) -> MemoryCost:
    """The bias and requantization tables of a MAC stage: one entry per output channel, read by
    `banks` output stages per cycle (`HWC_MAC_STAGE_MEMORIES` in the templates)."""
    bias_bits = signed_bits(int(abs(bias).max(initial=0)))
    return lut_rom(out_channels, bias_bits + requant.entry_bits, banks)


def weight_rom(folding: Folding, weight_type: WeightType, weight_depth: int) -> tuple[int, int]:
    """(depth, width) of one PE's weight ROM: `weight_depth` words of SIMD weights as stored."""
    return weight_depth, folding.simd * weight_type.storage_bits


def weight_roms(folding: Folding, weight_type: WeightType, weight_depth: int) -> MemoryCost:
    """A MAC stage's PE weight ROMs (`weight_rom`) in the folding's weight memory."""
    return weight_memory_cost(folding.weights, *weight_rom(folding, weight_type, weight_depth), folding.pe)


def mac_stage_cost(folding: Folding, weight_type: WeightType, activation_bits: int, ps_type: str, *,
                   cycles: int, depth: int, weight_depth: int, folds_per_output: int, constants: MemoryCost,
                   buffer: MemoryCost, requant: Requant, xnor: bool = False) -> LayerCost:
    """A MAC stage's resources around the cycles and fill depth its family's loops give: PE
    weight ROMs of `weight_depth` words in the folding's memory (`weight_rom`), PE x SIMD MAC
    lanes (DSPs, packed per WP486, or LUTs; XNORs and a popcount when `xnor`), an adder tree per
    PE, and output stages for the outputs it finishes per cycle (`output_stage_cost`: comparators
    for sign and threshold stages)."""
    pe, simd = folding.pe, folding.simd
    wbits = weight_type.value_bits  # a DyBit weight is stored as its code (`weight_rom`), multiplied as its level
    lanes = pe * simd
    weights = weight_roms(folding, weight_type, weight_depth)
    if folding.mac == "lut":
        mac_dsp, mac_lut = 0, lanes * lut_mac_cost(weight_type, activation_bits, xnor)
    else:
        mac_dsp = -(-lanes // macs_per_dsp(wbits, activation_bits, ps_type))
        mac_lut = lanes * 6
    mac_lut += weight_decoder_luts(weight_type, lanes)
    adder_lut = adder_tree_luts(lanes, wbits, activation_bits, xnor)
    stage_dsp, stage_lut = output_stage_cost([requant], requant_units(pe, folds_per_output))
    dsp = mac_dsp + stage_dsp
    mac_lut += stage_lut
    lut = STAGE_BASE_LUT + mac_lut + adder_lut + weights.lut + constants.lut + buffer.lut
    ff = STAGE_BASE_FF + lanes * (wbits + activation_bits) + pe * ACCUMULATOR_BITS * 2
    return LayerCost(cycles, depth, dsp, weights.bram18k + constants.bram18k + buffer.bram18k, lut, ff)


def pixel_stage_cost(op: Op, pe: int, cycles: int, depth: int, buffer: MemoryCost) -> LayerCost:
    """A stage of PE channels per cycle with a requantization per lane (none if every requant is
    the identity) and its constant tables as LUT ROMs: elementwise, pooling, resize, concat."""
    out = op.output
    requant_dsp, requant_lut = output_stage_cost(op.requants(), pe)
    tables = lut_rom(out.channels, sum(r.entry_bits for r in op.requants()), pe)
    lut = STAGE_BASE_LUT + pe * (out.dtype.bits * 6 + ACCUMULATOR_BITS) + buffer.lut + tables.lut + requant_lut
    ff = STAGE_BASE_FF + pe * (out.dtype.bits + ACCUMULATOR_BITS) * 2
    return LayerCost(cycles, depth, requant_dsp, buffer.bram18k, lut, ff)


def token_stage_cost(op: Op, source: Tensor, pe: int, tokens: float, *, tail: int = 0, extra_dsp: int = 0,
                     extra_ff: int = 0) -> LayerCost:
    """A per-token stage on a sparse tensor (templates/hls/layers/hwc_sparse.h): C / PE cycles
    per token for `tokens` tokens (active sites and the end token), the loop's ramp and `tail`
    cycles after the frame; a requantization per lane."""
    out = op.output
    folds = source.channels // pe
    cycles = int(-(-(tokens * folds + PIPELINE_RAMP + tail) // 1))
    tables = lut_rom(out.channels, sum(r.entry_bits for r in op.requants()), pe)
    dsp = REQUANT_DSP_PER_PE * pe + extra_dsp
    lut = STAGE_BASE_LUT + pe * (out.dtype.bits * 6 + ACCUMULATOR_BITS) + tables.lut
    ff = STAGE_BASE_FF + pe * (out.dtype.bits + ACCUMULATOR_BITS) * 2 + extra_ff
    return LayerCost(cycles, PIPELINE_RAMP + folds, dsp, 0, lut, ff)


def token_row_cycles(counts: np.ndarray, folds: int) -> list[float]:
    """Cycles of each output row of a per-token stage for one frame with `counts[row]` active
    sites: C / PE cycles per token, the loop's ramp on the first row."""
    return [float(n * folds) + (PIPELINE_RAMP if r == 0 else 0) for r, n in enumerate(counts)]
