"""How activations cross the accelerator boundary: the AXI4-Stream word layout of a tensor.

One convention, shared by the generated HLS adapters (`templates/hls/layers/hwc_axis.h`), the
C testbench, the C-simulation library, the PYNQ driver and the cost model: frames are NHWC
raster order; each pixel's channels are packed little-endian, `floor(word_bits / bits)` per
word; unused high bits are zero; words are little-endian in memory, as the AXI DMA reads them.

Where pixels go in words depends on how wide a pixel is. A pixel that takes at most half a word
(`channels * bits <= word_bits // 2`: a 1-channel MNIST or keyword-spotting input, an RGB image
in 64-bit words, a 1-channel segmentation map) shares its word with the next ones:
`pixels_per_word = floor(word_bits / (channels * bits))` whole pixels per word, pixel p of a word
at bit p * channels * bits, the frame's last word zero-padded; the DMA then moves 1/pixels_per_word
of the words, and the adapter unpacks one pixel per cycle. A wider pixel starts a new word
(so the hardware unpacks one word per cycle with no carry between pixels) and takes
`words_per_pixel` words, the last one zero-padded (an 80-bit pixel in 64-bit words uses 80 of 128
bits); the cost model counts the padded words either way.

`pack_pixels=False` keeps every pixel word-aligned whatever its width: the layer-sequential
engine's DDR arena (`codegen/engine/sources.py`), whose address arithmetic is per pixel, and a
sparse stream's token, which carries one site.
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
    pack_pixels: bool  # narrow pixels share words (the AXI4-Stream boundary); False: each starts a word

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
        """Words of one pixel on its own, starting a word (a word-aligned frame's, a token's site)."""
        return -(-self.channels // self.elements_per_word)

    @property
    def pixels_per_word(self) -> int:
        """Whole pixels a word holds: several where pixels are packed and one takes at most half
        a word, else 1 (each pixel then starts a new word and takes `words_per_pixel`)."""
        pixel_bits = self.channels * self.bits
        if self.pack_pixels and pixel_bits <= self.word_bits // 2:
            return self.word_bits // pixel_bits
        return 1

    @property
    def words_per_frame(self) -> int:
        if self.pixels_per_word > 1:
            return -(-self.pixels // self.pixels_per_word)
        return self.pixels * self.words_per_pixel

    @property
    def bytes_per_frame(self) -> int:
        return self.words_per_frame * self.word_bits // 8

    @property
    def adapter_steps(self) -> int:
        """Iterations per frame of the boundary adapter's pipelined loop (`hwc_axis.h`): a word per
        cycle, or where pixels share words a pixel per cycle, whichever there are more of."""
        return max(self.words_per_frame, self.pixels)


def layout_of(shape: tuple[int, ...], dtype: IntType, word_bits: int) -> StreamLayout:
    """Stream layout of an NCHW tensor of integer type `dtype` at the accelerator's boundary."""
    _, channels, height, width = shape
    return StreamLayout(channels, height * width, dtype.bits, dtype.signed, word_bits, pack_pixels=True)
