"""Cost model of the layer-sequential engine: cycles per instruction, resources per configuration.

Cycles follow the generated loops (templates/hls/engine/) step by step, like the dataflow
backend's cost model follows its stages:
- a MAC instruction loads its descriptor, then per block its weights and records (one DDR word
  per cycle), then runs the block's dataflow region once per frame of the run (a batch of frames,
  each in its own arena, shares the loads); a prefetching layer loads only its first block's
  weights so, each block's frames storing the next block's, one params word per cycle of their
  fill and MAC loops and what is left of their share after them (`prefetch_frames`); in the
  region the reader streams the input (one word per
  cycle), the packer turns SIMD / WORD_BYTES words into one SIMD-channel word, and compute fills
  its ring and runs, per output row, `max(work + drain, read-ahead)` steps, stalling whenever it
  wants a ring word the packer has not produced yet (`mac_compute`); the writer stores one word
  per cycle, a short run per pixel when a block covers only part of each pixel;
- a pixel instruction loads its records (a lookup layer: its table) once and, per frame of the
  run, streams its words through
  EW_LANES output stages (WORD_BYTES / EW_LANES cycles per word) between its reader(s) and writer
  (a product by a gate reads the gate's pixel first, one word per cycle).
Every pipelined loop pays `PIPELINE_RAMP` to fill and drain, every DDR stream `DDR_LATENCY`
before its first word; the board's DDR bandwidth bounds what all ports move together, and
the one HP port they share bounds each direction (`MemorySystem`).
`compute_iterations` is the part the C simulation counts (HWC_ENGINE_STEP), so the tests can
hold these loop bounds against the real loops.

Resources count the units as the templates build them (memory.py packs the memories per UG573);
LUT and FF are linear estimates like the dataflow model's (+-30%), labelled as such.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from hwcodesign.boards import HP_PORTS, Board
from hwcodesign.hardware.engine.config import (
    PARAMS_WORD_BITS,
    PARAMS_WORD_BYTES,
    STORAGE_BITS,
    EngineConfig,
    ceil_div,
    memory_words,
    words_per_pixel,
)
from hwcodesign.hardware.engine.descriptor import DESCRIPTOR_WORDS
from hwcodesign.hardware.engine.plan import InstructionPlan
from hwcodesign.hardware.engine.tables import GATHER_INDEX_BITS, LOOKUP_ENTRIES, RECORD_WORDS
from hwcodesign.hardware.folding import LayerCost
from hwcodesign.hardware.memory import MemoryCost, lutram_cost, memory_cost, uram_cost
from hwcodesign.hardware.units import PIPELINE_RAMP, REQUANT_DSP_PER_PE
from hwcodesign.hardware.window import rows_needed
from hwcodesign.ir.op import Op
from hwcodesign.ir.types import Tensor
from hwcodesign.mapper.engine.facet import engine_facet
from hwcodesign.mapper.engine.widths import EngineWidths
from hwcodesign.ops.table.ir import MEAN_TABLE_BITS

HP_PORT_BYTES = {"zynq_ultrascale": 16, "zynq7": 8}
"""Bytes per cycle one PS HP port moves in each direction (128-bit S_AXI_HP0_FPD; 64-bit
S_AXI_HP0 on Zynq-7000), clocked by the PL clock. A lone engine puts each of its four masters on
its own port (HP0-HP3, as CoDeNet spreads its traffic); engines side by side take one port each."""
DDR_LATENCY = 40
"""Cycles from a read request to its first beat through the Zynq HP ports (~200 ns at 200 MHz)."""
FIFO_DEPTH = 64  # the DDR-side stream FIFOs (BURST_WORDS, LUTRAM)
AXI_MASTERS = 4
AXI_MASTER_LUT, AXI_MASTER_FF = 1200, 1800
"""An m_axi adapter with burst support, as Vitis HLS reports them for 64-bit masters (estimate)."""
ENGINE_BASE_LUT, ENGINE_BASE_FF = 2500, 3000
"""s_axilite, the layer loop, descriptor decode and the units' control (estimate)."""
OUTPUT_STAGE_LUT, OUTPUT_STAGE_FF = 180, 220
"""One output stage: rounding, zero point, clamp and its pipeline registers (estimate)."""
LOOKUP_LANE_LUT = 2 * STORAGE_BITS
"""One lane's read of its table copy: a byte from WORD_BYTES banks (an 8:1 mux is two LUT6 a bit)."""
LOOKUP_UNIT_LUT, LOOKUP_UNIT_FF = 400, 500
"""The lookup layer's own reader, writer and loop control beside the pixel unit's (estimate)."""


@dataclass(frozen=True)
class EngineRun:
    """The conditions of one engine run: the memory system its instance has, and the frames the
    run holds (one start of the engine computes all of them, instruction by instruction)."""

    memory: MemorySystem
    frames: int = 1


class InstructionTiming(NamedTuple):
    """Cycles of one instruction in one run (all its frames): in total, in its compute loops, and
    what the DDR moves. A named tuple: the mapper makes one per instruction, configuration and
    run (millions for a big CNN), and a tuple is several times cheaper to build than a frozen
    dataclass."""

    name: str
    kind: str
    cycles: int
    compute_iterations: int  # the pipelined compute loops' trip counts (what csim counts)
    macs: int  # useful multiply-accumulates
    ddr_bytes: int
    blocks: int

    def mac_utilisation(self, config: EngineConfig) -> float:
        return self.macs / (self.cycles * config.macs_per_cycle) if self.cycles else 0.0


@functools.lru_cache(maxsize=1 << 16)
def load_cycles(words: int, memory: MemorySystem) -> int:
    """A load of `words` params words into an on-chip memory (descriptor, weights, records, a
    table) over the params master: a word a cycle, unless the port or the DDR share moves less.
    Cached: the mapper loads the same few sizes over the same few memories millions of times."""
    return max(words, memory.cycles((words * PARAMS_WORD_BYTES,), 0))


def mac_compute(item: InstructionPlan, config: EngineConfig, outers: int) -> tuple[int, int, int]:
    """(cycles, iterations, store slots) of one block's compute process, with stalls on the
    packer; the store slots are the iterations of its fill and MAC loops, each of which stores a
    params word of the next block's weights while a prefetching frame has some to store.

    The packer emits SIMD-channel word j at (j + 1) * SIMD / WORD_BYTES cycles; compute reads
    ring words in the fill loop (one per cycle) and during the row's first `ahead` steps.
    """
    source, out = item.inputs[0], item.output
    # a deformable window converts each row's offsets (and mask) byte by byte first
    convert = sum(out.shape[3] * words_per_pixel(t, config.word_bytes) * config.word_bytes for t in item.sampling_inputs)
    time, iterations = compute_loops(out.shape[2], source.shape[2], item.stride[0],
                                     item.window_rows - item.pads[0] - item.reach, source.shape[3] * item.chunks,
                                     config.simd // config.word_bytes,
                                     item.groups * outers * item.sfx + item.pixels * ceil_div(item.lanes_out, config.rq_units),
                                     convert)
    return time, iterations, iterations - out.shape[2] * convert


@functools.lru_cache(maxsize=1 << 16)
def prefetch_frames(addresses: int, frames: int) -> tuple[tuple[int, int], ...]:
    """How a run's `frames` share the next block's `addresses` weight addresses, as
    `hwc_mac_layer` splits them: (addresses a frame stores, frames storing that many), frame f
    the ceil(addresses / frames) from f times that on. Cached, as `load_cycles`."""
    if not addresses:
        return ((0, frames),)
    share = ceil_div(addresses, frames)
    whole = addresses // share
    rest = addresses - whole * share
    shares = [(share, whole), (rest, 1 if rest else 0), (0, frames - whole - (1 if rest else 0))]
    return tuple((size, count) for size, count in shares if count)


@functools.lru_cache(maxsize=1 << 16)
def compute_loops(out_h: int, in_h: int, stride: int, lead: int, row_words: int, per_word: int, row_steps: int,
                  convert: int) -> tuple[int, int]:
    """`mac_compute`'s rows from the numbers they depend on (`lead`: the rows output row 0 needs,
    `window.rows_needed`, as `hwc_engine_rows_needed`; `row_words`: ring words an input row holds;
    `row_steps`: a row's work and drain), so the many configurations and blocks sharing them
    follow the rows once."""
    time = iterations = consumed = 0
    position = 0  # ring words read so far, as rows * row_words
    needed = rows_needed(0, out_h, in_h, stride, lead)
    for oy in range(out_h):
        target = needed * row_words
        fill = target - position
        if fill > 0:
            time = max(time + fill, (consumed + fill) * per_word) + PIPELINE_RAMP
            consumed += fill
            iterations += fill
        position = max(position, target)
        if convert:
            time += convert + PIPELINE_RAMP
            iterations += convert
        needed = rows_needed(oy + 1, out_h, in_h, stride, lead)
        ahead = needed * row_words - position
        steps = max(row_steps, ahead)
        end = time + steps
        if ahead > 0:
            end = max(end, (consumed + ahead) * per_word + (steps - ahead))
            consumed += ahead
            position += ahead
        time = end + PIPELINE_RAMP
        iterations += steps
    return time, iterations


def mac_timings(item: InstructionPlan, config: EngineConfig, weight_bits: int,
                runs: Sequence[EngineRun]) -> tuple[InstructionTiming, ...]:
    """The MAC instruction's timing in each of `runs` (its loops counted once): per block, the
    weights and records once, the block's dataflow region once per frame."""
    cycles, iterations, load_words, frame_words = mac_runs(item, config, weight_bits, runs)
    macs = layer_macs(item.instruction.op, item.inputs)
    word_bytes = config.word_bytes
    return tuple(InstructionTiming(item.instruction.name, item.instruction.mode, c, i, r.frames * macs,
                                   load_words * PARAMS_WORD_BYTES + r.frames * frame_words * word_bytes, item.blocks)
                 for c, i, r in zip(cycles, iterations, runs))


def mac_runs(item: InstructionPlan, config: EngineConfig, weight_bits: int,
             runs: Sequence[EngineRun]) -> tuple[list[int], list[int], int, int]:
    """`mac_timings`' counts: cycles and compute-loop iterations in each of `runs`, the params
    words loaded and the feature-map words moved per frame."""
    source, out = item.inputs[0], item.output
    word_bytes = config.word_bytes
    pixels = out.shape[2] * out.shape[3]
    in_words = source.shape[2] * source.shape[3] * words_per_pixel(source, word_bytes)
    out_cw = words_per_pixel(out, word_bytes)  # its own words; the written tensor's pixels may be wider
    written_cw = words_per_pixel(item.instruction.written, word_bytes)
    aux_words = sum(t.shape[2] * t.shape[3] * words_per_pixel(t, word_bytes) for t in item.sampling_inputs)
    cycles = [load_cycles(DESCRIPTOR_WORDS, r.memory) + DDR_LATENCY + PIPELINE_RAMP for r in runs]
    # the second output stage's records: the offset conversion's, or a fused residual Add's
    if aux_words:
        second = item.sampling_inputs[0].channels * RECORD_WORDS
    else:
        second = RECORD_WORDS if item.residual is not None else 0
    if second:
        cycles = [c + load_cycles(second, r.memory) + DDR_LATENCY + PIPELINE_RAMP for c, r in zip(cycles, runs)]
    iterations, load_words, frame_words = [0] * len(runs), second, 0
    mw = memory_words(config, weight_bits)
    address_words = item.load_pe * mw  # params words per weight address
    for block, count, next_addresses in block_shapes(item):
        first = block * item.outer_per_block
        outers = item.block_outers(block)
        # a prefetching layer's blocks after the first have their weights in by then
        weights = outers * item.sf * address_words if block == 0 or not item.prefetch else 0
        records = outers * item.lanes_out * RECORD_WORDS
        compute, block_iterations, slots = mac_compute(item, config, outers)
        first_word = first * item.lanes_out // word_bytes
        kept = min(out_cw - first_word, outers * item.lanes_out // word_bytes)
        whole = kept == written_cw
        writer = pixels * kept + (PIPELINE_RAMP if whole else pixels * PIPELINE_RAMP)
        # a fused residual Add reads the skip's words beside the writer's, as the writer stores them,
        # and converts EW_LANES channels a cycle on the way
        skip_words = pixels * kept if item.residual is not None else 0
        residual = skip_words * (word_bytes // config.ew_lanes) + PIPELINE_RAMP if skip_words else 0
        # the feature map on its master, sampled inputs and a fused skip on the aux master
        fmap_bytes, aux_bytes = in_words * word_bytes, (aux_words + skip_words) * word_bytes
        write_bytes = pixels * kept * word_bytes
        for k, run in enumerate(runs):
            loads = (load_cycles(weights, run.memory) + DDR_LATENCY + PIPELINE_RAMP if weights else 0) + \
                load_cycles(records, run.memory) + DDR_LATENCY + PIPELINE_RAMP
            regions = tail_steps = 0
            for addresses, frames in prefetch_frames(next_addresses, run.frames):
                stored = addresses * address_words
                tail = max(0, stored - slots)
                region = max(compute + tail + (PIPELINE_RAMP if tail else 0), writer, residual, in_words,
                             run.memory.cycles((fmap_bytes, aux_bytes, stored * PARAMS_WORD_BYTES), write_bytes))
                regions += frames * (region + DDR_LATENCY + 2 * PIPELINE_RAMP)
                tail_steps += frames * tail
            cycles[k] += count * (loads + regions)
            iterations[k] += count * (run.frames * block_iterations + tail_steps)
        load_words += count * (outers * item.sf * address_words + records)
        frame_words += count * (in_words + aux_words + skip_words + pixels * kept)
    return cycles, iterations, load_words, frame_words


def block_shapes(item: InstructionPlan) -> list[tuple[int, int, int]]:
    """(a block, how many blocks are timed like it, the weight addresses it prefetches for the
    next): every block but the last is the first's shape (its outers whole), so a plain layer
    times two and a prefetching one at most four (the first, which loads its own weights, the
    middle ones, the one before the last, whose next is the last's, and the last)."""
    last = item.blocks - 1
    if not item.prefetch:
        return [(0, last, 0), (last, 1, 0)] if last else [(0, 1, 0)]
    kinds = [(0, 1)] + ([(1, last - 2)] if last > 2 else []) + ([(last - 1, 1)] if last > 1 else []) + [(last, 1)]
    return [(block, count, item.block_outers(block + 1) * item.sf if block < last else 0) for block, count in kinds]


_MACS: dict[int, tuple[Op, int]] = {}


def layer_macs(op: Op, inputs: Sequence[Tensor]) -> int:
    """`op.macs` of the layer, computed once per op object (the mapper times each MAC instruction
    on thousands of configurations; the op is kept beside its count so a reused id cannot match)."""
    known = _MACS.get(id(op))
    if known is None or known[0] is not op:
        if len(_MACS) > 1 << 16:
            _MACS.clear()
        known = _MACS[id(op)] = (op, op.macs([t.shape for t in inputs]))
    return known[1]


def mac_timing(item: InstructionPlan, config: EngineConfig, weight_bits: int, memory: MemorySystem) -> InstructionTiming:
    return mac_timings(item, config, weight_bits, (EngineRun(memory),))[0]


def pixel_timings(item: InstructionPlan, config: EngineConfig,
                  runs: Sequence[EngineRun]) -> tuple[InstructionTiming, ...]:
    """The pixel unit in each of `runs`: its records once, then per frame its reader(s) stream
    every input once, the family's loops (`EngineFacet.pixel_loops`) convert them, the writer
    stores the result."""
    word_bytes = config.word_bytes
    loops = engine_facet(item.instruction.op).pixel_loops(item, config)
    in_words = item.inputs[0].shape[2] * item.inputs[0].shape[3] * words_per_pixel(item.inputs[0], word_bytes)
    read_words = sum(t.shape[2] * t.shape[3] * words_per_pixel(t, word_bytes) for t in item.inputs)
    compute = loops.iterations + loops.loops * PIPELINE_RAMP
    writer = loops.write_words + loops.segments * PIPELINE_RAMP
    records = item.table_entries * RECORD_WORDS + item.lookup_words  # the output-stage records or a lookup table
    moved = read_words + loops.write_words
    timings = []
    for run in runs:
        memory = run.memory
        # the first input on the feature-map master, a second (Add, Mul) on the aux master
        reads = (in_words * word_bytes, (read_words - in_words) * word_bytes)
        region = max(compute, writer, in_words, memory.cycles(reads, loops.write_words * word_bytes))
        cycles = (load_cycles(DESCRIPTOR_WORDS, memory) + DDR_LATENCY + PIPELINE_RAMP
                  + load_cycles(records, memory) + DDR_LATENCY + PIPELINE_RAMP
                  + run.frames * (region + DDR_LATENCY + 2 * PIPELINE_RAMP))
        timings.append(InstructionTiming(item.instruction.name, item.instruction.mode, cycles,
                                         run.frames * loops.iterations, 0,
                                         run.frames * moved * word_bytes + records * PARAMS_WORD_BYTES, 1))
    return tuple(timings)


def pixel_timing(item: InstructionPlan, config: EngineConfig, memory: MemorySystem) -> InstructionTiming:
    return pixel_timings(item, config, (EngineRun(memory),))[0]


def instruction_timings(item: InstructionPlan, config: EngineConfig, weight_bits: int,
                        runs: Sequence[EngineRun]) -> tuple[InstructionTiming, ...]:
    """The instruction's timing in each of `runs` (the loops, which depend on neither the memory
    nor the frames, followed once)."""
    if item.instruction.is_mac:
        return mac_timings(item, config, weight_bits, runs)
    return pixel_timings(item, config, runs)


@dataclass(frozen=True)
class MemorySystem:
    """What bounds the engine's DDR traffic, in bytes per engine cycle: the board's DDR for all
    traffic together, and the HP ports its masters use. On one port (`ports` 1) the read masters
    (feature map, aux, params) share its read channel and the writer has its write channel; on
    their own ports each read master has a port's read channel to itself."""

    ddr_bytes: float
    port_bytes: float
    ports: int = 1

    @property
    def peak_bytes(self) -> float:
        """The most DDR bytes a cycle one engine could move: every channel its masters have at the
        port's width (a read and a write channel on one port; three reads and a write on their own
        ports), together within the DDR's share."""
        return min(self.ddr_bytes, (2 if self.ports == 1 else AXI_MASTERS) * self.port_bytes)

    def shared(self, instances: int) -> MemorySystem:
        """What one of `instances` engines gets: an equal share of the DDR, and the ports (all of
        them for one engine, its own port each for several)."""
        return self if instances == 1 else MemorySystem(self.ddr_bytes / instances, self.port_bytes)

    def cycles(self, reads: Sequence[int], write_bytes: int) -> int:
        """Cycles to move `reads` (bytes per read master: feature map, aux, params) and
        `write_bytes`, at the slowest of the DDR and the channels."""
        read_channel = sum(reads) if self.ports == 1 else max(reads, default=0)
        return math.ceil(max((sum(reads) + write_bytes) / self.ddr_bytes, read_channel / self.port_bytes,
                             write_bytes / self.port_bytes))


def memory_system(board: Board) -> MemorySystem:
    """A lone engine on `board`: its masters on their own HP ports (`HP_PORTS`)."""
    clock = board.clock_mhz * 1e6
    return MemorySystem(board.ddr_bandwidth_gbps * 1e9 / clock, HP_PORT_BYTES[board.ps_type], HP_PORTS)


# -- resources ----------------------------------------------------------------------------------


class _Sizes:
    """The buffer sizes and widths engine_resources reads, under short names."""

    def __init__(self, buffers: dict[str, int], widths: EngineWidths) -> None:
        self.bank_depth, self.row_banks = buffers["BANK_DEPTH"], buffers["ROW_BANKS"]
        self.outers = buffers["MAX_OUTERS"]
        self.weight_depth = buffers["WBUF_DEPTH"]
        self.table_depth = buffers["TABLE_DEPTH"]
        self.ew_table_depth = buffers["EW_TABLE_DEPTH"]
        self.offset_channels = buffers["OFFSET_C_MAX"]
        self.mask_channels = buffers["MASK_C_MAX"]
        self.deform_width = buffers["MAX_DEFORM_W"]
        self.resize_row_words = buffers["MAX_RESIZE_ROW_WORDS"]
        self.weight_bits, self.xm_bits, self.acc_bits = widths.weight_bits, widths.xm_bits, widths.acc_bits
        self.record_bits, self.ew_acc_bits = widths.record_bits, widths.ew_acc_bits
        self.offset_fp_bits, self.weight_fp_bits = widths.offset_fp_bits, widths.weight_fp_bits
        self.blend_bits, self.mask_bits = widths.blend_bits, widths.mask_bits
        self.has_deform, self.has_mask, self.has_add = widths.has_deform, widths.has_mask, widths.has_add
        self.has_resize, self.has_global_pool = widths.has_resize, widths.has_global_pool
        self.has_lookup, self.has_mul, self.has_mean_table = widths.has_lookup, widths.has_mul, widths.has_mean_table
        self.has_residual = widths.has_residual
        self.has_gather, self.gather_words = widths.has_gather, buffers["MAX_GATHER_WORDS"]



def engine_resources(config: EngineConfig, buffers: dict[str, int], widths: EngineWidths) -> LayerCost:
    """DSP, BRAM18K, LUT and FF of the engine with `buffers` (`engine.buffer_sizes`) and
    `widths` (cycles are the program's, not counted here)."""
    pe, simd, pp = config.pe, config.simd, config.pp
    sizes = _Sizes(buffers, widths)
    lanes = config.macs_per_cycle
    banks = sizes.row_banks * config.col_banks
    memories: list[MemoryCost] = [
        buffer_cost(config, "ring", sizes.bank_depth, simd * 9, banks),  # the ring's banks, SIMD centred values wide
        buffer_cost(config, "weights", sizes.weight_depth, simd * sizes.weight_bits, pe),
        memory_cost(ceil_div(sizes.table_depth, config.rq_units), sizes.record_bits, config.rq_units),
        memory_cost(ceil_div(sizes.ew_table_depth, config.ew_lanes), sizes.record_bits, config.ew_lanes),
        lutram_cost(FIFO_DEPTH, config.word_bits, 6),  # the DDR-side FIFOs of both units (BIND_STORAGE impl=lutram)
        lutram_cost(FIFO_DEPTH, PARAMS_WORD_BITS, 1),  # the next block's weights on their way to compute (LUTRAM)
    ]
    dsp = (ceil_div(lanes, 2) if config.packed_macs else lanes) + REQUANT_DSP_PER_PE * config.rq_units
    dsp += config.ew_lanes * (REQUANT_DSP_PER_PE + (2 if sizes.has_add else 0) + (1 if sizes.has_mul else 0))
    lut = ENGINE_BASE_LUT + AXI_MASTERS * AXI_MASTER_LUT
    ff = ENGINE_BASE_FF + AXI_MASTERS * AXI_MASTER_FF
    # MAC array: adder trees over SIMD products per PE and pixel, operand muxes, the packed
    # products' split; accumulators and pending sums per pixel
    lut += lanes * (sizes.weight_bits + sizes.xm_bits) + lanes * 6
    # compute's store of the next block's weights: a memory word of params words in registers, the
    # write enable of one PE memory (its counters are the loader's, estimated in the base)
    ff += simd * sizes.weight_bits
    lut += pe * 2
    ff += lanes * (sizes.weight_bits + sizes.xm_bits) + pp * (pe * sizes.acc_bits * 3 + simd * sizes.acc_bits * 2)
    # ring read: the banks' addresses and, per pixel and lane, the select among them (a 4:1 mux
    # per LUT6 beyond the four banks one pixel of a 2-column ring picks from)
    lut += pp * simd * 9 * max(4, banks // 4) + banks * 120
    ff += pp * simd * 9 * 4
    if pp > 1:  # the unpacker's double buffer of a group's lanes words
        memories.append(memory_cost(2 * pp * sizes.outers, config.out_lanes * 8))
    if sizes.has_residual:  # a fused Add's EW_LANES lanes: two multipliers and an output stage each
        dsp += config.ew_lanes * (REQUANT_DSP_PER_PE + 2)
        lut += config.ew_lanes * OUTPUT_STAGE_LUT
        ff += config.ew_lanes * OUTPUT_STAGE_FF
        ff += sizes.record_bits  # its one record, in registers
        memories.append(lutram_cost(FIFO_DEPTH, config.word_bits, 2))  # the skip's and the residual's FIFOs (LUTRAM)
    if sizes.has_deform:
        dsp += REQUANT_DSP_PER_PE  # the offset conversion, one offset per cycle
        # four fabric multiplies (centred value x neighbour weight) and the blend per lane
        lut += simd * 4 * (9 * sizes.weight_fp_bits // 2 + sizes.blend_bits) + 600
        ff += simd * 4 * sizes.blend_bits
        memories.append(memory_cost(sizes.deform_width, sizes.offset_fp_bits, sizes.offset_channels))
        ff += sizes.offset_channels * sizes.record_bits  # conversion records, fully partitioned
        if sizes.has_mask:
            lut += simd * sizes.xm_bits * sizes.mask_bits // 2
            memories.append(memory_cost(sizes.deform_width, sizes.mask_bits, sizes.mask_channels))
    if sizes.has_resize:
        memories.append(memory_cost(sizes.resize_row_words, config.word_bits, 2))
    if sizes.has_global_pool:
        memories.append(memory_cost(ceil_div(sizes.ew_table_depth, config.ew_lanes), sizes.ew_acc_bits, config.ew_lanes))
    if sizes.has_mul:  # the gate's pixel, one word per row of the pixel unit's record table
        memories.append(memory_cost(ceil_div(sizes.ew_table_depth, config.ew_lanes), config.word_bits))
    if sizes.has_mean_table:  # a copy per lane of the 16-bit table, a loaded word's entries in one cycle
        per_word = PARAMS_WORD_BITS // MEAN_TABLE_BITS
        memories.append(memory_cost(LOOKUP_ENTRIES // per_word, MEAN_TABLE_BITS, per_word * config.ew_lanes))
        lut += config.ew_lanes * LOOKUP_LANE_LUT * MEAN_TABLE_BITS // STORAGE_BITS
    if sizes.has_gather:
        # an input pixel's words, a copy per lane (each lane reads its own channel's word a cycle),
        # then per lane a WORD_BYTES:1 byte select; the order table, a bank per lane as the records
        memories.append(memory_cost(sizes.gather_words, config.word_bits, config.ew_lanes))
        memories.append(memory_cost(ceil_div(sizes.ew_table_depth, config.ew_lanes), GATHER_INDEX_BITS,
                                    config.ew_lanes))
        lut += config.ew_lanes * STORAGE_BITS * ceil_div(config.word_bytes, 4)
    if sizes.has_lookup:
        # the table memory: a copy per pixel lane, each in a bank per byte of a params word (one loaded a cycle)
        banks = PARAMS_WORD_BYTES * config.ew_lanes
        memories.append(memory_cost(LOOKUP_ENTRIES // PARAMS_WORD_BYTES, STORAGE_BITS, banks))
        lut += LOOKUP_UNIT_LUT + config.ew_lanes * LOOKUP_LANE_LUT
        ff += LOOKUP_UNIT_FF + config.ew_lanes * STORAGE_BITS
    lut += (config.rq_units + config.ew_lanes) * OUTPUT_STAGE_LUT
    ff += (config.rq_units + config.ew_lanes) * OUTPUT_STAGE_FF
    bram = sum(m.bram18k for m in memories)
    lut += sum(m.lut for m in memories)
    return LayerCost(0, 0, dsp, bram, lut, ff, sum(m.uram for m in memories))


def buffer_cost(config: EngineConfig, buffer: str, depth: int, width: int, copies: int) -> MemoryCost:
    """`copies` memories of one of `URAM_BUFFERS`: UltraRAM where `config` puts it there, else
    the automatic memory (a shallow one then becomes LUTRAM, which Vitis HLS would choose too)."""
    return uram_cost(depth, width, copies) if buffer in config.uram else memory_cost(depth, width, copies)


@dataclass(frozen=True)
class Roofline:
    """Where one instruction stands against the two roofs of its engine instance: the MAC lanes
    (PE x SIMD x PP products a cycle) and the DDR bytes a cycle its HP port and share of the DDR could
    move (`MemorySystem.peak_bytes`). Its floor is the slower roof's cycles; `bound` names that
    roof, and the utilisations say how close the instruction's real cycles come to each roof."""

    compute_cycles: float  # MACs / lanes
    memory_cycles: float  # DDR bytes / peak bytes per cycle
    cycles: int  # what the engine takes (`InstructionTiming.cycles`)
    mac_utilisation: float
    ddr_utilisation: float

    @property
    def bound(self) -> str:
        """"compute" or "memory": the roof the instruction would hit first ("-" without either)."""
        if not self.compute_cycles and not self.memory_cycles:
            return "-"
        return "compute" if self.compute_cycles >= self.memory_cycles else "memory"

    @property
    def floor_fraction(self) -> float:
        """The higher roof's cycles over the real cycles: 1 where the instruction meets its roof."""
        return max(self.compute_cycles, self.memory_cycles) / self.cycles if self.cycles else 0.0


def roofline(timing: InstructionTiming, config: EngineConfig, memory: MemorySystem) -> Roofline:
    peak = memory.peak_bytes
    return Roofline(timing.macs / config.macs_per_cycle, timing.ddr_bytes / peak, timing.cycles,
                    timing.mac_utilisation(config), timing.ddr_bytes / (max(timing.cycles, 1) * peak))


def total_iterations(timings: list[InstructionTiming]) -> int:
    return sum(t.compute_iterations for t in timings)
