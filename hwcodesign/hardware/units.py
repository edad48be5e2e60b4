"""Arithmetic units of a stage and their costs: MAC lanes in DSPs (with WP486 packing) or LUTs,
DyBit weight decoders, requantization multipliers, and the per-stage base costs.

DSP: one multiplier per MAC lane; on DSP48E2 (Zynq UltraScale+) two multiplies of <= 8-bit
operands that share one input pack into one DSP (Xilinx WP486, "Deep Learning with INT8
Optimization on Xilinx Devices"); DSP48E1 (Zynq-7000) gets no packing here. With weights and
activations of at most 8 bits a MAC can instead be built from LUTs (`mac="lut"`), priced by the
LUT multiplier fit FINN's MVAU estimate uses (FINN-R, Blott et al., TRETS 2018, Sec. 5; finn's
`lut_estimation`): (2 * ceil((W + A) / 6) - 1) * (W + A) LUTs for a W x A product, which is 4
LUTs at 2x2, 24 at 4x4, 36 at 4x8 and 80 at 8x8 (`lut_multiplier_luts`).
Requantization takes a 24-bit x accumulator multiply: two DSP48 (27x18) per unit.

Bipolar (1-bit, -1/+1) operands are FINN's binarised layers (Umuroglu et al., "FINN", FPGA'17):
with both operands bipolar a MAC lane is an XNOR of two bits and the lanes' dot product a
popcount, 2 * popcount - SIMD (`xnor_macs`); with bipolar weights and wider activations each
product is the activation or its negation. Neither needs a multiplier, so both are LUT-only.
"""

from __future__ import annotations

from collections.abc import Sequence

from hwcodesign.ir.dybit import decoder_luts
from hwcodesign.ir.requant import Requant
from hwcodesign.ir.types import BipolarType, DyBitType, IntType, WeightType

ACCUMULATOR_BITS = 32
REQUANT_DSP_PER_PE = 2
SIGN_UNIT_LUT = ACCUMULATOR_BITS // 2
"""One accumulator comparison on the carry chain: a bipolar output stage (`requant.sign_requant`)
or one threshold of a threshold stage."""
LUT_MAC_MAX_BITS = 8
"""The widest weight or activation a LUT MAC is offered for."""
STAGE_BASE_LUT = 250
STAGE_BASE_FF = 300
PIPELINE_RAMP = 12
"""Cycles an II=1 loop takes to fill and drain its pipeline (a MAC, adder tree and output stage)."""


def macs_per_dsp(weight_bits: int, activation_bits: int, ps_type: str) -> int:
    """WP486: two <=8-bit multiplies per DSP48E2 when they share an operand (UltraScale+)."""
    return 2 if ps_type == "zynq_ultrascale" and weight_bits <= 8 and activation_bits <= 8 else 1


def xnor_macs(weight_type: WeightType, activation_type: IntType) -> bool:
    """Whether both operands are bipolar, so the lanes are XNORs and a popcount."""
    return isinstance(weight_type, BipolarType) and isinstance(activation_type, BipolarType)


def dsp_macs_possible(weight_type: WeightType, activation_type: IntType) -> bool:
    """Whether a DSP MAC is worth offering: not for two bipolar operands, whose product is one
    XNOR gate (FINN never puts a binarised layer in DSPs)."""
    return not xnor_macs(weight_type, activation_type)


def lut_macs_possible(weight_type: WeightType, activation_bits: int) -> bool:
    """Whether a MAC of these operands may be built in LUTs: weights stored in and activations
    of at most 8 bits (an integer multiplier, a DyBit code's shift-and-add or a bipolar weight's
    conditional negation); wider products are left to DSPs, where FINN's fit grows past 100 LUTs."""
    return weight_type.storage_bits <= LUT_MAC_MAX_BITS and activation_bits <= LUT_MAC_MAX_BITS


def lut_mac_cost(weight_type: WeightType, activation_bits: int, xnor: bool = False) -> int:
    """LUTs of one MAC lane built in fabric. Integers: a W x A LUT multiplier
    (`lut_multiplier_luts`). DyBit: the same multiplier over the n code bits' partial products
    of the activation plus a barrel shifter over the exponents (a x log2(n)); the decoder is
    counted separately (the project's reading of the DyBit datapath, `ir/dybit.py`). Bipolar
    weights: a conditional negation, one LUT per activation bit and the carry-in. XNOR lanes: the
    gate folds into the popcount's first compressor level (`adder_tree_luts`), so nothing more."""
    if xnor:
        return 0
    if isinstance(weight_type, BipolarType):
        return activation_bits + 1
    if isinstance(weight_type, DyBitType):
        n = weight_type.bits
        return lut_multiplier_luts(n, activation_bits) + activation_bits * max(1, (n - 1).bit_length())
    return lut_multiplier_luts(weight_type.bits, activation_bits)


def lut_multiplier_luts(weight_bits: int, activation_bits: int) -> int:
    """LUT6s of a W x A multiplier in fabric, FINN-R's fit: (2 * ceil((W + A) / 6) - 1) * (W + A).
    The constants are FINN's, fitted to synthesised MVAU layers; we have no synthesis to refit them."""
    width = weight_bits + activation_bits
    return (2 * -(-width // 6) - 1) * width


def adder_tree_luts(lanes: int, weight_bits: int, activation_bits: int, xnor: bool = False) -> int:
    """LUTs of the adder trees summing the lanes' products: about one LUT per product bit; an
    XNOR stage's popcount compresses single bits, about one LUT per lane (FINN-R, Sec. 5)."""
    return lanes if xnor else lanes * (weight_bits + activation_bits)


def weight_decoder_luts(weight_type: WeightType, lanes: int) -> int:
    """LUTs of the weight decoders: one per MAC lane for DyBit codes (`dybit.decoder_luts`),
    none for integers."""
    if isinstance(weight_type, DyBitType):
        return lanes * decoder_luts(weight_type.bits)
    return 0


def output_stage_cost(requants: Sequence[Requant], units: int) -> tuple[int, int]:
    """(DSP, LUT) of `units` output stages: a multiplier pair each (`REQUANT_DSP_PER_PE`), none
    for identities, and comparators instead for sign and threshold stages (one accumulator
    comparison per threshold, FINN's thresholding), which take no DSP."""
    if all(r.is_identity() for r in requants):
        return 0, 0
    if all(r.is_sign() or r.thresholds is not None for r in requants):
        comparisons = max(1 if r.thresholds is None else r.thresholds.shape[1] for r in requants)
        return 0, units * comparisons * SIGN_UNIT_LUT
    return REQUANT_DSP_PER_PE * units, 0


def requant_units(pe: int, cycles_per_output: int) -> int:
    """Requantization multipliers a MAC stage needs: outputs finished per cycle, at least one.

    Each PE finishes one output every `cycles_per_output` cycles (its share of the im2col row),
    so one pipelined multiplier serves ceil(PE / cycles_per_output) ... PE of them in turn.
    """
    return max(1, -(-pe // max(1, cycles_per_output)))
