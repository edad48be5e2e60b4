"""The layer-sequential engine: its instruction set and how each layer is scheduled on it.

The dataflow architecture gives every layer its own hardware and keeps all weights, line
buffers and FIFOs on chip; a network that is deep, wide or high-resolution outgrows a small
part that way (the CoDeNet-like detector needs ~94% of the ZU3EG's BRAM as a pipeline). The
engine is the other classic architecture (CoDeNet, Angel-Eye, the Xilinx DPU): one set of
units, sized once, runs the network layer by layer; feature maps and weights live in DDR and
each layer is an instruction (a descriptor the compiler writes beside the weights). Resources
no longer grow with the network; time is the sum of the layers' times instead of the slowest.

Units (templates/hls/engine/): a MAC unit with PE output lanes x SIMD input lanes, a line
buffer of whole input rows (four banks by row/column parity, so a bilinear sample reads its four
neighbours at once), RQ_UNITS shared output stages; and a pixel unit with EW_LANES output stages.
Every tensor sits in a DDR arena in NHWC bytes, pixels padded to whole words.

This module is the one place that decides how a layer maps onto the units (`plan`): the cost
model (`engine_cost.py`) times the plan and the program generator (`codegen/engine_program.py`)
writes it into the descriptor, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hwcodesign.errors import HwcodesignError
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.op import Input, Op
from hwcodesign.ir.types import DyBitType, Tensor
from hwcodesign.ops import (
    Act,
    Add,
    Concat,
    Conv,
    DeformConv,
    DepthwiseConv,
    GlobalAvgPool,
    Linear,
    Pool,
    Resize,
    SubmanifoldConv,
)

STORAGE_BITS = 8
"""Every activation is stored as one byte in DDR (types of up to 8 bits)."""
WEIGHT_STORAGE_BITS = (2, 4, 8)
"""Weights are stored at one of these widths (a divisor of the DDR word, so none straddles two)."""
MODES = {"conv": 0, "channelwise": 1, "add": 2, "requant": 3, "resize": 4, "global_pool": 5}
MAC_MODES = ("conv", "channelwise")


class EngineUnsupported(HwcodesignError):
    """The layer-sequential engine cannot run this layer (the message names it and why)."""


@dataclass(frozen=True)
class EngineConfig:
    """The engine's sizes: what the mapper chooses and the generated hardware is built with."""

    pe: int  # output-channel lanes of the MAC unit (a multiple of the bytes per DDR word)
    simd: int  # input-channel lanes (same)
    rq_units: int  # shared output stages of the MAC unit
    ew_lanes: int  # output stages of the pixel unit (divides the bytes per DDR word)
    weight_depth: int  # words of SIMD weights per PE memory: layers needing more run in blocks
    word_bits: int = 64  # the DDR word of every AXI master
    packed_macs: bool = False  # two MACs per DSP48E2 (`hwc_mul2`; UltraScale+ and narrow operands)

    @property
    def word_bytes(self) -> int:
        return self.word_bits // 8

    @property
    def out_lanes(self) -> int:
        return max(self.pe, self.simd)

    def __str__(self) -> str:
        return (f"PE{self.pe} SIMD{self.simd} RQ{self.rq_units} EW{self.ew_lanes} "
                f"W{self.weight_depth}" + (" packed" if self.packed_macs else ""))


@dataclass(frozen=True)
class Instruction:
    """One descriptor: an IR layer, or one part of a Concat (each part is its own copy)."""

    op: Op
    mode: str
    part: int = -1  # Concat: the input this instruction copies into the output

    @property
    def name(self) -> str:
        return self.op.name if self.part < 0 else f"{self.op.name}#part{self.part}"

    @property
    def is_mac(self) -> bool:
        return self.mode in MAC_MODES


def instruction_mode(op: Op) -> str:
    if op.output.sparse or isinstance(op, SubmanifoldConv):
        raise EngineUnsupported(f"layer '{op.name}' ({op.kind}) is sparse: the layer-sequential engine runs dense "
                                "layers only; sparse networks are built as the dataflow pipeline (token streams)")
    if isinstance(op, DeformConv):
        return "channelwise" if op.depthwise else "conv"
    if isinstance(op, DepthwiseConv | Pool):
        return "channelwise"
    if isinstance(op, Conv | Linear):
        return "conv"
    if isinstance(op, Add):
        return "add"
    if isinstance(op, Act | Concat):
        return "requant"
    if isinstance(op, Resize):
        return "resize"
    if isinstance(op, GlobalAvgPool):
        return "global_pool"
    raise EngineUnsupported(f"layer '{op.name}' ({op.kind}): the layer-sequential engine has no unit for it")


def instructions(graph: Graph, word_bits: int = 64) -> list[Instruction]:
    """The engine program of `graph`, in execution order; refuses what the engine cannot run."""
    word_bytes = word_bits // 8
    program: list[Instruction] = []
    for op in graph:
        if isinstance(op, Input):
            check_storage(op.output, op.name)
            continue
        check_storage(op.output, op.name)
        weight_type = getattr(op, "weight_type", None)
        if isinstance(weight_type, DyBitType):
            raise EngineUnsupported(f"layer '{op.name}' ({op.kind}): {weight_type} weights; the layer-sequential "
                                    "engine runs integer weights only; DyBit networks are built as the dataflow pipeline")
        if weight_type is not None and weight_type.bits > max(WEIGHT_STORAGE_BITS):
            raise EngineUnsupported(f"layer '{op.name}' ({op.kind}): {weight_type.bits}-bit weights; the engine "
                                    f"stores weights of up to {max(WEIGHT_STORAGE_BITS)} bits")
        mode = instruction_mode(op)
        if isinstance(op, Concat):
            parts = graph.input_tensors(op)
            for index, tensor in enumerate(parts[:-1]):
                if tensor.channels % word_bytes:
                    raise EngineUnsupported(
                        f"layer '{op.name}' (Concat): part {index} has {tensor.channels} channels; the engine writes "
                        f"each part into whole {word_bits}-bit words, so every part but the last needs a multiple "
                        f"of {word_bytes} channels")
            program += [Instruction(op, mode, index) for index in range(len(parts))]
            continue
        if isinstance(op, DeformConv) and op.offset_requant.negative_multiplier is not None:
            raise EngineUnsupported(f"layer '{op.name}' (DeformConv): offsets with a two-sided conversion")
        program.append(Instruction(op, mode))
    return program


def check_storage(tensor: Tensor, layer: str) -> None:
    if tensor.dtype.bits > STORAGE_BITS:
        raise EngineUnsupported(f"layer '{layer}': tensor '{tensor.name}' is {tensor.dtype}; the engine stores "
                                f"activations of up to {STORAGE_BITS} bits, one byte each")


def words_per_pixel(tensor: Tensor, word_bytes: int) -> int:
    """DDR words one pixel of `tensor` takes (bytes padded to whole words)."""
    return -(-tensor.channels // word_bytes)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class InstructionPlan:
    """How one instruction runs on an engine configuration: loop bounds, blocks, buffer needs.

    For MAC modes: the input is streamed in `chunks` SIMD-channel words per pixel into a ring of
    `ring_rows` rows; each output pixel takes `outer_total` outers (conv: folds of PE output
    channels; channelwise: SIMD-channel chunks) of `sfx` steps, `sf` of them computing (conv:
    taps x chunks, channelwise: taps). Weights of `outer_per_block` outers fit the PE memories at
    once; a layer needing more runs in `blocks` passes over its input.
    """

    instruction: Instruction
    inputs: tuple[Tensor, ...]
    output: Tensor
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int] = (0, 0)  # top, left
    dilation: tuple[int, int] = (1, 1)
    reach: int = 0  # rows a deformable sample may move beyond the window (R)
    window_rows: int = 0
    ring_rows: int = 0
    chunks: int = 0
    taps: int = 1
    inner: int = 1
    sf: int = 0
    sfx: int = 0
    lanes_out: int = 0
    outer_total: int = 0
    outer_per_block: int = 0
    blocks: int = 1
    load_pe: int = 0
    chunks_per_group: int = 1
    weight_words: int = 0  # DDR words of one block's weights
    table_entries: int = 0  # records (output channels) the layer's tables hold at once

    @property
    def half_w(self) -> int:
        return ceil_div(self.inputs[0].shape[3], 2)

    @property
    def bank_row_words(self) -> int:
        return self.half_w * self.chunks

    @property
    def bank_words(self) -> int:
        """Ring words per parity bank the layer needs (the ring is sized for the largest)."""
        return self.ring_rows // 2 * self.bank_row_words

    @property
    def slot0(self) -> int:
        return (-self.pads[0] - self.reach) % self.ring_rows if self.ring_rows else 0


def memory_words(config: EngineConfig, weight_bits: int) -> int:
    """DDR words per SIMD-weight memory word."""
    return ceil_div(config.simd * weight_bits, config.word_bits)


def plan(instruction: Instruction, graph: Graph, config: EngineConfig, weight_bits: int) -> InstructionPlan:
    """The schedule of one instruction on `config`; EngineUnsupported when it cannot fit."""
    op = instruction.op
    inputs = tuple(graph.input_tensors(op))
    if instruction.mode == "requant" and isinstance(op, Concat):
        source = inputs[instruction.part]
        return InstructionPlan(instruction, (source,), op.output, table_entries=words_per_pixel(source, config.word_bytes) * config.word_bytes)
    if not instruction.is_mac:
        words = words_per_pixel(op.output, config.word_bytes)
        return InstructionPlan(instruction, inputs, op.output, table_entries=words * config.word_bytes)
    source = inputs[0]
    if isinstance(op, Linear):
        kernel, stride, pads, dilation = (source.shape[2], source.shape[3]), (1, 1), (0, 0), (1, 1)
    elif isinstance(op, Pool):
        kernel, stride, pads, dilation = op.kernel, op.stride, op.pads[:2], (1, 1)
    else:
        assert isinstance(op, Conv | DeformConv)
        kernel, stride, pads, dilation = op.kernel, op.stride, op.pads[:2], op.dilation
    reach = op.offset_range if isinstance(op, DeformConv) else 0
    window_rows = (kernel[0] - 1) * dilation[0] + 1 + 2 * reach
    ring_rows = window_rows + stride[0]
    ring_rows += ring_rows % 2  # the parity banks need an even ring
    chunks = ceil_div(source.channels, config.simd)
    taps = kernel[0] * kernel[1]
    conv = instruction.mode == "conv"
    if conv:
        inner, sf, lanes_out = chunks, taps * chunks, config.pe
        outer_total = ceil_div(op.output.channels, config.pe)
        load_pe = config.pe
    else:
        inner, sf, lanes_out = 1, taps, config.simd
        outer_total = chunks
        load_pe = 0 if isinstance(op, Pool) and op.mode == "max" else 1
    # an outer lasts long enough for the shared output stages to convert it and for the
    # unpacker to turn its lanes into DDR words (one per cycle), so compute never outruns them
    sfx = max(sf, ceil_div(lanes_out, config.rq_units), lanes_out // config.word_bytes)
    chunks_per_group = chunks
    if isinstance(op, DeformConv) and op.offset_groups > 1:
        per_group = source.channels // op.offset_groups
        if per_group % config.simd:
            raise EngineUnsupported(f"layer '{op.name}' (DeformConv): {op.offset_groups} offset groups of {per_group} "
                                    f"channels; SIMD={config.simd} lanes must not straddle two groups")
        chunks_per_group = per_group // config.simd
    if load_pe == 0:
        outer_per_block = outer_total
    else:
        outer_per_block = min(outer_total, config.weight_depth // sf)
        if outer_per_block == 0:
            raise EngineUnsupported(f"layer '{op.name}' ({op.kind}): one output needs {sf} weight words per PE, "
                                    f"more than the engine's {config.weight_depth}")
    blocks = ceil_div(outer_total, outer_per_block)
    weight_words = outer_per_block * sf * load_pe * memory_words(config, weight_bits)
    return InstructionPlan(
        instruction, inputs, op.output, kernel, stride, pads, dilation, reach, window_rows, ring_rows, chunks,
        taps, inner, sf, sfx, lanes_out, outer_total, outer_per_block, blocks, load_pe, chunks_per_group,
        weight_words, outer_per_block * lanes_out)


def weight_storage_bits(graph: Graph) -> int:
    """The engine's weight width: the narrowest storage width holding every layer's weights."""
    widest = max((op.weight_type.bits for op in graph if hasattr(op, "weight_type")), default=2)
    return next(bits for bits in WEIGHT_STORAGE_BITS if bits >= widest)


def plan_program(graph: Graph, config: EngineConfig) -> list[InstructionPlan]:
    bits = weight_storage_bits(graph)
    return [plan(instruction, graph, config, bits) for instruction in instructions(graph, config.word_bits)]


def most(values: Iterable[int], floor: int = 1) -> int:
    return max([floor, *values])


def buffer_sizes(plans: Iterable[InstructionPlan], config: EngineConfig) -> dict[str, int]:
    """The engine's on-chip buffers, each sized for the instruction that needs the most (the
    generated C++ config's names): ring words per parity bank, weight words per PE memory, records
    of the MAC and pixel units, deformable offsets per row, resize row words."""
    plans = list(plans)
    mac = [p for p in plans if p.instruction.is_mac]
    deform = [p for p in mac if isinstance(p.instruction.op, DeformConv)]
    resize = [p for p in plans if p.instruction.mode == "resize"]
    pixel = [p for p in plans if not p.instruction.is_mac]
    return {
        "BANK_DEPTH": most(p.bank_words for p in mac),
        "WBUF_DEPTH": most(p.outer_per_block * p.sf for p in mac if p.load_pe),
        "TABLE_DEPTH": most(p.table_entries for p in mac),
        "EW_TABLE_DEPTH": most((p.table_entries for p in pixel), config.word_bytes),
        "OFFSET_C_MAX": most(p.inputs[1].channels for p in deform),
        "MASK_C_MAX": most(p.inputs[2].channels for p in deform if len(p.inputs) > 2),
        "MAX_DEFORM_W": most(p.output.shape[3] for p in deform),
        "MAX_RESIZE_ROW_WORDS": most(p.inputs[0].shape[3] * words_per_pixel(p.inputs[0], config.word_bytes) for p in resize),
    }
