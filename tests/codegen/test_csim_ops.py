"""Every supported op, at several foldings: C simulation of the generated HLS == golden model.

Foldings: fully folded (PE=1, SIMD=1), fully parallel (every lane unrolled) and what the ILP
picks for the Ultra96-V2. Every op case runs in one project per folding (support/op_suite.py:
one g++ build each), on 20 frames of uniform random integers; each case's output is compared,
every element.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.codegen import VARIANTS, build_all, random_frames
from support.op_cases import CASES
from support.op_suite import OpSuite

from hwcodesign.sim.golden import run_golden

FRAMES = 20
Outputs = dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]


@pytest.fixture(scope="module")
def simulated(op_suite: OpSuite) -> Outputs:
    """Per variant and output tensor: (C simulation, golden model) on the same frames."""
    build_all([op_suite.projects[variant] for variant in VARIANTS])
    frames = random_frames(op_suite.graph, FRAMES, seed=11)
    golden = run_golden(op_suite.graph, frames)
    results: Outputs = {}
    for variant in VARIANTS:
        csim = op_suite.projects[variant].csim(frames)
        assert csim.keys() == golden.keys()
        results[variant] = {name: (csim[name], golden[name]) for name in golden}
    return results


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_csim_equals_golden(op_suite: OpSuite, simulated: Outputs, case: str, variant: str) -> None:
    csim, golden = simulated[variant][op_suite.outputs[case]]
    differing = int(np.count_nonzero(csim != golden))
    assert differing == 0, f"{case}/{variant}: {differing} of {golden.size} elements differ"


def test_frames_cover_the_input_range(op_suite: OpSuite) -> None:
    """Guard for the test itself: the frames reach both ends of the input type, where the clamps
    and the extreme products are."""
    frames = random_frames(op_suite.graph, FRAMES, seed=11)
    dtype = op_suite.graph.inputs[0].output.dtype
    assert frames.min() == dtype.min and frames.max() == dtype.max


def test_variants_really_differ(op_suite: OpSuite) -> None:
    """Guard for the test itself: the three variants generate different foldings."""
    conv_name = next(op.name for op in op_suite.members["conv_relu"] if op.kind == "Conv")
    conv = {variant: next(layer["folding"] for layer in op_suite.projects[variant].meta["layers"]
                          if layer["name"] == conv_name) for variant in VARIANTS}
    assert conv["serial"] == "PE1 SIMD1"
    assert conv["parallel"] == "PE8 SIMD36 lutram"  # a ROM word a PE, far below a block's worth
    assert len(set(conv.values())) >= 2


def test_testbench_vectors_pass_under_make_csim(op_suite: OpSuite, tmp_path: Path) -> None:
    """The project's own `make csim` (g++ + shim, the C testbench) passes on its golden vectors."""
    import shutil
    import subprocess

    project = op_suite.projects["mapped"]
    copy = tmp_path / "project"
    shutil.copytree(project.root, copy)
    result = subprocess.run(["make", "-C", str(copy), "csim"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS" in result.stdout
