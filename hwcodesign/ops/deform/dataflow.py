"""Deformable convolutions as dataflow stages (`hwc_deform.h`): bounded offsets, integer
bilinear samples, grouped MACs.

Its window spans (K-1)*dil + 2R + 1 rows, since a sample may move R rows up or down (its lower
bilinear neighbour at +R is weighted 0 and never read), plus STRIDE rows read ahead. Offsets and
mask are used a whole pixel at a time, so they arrive as whole pixels; the input in words of the
lanes the MACs take (depthwise PE channels, else SIMD).
"""

from __future__ import annotations

import numpy as np

from hwcodesign.hardware.ctext import (
    WEIGHT_MEMORY_CODES,
    Stage,
    bias_type,
    c_type,
    mac_tables,
    magnitude,
    nest,
    output_stage,
    require,
    struct,
)
from hwcodesign.hardware.folding import Folding, LayerCost, divisors, with_weight_memories
from hwcodesign.hardware.memory import lut_rom, memory_cost
from hwcodesign.hardware.stage_cost import channel_constants, weight_rom, weight_roms
from hwcodesign.hardware.stream import input_words
from hwcodesign.hardware.units import (
    ACCUMULATOR_BITS,
    REQUANT_DSP_PER_PE,
    STAGE_BASE_FF,
    STAGE_BASE_LUT,
    macs_per_dsp,
    requant_units,
)
from hwcodesign.hardware.window import (
    row_steps,
    span_rows,
    window_constants,
    window_fill,
    window_loop,
    window_needs,
)
from hwcodesign.ir.requant import signed_bits
from hwcodesign.ir.types import IntType, Tensor
from hwcodesign.ops.deform.ir import DeformConv
from hwcodesign.ops.facets.dataflow import (
    CostTarget,
    DataflowFacet,
    StageCode,
    StagePlan,
    StageWiring,
    dense_only,
    loop_steps,
    row_emits,
)


class DeformDataflow(DataflowFacet):
    def candidate_foldings(self, op: DeformConv, inputs: list[Tensor]) -> list[Folding]:
        dense_only(op, inputs)
        return deform_foldings(op, inputs[0])

    def plan(self, op: DeformConv, inputs: list[Tensor], folding: Folding) -> StagePlan:
        dense_only(op, inputs)
        source = inputs[0]
        pe, simd = folding.pe, folding.simd
        lanes = pe if op.depthwise else simd
        window = span_rows(op.kernel[0], op.dilation[0], op.offset_range)
        ring = window + op.stride[0]
        out_rows, in_rows = op.output.shape[2], source.shape[2]
        if op.depthwise:
            steps_per_pixel = (op.out_channels // pe) * (op.taps // simd)
            simd_folds = op.taps // simd
        else:
            simd_folds = source.channels // op.groups * op.taps // simd
            steps_per_pixel = (op.out_channels // pe) * simd_folds
        drain = -(-pe // requant_units(pe, simd_folds))
        view = window_constants(source, op.output, op.kernel, op.stride, op.pads, op.dilation, window, ring)
        # hwc_deform.h: the `fill` loop (the input rows output row 0 needs; hwc_deform_rows_needed:
        # the window shifted up by the R rows a sample may move), then per output row the `steps`
        # loop: max(OUT_W x its MAC steps + the output stages' drain, ceil(PE / RQ_UNITS) after
        # the row, words of the rows the next output row adds)
        fill_words, rows = window_loop(out_rows, in_rows, source.shape[3], op.stride[0],
                                        window - op.pads[0] - op.offset_range, source.channels // lanes,
                                        view["OUT_W"] * steps_per_pixel + drain)
        # samples move up to R rows down: the input rows an output row needs reach R further
        span = (op.kernel[0] - 1) * op.dilation[0] + op.offset_range
        needs = window_needs(out_rows, in_rows, op.stride[0], op.pads[0], span)
        return StagePlan(
            (lanes,) + tuple(t.channels for t in inputs[1:]), pe, input_words=input_words(source, lanes),
            window_rows=window, ring_rows=ring, held_rows=ring,
            fill_cycles=window_fill(window, source.shape[3], -(-source.channels // lanes)),
            fill_words=fill_words, loop_trips=fill_words + sum(rows), step_trips=loop_steps(fill_words, rows),
            row_steps=row_steps(view["OUT_W"], steps_per_pixel, drain, op.stride[0], source.shape[3], source.channels, lanes),
            fifo_rows=0, steps=out_rows, emits=row_emits(out_rows),
            needs=(needs,) + tuple(tuple(min(r, t.shape[2] - 1) for r in range(out_rows)) for t in inputs[1:]))

    def cost(self, op: DeformConv, inputs: list[Tensor], folding: Folding, plan: StagePlan,
             target: CostTarget) -> LayerCost:
        return deform_stage_cost(op, inputs[0], folding, plan, target.ps_type)

    def stage(self, op: DeformConv, wiring: StageWiring, folding: Folding, plan: StagePlan) -> StageCode:
        return StageCode.of(deform_stage(op, wiring, folding, plan))


INTERPOLATION_DSP = 4  # the four neighbour weights x centred inputs of one bilinear sample


def deform_foldings(op: DeformConv, source: Tensor) -> list[Folding]:
    """Depthwise: PE channels x SIMD taps. Full: PE outputs x SIMD channels of one tap (each tap
    samples its own position), SIMD within one offset group. LUTRAM weights where a real trade-off."""
    if op.depthwise:
        shapes = [Folding(pe, simd) for pe in divisors(op.out_channels) for simd in divisors(op.taps)]
    else:
        in_per_group = source.channels // op.groups
        per_offset_group = source.channels // op.offset_groups
        simds = [s for s in divisors(in_per_group) if per_offset_group % s == 0]
        shapes = [Folding(pe, simd) for pe in divisors(op.out_channels // op.groups) for simd in simds]
    return with_weight_memories(shapes, lambda f: weight_rom(f, op.weight_type, deform_weight_depth(op, source, f)))


def folds_per_output(op: DeformConv, source: Tensor, folding: Folding) -> int:
    """Cycles a PE spends on one output: its taps (depthwise) or im2col row, SIMD a cycle."""
    if op.depthwise:
        return op.taps // folding.simd
    return source.channels // op.groups * op.taps // folding.simd


def deform_weight_depth(op: DeformConv, source: Tensor, folding: Folding) -> int:
    """Words of one PE's weight ROM: its output channels' rows, SIMD weights a word."""
    return op.out_channels // folding.pe * folds_per_output(op, source, folding)


def deform_stage_cost(op: DeformConv, source: Tensor, folding: Folding, plan: StagePlan, ps_type: str) -> LayerCost:
    """A deformable conv: the conv's MACs plus one bilinear sample per input lane and cycle.

    Samples per cycle are SIMD (full: shared by the PE lanes) or PE*SIMD (depthwise); each costs
    four multiplies (the neighbour weights are products of two F-bit fractions, in LUTs) and,
    with a mask, a fifth; with integer offsets a sample is one read, no multiply, no blend. The line buffer holds (K-1)*dil + 2R + 1 rows in four banks (row and
    column parity) so the four neighbours read in one cycle. A fixed shape converts one offset
    per offset group instead of 2*K*K, and pays per tap two constant products d*p_y, d*p_x
    (a shift and an add each, about one LUT per bit of the offset).
    """
    pe, simd = folding.pe, folding.simd
    wbits, abits = op.weight_type.bits, source.dtype.bits
    folds = folds_per_output(op, source, folding)
    samples = pe * simd if op.depthwise else simd
    channels_per_read = plan.input_lanes[0]
    cycles = plan.loop_trips  # the fill, then per output row its MAC steps and drain (`DeformDataflow.plan`)
    lanes = pe * simd
    weights = weight_roms(folding, op.weight_type, deform_weight_depth(op, source, folding))
    constants = channel_constants(op.bias, op.requant, op.out_channels, requant_units(pe, folds))
    offset_channels = op.offset_channels
    offset_bits = (op.offset_range << op.frac_bits).bit_length() + 1  # a product d_fp * p_k
    pattern_lut = op.offset_groups * op.taps * 2 * offset_bits if op.fixed_shape else 0
    # every offset of an output pixel is converted in the pixel's first cycle, by a constant
    # multiplier each (completely partitioned table): a 9 x 25-bit product fits one DSP48
    offset_tables = lut_rom(offset_channels, op.offset_requant.entry_bits, offset_channels)
    depth = plan.ring_rows * source.shape[3] * -(-source.channels // channels_per_read)
    buffer = memory_cost(-(-depth // 4), channels_per_read * (abits + 1), 4)
    blend_dsp = 0 if op.integer_offsets else INTERPOLATION_DSP  # integer offsets: a sample is one read
    sample_dsp = samples * (blend_dsp + (1 if op.has_mask else 0))
    mac_dsp = -(-lanes // macs_per_dsp(wbits, abits + 2 * op.frac_bits - op.sample_shift, ps_type))
    requant_dsp = REQUANT_DSP_PER_PE * requant_units(pe, folds) + offset_channels
    interpolation_lut = 0 if op.integer_offsets else samples * (4 * op.frac_bits * op.frac_bits // 2
                                                                + 4 * (abits + 2 * op.frac_bits))
    lut = (STAGE_BASE_LUT + lanes * 6 + lanes * (wbits + abits) + weights.lut + constants.lut + buffer.lut
           + offset_tables.lut + interpolation_lut + pattern_lut)
    neighbours = 1 if op.integer_offsets else 4
    ff = (STAGE_BASE_FF + lanes * (wbits + abits) + pe * ACCUMULATOR_BITS * 2
          + samples * neighbours * (abits + op.frac_bits))
    return LayerCost(cycles, plan.fill_cycles + folds + 16, sample_dsp + mac_dsp + requant_dsp,
                     weights.bram18k + constants.bram18k + buffer.bram18k, lut, ff)


def deform_stage(op: DeformConv, wiring: StageWiring, folding: Folding, plan: StagePlan) -> Stage:
    """A deformable conv (`hwc_deform.h`): bounded offsets, integer bilinear samples, grouped MACs.

    A fixed shape (FIXED_SHAPE) converts one d per offset group, bounded by `op.offset_limit`;
    the template multiplies it by each tap's constant pattern position.
    """
    ident, sources, in_streams, out_stream = wiring.ident, wiring.sources, wiring.in_streams, wiring.out_stream
    source, offset = sources[0], sources[1]
    mask = sources[2] if op.has_mask else None
    pe, simd = folding.pe, folding.simd
    taps, frac = op.taps, op.frac_bits
    if op.depthwise:
        require(op.out_channels % pe == 0 and taps % simd == 0, op.name,
                f"depthwise: PE={pe} must divide {op.out_channels} channels and SIMD={simd} the {taps} taps")
        row_length = taps
        table = op.weight.reshape(op.out_channels, taps)
        folds, simd_folds = op.out_channels // pe, taps // simd
    else:
        in_per_group = source.channels // op.groups
        require((op.out_channels // op.groups) % pe == 0, op.name, f"PE={pe} must divide the outputs per group")
        require(in_per_group % simd == 0 and (source.channels // op.offset_groups) % simd == 0, op.name,
                f"SIMD={simd} must divide the {in_per_group} channels of one tap within one offset group")
        row_length = in_per_group * taps
        table = op.weight.transpose(0, 2, 3, 1).reshape(op.out_channels, row_length)
        folds, simd_folds = op.out_channels // pe, row_length // simd
    table = table.reshape(folds, pe, simd_folds, simd).transpose(1, 0, 2, 3)
    blend_bound = magnitude(source) << (2 * frac)
    sample_bound = (blend_bound >> op.sample_shift) + 1
    mask_bound = magnitude(mask) if mask is not None else 1
    masked_bound = sample_bound * mask_bound
    acc_bound = masked_bound * int(np.abs(op.weight).max(initial=0)) * row_length + int(np.abs(op.bias).max(initial=0))
    rq_units = requant_units(pe, simd_folds)
    stage = output_stage(op.requant, acc_bound, op.out_channels, op.output.dtype, f"{ident}_rq")
    limit = op.offset_limit
    offset_out = IntType.fitting(-limit, limit)
    offset_stage = output_stage(op.offset_requant, magnitude(offset), offset.channels, offset_out, f"{ident}_offset_rq")
    geometry = window_constants(source, op.output, op.kernel, op.stride, op.pads, op.dilation, plan.window_rows,
                                plan.ring_rows)
    geometry.update(IN_LANES=plan.input_lanes[0], IN_WORDS=plan.input_words)
    off_struct = struct("OFF", {"acc_t": f"ap_int<{signed_bits(magnitude(offset))}>", **offset_stage.types},
                        {"IN_ZP": offset.zero_point, **offset_stage.constants})
    mask_type = mask.dtype if mask is not None else IntType(2, False)
    constants = {
        **geometry, "GROUPS": op.groups, "OFFSET_GROUPS": op.offset_groups, "DEPTHWISE": int(op.depthwise),
        "FIXED_SHAPE": int(op.fixed_shape),
        "OFFSET_RANGE": op.offset_range, "FRAC_BITS": frac, "SAMPLE_SHIFT": op.sample_shift,
        "BLEND_BITS": signed_bits(blend_bound), "OFFSET_C": offset.channels, "MASK_C": op.offset_groups * taps,
        "MASK_ZP": mask.zero_point if mask is not None else 0,
        "PE": pe, "SIMD": simd, "WEIGHT_DEPTH": folds * simd_folds, "BIAS_LENGTH": op.out_channels, "HAS_BIAS": 1,
        "RQ_UNITS": rq_units, "BIAS_BANKS": rq_units, "LUT_MACS": int(folding.mac == "lut"),
        "WEIGHT_MEMORY": WEIGHT_MEMORY_CODES[folding.weights],
        "ROW_STEPS": plan.row_steps,
        **stage.constants,
    }
    types = {
        "in_t": c_type(source.dtype), "offset_t": c_type(offset.dtype), "mask_t": c_type(mask_type),
        "mask_c_t": f"ap_int<{signed_bits(mask_bound)}>", "weight_t": c_type(op.weight_type),
        "bias_t": bias_type(op.bias),
        "blend_t": f"ap_int<{signed_bits(blend_bound)}>", "sample_t": f"ap_int<{signed_bits(sample_bound)}>",
        "masked_t": f"ap_int<{signed_bits(masked_bound)}>", "acc_t": f"ap_int<{signed_bits(acc_bound)}>",
        **stage.types,
    }
    nested = nest(off_struct)
    mac = mac_tables(ident, types, table, (pe, folds * simd_folds, simd), op.bias)
    declarations = "\n".join([
        struct(f"{ident}_config", types, constants, nested=nested),
        *mac.declarations,
        stage.table,
        offset_stage.table,
    ])
    tables = f"{ident}_w, {ident}_b, {ident}_rq, {ident}_offset_rq"
    if mask is not None:
        call = f"hwc_deform_masked<{ident}_config>({in_streams[0]}, {in_streams[1]}, {in_streams[2]}, {out_stream}, {tables});"
    else:
        call = f"hwc_deform<{ident}_config>({in_streams[0]}, {in_streams[1]}, {out_stream}, {tables});"
    return Stage(ident, "hwc_deform.h", declarations, call, mac.files)


DATAFLOW = DeformDataflow()
