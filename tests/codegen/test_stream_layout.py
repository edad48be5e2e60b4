"""The stream word layout's host side (`codegen/packing.py`) against the convention written out
independently, bit by bit, from its statement in `ir/stream_layout.py`: pixels that take at most
half a word share words (pixel p of a word at bit p * C * bits), wider ones (or any pixel of a
word-aligned layout) start a new word; channels little-endian; padding zero.

A seeded sweep over channels, element widths, signedness, word widths and pixel counts (partial
last words included) stands in for a property-based test.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwcodesign.codegen.packing import pack_frames, pack_tokens, unpack_frames
from hwcodesign.ir.stream_layout import WORD_BITS, StreamLayout

CASES_PER_WIDTH = 40
CHANNELS = (1, 2, 3, 4, 5, 7, 8, 12, 17)
BITS = (1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 16, 24, 32)


def sweep(word_bits: int, seed: int) -> list[tuple[int, int, bool, int]]:
    """(channels, bits, signed, pixels) cases; pixel counts 1..40, so most leave a word part filled."""
    rng = np.random.default_rng(seed)
    return [(int(rng.choice(CHANNELS)), int(rng.choice(BITS)), bool(rng.integers(2)), int(rng.integers(1, 41)))
            for _ in range(CASES_PER_WIDTH)]


def spec_words(channels: int, bits: int, word_bits: int, pack_pixels: bool, pixels: int) -> tuple[int, int]:
    """(pixels per word, words per frame) as the convention states them."""
    pixel_bits = channels * bits
    if pack_pixels and 2 * pixel_bits <= word_bits:
        share = word_bits // pixel_bits
        return share, -(-pixels // share)
    return 1, pixels * -(-channels // (word_bits // bits))


def spec_bytes(frame: np.ndarray, bits: int, word_bits: int, pack_pixels: bool) -> bytes:
    """One (C, H, W) frame's bytes, every element's bits placed one at a time into Python ints."""
    channels = frame.shape[0]
    flat = frame.reshape(channels, -1)
    pixels = flat.shape[1]
    share, count = spec_words(channels, bits, word_bits, pack_pixels, pixels)
    per_word, words_per_pixel = word_bits // bits, -(-channels // (word_bits // bits))
    words = [0] * count
    for p in range(pixels):
        for c in range(channels):
            field = int(flat[c, p]) & ((1 << bits) - 1)
            if share > 1:
                word, offset = p // share, (p % share) * channels * bits + c * bits
            else:
                word, offset = p * words_per_pixel + c // per_word, (c % per_word) * bits
            for b in range(bits):
                if field >> b & 1:
                    words[word] |= 1 << (offset + b)
    return b"".join(word.to_bytes(word_bits // 8, "little") for word in words)


def random_frames(rng: np.random.Generator, count: int, channels: int, bits: int, signed: bool,
                  shape: tuple[int, int]) -> np.ndarray:
    lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
    return rng.integers(lo, hi, (count, channels, *shape), dtype=np.int64)


@pytest.mark.parametrize("pack_pixels", [True, False])
@pytest.mark.parametrize("word_bits", WORD_BITS)
def test_round_trip_and_bytes_match_the_convention(word_bits: int, pack_pixels: bool) -> None:
    shared = 0
    for index, (channels, bits, signed, pixels) in enumerate(sweep(word_bits, seed=word_bits + pack_pixels)):
        layout = StreamLayout(channels, pixels, bits, signed, word_bits, pack_pixels)
        share, words = spec_words(channels, bits, word_bits, pack_pixels, pixels)
        assert (layout.pixels_per_word, layout.words_per_frame) == (share, words), (channels, bits, pixels)
        shared += share > 1
        frames = random_frames(np.random.default_rng(index), 3, channels, bits, signed, (1, pixels))
        packed = pack_frames(frames, layout)
        assert packed.shape == (3, words * word_bits // 8)
        for frame, row in zip(frames, packed):
            assert row.tobytes() == spec_bytes(frame, bits, word_bits, pack_pixels), (channels, bits, signed, pixels)
        assert np.array_equal(unpack_frames(packed, layout, 1, pixels), frames)
    if pack_pixels:  # the sweep reaches both sides of the half-word threshold
        assert CASES_PER_WIDTH // 5 <= shared <= CASES_PER_WIDTH - CASES_PER_WIDTH // 5
    else:
        assert shared == 0


def test_an_eight_bit_mnist_image_is_its_own_bytes() -> None:
    """1x28x28 uint8 in 64-bit words: eight pixels a word, so the DMA buffer is the raster image."""
    image = np.random.default_rng(0).integers(0, 256, (2, 1, 28, 28))
    layout = StreamLayout(1, 28 * 28, 8, False, 64, pack_pixels=True)
    assert (layout.pixels_per_word, layout.words_per_frame, layout.bytes_per_frame) == (8, 98, 784)
    assert layout.adapter_steps == 784  # the adapter emits a pixel per cycle
    assert np.array_equal(pack_frames(image, layout), image.reshape(2, -1).astype(np.uint8))
    aligned = StreamLayout(1, 28 * 28, 8, False, 64, pack_pixels=False)
    assert (aligned.words_per_frame, aligned.adapter_steps) == (784, 784)


def test_a_partial_last_word_is_zero_padded_and_ignored_on_the_way_back() -> None:
    """Five signed 4-bit pixels of two channels in 32-bit words: four pixels a word, the second
    word holds one pixel in its low byte and zeros above; garbage there does not unpack."""
    layout = StreamLayout(2, 5, 4, True, 32, pack_pixels=True)
    frames = np.array([[[-1, 2, -8, 7, 3], [0, -3, 5, -1, -2]]]).reshape(1, 2, 1, 5)
    packed = pack_frames(frames, layout)
    assert packed.tolist() == [[0x0F, 0xD2, 0x58, 0xF7, 0xE3, 0, 0, 0]]
    dirty = packed.copy()
    dirty[0, 5:] = 0xFF
    assert np.array_equal(unpack_frames(dirty, layout, 1, 5), frames)


def test_half_a_word_is_the_threshold() -> None:
    """A pixel of exactly half a word shares it; one bit more starts a word of its own."""
    assert StreamLayout(4, 9, 8, False, 64, pack_pixels=True).pixels_per_word == 2
    wider = StreamLayout(3, 9, 11, False, 64, pack_pixels=True)
    assert (wider.pixels_per_word, wider.words_per_pixel, wider.words_per_frame) == (1, 1, 9)
    assert StreamLayout(3, 10, 8, False, 64, pack_pixels=True).words_per_frame == 5  # RGB: two a word


def test_tokens_carry_one_site_whatever_the_layout_packs() -> None:
    """A sparse stream's token is one site's channels in its own words: packing pixels changes nothing."""
    rng = np.random.default_rng(4)
    frames = rng.integers(0, 4, (3, 2, 3, 4)) * (rng.random((3, 1, 3, 4)) < 0.5)
    packed = StreamLayout(2, 12, 3, False, 64, pack_pixels=True)
    aligned = StreamLayout(2, 12, 3, False, 64, pack_pixels=False)
    assert packed.pixels_per_word > 1
    assert np.array_equal(pack_tokens(frames, packed, 0, 4), pack_tokens(frames, aligned, 0, 4))
