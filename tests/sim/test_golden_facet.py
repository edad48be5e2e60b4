"""The golden facet's own rules and helpers (that every registered op has its arithmetic in its
family is tests/ops/test_registry.py's)."""

from __future__ import annotations

import numpy as np
import pytest

from hwcodesign.ir.op import Op
from hwcodesign.ops import OpUnsupported
from hwcodesign.ops.facets.golden import GoldenRules, exact_matmul, windows


def test_a_family_refuses_an_op_class_it_has_no_rule_for() -> None:
    class Other(Op):
        pass

    with pytest.raises(OpUnsupported, match="no rule for Other"):
        GoldenRules({}).run(Other.__new__(Other), [], [])


def test_exact_matmul_is_exact_on_both_paths() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.integers(-2**12, 2**12, (3, 40)), rng.integers(-2**12, 2**12, (40, 5))
    assert np.array_equal(exact_matmul(a, b, 2.0**12 * 2**12 * 40), a @ b)  # float64 BLAS: sums below 2**53
    a, b = rng.integers(-2**28, 2**28, (3, 40)), rng.integers(-2**28, 2**28, (40, 5))
    expected = a.astype(object) @ b.astype(object)
    assert (exact_matmul(a, b, 2.0**28 * 2**28 * 40).astype(object) == expected).all()  # past 2**53: int64


def test_windows_follow_onnx_padding_stride_and_dilation() -> None:
    x = np.arange(2 * 5 * 6).reshape(1, 2, 5, 6)
    view = windows(x, (3, 2), (2, 1), (1, 0, 1, 1), (1, 2), -1)
    assert view.shape == (1, 2, 3, 5, 3, 2)  # OH = (5+2-3)//2+1, OW = (6+1-3)//1+1 with a dilated span of 3
    assert view[0, 0, 0, 0].tolist() == [[-1, -1], [0, 2], [6, 8]]
