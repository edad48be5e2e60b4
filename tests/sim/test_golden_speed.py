"""The fast golden model (`ops/facets/golden.convolve`: one product per group over the whole batch
in the cheapest exact float type, a depthwise conv as a sum over taps; the four-operation rounding
shift; a deformable conv's single read at integer offsets and its exact float product) equals the
arithmetic it replaced (`support/golden_reference.py`) on every tensor of every op case, every
deformable case and the bundled example models, on random frames over the input type's whole
range (the widest accumulators)."""

from __future__ import annotations

import numpy as np
import pytest
from support.codegen import random_frames
from support.deform_cases import FIXED_GRID, GRID, deform_layer, random_inputs
from support.golden_reference import reference_golden
from support.op_cases import CASES, ENGINE_ONLY_CASES, build

from hwcodesign.passes import load_onnx, optimize
from hwcodesign.quantize import quantize_qdq
from hwcodesign.sim.golden import run_golden


def assert_same_as_reference(graph, frames, label: str) -> None:
    fast = run_golden(graph, frames, keep_intermediates=True)
    with reference_golden():
        reference = run_golden(graph, frames, keep_intermediates=True)
    differing = [name for name, values in reference.items() if not np.array_equal(fast[name], values)]
    assert not differing, f"{label}: {differing}"


@pytest.mark.parametrize("case", sorted([*CASES, *ENGINE_ONLY_CASES]))
def test_op_cases(case: str) -> None:
    model, calibration = build(case)
    graph = optimize(load_onnx(quantize_qdq(model, calibration)))
    assert_same_as_reference(graph, random_frames(graph, 5, seed=3), case)


@pytest.mark.parametrize("case", GRID + FIXED_GRID, ids=lambda c: c.label)
def test_deform_cases(case) -> None:
    layer = deform_layer(case)
    assert_same_as_reference(layer.graph, random_inputs(layer, 3, seed=6), case.label)


def test_example_models(example_models) -> None:
    for name in ("w8a8", "w4a8", "cnv"):
        graph = optimize(load_onnx(example_models[name]))
        assert_same_as_reference(graph, random_frames(graph, 3, seed=4), name)
