"""How activations cross the accelerator boundary: the AXI4-Stream word layout of a tensor.

One convention, shared by the generated HLS adapters (`templates/hls/layers/hwc_axis.h`), the
C testbench, the C-simulation library, the PYNQ driver and the cost model: frames are NHWC
raster order; each pixel's channels are packed little-endian, `floor(word_bits / bits)` per
word, every pixel starting a new word (so the hardware unpacks one word per cycle with no carry
between pixels); unused high bits are zero; words are little-endian in memory, as the AXI DMA
reads them. Pixel-aligned packing wastes bandwidth only when a pixel's channels do not fill
whole words (an RGB input in 64-bit words uses 24 of 64 bits); the cost model counts the
padded words.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwcodesign.ir.types import IntType

WORD_BITS = (32, 64, 128)


@dataclass(frozen=True)
class StreamLayout:
    """How one tensor's frames travel as stream words."""

    channels: int
    pixels: int
    bits: int
    signed: bool
    word_bits: int

    def __post_init__(self) -> None:
        if self.word_bits not in WORD_BITS:
            raise ValueError(f"stream words are {WORD_BITS} bits, not {self.word_bits}")
        if self.bits > self.word_bits:
            raise ValueError(f"{self.bits}-bit elements do not fit {self.word_bits}-bit words")

    @property
    def elements_per_word(self) -> int:
        return self.word_bits // self.bits

    @property
    def words_per_pixel(self) -> int:
        return -(-self.channels // self.elements_per_word)

    @property
    def words_per_frame(self) -> int:
        return self.pixels * self.words_per_pixel

    @property
    def bytes_per_frame(self) -> int:
        return self.words_per_frame * self.word_bits // 8


def layout_of(shape: tuple[int, ...], dtype: IntType, word_bits: int) -> StreamLayout:
    """Layout of an NCHW tensor of integer type `dtype`."""
    _, channels, height, width = shape
    return StreamLayout(channels, height * width, dtype.bits, dtype.signed, word_bits)
