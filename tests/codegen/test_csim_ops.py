"""Every supported op, at several foldings: C simulation of the generated HLS == golden model.

Foldings per op: fully folded (PE=1, SIMD=1), fully parallel (every lane unrolled) and what
the ILP picks for the Ultra96-V2. 20 frames of uniform random integers each, every element.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.codegen import VARIANTS, assert_bit_exact, build_all, random_frames
from support.op_cases import CASES

from hwcodesign.codegen.project import Project
from hwcodesign.ir.graph import Graph

FRAMES = 20


@pytest.fixture(scope="module")
def compiled_op_projects(op_projects: dict[tuple[str, str], tuple[Graph, Project]]) -> dict[tuple[str, str], tuple[Graph, Project]]:
    build_all([project for _, project in op_projects.values()])
    return op_projects


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_csim_equals_golden(compiled_op_projects: dict[tuple[str, str], tuple[Graph, Project]], case: str,
                            variant: str) -> None:
    graph, project = compiled_op_projects[(case, variant)]
    frames = random_frames(graph, FRAMES, seed=sum(map(ord, case)))
    assert_bit_exact(graph, project, frames, f"{case}/{variant}")


def test_variants_really_differ(op_projects: dict[tuple[str, str], tuple[Graph, Project]]) -> None:
    """Guard for the test itself: the three variants generate different foldings."""
    layers = {variant: op_projects[("conv_relu", variant)][1].meta["layers"] for variant in VARIANTS}
    conv = {variant: next(layer["folding"] for layer in layers[variant] if layer["kind"] == "Conv")
            for variant in VARIANTS}
    assert conv["serial"] == "PE1 SIMD1"
    assert conv["parallel"] == "PE8 SIMD36 lutram"  # a ROM word a PE, far below a block's worth
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
