"""The golden DeformConv (fixed-point offsets, integer bilinear sampling) against onnxruntime's
float DeformConv on the dequantized layer: at most 1 LSB apart, for full and depthwise layers,
with and without a mask, offset ranges R in {1, 2, 4, 8}, strides, dilation and groups; and the
fixed shape (offsets d * p_k, onnxruntime computing them as Mul(d, P)), R in {1, 2, 4}."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from support.deform_cases import (
    FIXED_GRID,
    GRID,
    DeformCase,
    deform_layer,
    onnxruntime_reference,
    random_inputs,
)

from hwcodesign.errors import GraphError
from hwcodesign.ir import Graph
from hwcodesign.ops import DeformConv
from hwcodesign.sim.golden import run_golden

CASES = [*GRID, DeformCase(kernel=1, offset_range=2), *FIXED_GRID, DeformCase(fixed_shape=True),
         DeformCase(groups=2, offset_groups=2, mask=True, fixed_shape=True), DeformCase(kernel=5, size=11, fixed_shape=True)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_golden_matches_onnxruntime_within_one_lsb(case: DeformCase) -> None:
    layer = deform_layer(case)
    inputs = random_inputs(layer, frames=20, seed=1)
    golden = run_golden(layer.graph, inputs)["y"]
    reference = onnxruntime_reference(layer, case, inputs)
    difference = np.abs(golden - reference)
    assert difference.max() <= 1, f"max {difference.max()} LSB"
    assert (difference == 0).mean() >= 0.95
    assert golden.std() > 2  # the layer does something (not all one value or clamped)


def test_offsets_beyond_the_range_are_clamped() -> None:
    case = DeformCase(offset_range=1)
    layer = deform_layer(case)
    inputs = random_inputs(layer, frames=2, seed=3)
    inputs["offset"][:] = 127  # +1.5 px, beyond R = 1
    clamped = dict(inputs, offset=np.full_like(inputs["offset"], 85))  # 85 * 1.5/127 = 1.004 px -> R
    assert np.array_equal(run_golden(layer.graph, inputs)["y"], run_golden(layer.graph, clamped)["y"])


def fixed_op(case: DeformCase) -> tuple[Graph, DeformConv]:
    layer = deform_layer(case)
    return layer.graph, next(op for op in layer.graph if isinstance(op, DeformConv))


def test_fixed_shape_offsets_are_d_times_the_pattern() -> None:
    """d_fp * p_k in ONNX offset order, clamped so the outermost tap stays within R."""
    case = DeformCase(dilation=2, offset_range=4, size=11, fixed_shape=True)
    _, op = fixed_op(case)
    assert op.pattern_reach == 2 and op.offset_limit == 4 * 256 // 2 and op.offset_channels == 1
    d_fp = np.arange(-3, 3).reshape(1, 1, 2, 3)
    expected = d_fp * case.pattern.astype(np.int64)  # (1, 18, 2, 3)
    assert np.array_equal(op.expand_offsets(d_fp), expected)


def test_fixed_shape_d_beyond_the_bound_is_clamped() -> None:
    case = DeformCase(offset_range=1, fixed_shape=True)  # d in +-1 px: taps reach +-1 px
    graph, op = fixed_op(case)
    inputs = random_inputs(deform_layer(case), frames=2, seed=3)
    inputs["offset"][:] = 127  # 1.25 px
    at_bound = int(np.ceil(op.offset_limit / 256 / graph.tensor("offset").scale))
    clamped = dict(inputs, offset=np.full_like(inputs["offset"], at_bound))
    assert np.array_equal(run_golden(graph, inputs)["y"], run_golden(graph, clamped)["y"])


@pytest.mark.parametrize(("change", "problem"), [
    ({"kernel": 1}, "1x1 kernel has nothing to scale"),
    ({"kernel": 2, "size": 8}, "needs an odd kernel"),
])
def test_fixed_shape_needs_a_pattern(change: dict[str, int], problem: str) -> None:
    with pytest.raises(GraphError, match=problem):
        deform_layer(dataclasses.replace(DeformCase(fixed_shape=True), **change))


def test_fixed_shape_checks_offset_channels_and_clamp() -> None:
    graph, op = fixed_op(DeformCase(fixed_shape=True))
    free = dataclasses.replace(op, fixed_shape=False)  # reads 1 channel where 18 are needed
    assert any("offset shape" in p for p in free.input_problems(graph.input_tensors(op)))
    wide = dataclasses.replace(op, offset_requant=dataclasses.replace(op.offset_requant, hi=op.offset_limit + 1))
    assert any("offset clamp exceeds" in p for p in wide.input_problems(graph.input_tensors(op)))
