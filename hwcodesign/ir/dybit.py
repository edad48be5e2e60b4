"""The DyBit number format (Zhou et al., "DyBit: Dynamic Bit-Precision Numbers for Efficient
Quantized Neural Network Inference", arXiv:2302.12510, TCAD 2023).

An n-bit DyBit code (n = 2..8) is sign-magnitude. After the sign bit, the b = n - 1 magnitude
bits split into two fields whose boundary moves with the value:

    s | 1 1 ... 1 0 | m m ... m
        e ones, one 0  k = b - e - 1 mantissa bits

The range field is e leading ones closed by a 0 (no 0 when all b bits are ones, e = b). Small
values (e = 0) spend every remaining bit on precision, large ones spend them on range: a
distribution with a sharp peak at zero and long tails (DNN weights) is covered more evenly than
by a uniform grid. Magnitude in units of the smallest step u:

    e = 0:          m                                  (linear near zero, step 1)
    1 <= e < b:     2**(e-1) * (1 + m / 2**k) / u      = 2**(e+b-2) + m * 2**(2e-1)
    e = b:          2**(2b-2)                          (all ones: the largest value)

with u = 2**-(b-1), so every value is an integer level (4-bit: 0, 1, 2, 3, 4, 6, 8, 16) and a
decoded weight is an ordinary integer the MAC multiplies: the hardware decoder is a small
function of n bits (`decoder_luts`), and the golden model computes on the decoded integers.
The real value is `scale * level` with a per-tensor (or per-channel) scale.

Properties this module relies on and the tests check: the magnitude field read as an unsigned
number is strictly increasing in value, so encoding is a sorted search; every code decodes to
a level and every level encodes back to its code. The one redundant code is negative zero
(sign set, magnitude 0): it decodes to 0 and is never produced by `encode`.

Rounding to the format (`quantize`): nearest level; a tie between two levels goes to the one
of smaller magnitude (toward zero); beyond the largest level the value saturates.

What is the paper's and what is this project's own reading: only the paper's abstract could be
read here, and it says no more than that DyBit is a variable-length encoding whose precision
and range fields change size with the value, to fit DNN weight and activation distributions.
The layout above (sign-magnitude, the unary range field closed by a 0, then the mantissa), the
value formula and its unit u, the all-ones code as the largest value, negative zero as an unused
code, and the rounding (ties toward zero, saturation) are this project's reading, not checked
against the full text: a model whose codes come from the paper's own tools may use another
layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

MIN_BITS, MAX_BITS = 2, 8
LUT_INPUTS = 6  # a LUT6 is any function of six bits (UltraScale+ and 7-series CLBs)


def _check_bits(bits: int) -> None:
    if not MIN_BITS <= int(bits) <= MAX_BITS:
        raise ValueError(f"DyBit codes are {MIN_BITS}..{MAX_BITS} bits wide, got {bits}")


@dataclass(frozen=True)
class Fields:
    """One magnitude field split into its parts (e ones, k mantissa bits holding m)."""

    exponent: int
    mantissa_bits: int
    mantissa: int
    level: int


def split_magnitude(field: int, bits: int) -> Fields:
    """The range/precision split of magnitude field `field` of an n-bit code, and its level."""
    _check_bits(bits)
    b = bits - 1
    exponent = 0
    while exponent < b and field >> (b - 1 - exponent) & 1:
        exponent += 1
    mantissa_bits = b - exponent - 1 if exponent < b else 0
    mantissa = field & ((1 << mantissa_bits) - 1)
    if exponent == 0:
        level = mantissa
    elif exponent < b:
        level = (1 << (exponent + b - 2)) + mantissa * (1 << (2 * exponent - 1))
    else:
        level = 1 << (2 * b - 2)
    return Fields(exponent, mantissa_bits, mantissa, level)


@cache
def _magnitude_levels(bits: int) -> tuple[int, ...]:
    return tuple(split_magnitude(field, bits).level for field in range(1 << (bits - 1)))


def magnitude_levels(bits: int) -> np.ndarray:
    """Level of every magnitude field 0 .. 2**(n-1) - 1 (strictly increasing)."""
    _check_bits(bits)
    return np.array(_magnitude_levels(bits), dtype=np.int64)


def max_level(bits: int) -> int:
    """The largest magnitude, 2**(2n-4) units (1 for the 2-bit, ternary, format)."""
    return int(magnitude_levels(bits)[-1])


def levels(bits: int) -> np.ndarray:
    """Every representable value, in units, sorted: -max .. -1, 0, 1 .. max."""
    magnitudes = magnitude_levels(bits)
    return np.concatenate([-magnitudes[:0:-1], magnitudes])


def decoded_bits(bits: int) -> int:
    """Width of the signed integer the decoder produces (2n - 2 bits)."""
    return max_level(bits).bit_length() + 1


def decoder_luts(bits: int) -> int:
    """LUT6s of one decoder (code -> two's-complement level): each output bit is a function of
    all n code bits, one LUT6 up to six inputs and 2**(n-6) (joined by the free F7/F8 muxes)
    beyond."""
    return decoded_bits(bits) * max(1, 1 << max(0, bits - LUT_INPUTS))


def decode(codes: np.ndarray, bits: int) -> np.ndarray:
    """Codes (unsigned n-bit integers) -> signed integer levels."""
    _check_bits(bits)
    codes = np.asarray(codes, dtype=np.int64)
    if codes.size and (codes.min() < 0 or codes.max() >= 1 << bits):
        raise ValueError(f"DyBit{bits} codes must lie in 0..{(1 << bits) - 1}")
    sign = codes >> (bits - 1) & 1
    magnitude = magnitude_levels(bits)[codes & ((1 << (bits - 1)) - 1)]
    return np.where(sign == 1, -magnitude, magnitude)


def representable(values: np.ndarray, bits: int) -> np.ndarray:
    """Elementwise: is this integer a DyBit level of this width?"""
    values = np.asarray(values, dtype=np.int64)
    return np.isin(np.abs(values), magnitude_levels(bits))


def encode(values: np.ndarray, bits: int) -> np.ndarray:
    """Integer levels -> codes (exact; a value that is not a level is an error)."""
    values = np.asarray(values, dtype=np.int64)
    bad = ~representable(values, bits)
    if bad.any():
        raise ValueError(f"{int(values[bad].flat[0])} is not a DyBit{bits} level "
                         f"({bad.sum()} of {values.size} values are not)")
    field = np.searchsorted(magnitude_levels(bits), np.abs(values))
    return np.where(values < 0, field | 1 << (bits - 1), field).astype(np.int64)


def round_to_levels(units: np.ndarray, bits: int) -> np.ndarray:
    """Real values in units of the step -> nearest level (ties toward zero, saturating)."""
    units = np.asarray(units, dtype=np.float64)
    magnitudes = magnitude_levels(bits)
    target = np.minimum(np.abs(units), magnitudes[-1])
    upper = np.clip(np.searchsorted(magnitudes, target, side="left"), 1, len(magnitudes) - 1)
    low, high = magnitudes[upper - 1], magnitudes[upper]
    picked = np.where(high - target < target - low, high, low)
    return np.where(units < 0, -picked, picked).astype(np.int64)


def quantize(x: np.ndarray, bits: int, scale: float | np.ndarray) -> np.ndarray:
    """Real values -> codes of the nearest DyBit value `scale * level` (`scale` broadcasts, so
    a per-channel scale of shape (C, 1, ...) works the same as a per-tensor one)."""
    return encode(round_to_levels(np.asarray(x, dtype=np.float64) / scale, bits), bits)


def dequantize(codes: np.ndarray, bits: int, scale: float | np.ndarray) -> np.ndarray:
    return decode(codes, bits) * np.asarray(scale, dtype=np.float64)


def code_table(bits: int) -> list[dict[str, int | str]]:
    """Every code of one width: its bits, the fields and the level (the format's table)."""
    rows: list[dict[str, int | str]] = []
    for code in range(1 << bits):
        sign, field = code >> (bits - 1), code & ((1 << (bits - 1)) - 1)
        parts = split_magnitude(field, bits)
        rows.append({"code": code, "bits": format(code, f"0{bits}b"), "sign": sign, "exponent": parts.exponent,
                     "mantissa_bits": parts.mantissa_bits, "mantissa": parts.mantissa,
                     "level": -parts.level if sign else parts.level})
    return rows
