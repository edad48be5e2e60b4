"""The parameter tables of the params buffer: per-channel output-stage records and dense weights."""

from __future__ import annotations

import numpy as np

from hwcodesign.ir.requant import Requant
from hwcodesign.ir.types import Tensor

RECORD_WORDS = 4


def record_words(requant: Requant, channels: int, bias: np.ndarray | None = None) -> np.ndarray:
    """(channels, 4) uint64 records: bias | shift << 48, m | nm << 32, offset, negative offset."""
    def per_channel(values: np.ndarray | None) -> np.ndarray:
        if values is None:
            return np.zeros(channels, np.int64)
        values = np.asarray(values, np.int64)
        return np.broadcast_to(values, (channels,)) if values.size == 1 else values

    bias = np.zeros(channels, np.int64) if bias is None else np.asarray(bias, np.int64)
    m, s = per_channel(requant.multiplier), per_channel(requant.shift)
    nm, off, noff = per_channel(requant.negative_multiplier), per_channel(requant.offset), per_channel(requant.negative_offset)
    mask48, mask32 = (1 << 48) - 1, (1 << 32) - 1
    rows = np.zeros((channels, RECORD_WORDS), np.uint64)
    for c in range(channels):
        rows[c, 0] = (int(bias[c]) & mask48) | (int(s[c]) << 48)
        rows[c, 1] = (int(m[c]) & mask32) | ((int(nm[c]) & mask32) << 32)
        rows[c, 2] = int(off[c]) & ((1 << 64) - 1)
        rows[c, 3] = int(noff[c]) & ((1 << 64) - 1)
    return rows


def padded_records(rows: np.ndarray, entries: int) -> np.ndarray:
    """Records for `entries` channels: the real ones, then zero records for the padding lanes."""
    out = np.zeros((entries, RECORD_WORDS), np.uint64)
    out[: min(entries, len(rows))] = rows[:entries]
    return out


def grouped_to_dense(weight: np.ndarray, groups: int, source: Tensor) -> np.ndarray:
    """(O, C, kh, kw) weights with groups expanded block-diagonally: a grouped conv is a dense one
    whose other groups' weights are zero."""
    weight = np.asarray(weight, np.int64)
    if groups == 1:
        return weight
    out_per, in_per = weight.shape[0] // groups, source.channels // groups
    dense = np.zeros((weight.shape[0], source.channels) + weight.shape[2:], np.int64)
    for g in range(groups):
        dense[g * out_per:(g + 1) * out_per, g * in_per:(g + 1) * in_per] = weight[g * out_per:(g + 1) * out_per]
    return dense


LOOKUP_ENTRIES = 256
"""A lookup table on the engine: one entry per stored input byte (every type of up to 8 bits)."""


def lookup_table_words(table: np.ndarray, source: Tensor, word_bytes: int, entry_bits: int = 8) -> np.ndarray:
    """A lookup table (`table[x - source.dtype.min]`) as the engine's pixel unit reads it: indexed
    by the stored input byte (two's complement for a signed type), each entry `entry_bits` wide
    (an output's stored byte, or a lookup mean's 16-bit fine value, two's complement), as many a
    word as fit (little-endian); bytes no level of the input type stores hold 0."""
    entries = np.zeros(LOOKUP_ENTRIES, np.uint64)
    levels = np.arange(source.dtype.min, source.dtype.max + 1, dtype=np.int64)
    entries[levels & 0xFF] = (np.asarray(table, np.int64) & ((1 << entry_bits) - 1)).astype(np.uint64)
    per_word = word_bytes * 8 // entry_bits
    shifts = np.arange(per_word, dtype=np.uint64) * np.uint64(entry_bits)
    return np.bitwise_or.reduce(entries.reshape(-1, per_word) << shifts, axis=1)


GATHER_INDEX_BITS = 16
"""An input channel index of a channel gather's order (`hwc_gather_index_t`)."""


def gather_order_words(order: tuple[int, ...]) -> np.ndarray:
    """A channel gather's order as the pixel unit loads it: output channel c's input channel in
    `GATHER_INDEX_BITS` bits, as many a params word as fit (little-endian), the last word padded."""
    per_word = 64 // GATHER_INDEX_BITS
    entries = np.zeros(-(-len(order) // per_word) * per_word, np.uint64)
    entries[: len(order)] = np.asarray(order, np.uint64)
    shifts = np.arange(per_word, dtype=np.uint64) * np.uint64(GATHER_INDEX_BITS)
    return np.bitwise_or.reduce(entries.reshape(-1, per_word) << shifts, axis=1)
