"""Packing integer frames into the AXI4-Stream byte layout and back (numpy, vectorised).

The layout itself is defined in `hwcodesign/ir/stream_layout.py`; these are its host side, used
by the C testbench vectors and `Project.csim`.
"""

from __future__ import annotations

import numpy as np

from hwcodesign.ir.stream_layout import WORD_BITS, StreamLayout, layout_of

__all__ = ["WORD_BITS", "StreamLayout", "layout_of", "pack_frames", "pack_tokens", "split_token_frames",
           "token_stream", "token_words_per_frame", "unpack_frames"]


BYTE_FIELDS = (8, 16, 32)
"""Field widths packed and unpacked byte-wise (the same bytes as bit by bit, far fewer passes)."""


def pixel_slots(layout: StreamLayout) -> tuple[int, int]:
    """(pixel slots, fields per slot) of a frame's words: where pixels share words, every word's
    `pixels_per_word` pixels of `channels` fields (the last word's missing pixels are padding);
    else every pixel's `words_per_pixel` words of `elements_per_word` fields. Either way the slots
    in order, cut into `words_per_frame` equal words, are the frame's fields from bit 0 up."""
    if layout.pixels_per_word > 1:
        return layout.words_per_frame * layout.pixels_per_word, layout.channels
    return layout.pixels, layout.words_per_pixel * layout.elements_per_word


def pack_frames(values: np.ndarray, layout: StreamLayout) -> np.ndarray:
    """(N, C, H, W) integers -> (N, bytes_per_frame) uint8, the DMA buffer contents."""
    values = np.asarray(values)
    frames = values.shape[0]
    if values.shape[1] != layout.channels or values.shape[2] * values.shape[3] != layout.pixels:
        raise ValueError(f"frames of shape {values.shape[1:]} do not match the stream layout")
    bits, words = layout.bits, layout.words_per_frame
    slots, slot_fields = pixel_slots(layout)
    pixels = values.reshape(frames, layout.channels, layout.pixels).transpose(0, 2, 1)
    padded = np.zeros((frames, slots, slot_fields), np.int64)
    padded[:, : layout.pixels, : layout.channels] = pixels
    fields = (padded & ((1 << bits) - 1)).astype(np.uint64).reshape(frames, words, -1)
    if bits in BYTE_FIELDS:  # whole bytes: a field is its little-endian bytes
        packed = np.zeros((frames, words, layout.word_bits // 8), np.uint8)
        packed[..., : fields.shape[2] * bits // 8] = fields.astype(f"<u{bits // 8}").view(np.uint8)
        return packed.reshape(frames, layout.bytes_per_frame)
    # field f of a word holds bits [f*bits, (f+1)*bits): spell every field out bit by bit
    bit_index = np.arange(bits, dtype=np.uint64)
    field_bits = ((fields[..., None] >> bit_index) & np.uint64(1)).astype(np.uint8)
    word_bits = np.zeros((frames, words, layout.word_bits), np.uint8)
    word_bits[..., : fields.shape[2] * bits] = field_bits.reshape(frames, words, -1)
    packed = np.packbits(word_bits, axis=-1, bitorder="little")
    return packed.reshape(frames, layout.bytes_per_frame)


def unpack_frames(buffer: np.ndarray, layout: StreamLayout, height: int, width: int) -> np.ndarray:
    """(N, bytes_per_frame) uint8 -> (N, C, H, W) int64, the inverse of `pack_frames`."""
    buffer = np.asarray(buffer, dtype=np.uint8)
    frames = buffer.shape[0]
    if buffer.shape[1:] != (layout.bytes_per_frame,) or height * width != layout.pixels:
        raise ValueError(f"buffer of shape {buffer.shape} does not hold frames of this layout")
    bits, words = layout.bits, layout.words_per_frame
    slots, slot_fields = pixel_slots(layout)
    per_word = slots * slot_fields // words
    word_bytes = buffer.reshape(frames, words, layout.word_bits // 8)
    if bits in BYTE_FIELDS:
        used = np.ascontiguousarray(word_bytes[..., : per_word * bits // 8])
        fields = used.view(f"<u{bits // 8}").astype(np.int64)
    else:
        word_bits = np.unpackbits(word_bytes, axis=-1, bitorder="little")[..., : per_word * bits]
        field_bits = word_bits.reshape(frames, words, per_word, bits).astype(np.int64)
        fields = (field_bits << np.arange(bits, dtype=np.int64)).sum(axis=-1)
    if layout.signed:
        fields = np.where(fields >= (1 << (bits - 1)), fields - (1 << bits), fields)
    pixels = fields.reshape(frames, slots, slot_fields)[:, : layout.pixels, : layout.channels]
    return pixels.transpose(0, 2, 1).reshape(frames, layout.channels, height, width)


def token_words_per_frame(layout: StreamLayout) -> int:
    """The most words a sparse input frame can take: every site active, plus the end header."""
    return layout.pixels * (1 + layout.words_per_pixel) + 1


def pack_tokens(values: np.ndarray, layout: StreamLayout, zero_point: int, width: int) -> np.ndarray:
    """(N, C, H, W) integers of a sparse input -> (N, bytes) uint8 token frames, each padded with
    zero words to the longest a frame can be (`token_words_per_frame`).

    A site is active where any channel differs from the zero point (the IR's root active set).
    Per active site, in raster order, a header word (bits 15..0 x, 30..16 y) and the site's
    channels as one pixel of `layout`; then a header word with the top bit set ends the frame.
    """
    values = np.asarray(values)
    frames = values.shape[0]
    word_bytes = layout.word_bits // 8
    pixel_bytes = layout.words_per_pixel * word_bytes
    out = np.zeros((frames, token_words_per_frame(layout) * word_bytes), np.uint8)
    single = StreamLayout(layout.channels, 1, layout.bits, layout.signed, layout.word_bits, pack_pixels=False)
    for n in range(frames):
        frame = values[n].reshape(layout.channels, -1)
        active = np.flatnonzero(np.any(frame != zero_point, axis=0))
        position = 0
        if active.size:
            pixels = pack_frames(frame[:, active].T.reshape(active.size, layout.channels, 1, 1), single)
            ys, xs = np.divmod(active, width)
            headers = (xs.astype(np.uint64) | (ys.astype(np.uint64) << np.uint64(16)))
            header_bytes = headers[:, None].view(np.uint8)[:, : min(8, word_bytes)]
            site = np.zeros((active.size, word_bytes + pixel_bytes), np.uint8)
            site[:, : header_bytes.shape[1]] = header_bytes
            site[:, word_bytes:] = pixels
            position = site.size
            out[n, :position] = site.reshape(-1)
        end = np.zeros(word_bytes, np.uint8)
        end[-1] = 0x80  # the top bit of the word: end of frame
        out[n, position:position + word_bytes] = end
    return out


def token_stream(values: np.ndarray, layout: StreamLayout, zero_point: int, width: int) -> np.ndarray:
    """The bytes a DMA sends for sparse input frames: each frame's tokens (`pack_tokens`) without
    its padding, frame after frame; the accelerator finds each frame's end by its end header."""
    packed = pack_tokens(values, layout, zero_point, width)
    word_bytes = layout.word_bits // 8
    sites = np.any(np.asarray(values).reshape(values.shape[0], layout.channels, -1) != zero_point, axis=1).sum(axis=1)
    used = (sites * (1 + layout.words_per_pixel) + 1) * word_bytes
    return np.concatenate([packed[n, : int(used[n])] for n in range(packed.shape[0])])


def split_token_frames(stream: bytes | np.ndarray, layout: StreamLayout) -> list[int]:
    """Byte lengths of the complete token frames at the start of `stream` (header, pixel words,
    ..., end header): how the emulated DMA hands a sparse input to the accelerator frame by frame."""
    data = np.frombuffer(bytes(stream), np.uint8) if not isinstance(stream, np.ndarray) else stream
    word_bytes = layout.word_bits // 8
    site_bytes = (1 + layout.words_per_pixel) * word_bytes
    lengths, start, position = [], 0, 0
    while position + word_bytes <= data.size:
        if data[position + word_bytes - 1] & 0x80:  # the end header's top bit
            position += word_bytes
            lengths.append(position - start)
            start = position
        else:
            position += site_bytes
    return lengths
