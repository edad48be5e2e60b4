"""Submanifold sparse stages (hwc_sparse.h): C simulation of the generated token dataflow ==
golden model, for kernels 1/3/5, strides 1 and 2 under both downsampling rules (ESDA's stride
block, spconv's conv window), depthwise, residual adds of sparse tensors,
at densities 1% to 50%, fully folded and as the ILP maps them. With tests/frontend/test_sparse.py
(golden within 1 LSB of onnxruntime on the masked-dense model) this is the three-way check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from support.codegen import build_all
from support.sparse_models import SparseCase, SparseLayer, event_frames, sparse_models

from hwcodesign.backends import emit_project
from hwcodesign.backends.dataflow import map_pipeline
from hwcodesign.boards import load_board
from hwcodesign.codegen.packing import StreamLayout, pack_tokens
from hwcodesign.mapper.ilp import fixed_mapping
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.sim.golden import run_golden

S, A, G, F = SparseLayer, SparseLayer("add", of=1), SparseLayer("gap"), SparseLayer("fc", 4)
CASES = [
    SparseCase((S("subm", 6, 1), S("subm", 6, 3), A, G, F)),
    # ESDA's block rule: a 1x1 stride-2 conv whose block reaches a row past its window; 7 -> 4
    # columns at the second stride, a partial last block
    SparseCase((S("subm", 6, 3), S("subm", 8, 3, 2), S("subm", 8, 1, 2), G, F)),
    SparseCase((S("subm", 6, 5), S("subm", 6, 5, 2), S("subm", 6, 3), A, G, F), height=14, width=16,
               downsampling="window"),
    SparseCase((S("subm", 8, 3), S("subm", 8, 3, depthwise=True), S("subm", 8, 3, 2, depthwise=True), G, F)),
    # rows of 80 sites, the eye tracker's: per-row bitmaps wider than one 64-bit word
    SparseCase((S("subm", 4, 3), S("subm", 4, 3, 2), G, F), height=6, width=80),
]
DENSITIES = (0.01, 0.05, 0.2, 0.5)
VARIANTS = ("serial", "mapped")


@pytest.fixture(scope="module")
def sparse_projects(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("sparse_csim")
    board = load_board("ultra96v2")
    projects = {}
    for case in CASES:
        masked, _ = sparse_models(case, event_frames(case, 0.3, 8, seed=1))
        onnx.save(masked, root / f"{case.label}.onnx")
        graph = optimize(load_onnx(root / f"{case.label}.onnx"))
        for variant in VARIANTS:
            mapping = fixed_mapping(graph, board, {}) if variant == "serial" else map_pipeline(graph, board)
            projects[(case.label, variant)] = (case, graph, emit_project(graph, mapping, root / case.label / variant))
    build_all([project for _, _, project in projects.values()])
    return projects


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_sparse_csim_equals_golden(sparse_projects: dict, case: SparseCase, variant: str) -> None:
    _, graph, project = sparse_projects[(case.label, variant)]
    tensor = graph.inputs[0].output
    for density in DENSITIES:
        frames = tensor.quantize(event_frames(case, density, 3, seed=int(density * 997)))
        golden = run_golden(graph, frames)
        simulated = project.csim(frames)
        for name, expected in golden.items():
            differing = int(np.count_nonzero(simulated[name] != expected))
            assert differing == 0, f"{case.label}/{variant} at {density:.0%}: {differing} elements differ"


def test_an_empty_frame_runs(sparse_projects: dict) -> None:
    """No active site at all: every stage passes the end-of-frame token on; the dense tail sees zeros."""
    case, graph, project = sparse_projects[(CASES[0].label, "mapped")]
    frames = np.zeros((2, case.channels, case.height, case.width), np.int64)
    golden = run_golden(graph, frames)
    simulated = project.csim(frames)
    assert all(np.array_equal(simulated[k], v) for k, v in golden.items())


def test_tokens_carry_only_active_sites() -> None:
    """The input stream: a header and the pixel per active site in raster order, then the end word."""
    values = np.zeros((1, 2, 3, 4), np.int64)
    values[0, :, 1, 2] = (3, 0)
    values[0, 1, 2, 0] = 1
    packed = pack_tokens(values, StreamLayout(2, 12, 8, False, 64, pack_pixels=False), zero_point=0, width=4)
    words = packed[0].view("<u8")
    assert words[:5].tolist() == [2 | 1 << 16, 3, 0 | 2 << 16, 1 << 8, 1 << 63]
    assert not words[5:].any() and words.size == 12 * 2 + 1


@pytest.mark.parametrize("case", [CASES[1], CASES[3]], ids=lambda c: c.label)  # strided; depthwise
def test_sparse_stages_are_synthesizable_cpp(sparse_projects: dict, case: SparseCase) -> None:
    from hwcodesign.check.synthesizable import synthesis_problems

    _, _, project = sparse_projects[(case.label, "mapped")]
    assert synthesis_problems(Path(project.root)) == []
