"""Instructions and their plans: how one layer runs on an engine configuration.

A family says what its layer is to the engine (its unit mode, its window, whether it loads
weights); the plans here turn that into loop bounds, weight blocks and buffer needs. The cost
model times a plan and the program generator writes it into the descriptor, so the two cannot
disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from hwcodesign.hardware.engine.config import (
    MAC_MODES,
    EngineConfig,
    EngineUnsupported,
    ceil_div,
    group_pixels,
    memory_words,
    words_per_pixel,
)
from hwcodesign.ir.op import Op
from hwcodesign.ir.requant import Requant
from hwcodesign.ir.types import Tensor


@dataclass(frozen=True)
class Destination:
    """Where a MAC or gather instruction writes its output when that output only exists to be
    copied into part of another tensor (a Concat part whose output stage is the identity): straight
    into that tensor, `word_offset` words into each of its pixels (so the copy is never run)."""

    tensor: Tensor
    word_offset: int


@dataclass(frozen=True)
class Residual:
    """A residual addition a MAC instruction runs on its own output before writing it (the MAC
    layer's output read only by `op`, an Add whose other input, `skip`, is in DDR by then): its
    output stage's results and `skip`, each scaled by its multiplier, through the Add's output
    stage, as the pixel unit's ADD would (`conv_first`: the MAC output is the Add's first input).
    The instruction writes the Add's output (its `destination`), and the Add is dropped."""

    op: Op
    skip: Tensor
    conv_first: bool

    @property
    def multipliers(self) -> tuple[int, int]:
        """(the MAC output's multiplier, the skip's)."""
        first, second = self.op.input_multipliers
        return (first, second) if self.conv_first else (second, first)


@dataclass(frozen=True, eq=False)
class Route:
    """A gather composed with the gathers that produced its input (`compose_gathers`): it reads
    `sources` instead, its output channel c is byte `order[c]` of their held words through record
    `records[c]`; `stage` gives the output's zero point and clamp, `requants` every output stage
    the records came from (the datapath's widths cover them), `copies` whether every channel is
    a byte copy of its source (so a gather after it may take its records)."""

    sources: tuple[Tensor, ...]
    order: tuple[int, ...]
    records: np.ndarray  # (channels, RECORD_WORDS) uint64, `record_words` rows
    stage: Requant
    requants: tuple[Requant, ...]
    copies: bool


@dataclass(frozen=True)
class Instruction:
    """One descriptor: an IR layer, or one part of a Concat (each part is its own copy)."""

    op: Op
    mode: str
    part: int = -1  # Concat: the input this instruction copies into the output
    destination: Destination | None = None  # a MAC or gather layer writing into part of another tensor
    residual: Residual | None = None  # a MAC layer adding a skip tensor to its output (then `destination`)
    route: Route | None = None  # a gather reading its input's producers' sources (`compose_gathers`)

    @property
    def written(self) -> Tensor:
        """The tensor the instruction's writer stores into: its output, or its destination's."""
        return self.op.output if self.destination is None else self.destination.tensor

    @property
    def word_offset(self) -> int:
        """Words into each pixel of `written` where the instruction's own words start."""
        return 0 if self.destination is None else self.destination.word_offset

    @property
    def name(self) -> str:
        if self.residual is not None:
            return f"{self.op.name}+{self.residual.op.name}"
        return self.op.name if self.part < 0 else f"{self.op.name}#part{self.part}"

    @property
    def is_mac(self) -> bool:
        return self.mode in MAC_MODES


@dataclass(frozen=True)
class InstructionPlan:
    """How one instruction runs on an engine configuration: loop bounds, blocks, buffer needs.

    For MAC modes: the input is streamed in `chunks` SIMD-channel words per pixel into a ring of
    `ring_rows` rows; each output pixel takes `outer_total` outers (conv: folds of PE output
    channels; channelwise: SIMD-channel chunks) of `sfx` steps, `sf` of them computing (conv:
    taps x chunks, channelwise: taps). Weights of `outer_per_block` outers fit the PE memories at
    once; a layer needing more runs in `blocks` passes over its input. Such a layer `prefetch`es:
    its blocks take half the memories each, alternately the lower and the upper half, and each
    block's dataflow region loads the next block's weights into the other half while it computes,
    so only the first block's load is not hidden behind compute (`prefetching`).
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
    weight_words: int = 0  # params words of one block's weights
    table_entries: int = 0  # records (output channels) the layer's tables hold at once
    lookup_words: int = 0  # params words of a lookup table the pixel unit loads before the layer
    pixels: int = 1  # output pixels computed at once (`group_pixels`)
    prefetch: bool = False  # blocks alternate between the memories' halves, the next loaded under compute
    col_banks: int = 2  # the ring's column banks (`EngineConfig.col_banks`)
    residual: InstructionPlan | None = None  # the fused Add's own plan (`Instruction.residual`)

    def block_outers(self, block: int) -> int:
        """Outers block `block` holds: `outer_per_block`, the last what is left (`hwc_block`)."""
        return min(self.outer_per_block, self.outer_total - block * self.outer_per_block)

    @property
    def weight_buffer_words(self) -> int:
        """Weight words per PE memory the instruction uses: a block's, or two (`prefetch`)."""
        return self.outer_per_block * self.sf * (2 if self.prefetch else 1)

    @property
    def groups(self) -> int:
        """Pixel groups per output row: what the MAC loop steps through."""
        return ceil_div(self.output.shape[3], self.pixels)

    @property
    def bank_row_words(self) -> int:
        """Ring words one input row leaves in each bank: its columns spread over `col_banks`."""
        return ceil_div(self.inputs[0].shape[3], self.col_banks) * self.chunks

    @property
    def slot0(self) -> int:
        return (-self.pads[0] - self.reach) % self.ring_rows if self.ring_rows else 0

    @property
    def sampling_inputs(self) -> tuple[Tensor, ...]:
        """What a MAC instruction reads on the aux port beside its input: the sampling offsets
        (and mask) of a deformable window, converted row by row; none for a plain window."""
        return self.inputs[1:] if self.instruction.is_mac else ()


@dataclass(frozen=True)
class Window:
    """A MAC layer's window over its input, as its family defines it."""

    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int] = (0, 0)  # top, left
    dilation: tuple[int, int] = (1, 1)
    reach: int = 0  # rows a deformable sample may move beyond the window


def mac_plan(instruction: Instruction, inputs: Sequence[Tensor], config: EngineConfig, weight_bits: int,
             window: Window, weighted: bool = True, chunks_per_group: int | None = None) -> InstructionPlan:
    """The schedule of a MAC instruction (`weighted`: it loads weights; a max pool does not);
    `chunks_per_group`: SIMD chunks per sampling group (all chunks unless the family splits them).
    EngineUnsupported when one output's weights do not fit the PE memories."""
    op = instruction.op
    source = inputs[0]
    kernel, stride, dilation, reach = window.kernel, window.stride, window.dilation, window.reach
    window_rows = (kernel[0] - 1) * dilation[0] + 1 + 2 * reach
    ring_rows = window_rows + stride[0]
    ring_rows += ring_rows % 2  # the parity banks need an even ring
    chunks = ceil_div(source.channels, config.simd)
    taps = kernel[0] * kernel[1]
    if instruction.mode == "conv":
        inner, sf, lanes_out = chunks, taps * chunks, config.pe
        outer_total = ceil_div(op.output.channels, config.pe)
        load_pe = config.pe
    else:
        inner, sf, lanes_out = 1, taps, config.simd
        outer_total = chunks
        load_pe = 1 if weighted else 0
    pixels = group_pixels(config, stride[1], len(inputs) > 1)
    # an outer lasts long enough for the shared output stages to convert its pixels' accumulators
    # and for the unpacker to turn their lanes into DDR words (one per cycle), so compute never
    # outruns them
    sfx = max(sf, pixels * ceil_div(lanes_out, config.rq_units), pixels * lanes_out // config.word_bytes)
    if load_pe == 0:
        outer_per_block = outer_total
    else:
        outer_per_block = min(outer_total, config.weight_depth // sf)
        if outer_per_block == 0:
            raise EngineUnsupported(f"layer '{op.name}' ({op.kind}): one output needs {sf} weight words per PE, "
                                    f"more than the engine's {config.weight_depth}")
    return InstructionPlan(
        instruction, tuple(inputs), op.output, kernel, stride, window.pads, dilation, reach, window_rows, ring_rows,
        chunks, taps, inner, sf, sfx, lanes_out, outer_total, load_pe=load_pe,
        chunks_per_group=chunks if chunks_per_group is None else chunks_per_group, pixels=pixels,
        col_banks=config.col_banks,
        **blocking(outer_per_block, outer_total, sf * load_pe * memory_words(config, weight_bits), lanes_out))


def holds_at_depth(item: InstructionPlan, weight_depth: int) -> bool:
    """Whether `item`, a MAC plan in the whole memories, is also the plan of its layer on the same
    configuration with memories `weight_depth` words deep: it runs in one block, whose weights
    they hold (`mac_plan` reads the depth only to block the weights), so the mapper plans a layer
    once for all the depths that hold its weights."""
    return item.blocks == 1 and item.weight_buffer_words <= weight_depth


def blocking(outer_per_block: int, outer_total: int, outer_weight_words: int, lanes_out: int) -> dict[str, int]:
    """The plan's fields that follow from the outers a block holds: the blocks, a block's params
    words of weights (`outer_weight_words` an outer) and its records."""
    return {"outer_per_block": outer_per_block, "blocks": ceil_div(outer_total, outer_per_block),
            "weight_words": outer_per_block * outer_weight_words, "table_entries": outer_per_block * lanes_out}


def prefetching(item: InstructionPlan, config: EngineConfig) -> InstructionPlan | None:
    """The plan of a MAC layer that runs in blocks (`item`: of the whole memories) with its
    blocks in the memories' halves, each block's frames storing the next block's weights
    (`InstructionPlan.prefetch`); None when it has no blocks to prefetch or a half holds no
    output's weights. More, smaller blocks re-read the input more often, so which is faster
    depends on the layer (`mapper.engine.program.plan` times both)."""
    if not item.load_pe or item.blocks == 1:
        return None
    outer_per_block = config.weight_depth // 2 // item.sf
    if outer_per_block == 0:
        return None
    outer_weight_words = item.weight_words // item.outer_per_block  # an outer's, whatever the block
    return replace(item, prefetch=True,
                   **blocking(outer_per_block, item.outer_total, outer_weight_words, item.lanes_out))


def pixel_plan(instruction: Instruction, inputs: Sequence[Tensor], config: EngineConfig,
               records_for: Tensor) -> InstructionPlan:
    """The plan of a pixel-unit instruction: its records cover the channels of `records_for`."""
    entries = words_per_pixel(records_for, config.word_bytes) * config.word_bytes
    return InstructionPlan(instruction, tuple(inputs), instruction.op.output, table_entries=entries)


@dataclass(frozen=True)
class PixelLoops:
    """The pixel unit's loops for one instruction: compute trip count and the pipelined loops it
    runs (each pays the pipeline ramp), and what the writer stores in how many runs."""

    iterations: int
    loops: int
    write_words: int
    segments: int


def streamed_loops(item: InstructionPlan, config: EngineConfig) -> PixelLoops:
    """A pixel instruction that streams its input's words through the output stages once
    (WORD_BYTES / EW_LANES cycles per word), writing each pixel into its output words."""
    source, out = item.inputs[0], item.output
    in_cw = words_per_pixel(source, config.word_bytes)
    out_pixels = out.shape[2] * out.shape[3]
    iterations = source.shape[2] * source.shape[3] * in_cw * (config.word_bytes // config.ew_lanes)
    segments = 1 if in_cw == words_per_pixel(out, config.word_bytes) else out_pixels
    return PixelLoops(iterations, 1, out_pixels * in_cw, segments)


def global_pool_loops(item: InstructionPlan, config: EngineConfig) -> PixelLoops:
    """A pixel instruction that sums every input word into per-channel sums, then converts the
    sums in one more loop and writes one output pixel."""
    source, subs = item.inputs[0], config.word_bytes // config.ew_lanes
    in_words = source.shape[2] * source.shape[3] * words_per_pixel(source, config.word_bytes)
    out_cw = words_per_pixel(item.output, config.word_bytes)
    return PixelLoops(in_words * subs + out_cw * subs, 2, out_cw, 1)
