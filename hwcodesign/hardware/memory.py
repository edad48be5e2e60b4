"""How many BRAM18K blocks (or LUTs as distributed RAM) an on-chip memory of a given shape takes.

UG573 (UltraScale Architecture Memory Resources), "Block RAM Summary": one RAMB18E2 is 18 Kb and
can be configured as 16K x 1, 8K x 2, 4K x 4, 2K x 9, 1K x 18 or 512 x 36 (simple dual port; the
7-series RAMB18E1 has the same aspect ratios, UG473). A memory of `depth` words of `width` bits
takes, in its best aspect ratio, ceil(depth / d_i) * ceil(width / w_i) blocks. Vitis HLS maps
small arrays to LUTRAM instead (UG1399, BIND_STORAGE); a LUT6 holds 64 bits as RAM64X1, so we
count ceil(depth / 64) * width LUTs for memories below `LUTRAM_BITS`. Per-channel constant
tables (bias, requantization) are bound to LUT ROMs by the stage templates (`lut_rom`).
"""

from __future__ import annotations

from dataclasses import dataclass

BRAM18_ASPECTS: tuple[tuple[int, int], ...] = (
    (16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36),
)
LUTRAM_BITS = 2048
"""Below this many bits a memory is cheaper as LUTRAM than as (mostly empty) block RAM."""


@dataclass(frozen=True)
class MemoryCost:
    bram18k: int
    lut: int


def bram18k_blocks(depth: int, width: int) -> int:
    """Blocks of 18 Kb for a depth x width memory in its best aspect ratio (UG573)."""
    if depth <= 0 or width <= 0:
        return 0
    return min(-(-depth // d) * -(-width // w) for d, w in BRAM18_ASPECTS)


def memory_cost(depth: int, width: int, copies: int = 1) -> MemoryCost:
    """`copies` independent memories (one per PE after ARRAY_PARTITION) of depth x width bits."""
    if depth <= 0 or width <= 0 or copies <= 0:
        return MemoryCost(0, 0)
    if depth * width < LUTRAM_BITS:
        return MemoryCost(0, copies * -(-depth // 64) * width)
    return MemoryCost(copies * bram18k_blocks(depth, width), 0)


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
