"""The cost model: cycles and resources of one streaming stage for one folding.

A stage with PE output-channel lanes and SIMD input-channel lanes computes PE x SIMD MACs per
cycle with an II=1 inner loop, as FINN's MVAU/SWG do (Umuroglu et al., "FINN", FPGA'17;
Blott et al., "FINN-R", TRETS 2018). Its initiation interval per frame is therefore

    cycles = output_pixels * groups * (out_per_group / PE) * (in_per_group * kh * kw / SIMD)

Streams between stages are folded as in FINN: a stage writes one word of PE channels per
output fold and reads words of its own input width (`input_lanes`: the channels its line buffer
takes per cycle); the compiler inserts a re-folding converter where a producer's words differ
from what the consumer reads. The input streams in one word per cycle inside the same loop (the
generated stages read the next window rows while computing, `templates/hls/layers/hwc_window.h`),
so a stage never runs faster than max(cycles above, input words).

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
  layout), sliding-window line buffers of (kernel-1)*dilation+1 rows of centred (bits+1)-wide
  values partitioned by SIMD, both packed per UG573 (see `memory.py`). The per-channel bias
  and requantization constants are LUT ROMs (their real widths, banked per output stage): as
  BRAM they would take two blocks per layer for a few hundred bytes.
- LUT/FF: linear estimates (control, adder trees, accumulators, pipeline registers); they are
  rough (+-30% against FINN's published post-synthesis numbers) and labelled as estimates.
"""

from __future__ import annotations

from collections.abc import Mapping

from hwcodesign.hardware.folding import Folding, LayerCost, divisors, thin
from hwcodesign.hardware.memory import MemoryCost, lut_rom, memory_cost
from hwcodesign.hardware.stream import STREAM_BYTES_PER_CYCLE, input_words, stream_cycles
from hwcodesign.hardware.units import (
    ACCUMULATOR_BITS,
    PIPELINE_RAMP,
    REQUANT_DSP_PER_PE,
    STAGE_BASE_FF,
    STAGE_BASE_LUT,
    lut_mac_cost,
    lut_macs_possible,
    macs_per_dsp,
    requant_units,
    weight_decoder_luts,
)
from hwcodesign.ir.op import Input, Op
from hwcodesign.ir.requant import signed_bits
from hwcodesign.ir.types import Tensor
from hwcodesign.ops import Concat, Conv, DeformConv, DepthwiseConv, Linear, Pool, Resize, SubmanifoldConv


def output_lanes(op: Op, folding: Folding) -> int:
    """Channels per word of the stream `op` writes: the DMA adapter writes whole pixels, a
    sparse layer whole tokens (one per active site), every other stage one word per PE fold."""
    return op.output.channels if isinstance(op, Input) or op.output.sparse else folding.pe


def input_lanes(op: Op, folding: Folding, slot: int, inputs: list[Tensor]) -> int:
    """Channels per word `op` reads on input `slot`: as many as its line buffer (or per-pixel
    datapath) takes in one cycle. A deformable conv's offsets and mask are used a whole pixel at
    a time, so they arrive as whole pixels."""
    source = inputs[slot]
    if source.sparse:  # tokens carry all channels of a site
        return source.channels
    if isinstance(op, DeformConv):
        if slot > 0:
            return source.channels
        return folding.pe if op.depthwise else folding.simd
    if isinstance(op, DepthwiseConv):
        return folding.pe
    if isinstance(op, Conv):
        return min(folding.simd, source.channels // op.groups)
    if isinstance(op, Linear):
        return min(folding.simd, source.channels)
    return folding.pe


def candidate_foldings(op: Op, inputs: list[Tensor], max_candidates: int = 96) -> list[Folding]:
    """Foldings worth considering: divisor PE/SIMD pairs, thinned to at most `max_candidates`.

    Thinning keeps the extremes (fully folded, fully parallel) and spreads the rest evenly in
    MAC lanes, so a larger candidate set only refines the trade-off curve.
    """
    if isinstance(op, Input):
        return [Folding()]
    from hwcodesign.mapper.sparse_cost import is_sparse_layer, sparse_foldings

    if is_sparse_layer(op, inputs):
        return thin(sparse_foldings(op, inputs), max_candidates)
    if isinstance(op, DeformConv):
        options = deform_foldings(op, inputs[0])
    elif isinstance(op, DepthwiseConv):
        taps = op.kernel[0] * op.kernel[1]
        options = [Folding(pe, simd) for pe in divisors(op.out_channels) for simd in divisors(taps)]
    elif isinstance(op, Conv):
        out_per_group = op.out_channels // op.groups
        in_per_group = inputs[0].channels // op.groups
        row_length = in_per_group * op.kernel[0] * op.kernel[1]
        whole = [s for s in divisors(row_length) if in_per_group % s == 0 or s % in_per_group == 0]
        options = [Folding(pe, simd) for pe in divisors(out_per_group) for simd in whole]
    elif isinstance(op, Linear):
        options = [Folding(pe, simd) for pe in divisors(op.out_channels) for simd in divisors(inputs[0].channels)]
    elif isinstance(op, Concat):
        # a word never straddles two parts: PE divides every part's channels
        options = [Folding(pe, 1) for pe in divisors(op.output.channels) if all(t.channels % pe == 0 for t in inputs)]
    else:
        options = [Folding(pe, 1) for pe in divisors(op.output.channels)]
    if isinstance(op, Conv | Linear) and lut_macs_possible(op.weight_type, inputs[0].dtype.bits):
        options += [Folding(f.pe, f.simd, "lut") for f in options]
    return thin(options, max_candidates)


def layer_cost(op: Op, inputs: list[Tensor], folding: Folding, ps_type: str = "zynq_ultrascale",
               dma_rate: float = STREAM_BYTES_PER_CYCLE, densities: Mapping[str, float] | None = None) -> LayerCost:
    """Cycles and resources of `op` under `folding` (formulas and sources in the module doc).

    An Input is the DMA feeding the stream: its cycles are the frame's transfer time at
    `dma_rate` bytes per cycle, so an input-bandwidth-bound design shows up as such. Sparse
    layers' cycles follow their tensors' design densities (`sparse_cost.py`; 1.0 when not given).
    """
    from hwcodesign.mapper.sparse_cost import is_sparse_layer, sparse_stage_cost

    if is_sparse_layer(op, inputs):
        return sparse_stage_cost(op, inputs, folding, ps_type, dma_rate, densities)
    if isinstance(op, Input):
        return LayerCost(stream_cycles(op.output, dma_rate), 0, 0, 0, 0, 0)
    pe = folding.pe
    out = op.output
    if isinstance(op, DeformConv):
        return deform_stage_cost(op, inputs[0], folding, ps_type)
    if isinstance(op, Conv | Linear):
        return mac_stage_cost(op, inputs[0], folding, ps_type)
    # Elementwise and pooling stages: PE channels per cycle, a requant per lane.
    source = inputs[0]
    # a pool visits kh*kw window taps per output pixel and channel fold; its input streams in
    # one pixel per cycle in the same loop (templates/hls/layers/hwc_window.h), so the longer
    # of the two sets the rate. Per-pixel stages take one channel fold per cycle.
    window = op.kernel[0] * op.kernel[1] if isinstance(op, Pool) else 1
    folds = -(-out.channels // pe)
    cycles = max(out.shape[2] * out.shape[3] * window * folds, input_words(source, pe))
    buffer = line_buffer(op, source, pe)
    requant_dsp = 0 if all(r.is_identity() for r in op.requants()) else REQUANT_DSP_PER_PE * pe
    tables = lut_rom(out.channels, sum(r.entry_bits for r in op.requants()), pe)
    lut = STAGE_BASE_LUT + pe * (out.dtype.bits * 6 + ACCUMULATOR_BITS) + buffer.lut + tables.lut
    ff = STAGE_BASE_FF + pe * (out.dtype.bits + ACCUMULATOR_BITS) * 2
    return LayerCost(cycles, fill_cycles(op, source, pe) + 8, requant_dsp, buffer.bram18k, lut, ff)


def mac_stage_cost(op: Conv | Linear, source: Tensor, folding: Folding, ps_type: str) -> LayerCost:
    pe, simd = folding.pe, folding.simd
    # a DyBit weight is stored as its code and multiplied as its decoded level
    wbits, abits, storage_bits = op.weight_type.value_bits, source.dtype.bits, op.weight_type.storage_bits
    out = op.output
    if isinstance(op, Linear):
        kernel_taps, groups, pixels = 1, 1, 1
        in_per_group = source.elements_per_frame
        out_per_group = op.out_channels
    else:
        kernel_taps = op.kernel[0] * op.kernel[1]
        groups = op.groups
        pixels = out.shape[2] * out.shape[3]
        in_per_group = source.channels // groups
        out_per_group = op.out_channels // groups
    lanes = pe * simd
    if isinstance(op, DepthwiseConv):
        # PE channels at once, SIMD of each channel's kernel taps at once
        cycles = pixels * (op.out_channels // pe) * (kernel_taps // simd)
        folds_per_output = kernel_taps // simd
        weight_depth = (op.out_channels // pe) * (kernel_taps // simd)
        taps_per_cycle = simd
    else:
        # SIMD walks the im2col row (in_per_group x kernel taps) of each output pixel
        cycles = pixels * groups * (out_per_group // pe) * (in_per_group * kernel_taps // simd)
        folds_per_output = in_per_group * kernel_taps // simd
        weight_depth = groups * (out_per_group // pe) * (in_per_group * kernel_taps // simd)
        taps_per_cycle = max(1, simd // in_per_group)
    channels_per_read = input_lanes(op, folding, 0, [source])
    weight_width, memories = simd * storage_bits, pe
    weights = memory_cost(weight_depth, weight_width, memories)
    constants = channel_constants(op, requant_units(pe, folds_per_output))
    pixelwise = pixel_ring(op, folding, source)
    buffer = line_buffer(op, source, channels_per_read, taps_per_cycle, pixelwise)
    if folding.mac == "lut":
        mac_dsp, mac_lut = 0, lanes * lut_mac_cost(op.weight_type, abits)
    else:
        mac_dsp = -(-lanes // macs_per_dsp(wbits, abits, ps_type))
        mac_lut = lanes * 6
    mac_lut += weight_decoder_luts(op.weight_type, lanes)
    adder_lut = pe * simd * (wbits + abits)  # adder tree over SIMD products per PE
    dsp = mac_dsp + REQUANT_DSP_PER_PE * requant_units(pe, folds_per_output)
    # the input streams in one word per cycle inside the compute loop (hwc_window.h): a stage
    # that computes faster than its input arrives waits for it
    cycles = max(cycles, input_words(source, channels_per_read))
    if pixelwise:  # every pixel is a row of the stage's loop nest: one pipeline ramp each
        cycles += pixels * PIPELINE_RAMP
    lut = STAGE_BASE_LUT + mac_lut + adder_lut + weights.lut + constants.lut + buffer.lut
    ff = STAGE_BASE_FF + lanes * (wbits + abits) + pe * ACCUMULATOR_BITS * 2
    depth = fill_cycles(op, source, channels_per_read) + (cycles // max(pixels, 1)) + 12
    return LayerCost(cycles, depth, dsp, weights.bram18k + constants.bram18k + buffer.bram18k, lut, ff)


def channel_constants(op: Conv | Linear | DeformConv, banks: int) -> MemoryCost:
    """The bias and requantization tables of a MAC stage: one entry per output channel, read by
    `banks` output stages per cycle (`HWC_MAC_STAGE_MEMORIES` in the templates)."""
    bias_bits = signed_bits(int(abs(op.bias).max(initial=0)))
    return lut_rom(op.out_channels, bias_bits + op.requant.entry_bits, banks)


def line_buffer_rows(op: Op) -> int:
    """Rows a sliding-window stage must hold: (kernel-1)*dilation + 1, and for a deformable conv
    2R more, since a sample may move R rows up or down (its lower bilinear neighbour at +R is
    weighted 0 and never read)."""
    if isinstance(op, DeformConv):
        return (op.kernel[0] - 1) * op.dilation[0] + 2 * op.offset_range + 1
    if isinstance(op, Conv | SubmanifoldConv):
        return (op.kernel[0] - 1) * op.dilation[0] + 1
    if isinstance(op, Pool):
        return op.kernel[0]
    return 0


PIXEL_RING_MIN_STEPS = 8 * PIPELINE_RAMP


def pixel_ring(op: Op, folding: Folding, source: Tensor) -> bool:
    """Whether a pointwise conv (1x1, stride 1, no padding) runs pixel by pixel: the stage then
    treats the frame as H*W rows of one pixel, so its ring holds two pixels instead of two rows
    (the generated stage is the same template with that geometry). Each pixel then pays the
    loop's pipeline ramp, so only stages with at least `PIXEL_RING_MIN_STEPS` steps per pixel do."""
    if not isinstance(op, Conv) or isinstance(op, DepthwiseConv):
        return False
    if op.kernel != (1, 1) or op.stride != (1, 1) or any(op.pads):
        return False
    steps = (op.out_channels // folding.pe) * (source.channels // op.groups) // folding.simd
    return steps >= PIXEL_RING_MIN_STEPS


def ring_rows(op: Op, source: Tensor) -> int:
    """Rows the generated stage's ring buffer holds (RING_ROWS in its config): the window plus the
    STRIDE rows the next output row adds, which stream in while this row computes
    (templates/hls/layers/hwc_window.h). A fully connected layer's window is its whole input; a
    resize keeps its current input row and the next."""
    if isinstance(op, Linear):
        return source.shape[2] + 1
    if isinstance(op, SubmanifoldConv):  # reads a window's tokens before computing, no rows ahead
        return line_buffer_rows(op)
    if isinstance(op, Conv | Pool | DeformConv):
        return line_buffer_rows(op) + op.stride[0]
    if isinstance(op, Resize):
        return 2
    return 0


def line_buffer(op: Op, source: Tensor, channels_per_read: int, taps_per_cycle: int = 1,
                pixelwise: bool = False) -> MemoryCost:
    """The ring buffer: `channels_per_read` channels wide, one copy per tap read per cycle; two
    pixels for a pointwise conv that runs pixel by pixel (`pixel_ring`).

    Reading several kernel taps per cycle needs as many read ports; Vitis HLS gets them by
    replicating (or cyclically partitioning) the array, which we count as copies.
    """
    rows = ring_rows(op, source)
    if rows == 0:
        return memory_cost(0, 0)
    row_pixels = 1 if pixelwise else source.shape[3]
    depth = rows * row_pixels * -(-source.channels // channels_per_read)
    # the buffer holds centred values x - zero_point, one bit wider (hwc_window.h)
    return memory_cost(depth, channels_per_read * (source.dtype.bits + 1), taps_per_cycle)


def fill_cycles(op: Op, source: Tensor, simd: int) -> int:
    """Cycles before the first output: the window must hold (rows-1) rows plus one pixel."""
    rows = line_buffer_rows(op)
    if rows <= 1:
        return 0
    pixels = (rows - 1) * source.shape[3] + rows
    return pixels * -(-source.channels // simd)


INTERPOLATION_DSP = 4  # the four neighbour weights x centred inputs of one bilinear sample


def deform_foldings(op: DeformConv, source: Tensor) -> list[Folding]:
    """Depthwise: PE channels x SIMD taps. Full: PE outputs x SIMD channels of one tap (each tap
    samples its own position), SIMD within one offset group."""
    if op.depthwise:
        return [Folding(pe, simd) for pe in divisors(op.out_channels) for simd in divisors(op.taps)]
    in_per_group = source.channels // op.groups
    per_offset_group = source.channels // op.offset_groups
    simds = [s for s in divisors(in_per_group) if per_offset_group % s == 0]
    return [Folding(pe, simd) for pe in divisors(op.out_channels // op.groups) for simd in simds]


def deform_stage_cost(op: DeformConv, source: Tensor, folding: Folding, ps_type: str) -> LayerCost:
    """A deformable conv: the conv's MACs plus one bilinear sample per input lane and cycle.

    Samples per cycle are SIMD (full: shared by the PE lanes) or PE*SIMD (depthwise); each costs
    four multiplies (the neighbour weights are products of two F-bit fractions, in LUTs) and,
    with a mask, a fifth. The line buffer holds (K-1)*dil + 2R + 1 rows in four banks (row and
    column parity) so the four neighbours read in one cycle. A fixed shape converts one offset
    per offset group instead of 2*K*K, and pays per tap two constant products d*p_y, d*p_x
    (a shift and an add each, about one LUT per bit of the offset).
    """
    pe, simd = folding.pe, folding.simd
    out = op.output
    pixels = out.shape[2] * out.shape[3]
    wbits, abits = op.weight_type.bits, source.dtype.bits
    if op.depthwise:
        folds_per_output = op.taps // simd
        cycles = pixels * (op.out_channels // pe) * folds_per_output
        samples, weight_depth = pe * simd, (op.out_channels // pe) * folds_per_output
    else:
        in_per_group = source.channels // op.groups
        folds_per_output = in_per_group * op.taps // simd
        cycles = pixels * op.groups * (op.out_channels // op.groups // pe) * folds_per_output
        samples, weight_depth = simd, cycles // pixels
    channels_per_read = input_lanes(op, folding, 0, [source])
    cycles = max(cycles, input_words(source, channels_per_read))
    lanes = pe * simd
    weights = memory_cost(weight_depth, simd * wbits, pe)
    constants = channel_constants(op, requant_units(pe, folds_per_output))
    offset_channels = op.offset_channels
    offset_bits = (op.offset_range << op.frac_bits).bit_length() + 1  # a product d_fp * p_k
    pattern_lut = op.offset_groups * op.taps * 2 * offset_bits if op.fixed_shape else 0
    # every offset of an output pixel is converted in the pixel's first cycle, by a constant
    # multiplier each (completely partitioned table): a 9 x 25-bit product fits one DSP48
    offset_tables = lut_rom(offset_channels, op.offset_requant.entry_bits, offset_channels)
    rows = ring_rows(op, source)
    depth = rows * source.shape[3] * -(-source.channels // channels_per_read)
    buffer = memory_cost(-(-depth // 4), channels_per_read * (abits + 1), 4)
    sample_dsp = samples * (INTERPOLATION_DSP + (1 if op.has_mask else 0))
    mac_dsp = -(-lanes // macs_per_dsp(wbits, abits + 2 * op.frac_bits - op.sample_shift, ps_type))
    requant_dsp = REQUANT_DSP_PER_PE * requant_units(pe, folds_per_output) + offset_channels
    interpolation_lut = samples * (4 * op.frac_bits * op.frac_bits // 2 + 4 * (abits + 2 * op.frac_bits))
    lut = (STAGE_BASE_LUT + lanes * 6 + lanes * (wbits + abits) + weights.lut + constants.lut + buffer.lut
           + offset_tables.lut + interpolation_lut + pattern_lut)
    ff = STAGE_BASE_FF + lanes * (wbits + abits) + pe * ACCUMULATOR_BITS * 2 + samples * 4 * (abits + op.frac_bits)
    window = line_buffer_rows(op)
    fill = ((window - 1) * source.shape[3] + window) * -(-source.channels // channels_per_read)
    return LayerCost(cycles, fill + folds_per_output + 16, sample_dsp + mac_dsp + requant_dsp,
                     weights.bram18k + constants.bram18k + buffer.bram18k, lut, ff)
