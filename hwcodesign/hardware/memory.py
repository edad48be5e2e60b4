"""How many BRAM18K blocks (or LUTs as distributed RAM) an on-chip memory of a given shape takes,
and where a stage's weights may live.

UG573 (UltraScale Architecture Memory Resources), "Block RAM Summary": one RAMB18E2 is 18 Kb and
can be configured as 16K x 1, 8K x 2, 4K x 4, 2K x 9, 1K x 18 or 512 x 36 (simple dual port; the
7-series RAMB18E1 has the same aspect ratios, UG473). A memory of `depth` words of `width` bits
takes, in its best aspect ratio, ceil(depth / d_i) * ceil(width / w_i) blocks (`bram_cost`).
As LUTRAM (distributed RAM or ROM) a LUT6 holds 64 x 1 bits (RAM64X1S / ROM64X1), so a memory
takes ceil(depth / 64) * width LUTs (`lutram_cost`). Vitis HLS maps small arrays to LUTRAM (UG1399,
BIND_STORAGE); `memory_cost`, the automatic choice, does so below `LUTRAM_BITS`. Per-channel
constant tables (bias, requantization) are bound to LUT ROMs by the stage templates (`lut_rom`).

A MAC stage's weight memory is instead an implementation the mapper chooses (`Folding.weights`,
one of `WEIGHT_MEMORIES`, offered by `weight_memories`) and the templates bind (BIND_STORAGE
rom_1p, `hwc_bind_weights` in hwc_common.h), as FINN's `ram_style` "distributed" / "block".
UltraRAM is not among them: an UltraScale+ URAM288 has no initial contents (UG573, "UltraRAM":
unlike block RAM it cannot be initialised by the bitstream; only Versal's URAM has INIT), so
weights in URAM need a load path at start-up, which the dataflow pipeline gets with external
weight streaming. "uram" then joins `WEIGHT_MEMORIES`.

The layer-sequential engine's buffers are different: it fills its weight memories and its line
buffer from DDR at run time, so they may be UltraRAM (`uram_cost`: UG573's URAM288 is a fixed
4K x 72-bit block, two ports, cascadable in depth; Vitis HLS binds an array to it with
BIND_STORAGE impl=uram). The KV260's and ZCU104's UltraRAM holds 3.5x and 2.4x their block RAM's
bits, which the DPU uses the same way on those boards.
"""

from __future__ import annotations

from dataclasses import dataclass

BRAM18_ASPECTS: tuple[tuple[int, int], ...] = (
    (16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36),
)
LUTRAM_BITS = 2048
"""Below this many bits a memory is cheaper as LUTRAM than as (mostly empty) block RAM."""


URAM_DEPTH = 4096
URAM_WIDTH = 72
"""A URAM288's only shape (UG573): 4,096 words of 72 bits."""


@dataclass(frozen=True)
class MemoryCost:
    bram18k: int
    lut: int
    uram: int = 0


def bram18k_blocks(depth: int, width: int) -> int:
    """Blocks of 18 Kb for a depth x width memory in its best aspect ratio (UG573)."""
    if depth <= 0 or width <= 0:
        return 0
    return min(-(-depth // d) * -(-width // w) for d, w in BRAM18_ASPECTS)


def bram_cost(depth: int, width: int, copies: int = 1) -> MemoryCost:
    """`copies` memories of depth x width bits as block RAM, each in its best aspect ratio."""
    if depth <= 0 or width <= 0 or copies <= 0:
        return MemoryCost(0, 0)
    return MemoryCost(copies * bram18k_blocks(depth, width), 0)


def uram_cost(depth: int, width: int, copies: int = 1) -> MemoryCost:
    """`copies` memories of depth x width bits as UltraRAM: ceil(depth / 4K) x ceil(width / 72)
    URAM288 blocks each (a block's one aspect ratio; depth by cascading)."""
    if depth <= 0 or width <= 0 or copies <= 0:
        return MemoryCost(0, 0)
    return MemoryCost(0, 0, copies * -(-depth // URAM_DEPTH) * -(-width // URAM_WIDTH))


def lutram_cost(depth: int, width: int, copies: int = 1) -> MemoryCost:
    """`copies` memories of depth x width bits as LUTRAM: ceil(depth / 64) LUT6s per bit of width."""
    if depth <= 0 or width <= 0 or copies <= 0:
        return MemoryCost(0, 0)
    return MemoryCost(0, copies * -(-depth // 64) * width)


def automatic_memory(depth: int, width: int) -> str:
    """Where a memory goes without a choice: LUTRAM below `LUTRAM_BITS`, else block RAM."""
    return "lutram" if depth * width < LUTRAM_BITS else "bram"


def memory_cost(depth: int, width: int, copies: int = 1) -> MemoryCost:
    """`copies` independent memories (one per PE after ARRAY_PARTITION) of depth x width bits, in
    the automatic memory (`automatic_memory`)."""
    return weight_memory_cost(automatic_memory(depth, width), depth, width, copies)


WEIGHT_MEMORIES = ("bram", "lutram")
"""Where a stage's weight ROMs may be built (`Folding.weights`); "uram" waits for a load path
(module doc)."""
LUTRAM_MAX_DEPTH = 256
"""The deepest weight ROM offered as LUTRAM besides block RAM. Up to 256 words a slice's F7/F8
multiplexers join four LUT6s (RAM256X1S / ROM256X1, UG474, UG574), so ceil(depth / 64) * width
LUTs is the whole cost; a deeper one needs multiplexers in LUTs, which that count leaves out.
Within it LUTRAM frees a block for at most 144 LUTs (the block holds at most 256 x 36 bits, its
512 x 36 ratio half used: 4 x 36 LUTs), fewer than any board has per BRAM18K (ZCU102 150,
Ultra96-V2 163, PYNQ-Z2 190, ZCU104 369, KV260 407): it never takes a larger share of the LUTs
than it frees of the block RAM. A full 512 x 36 block would cost 288 LUTs, more than the PYNQ-Z2,
the Ultra96-V2 and the ZCU102 have per block."""


def weight_memories(depth: int, width: int) -> tuple[str, ...]:
    """The weight memories worth offering for a weight ROM (one per PE) of depth x width bits, the
    automatic one first: LUTRAM alone below `LUTRAM_BITS` (a block would be nearly empty, at most
    1/9 of it used); block RAM, and LUTRAM too when at most `LUTRAM_MAX_DEPTH` words deep."""
    if automatic_memory(depth, width) == "lutram":
        return ("lutram",)
    return ("bram", "lutram") if depth <= LUTRAM_MAX_DEPTH else ("bram",)


def weight_memory_cost(memory: str, depth: int, width: int, copies: int = 1) -> MemoryCost:
    """`copies` ROMs of depth x width bits in `memory` (one of `WEIGHT_MEMORIES`)."""
    return lutram_cost(depth, width, copies) if memory == "lutram" else bram_cost(depth, width, copies)


def lut_rom(length: int, width: int, banks: int = 1) -> MemoryCost:
    """A constant table of `length` entries as LUT ROM, split cyclically into `banks` banks so
    `banks` entries are read per cycle (BIND_STORAGE type=rom_1p impl=lutram plus a cyclic
    ARRAY_PARTITION in the templates). A LUT6 is a 64 x 1 ROM."""
    if length <= 0 or width <= 0:
        return MemoryCost(0, 0)
    banks = max(1, min(banks, length))
    depth = -(-length // banks)
    return MemoryCost(0, banks * -(-depth // 64) * width)


SRL_MAX_DEPTH = 2
SRL_MAX_BITS = 1024
"""Vitis HLS's defaults (UG1399, config_storage fifo -auto_srl_max_depth / -auto_srl_max_bits):
a FIFO at most this deep, or of at most this many bits, is a shift register; others are memory."""


def fifo_cost(depth: int, width: int) -> MemoryCost:
    """An hls::stream FIFO of `depth` entries of `width` bits as Vitis HLS implements it: SRLs
    (one SRLC32E LUT per bit per 32 entries) when shallow or small, else a memory (UG573 packing;
    wide shallow memories waste most of each block, which is what a pixel-wide stream costs)."""
    if depth <= 0 or width <= 0:
        return MemoryCost(0, 0)
    if depth <= SRL_MAX_DEPTH or depth * width <= SRL_MAX_BITS:
        return MemoryCost(0, -(-depth // 32) * width)
    return memory_cost(depth, width)
