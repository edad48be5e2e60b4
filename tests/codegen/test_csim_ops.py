"""Every supported op, at several foldings: C simulation of the generated HLS == golden model.

Foldings per op: fully folded (PE=1, SIMD=1), fully parallel (every lane unrolled) and what
the ILP picks for the Ultra96-V2. 20 frames of uniform random integers each, every element.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.codegen import VARIANTS, build_all, random_frames, variant_mapping
from support.onnx_models import quantize_qdq
from support.op_cases import CASES, build

from hwcodesign.boards import load_board
from hwcodesign.codegen.project import Project, emit_project
from hwcodesign.frontend import load_onnx
from hwcodesign.ir.graph import Graph
from hwcodesign.passes import optimize
from hwcodesign.sim.golden import run_golden

FRAMES = 20


@pytest.fixture(scope="module")
def op_projects(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], tuple[Graph, Project]]:
    root = tmp_path_factory.mktemp("op_projects")
    board = load_board("ultra96v2")
    projects = {}
    for case in sorted(CASES):
        model, calibration = build(case)
        graph = optimize(load_onnx(quantize_qdq(model, calibration)))
        for variant in VARIANTS:
            mapping = variant_mapping(graph, board, variant)
            projects[(case, variant)] = (graph, emit_project(graph, mapping, root / case / variant))
    build_all([project for _, project in projects.values()])
    return projects


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_csim_equals_golden(op_projects: dict[tuple[str, str], tuple[Graph, Project]], case: str, variant: str) -> None:
    graph, project = op_projects[(case, variant)]
    frames = random_frames(graph, FRAMES, seed=hash(case) % 1000)
    golden = run_golden(graph, frames)
    simulated = project.csim(frames)
    assert simulated.keys() == golden.keys()
    for name, expected in golden.items():
        mismatched = int(np.count_nonzero(simulated[name] != expected))
        assert mismatched == 0, f"{case}/{variant}: {mismatched} of {expected.size} elements of '{name}' differ"


def test_variants_really_differ(op_projects: dict[tuple[str, str], tuple[Graph, Project]]) -> None:
    """Guard for the test itself: the three variants generate different foldings."""
    layers = {variant: op_projects[("conv_relu", variant)][1].meta["layers"] for variant in VARIANTS}
    conv = {variant: next(layer["folding"] for layer in layers[variant] if layer["kind"] == "Conv")
            for variant in VARIANTS}
    assert conv["serial"] == "PE1 SIMD1"
    assert conv["parallel"] == "PE8 SIMD36"
    assert len(set(conv.values())) >= 2


def test_testbench_vectors_pass_under_make_csim(op_projects: dict[tuple[str, str], tuple[Graph, Project]],
                                                tmp_path: Path) -> None:
    """The project's own `make csim` (g++ + shim, the C testbench) passes on its golden vectors."""
    import shutil
    import subprocess

    _, project = op_projects[("residual_add", "mapped")]
    copy = tmp_path / "project"
    shutil.copytree(project.root, copy)
    result = subprocess.run(["make", "-C", str(copy), "csim"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS" in result.stdout
