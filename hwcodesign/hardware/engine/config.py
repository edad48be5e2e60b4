"""The engine's configuration, its storage rules and the word arithmetic every part of it shares."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from hwcodesign.errors import HwcodesignError
from hwcodesign.ir.types import Tensor

STORAGE_BITS = 8
"""Every activation is stored as one byte in DDR (types of up to 8 bits)."""
MAX_BATCH = 8
"""Frames one engine run may hold (its `frames` register; C::MAX_BATCH): each in its own arena, an
instruction's weights and records loaded once for all of them."""
WEIGHT_STORAGE_BITS = (2, 4, 8)
"""Weights are stored at one of these widths (a divisor of the params word, so none straddles two)."""
PARAMS_WORD_BITS = 64
"""The word of the params buffer (descriptors of two 32-bit fields, records, packed weights, lookup
tables) and of its AXI master, whatever the feature maps' word (`EngineConfig.word_bits`): the
program's layout does not depend on the feature maps' width."""
PARAMS_WORD_BYTES = PARAMS_WORD_BITS // 8
MODES = {"conv": 0, "channelwise": 1, "add": 2, "requant": 3, "resize": 4, "global_pool": 5, "lookup": 6,
         "mul": 7, "gather": 8}
"""The units' modes as the descriptor encodes them: two of the MAC unit, seven of the pixel unit
(the lookup mode only in engines whose program has a lookup table, `hwc_engine_lookup.h`)."""
MAC_MODES = ("conv", "channelwise")
URAM_BUFFERS = ("weights", "ring")
"""The engine's buffers that may be UltraRAM (`EngineConfig.uram`): the MAC unit's weight memories
and its line buffer's banks, the two deep ones, both filled from DDR at run time (UltraRAM has
no bitstream contents, `hardware.memory`). Each is one BIND_STORAGE in `hwc_engine_mac.h`."""
SPARSE_REFUSAL = ("is sparse: the layer-sequential engine runs dense layers only; sparse networks are built as the "
                  "dataflow pipeline (token streams)")
"""Why the engine refuses a sparse layer (the sparse family's refusal, and any sparse tensor's)."""


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
    word_bits: int = 64  # the feature maps' DDR word (their three AXI masters'; params: PARAMS_WORD_BITS)
    packed_macs: bool = False  # two MACs per DSP48E2 (`hwc_mul2`; UltraScale+ and narrow operands)
    pp: int = 1  # output pixels of a row the MAC unit computes at once (the DPU's pixel parallelism)
    uram: tuple[str, ...] = ()  # the buffers (of `URAM_BUFFERS`, in that order) built in UltraRAM

    def __post_init__(self) -> None:
        if self.uram != tuple(b for b in URAM_BUFFERS if b in self.uram):
            raise ValueError(f"uram lists buffers of {URAM_BUFFERS} in that order, not {self.uram}")

    @property
    def word_bytes(self) -> int:
        return self.word_bits // 8

    @property
    def out_lanes(self) -> int:
        return max(self.pe, self.simd)

    @property
    def macs_per_cycle(self) -> int:
        """The MAC unit's multipliers: PE x SIMD weights, each used by `pp` pixels."""
        return self.pe * self.simd * self.pp

    @property
    def col_banks(self) -> int:
        """Column banks of the ring (of each row-parity half, with deformable layers): 2 x PP, so
        that a bilinear sample's neighbours x0 and x0 + 1 (PP 1) or the PP pixels of a group read
        different banks at strides 1 and 2 (and every odd stride) in the same cycle."""
        return 2 * self.pp

    def __str__(self) -> str:
        return (f"PE{self.pe} SIMD{self.simd}" + (f" PP{self.pp}" if self.pp > 1 else "")
                + f" RQ{self.rq_units} EW{self.ew_lanes} W{self.weight_depth}" + (" packed" if self.packed_macs else "")
                + (f" URAM({','.join(self.uram)})" if self.uram else "")
                + (f" AXI{self.word_bits}" if self.word_bits != 64 else ""))


def group_pixels(config: EngineConfig, stride: int, sampled: bool) -> int:
    """Output pixels a MAC layer computes at once on `config`: PP, unless two of them would read
    the same ring bank (pixels `stride` columns apart: PP of them fit the banks when
    PP x gcd(stride, banks) <= banks), or the window is sampled (a deformable layer's pixels read
    anywhere, so it runs one at a time)."""
    return 1 if sampled else pixels_at_stride(config.pp, config.col_banks, stride)


@functools.lru_cache(maxsize=256)
def pixels_at_stride(pp: int, banks: int, stride: int) -> int:
    return max(1, min(pp, banks // math.gcd(stride, banks)))


def words_per_pixel(tensor: Tensor, word_bytes: int) -> int:
    """DDR words one pixel of `tensor` takes (bytes padded to whole words)."""
    return -(-tensor.channels // word_bytes)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def memory_words(config: EngineConfig, weight_bits: int) -> int:
    """Params words per SIMD-weight memory word."""
    return ceil_div(config.simd * weight_bits, PARAMS_WORD_BITS)
