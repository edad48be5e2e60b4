"""The fast golden model (`ops/facets/golden.convolve`: one product per group over the frames in
the cheapest exact float type, a depthwise conv as a sum over taps; the four-operation rounding
shift; a deformable conv a tap at a time over channel-last rows; frames in cache-sized chunks)
equals the arithmetic it replaced (`support/golden_reference.py`) on every tensor of every op case, every
deformable case and the bundled example models, on random frames over the input type's whole
range (the widest accumulators)."""

from __future__ import annotations

import numpy as np
import pytest
from support.codegen import random_frames
from support.deform_cases import FIXED_GRID, GRID, deform_layer, random_inputs
from support.golden_reference import reference_golden
from support.onnx_models import GraphBuilder
from support.op_cases import CASES, ENGINE_ONLY_CASES, build

from hwcodesign.ops.facets import golden as facets_golden
from hwcodesign.ops.facets.golden import NARROW_WIDTH, frame_chunks
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.quantize import quantize_qdq
from hwcodesign.sim import golden
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


def test_wide_depthwise_convs() -> None:
    """Depthwise convs on a map at least `NARROW_WIDTH` wide (the NCHW path; the op cases' 12x12
    maps take the channel-last one), at strides 1 and 2, and a dilated one."""
    b = GraphBuilder(5)
    x = b.input((1, 8, 40, NARROW_WIDTH + 8))
    y = b.node("Relu", [b.conv(x, 8, 8, groups=8, pads=[1, 1, 1, 1])])
    y = b.conv(y, 8, 8, groups=8, strides=[2, 2], pads=[1, 1, 1, 1])
    z = b.conv(x, 8, 8, groups=8, dilations=[2, 2], pads=[2, 2, 2, 2])
    rng = np.random.default_rng(2)
    samples = [rng.normal(0, 1, (1, 8, 40, NARROW_WIDTH + 8)).astype(np.float32) for _ in range(8)]
    graph = optimize(load_onnx(quantize_qdq(b.model([y, z]), samples)))
    assert sum(op.kind == "DepthwiseConv" for op in graph) == 3
    assert_same_as_reference(graph, random_frames(graph, 4, seed=8), "wide depthwise")


def test_frames_in_chunks_equal_one_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The graph run a frame at a time (`CHUNK_BYTES`), and a depthwise conv's own frames one at a
    time (`PASSES_BYTES`), give what the whole batch at once gives, on every op case and a
    deformable case with a mask (each frame independent)."""
    graphs = []
    for case in sorted(CASES):
        model, calibration = build(case)
        graph = optimize(load_onnx(quantize_qdq(model, calibration)))
        graphs.append((case, graph, random_frames(graph, 5, seed=2)))
    case = next(c for c in GRID if c.mask and c.offset_groups > 1)
    layer = deform_layer(case)
    graphs.append((case.label, layer.graph, random_inputs(layer, 5, seed=2)))
    for label, graph, frames in graphs:
        monkeypatch.setattr(golden, "CHUNK_BYTES", 2**40)
        monkeypatch.setattr(facets_golden, "PASSES_BYTES", 2**40)
        whole = run_golden(graph, frames, keep_intermediates=True)
        monkeypatch.setattr(golden, "CHUNK_BYTES", 1)  # one frame a chunk
        monkeypatch.setattr(facets_golden, "PASSES_BYTES", 1)
        chunked = run_golden(graph, frames, keep_intermediates=True)
        monkeypatch.undo()
        assert whole.keys() == chunked.keys()
        assert all(np.array_equal(whole[name], chunked[name]) for name in whole), label


def test_frame_chunks_cover_every_frame_once_within_the_budget() -> None:
    """`frame_chunks`, which both chunk sizes go through: every frame in one chunk, in order, no
    chunk over the budget unless one frame alone is."""
    assert frame_chunks(0, 100, 1000) == []
    assert frame_chunks(7, 100, 300) == [slice(0, 3), slice(3, 6), slice(6, 9)]
    assert frame_chunks(2, 500, 100) == [slice(0, 1), slice(1, 2)]  # one frame over the budget: alone
    frames = np.arange(23)
    for budget in (1, 8, 40, 10**6):
        chunks = frame_chunks(len(frames), 8, budget)
        assert np.array_equal(np.concatenate([frames[c] for c in chunks]), frames)
        assert all(len(frames[c]) * 8 <= max(budget, 8) for c in chunks)
