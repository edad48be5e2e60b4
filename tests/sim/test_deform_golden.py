"""The golden DeformConv (fixed-point offsets, integer bilinear sampling) against onnxruntime's
float DeformConv on the dequantized layer: at most 1 LSB apart, for full and depthwise layers,
with and without a mask, offset ranges R in {1, 2, 4, 8}, strides, dilation and groups."""

from __future__ import annotations

import numpy as np
import pytest
from support.deform_cases import GRID, DeformCase, deform_layer, onnxruntime_reference, random_inputs

from hwcodesign.sim.golden import run_golden

CASES = [*GRID, DeformCase(kernel=1, offset_range=2)]


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
