"""The integer output stage: fixed-point ratios and round-half-to-even shifts, checked exactly."""

from fractions import Fraction

import numpy as np
import pytest

from hwcodesign.ir.requant import (
    MULTIPLIER_BITS,
    ROUNDING_MODES,
    as_thresholds,
    fixed_point,
    make_requant,
    round_shift,
    rounding_bias,
    shared_shift,
)


def exact_round_half_even(numerator: int, shift: int) -> int:
    value = Fraction(numerator, 1 << shift)
    return round(value)  # Python rounds Fractions half to even


def test_round_shift_matches_exact_rational_rounding() -> None:
    rng = np.random.default_rng(0)
    products = rng.integers(-(1 << 40), 1 << 40, 5000)
    products[:8] = [6, 10, -6, -10, 3, -3, 0, 1]  # exact ties of shift 2 and 1 among them
    shifts = rng.integers(0, 30, 5000)
    shifts[:8] = [2, 2, 2, 2, 1, 1, 3, 0]
    got = round_shift(products, shifts)
    expected = [exact_round_half_even(int(p), int(s)) for p, s in zip(products, shifts)]
    assert got.tolist() == expected


@pytest.mark.parametrize("ratio", [1e-9, 3.3e-5, 0.004, 0.25, 0.999, 1.0, 7.5, -0.02])
def test_fixed_point_precision(ratio: float) -> None:
    multiplier, shift = fixed_point(np.array([ratio]))
    approx = multiplier[0] / 2.0 ** shift[0]
    assert abs(approx - ratio) <= abs(ratio) * 2.0 ** -(MULTIPLIER_BITS - 1)
    assert abs(multiplier[0]) < 1 << MULTIPLIER_BITS


def test_requant_applies_clamp_zero_point_and_leaky_slope() -> None:
    stage = make_requant(np.array([0.5]), zero_point=10, lo=0, hi=255, negative_ratio=np.array([0.05]))
    acc = np.array([[-100, -1, 0, 3, 1000]])
    assert stage.apply(acc).tolist() == [[5, 10, 10, 12, 255]]


def test_fractional_bias_offset_is_exact_to_product_precision() -> None:
    stage = make_requant(np.array([0.01]), 0, -128, 127, fractional_bias=np.array([0.4]))
    acc = np.arange(-2000, 2000)
    expected = np.clip(np.round((acc + 0.4) * 0.01), -128, 127)
    assert np.array_equal(stage.apply(acc[None], channel_axis=1)[0], expected)


def test_shared_shift_for_two_inputs() -> None:
    (m_a, m_b), shift = shared_shift([0.75, 0.001])
    assert abs(m_a / 2**shift - 0.75) < 1e-6 and abs(m_b / 2**shift - 0.001) < 1e-6


EXACT_ROUNDINGS = {"ROUND": np.round, "HALF_EVEN": np.round, "FLOOR": np.floor, "CEIL": np.ceil}  # numpy's round: half even


@pytest.mark.parametrize("mode", ROUNDING_MODES)
@pytest.mark.parametrize("shift", range(-3, 13))
def test_rounding_bias_makes_the_stage_round_every_accumulator_as_asked(shift: int, mode: str) -> None:
    """A QONNX Trunc's acc / 2**shift, floored, ceiled or rounded half to even, by the one
    half-even output stage plus `rounding_bias`: every accumulator of 16 bits, exactly (acc / 2**shift
    is exact in float64, so numpy's roundings of it are the exact answers)."""
    accumulators = np.arange(-(1 << 15), 1 << 15, dtype=np.int64)
    requant = make_requant(np.array([2.0 ** -shift]), 0, -(1 << 40), 1 << 40,
                           fractional_bias=np.array([rounding_bias(shift, mode)]))
    expected = EXACT_ROUNDINGS[mode](accumulators / 2.0 ** shift)
    assert np.array_equal(requant.apply(accumulators.reshape(1, -1), channel_axis=0)[0], expected)


def test_a_sign_dependent_rounding_has_no_bias() -> None:
    with pytest.raises(ValueError, match="rounding mode HALF_UP is not one of ROUND, HALF_EVEN, FLOOR, CEIL"):
        rounding_bias(2, "half_up")


@pytest.mark.parametrize("seed", range(40))
def test_a_narrow_output_stage_as_thresholds_is_the_same_function_on_every_reachable_accumulator(seed: int) -> None:
    """`as_thresholds` (FINN's thresholding of a <= 4-bit output) against the multiply-and-shift
    it replaces, on every accumulator in the bound: random per-channel ratios of both signs,
    fractional biases, zero points, signed and unsigned 1..4-bit ranges, clamps hit."""
    rng = np.random.default_rng(seed)
    channels = int(rng.integers(1, 9))
    ratio = rng.uniform(-0.5, 0.5, channels) * 10.0 ** rng.uniform(-2, 0)
    bits, signed = int(rng.integers(1, 5)), bool(rng.integers(0, 2))
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    requant = make_requant(ratio, int(rng.integers(lo, hi + 1)), lo, hi,
                           fractional_bias=rng.uniform(-0.5, 0.5, channels) if seed % 2 else None)
    bound = int(rng.integers(10, 2000))
    stage = as_thresholds(requant, bound)
    if hi == lo:
        assert stage is None
        return
    assert stage is not None and stage.thresholds is not None and stage.thresholds.shape[1] == hi - lo
    acc = np.arange(-bound, bound + 1)[:, None] * np.ones((1, channels), np.int64)
    assert np.array_equal(stage.apply(acc), requant.apply(acc))


def test_wide_outputs_and_leaky_slopes_keep_their_multiplier() -> None:
    assert as_thresholds(make_requant(np.array([0.01]), 0, 0, 255), 1000) is None  # 256 levels
    assert as_thresholds(make_requant(np.array([0.01]), 0, -2, 1, negative_ratio=np.array([0.001])), 1000) is None


def test_the_float_output_stage_with_its_bias_equals_the_integer_one() -> None:
    """`Requant.apply` on float accumulators with the bias beside them (the golden convolutions'
    path: the multiplier folded into the power-of-two scale, bias and offset into one constant)
    gives the integers the int64 stage gives on acc + bias: per-tensor and per-channel multipliers,
    with offsets (fractional biases), LeakyReLU's second slope, signed and unsigned outputs, and
    accumulators up to 2**30 with shifts up to the largest the ratios need."""
    rng = np.random.default_rng(3)
    for trial in range(400):
        channels = int(rng.integers(1, 9))
        per_channel = bool(rng.random() < 0.5)
        ratio = rng.uniform(1e-7, 2, channels if per_channel else 1)
        negative = ratio * rng.uniform(0.01, 0.3) if rng.random() < 0.4 else None
        fraction = rng.uniform(-0.5, 0.5, ratio.shape) if rng.random() < 0.5 else None
        lo, hi = ((-128, 127) if rng.random() < 0.5 else (0, 255))
        requant = make_requant(ratio, int(rng.integers(-10, 20)), lo, hi, negative_ratio=negative,
                               fractional_bias=fraction)
        limit = 2 ** int(rng.integers(4, 31))
        acc = rng.integers(-limit, limit, (3, channels, 4, 4))
        bias = rng.integers(-limit // 4, limit // 4 + 1, channels)
        expected = requant.apply(acc + bias.reshape(1, -1, 1, 1))
        assert np.array_equal(requant.apply(acc.astype(np.float64), bias=bias), expected), (trial, requant)
        assert np.array_equal(requant.apply(acc.astype(np.float64), bias=bias, bound=float(2 * limit)), expected)
        channel_last = requant.apply(acc.transpose(0, 2, 3, 1).astype(np.float64), channel_axis=3, bias=bias)
        assert np.array_equal(channel_last.transpose(0, 3, 1, 2), expected), trial
