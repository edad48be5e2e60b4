"""Requantization as an integer multiplier and a right shift: the one output stage every layer has.

A layer accumulates in integers; its real output is `acc * r_c` for a per-channel real ratio
r_c = (input scale * weight scale_c) / output scale. Hardware cannot multiply by reals, so r_c
is approximated by `M_c / 2**S_c` with a signed integer M_c of `MULTIPLIER_BITS` magnitude bits
(gemmlowp/TFLite do the same with 31 bits; 24 bits keeps the product of a 32-bit accumulator in
64 bits and maps onto two DSP48E2 multipliers). The rounding mode is stated once, here:

    y = clamp(round_half_even((acc * M_c + offset_c) / 2**S_c) + zero_point, lo, hi)

computed with integers only: q = p >> S (arithmetic, floor), r = p - (q << S); q += 1 when
r > 2**(S-1), or r == 2**(S-1) and q is odd. Round half to even is what ONNX QuantizeLinear
does, so exact ties (frequent in average pooling, where the ratio is 1/4 or 1/9) agree with
onnxruntime; in hardware it costs one comparator on the dropped bits. `lo`/`hi` are the output type's range,
narrowed by a fused ReLU/Clip. `offset_c` carries the part of a folded bias finer than one
accumulator unit (BatchNorm shifts are real numbers, and with 4-bit weights one accumulator
unit can be ~1e-3 of an output LSB); it is added to the wide product, where a DSP48 adds it for
free through its C port. A fused LeakyReLU uses a second multiplier `negative_multiplier`
for the elements whose scaled value is negative, so it costs no second rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MULTIPLIER_BITS = 24
MAX_SHIFT = 62
FLOAT64_INTEGERS = 2**53
"""Every integer of smaller magnitude is a float64 exactly."""
SHIFT_BITS = 6  # holds 0..MAX_SHIFT


def signed_bits(bound: int) -> int:
    """Bits of a signed integer holding every value in [-bound, bound]."""
    return max(2, int(bound).bit_length() + 1)


def largest(values: np.ndarray | None) -> int:
    return 0 if values is None else int(np.abs(values).max(initial=0))


@dataclass(frozen=True, eq=False)
class Requant:
    """Per-channel integer output stage; arrays have one entry per output channel (or one)."""

    multiplier: np.ndarray
    shift: np.ndarray
    zero_point: int
    lo: int
    hi: int
    negative_multiplier: np.ndarray | None = None
    offset: np.ndarray | None = None
    negative_offset: np.ndarray | None = None
    thresholds: np.ndarray | None = None  # (channels or 1, n) integer thresholds: a threshold stage

    @property
    def channels(self) -> int:
        return int(self.multiplier.shape[0])

    @property
    def multiplier_bits(self) -> int:
        """Signed width of the multipliers (positive and LeakyReLU's negative one)."""
        return signed_bits(max(largest(self.multiplier), largest(self.negative_multiplier)))

    @property
    def offset_bits(self) -> int:
        return signed_bits(max(largest(self.offset), largest(self.negative_offset)))

    @property
    def threshold_bits(self) -> int:
        return signed_bits(largest(self.thresholds))

    @property
    def entry_bits(self) -> int:
        """Bits one channel's constants occupy in a ROM once fields that are always zero are
        trimmed (synthesis drops constant ROM outputs): multiplier and shift, then the offset
        and the negative multiplier only when the stage has them; a threshold stage's
        thresholds and its direction bit."""
        if self.thresholds is not None:
            return self.thresholds.shape[1] * self.threshold_bits + 1
        if self.is_identity():
            return 0
        bits = self.multiplier_bits + SHIFT_BITS
        if self.offset is not None:
            bits += self.offset_bits
        if self.negative_multiplier is not None:
            bits += self.multiplier_bits + (self.offset_bits if self.negative_offset is not None else 0)
        return bits

    def is_identity(self) -> bool:
        """True when the stage maps every integer in range to itself (no hardware needed)."""
        return (
            self.thresholds is None
            and self.negative_multiplier is None
            and self.offset is None
            and bool(np.all(self.multiplier == (np.int64(1) << self.shift)))
        )

    def is_sign(self) -> bool:
        """True for a bipolar output stage (`sign_requant`): every output is -1 or +1, decided by
        comparing the accumulator with a per-channel threshold; hardware needs no multiplier."""
        odd = self.offset is not None and bool(np.all(self.offset % 2 == 1)) and self.thresholds is None
        return (odd and self.negative_multiplier is None and (self.zero_point, self.lo, self.hi) == (0, -1, 1)
                and bool(np.all(self.shift == 0)) and bool(np.all(np.isin(self.multiplier, (-2, 0, 2)))))

    def apply(self, acc: np.ndarray, channel_axis: int = 1, bound: float | None = None,
              bias: np.ndarray | None = None) -> np.ndarray:
        """The golden output stage; `acc` holds integers (int64, or a float type holding them
        exactly, as the golden convolutions leave them) with channels along `channel_axis`; the
        result is int64. `bias`: per-channel integers added to `acc` first (a conv's bias). `bound`:
        a bound on |acc + bias| the caller knows (else the arrays' own is taken)."""
        view = [1] * acc.ndim
        view[channel_axis] = -1
        if np.issubdtype(acc.dtype, np.floating):
            exact = self.float_apply(acc, view, bound, bias)
            if exact is not None:
                return exact
            acc = acc.astype(np.int64)
        if bias is not None:
            acc = acc + np.asarray(bias, np.int64).reshape(view)
        if self.thresholds is not None:  # y = lo + #{i: direction * acc >= T_i}
            signed = np.moveaxis(acc * self.multiplier.reshape(view), channel_axis, -1)[..., None]
            count = np.moveaxis(np.count_nonzero(signed >= self.thresholds, axis=-1), -1, channel_axis)
            return np.clip(self.lo + count, self.lo, self.hi)
        if self.is_identity():  # (x * 2**s) >> s: the accumulator itself
            return np.clip(acc + self.zero_point, self.lo, self.hi)
        multiplier = self.multiplier.reshape(view)
        shift = self.shift.reshape(view)
        product = acc * multiplier
        if self.offset is not None:
            product = product + self.offset.reshape(view)
        if self.negative_multiplier is not None:
            negative = acc * self.negative_multiplier.reshape(view)
            if self.negative_offset is not None:
                negative = negative + self.negative_offset.reshape(view)
            product = np.where(product < 0, negative, product)
        return np.clip(round_shift(product, shift) + self.zero_point, self.lo, self.hi)

    def float_apply(self, acc: np.ndarray, view: list[int], bound: float | None = None,
                    bias: np.ndarray | None = None) -> np.ndarray | None:
        """`apply` in float64 on float integers `acc`, when every product and offset is below 2**53;
        None when they may not be, or for thresholds.

        Below 2**53 every integer and every product is exact in float64, and so is each one times
        a power of two. So y = acc * (M * 2**-S) + (bias * M + offset) * 2**-S is (acc + bias) * M +
        offset scaled by 2**-S, exactly: both terms are exact and their sum is representable. `rint`
        then rounds half to even as `round_shift` does. That is two passes over the accumulators
        where multiplying, adding and scaling one at a time took four."""
        if self.thresholds is not None or not acc.size:
            return None
        biases = np.zeros(1, np.int64) if bias is None else np.asarray(bias, np.int64)
        largest = (max(float(acc.max()), -float(acc.min())) + largest_of(biases)) if bound is None else bound
        multipliers = [self.multiplier, self.negative_multiplier]
        offsets = [self.offset, self.negative_offset]
        if largest * max(largest_of(m) for m in multipliers) + max(largest_of(o) for o in offsets) >= FLOAT64_INTEGERS:
            return None
        scale = np.ldexp(1.0, -self.shift).reshape(view)
        if self.negative_multiplier is not None:  # LeakyReLU's two slopes: the sum first
            values = acc.astype(np.float64) + biases.reshape(view)
            product = values * self.multiplier.reshape(view)
            if self.offset is not None:
                product += self.offset.reshape(view)
            negative = values * self.negative_multiplier.reshape(view)
            if self.negative_offset is not None:
                negative += self.negative_offset.reshape(view)
            out = np.where(product < 0, negative, product) * scale
        else:
            constant = biases * self.multiplier + (0 if self.offset is None else self.offset)
            out = np.multiply(acc, self.multiplier.reshape(view) * scale, dtype=np.float64)
            out += np.reshape(constant, view) * scale
        np.rint(out, out=out)
        np.clip(out, self.lo - self.zero_point, self.hi - self.zero_point, out=out)
        result = out.astype(np.int64)
        result += self.zero_point
        return result


def largest_of(values: np.ndarray | None) -> float:
    return float(np.abs(values).max()) if values is not None and np.size(values) else 0.0


def round_shift(product: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """product / 2**shift rounded half to even, in int64 arithmetic only.

    Products below 2**53 in magnitude go through float64, exactly (a power-of-two scale only moves
    the exponent; `rint` rounds half to even). Larger ones: with p = q * 2**s + r (0 <= r < 2**s)
    and s > 0, (p + 2**(s-1) - 1 + (q & 1)) >> s is q when r is below half, q + 1 above it, and
    q + (q & 1) at exactly half: half to even, in four array operations (s = 0 adds nothing)."""
    shift = np.asarray(shift, np.int64)
    if product.size and max(int(product.max()), -int(product.min())) < FLOAT64_INTEGERS:
        # every |product| below 2**53 is a float64 exactly, times 2**-s too; rint rounds half to even
        return np.rint(product * np.ldexp(1.0, -shift)).astype(np.int64)
    half_less_one = np.maximum((np.int64(1) << shift) >> 1, 1) - 1
    odd = (product >> shift) & (shift > 0)
    return (product + half_less_one + odd) >> shift


class RatioOutOfRange(ValueError):
    """A requantization ratio no multiplier/shift pair can hold (the scales are too far apart)."""


def fixed_point(ratio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Approximate each real `ratio` by M / 2**S with |M| in [2**(B-1), 2**B), B=MULTIPLIER_BITS.

    Ratios too small for the largest shift keep S = MAX_SHIFT and a smaller M (possibly 0, which
    is the exact answer to the available precision).
    """
    ratio = np.atleast_1d(np.asarray(ratio, dtype=np.float64))
    if not np.all(np.abs(ratio) < 2.0 ** (MULTIPLIER_BITS - 1)):  # also refuses NaN
        raise RatioOutOfRange(f"requantization ratio {np.abs(ratio).max():.4g} is too large")
    magnitude = np.abs(ratio)
    exponent = np.where(magnitude > 0, np.floor(np.log2(np.where(magnitude > 0, magnitude, 1))), 0)
    shift = np.clip(MULTIPLIER_BITS - 1 - exponent, 0, MAX_SHIFT).astype(np.int64)
    multiplier = np.rint(ratio * np.ldexp(1.0, shift)).astype(np.int64)
    # rint can carry into the next power of two; renormalise those entries by one bit.
    overflow = np.abs(multiplier) >= (1 << MULTIPLIER_BITS)
    if np.any(overflow):
        shift = np.where(overflow, shift - 1, shift)
        multiplier = np.rint(ratio * np.ldexp(1.0, shift)).astype(np.int64)
    return multiplier, shift


def make_requant(
    ratio: np.ndarray,
    zero_point: int,
    lo: int,
    hi: int,
    negative_ratio: np.ndarray | None = None,
    fractional_bias: np.ndarray | None = None,
) -> Requant:
    """Build the output stage for real per-channel ratios (and LeakyReLU's negative slope).

    The negative multiplier shares the positive one's shift so one shifter serves both.
    `fractional_bias` is the bias remainder in accumulator units (|f| <= 0.5) that the integer
    bias could not hold; it becomes the product-domain offset.
    """
    multiplier, shift = fixed_point(ratio)
    scale = np.ldexp(1.0, shift)
    negative = offset = negative_offset = None
    if negative_ratio is not None:
        negative_ratio = np.broadcast_to(np.asarray(negative_ratio, np.float64), multiplier.shape)
        negative = np.rint(negative_ratio * scale).astype(np.int64)
    if fractional_bias is not None and np.any(fractional_bias != 0):
        fraction = np.broadcast_to(np.asarray(fractional_bias, np.float64), multiplier.shape)
        offset = np.rint(fraction * ratio * scale).astype(np.int64)
        if negative_ratio is not None:
            negative_offset = np.rint(fraction * negative_ratio * scale).astype(np.int64)
    return Requant(multiplier, shift, int(zero_point), int(lo), int(hi), negative, offset, negative_offset)


def integer_thresholds(real: np.ndarray, gain: np.ndarray, fraction: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds on the real value v = gain_c * (acc + f_c) as integer thresholds on the
    accumulator: (direction_c, T_c,i) with v >= t_c,i exactly when direction_c * acc >= T_c,i.

    gain > 0: acc >= t/gain - f, so T = ceil(t/gain - f); gain < 0 flips the comparison:
    -acc >= -floor(t/gain - f); gain = 0: v = 0 >= t for every acc or for none (T at the
    accumulator's extremes)."""
    gain = np.atleast_1d(np.asarray(gain, np.float64))
    real = np.atleast_2d(np.asarray(real, np.float64))
    channels = max(gain.size, real.shape[0])
    gain = np.broadcast_to(gain, (channels,))
    real = np.broadcast_to(real, (channels, real.shape[1]))
    fraction = np.zeros(channels) if fraction is None else np.broadcast_to(np.asarray(fraction, np.float64), (channels,))
    direction = np.where(gain < 0, -1, 1).astype(np.int64)
    safe = np.where(gain == 0, 1.0, gain)[:, None]
    level = real / safe - fraction[:, None]
    always = np.int64(-(1 << ACCUMULATOR_LIMIT_BITS))
    thresholds = np.where(gain[:, None] > 0, np.ceil(level), -np.floor(level))
    constant = np.where(real <= 0, always, -always)
    thresholds = np.where(gain[:, None] == 0, constant, np.clip(thresholds, always, -always))
    return direction, thresholds.astype(np.int64)


ACCUMULATOR_LIMIT_BITS = 40
"""Thresholds beyond +-2**40 are never or always met by an accumulator (at most 32 bits wide)."""


def threshold_requant(real: np.ndarray, gain: np.ndarray, fraction: np.ndarray | None, zero_point: int, lo: int,
                      hi: int) -> Requant:
    """A threshold output stage (QONNX/FINN `MultiThreshold`): y = clamp(lo + #{i: v >= t_i},
    lo, hi) for the real value v = gain * (acc + fraction); comparators only, no multiplier."""
    direction, thresholds = integer_thresholds(real, gain, fraction)
    return Requant(direction, np.zeros_like(direction), int(zero_point), int(lo), int(hi),
                   thresholds=np.sort(thresholds, 1))


def sign_requant(gain: np.ndarray, fractional_bias: np.ndarray | None, lo: int, hi: int,
                 threshold: np.ndarray | None = None) -> Requant:
    """The output stage of a bipolar (QONNX `BipolarQuant`) output: +1 where the real value
    v = gain_c * (acc + f_c) is >= t_c (0 unless `threshold`; sign(0) = +1), else -1, exactly,
    for integer accumulators (`integer_thresholds` gives direction s and threshold T).

    As a Requant: y = clamp(2 * (s * acc - T) + 1, -1, 1), i.e. M = 2s, shift 0, offset
    1 - 2T: the product is odd, never 0, so the clamp is the sign. `lo`/`hi` are the output
    range a fused ReLU/Clip left: a range within [0, 1] or [-1, -1] makes the output constant."""
    gain = np.atleast_1d(np.asarray(gain, np.float64))
    real = np.zeros((gain.size, 1)) if threshold is None else np.asarray(threshold, np.float64).reshape(-1, 1)
    side, thresholds = integer_thresholds(real, gain, fractional_bias)
    side = np.where(np.broadcast_to(gain, side.shape) == 0, 0, side)
    offset = np.where(side == 0, np.where(thresholds[:, 0] <= 0, 1, -1), 1 - 2 * thresholds[:, 0])
    if lo >= 0 or hi < 0:  # after a ReLU every value is >= 0: constant +1 (a clip below 0: -1)
        side, offset = np.zeros_like(side), np.full_like(offset, 1 if lo >= 0 else -1)
    return Requant(2 * side, np.zeros_like(side), 0, -1, 1, offset=offset.astype(np.int64))


ROUNDING_MODES = ("ROUND", "HALF_EVEN", "FLOOR", "CEIL")
"""Roundings of acc / 2**shift the output stage computes exactly (`rounding_bias`); QONNX's ROUND
is numpy's, half to even."""


def rounding_bias(shift: int, mode: str) -> float:
    """The accumulator bias b with round_half_even((acc + b) / 2**shift) == mode(acc / 2**shift)
    for every integer acc, so one output stage serves every mode of `ROUNDING_MODES`.

    Floor: write acc = q * 2**shift + r with 0 <= r < 2**shift; b = -(2**shift - 1) / 2 puts
    (r + b) / 2**shift strictly inside (-1/2, 1/2), so the half-even rounding gives q, ties
    never arising. Ceil is the mirror image. A shift <= 0 divides nothing away: every mode is the
    identity. With the stage's multiplier 2**(S - shift), b becomes the product-domain offset
    b * 2**(S - shift), an integer, so the stage is exact (`make_requant`'s `fractional_bias`).
    """
    mode = mode.upper()
    if mode not in ROUNDING_MODES:
        raise ValueError(f"rounding mode {mode} is not one of {', '.join(ROUNDING_MODES)}")
    if shift <= 0 or mode in ("ROUND", "HALF_EVEN"):
        return 0.0
    half = ((1 << shift) - 1) / 2
    return -half if mode == "FLOOR" else half


MAX_THRESHOLD_LEVELS = 16
"""Outputs of up to 4 bits may be computed as thresholds (`as_thresholds`): 2**b - 1 comparators."""


def thresholds_possible(requant: Requant) -> bool:
    """Whether `as_thresholds` can rewrite the stage: a multiply-and-shift (no LeakyReLU, not
    already a sign or threshold stage, not the identity) of 2..`MAX_THRESHOLD_LEVELS` levels."""
    levels = requant.hi - requant.lo + 1
    return (requant.thresholds is None and requant.negative_multiplier is None and not requant.is_identity()
            and not requant.is_sign() and 2 <= levels <= MAX_THRESHOLD_LEVELS)


def as_thresholds(requant: Requant, acc_bound: int) -> Requant | None:
    """The same output stage as comparisons (FINN's thresholding): for every accumulator in
    [-acc_bound, acc_bound], `threshold_stage.apply(acc) == requant.apply(acc)` exactly. None
    when the stage is not a multiply-and-shift of at most `MAX_THRESHOLD_LEVELS` output levels
    monotone in the accumulator (a LeakyReLU's two slopes are left as they are).

    The output is monotone in acc (non-decreasing for M >= 0, non-increasing for M < 0, the
    direction), so level i is reached exactly from T_i = the least direction * acc whose output
    is >= lo + i; a binary search over [-acc_bound, acc_bound] finds each T_i with the stage's
    own integer arithmetic, so nothing is approximated."""
    if not thresholds_possible(requant):
        return None
    levels = requant.hi - requant.lo + 1
    channels = requant.channels
    direction = np.where(requant.multiplier < 0, -1, 1).astype(np.int64)

    def output(signed_acc: np.ndarray) -> np.ndarray:  # (channels, k) values of direction * acc
        return requant.apply(signed_acc * direction[:, None], channel_axis=0)

    bound = int(acc_bound)
    thresholds = np.zeros((channels, levels - 1), np.int64)
    for level in range(1, levels):
        target = requant.lo + level
        low = np.full(channels, -bound - 1, np.int64)  # output below target (or outside the range)
        high = np.full(channels, bound + 1, np.int64)  # output at or above target (or outside)
        while np.any(high - low > 1):
            middle = (low + high) // 2
            reached = output(middle[:, None])[:, 0] >= target
            high = np.where(reached, middle, high)
            low = np.where(reached, low, middle)
        thresholds[:, level - 1] = high
    return Requant(direction, np.zeros(channels, np.int64), requant.zero_point, requant.lo, requant.hi,
                   thresholds=thresholds)


def identity_requant(channels: int, zero_point: int, lo: int, hi: int) -> Requant:
    """The stage for an op whose output keeps its input's scale (max pool, nearest resize)."""
    return Requant(
        np.ones(channels, np.int64), np.zeros(channels, np.int64), zero_point, lo, hi
    )


def shared_shift(ratios: list[float]) -> tuple[list[int], int]:
    """Integer multipliers with one common shift for summing differently scaled inputs (Add).

    The shift is set by the largest ratio so it gets full precision; smaller ratios lose
    relative but not absolute precision.
    """
    multipliers, shifts = fixed_point(np.array(ratios))
    common = int(shifts.min())
    exact = [float(r) * 2.0**common for r in ratios]
    return [int(np.rint(v)) for v in exact], common
