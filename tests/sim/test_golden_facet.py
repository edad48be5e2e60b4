"""The golden facet's own rules and helpers (that every registered op has its arithmetic in its
family is tests/ops/test_registry.py's)."""

from __future__ import annotations

import numpy as np
import pytest

from hwcodesign.ir.op import Op
from hwcodesign.ops import OpUnsupported
from hwcodesign.ops.facets.golden import GoldenRules, exact_matmul, exact_type, windows


def test_a_family_refuses_an_op_class_it_has_no_rule_for() -> None:
    class Other(Op):
        pass

    with pytest.raises(OpUnsupported, match="no rule for Other"):
        GoldenRules({}).run(Other.__new__(Other), [], [])


def test_exact_matmul_is_exact_on_every_path() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.integers(-128, 128, (3, 1000)), rng.integers(-128, 128, (1000, 5))
    assert exact_type(128 * 128 * 1000) is np.float32  # sums below 2**24: float32 BLAS
    assert np.array_equal(exact_matmul(a, b, 128 * 128 * 1000), a @ b)
    a, b = rng.integers(-2**12, 2**12, (3, 40)), rng.integers(-2**12, 2**12, (40, 5))
    assert exact_type(2.0**12 * 2**12 * 40) is np.float64
    assert np.array_equal(exact_matmul(a, b, 2.0**12 * 2**12 * 40), a @ b)  # float64 BLAS: sums below 2**53
    a, b = rng.integers(-2**28, 2**28, (3, 40)), rng.integers(-2**28, 2**28, (40, 5))
    expected = a.astype(object) @ b.astype(object)
    assert (exact_matmul(a, b, 2.0**28 * 2**28 * 40).astype(object) == expected).all()  # past 2**53: int64


def test_windows_follow_onnx_padding_stride_and_dilation() -> None:
    x = np.arange(2 * 5 * 6).reshape(1, 2, 5, 6)
    view = windows(x, (3, 2), (2, 1), (1, 0, 1, 1), (1, 2), -1)
    assert view.shape == (1, 2, 3, 5, 3, 2)  # OH = (5+2-3)//2+1, OW = (6+1-3)//1+1 with a dilated span of 3
    assert view[0, 0, 0, 0].tolist() == [[-1, -1], [0, 2], [6, 8]]


def test_float32_sums_at_the_edge_of_exactness() -> None:
    """Below 2**24 every partial sum is an integer float32 holds exactly; at 2**24 + 1 it is not
    (float32 rounds it to 2**24), which is why the bound is strict."""
    ones = np.ones((1, 2**12), np.int64)
    big = np.full((2**12, 1), 2**12 - 1, np.int64)  # a sum of 2**24 - 2**12
    assert int(exact_matmul(ones, big, float(2**12 * (2**12 - 1)))[0, 0]) == 2**24 - 2**12
    assert np.float32(2**24 + 1) == np.float32(2**24)
