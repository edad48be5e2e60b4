"""DeformConv: C simulation of the generated stage == golden model, at several foldings.

Together with tests/sim/test_deform_golden.py (golden within 1 LSB of onnxruntime's DeformConv)
this is the three-way check for the full and depthwise variants, with and without a mask,
offset ranges 1..8, strides, dilation and groups, with free offsets and with a fixed shape.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.codegen import build_all, variant_mapping
from support.deform_cases import FIXED_GRID, GRID, DeformCase, deform_layer, random_inputs

from hwcodesign.backends import emit_project
from hwcodesign.boards import load_board
from hwcodesign.codegen.project import Project
from hwcodesign.hardware.folding import Folding
from hwcodesign.ir.graph import Graph
from hwcodesign.mapper.cost import layer_cost, stage_plan
from hwcodesign.sim.golden import run_golden

CASES = GRID + FIXED_GRID
FIXED_DEPTHWISE_MASK = len(GRID) + 2
VARIANTS = ("serial", "parallel", "mapped")


@pytest.fixture(scope="module")
def deform_projects(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], tuple[Graph, Project]]:
    root = tmp_path_factory.mktemp("deform")
    board = load_board("zcu104")
    projects = {}
    for case in CASES:
        graph = deform_layer(case).graph
        for variant in VARIANTS:
            mapping = variant_mapping(graph, board, variant)
            projects[(case.label, variant)] = (graph, emit_project(graph, mapping, root / case.label / variant))
    build_all([project for _, project in projects.values()])
    return projects


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_deform_csim_equals_golden(deform_projects: dict[tuple[str, str], tuple[Graph, Project]],
                                   case: DeformCase, variant: str) -> None:
    graph, project = deform_projects[(case.label, variant)]
    inputs = random_inputs(deform_layer(case), frames=20, seed=5)
    golden = run_golden(graph, inputs)["y"]
    simulated = project.csim(inputs)["y"]
    assert np.array_equal(simulated, golden), f"{np.count_nonzero(simulated != golden)} elements differ"


def test_line_buffer_grows_with_the_offset_range() -> None:
    """(K-1)*dil + 2R + 1 rows, and the BRAM the cost model counts follows them."""
    rows, bram = [], []
    for offset_range in (1, 2, 4, 8, 16):
        layer = deform_layer(DeformCase(channels=64, out_channels=64, size=64, offset_range=offset_range))
        op = next(o for o in layer.graph if o.kind == "DeformConv")
        rows.append(stage_plan(op, layer.graph.input_tensors(op), Folding(4, 8)).window_rows)
        bram.append(layer_cost(op, layer.graph.input_tensors(op), Folding(4, 8)).bram18k)
    assert rows == [2 + 2 * r + 1 for r in (1, 2, 4, 8, 16)]
    assert bram == sorted(bram) and bram[-1] > bram[0]


def test_generated_stage_uses_the_bounded_window(deform_projects: dict[tuple[str, str], tuple[Graph, Project]]) -> None:
    case = CASES[5]  # R = 8
    _, project = deform_projects[(case.label, "mapped")]
    params = "".join(p.read_text() for p in (Path(project.root) / "hls/params").glob("*.h"))
    assert "static const int WINDOW_ROWS = 19;" in params  # (3-1)*1 + 2*8 + 1
    assert "hwc_deform<" in (Path(project.root) / "hls/top.cpp").read_text()


def test_fixed_shape_converts_fewer_offsets() -> None:
    """One offset conversion (a DSP) per offset group instead of 2*K*K, for a few pattern LUTs."""
    costs = {}
    for fixed in (False, True):
        layer = deform_layer(DeformCase(channels=16, out_channels=16, size=16, groups=2, offset_groups=2, fixed_shape=fixed))
        op = next(o for o in layer.graph if o.kind == "DeformConv")
        costs[fixed] = layer_cost(op, layer.graph.input_tensors(op), Folding(4, 8))
    assert costs[False].dsp - costs[True].dsp == 2 * (2 * 9) - 2
    assert costs[True].bram18k == costs[False].bram18k  # the same line buffer: R bounds both


def test_fixed_shape_stage_reads_one_offset_per_group(deform_projects: dict[tuple[str, str], tuple[Graph, Project]]) -> None:
    _, project = deform_projects[(CASES[FIXED_DEPTHWISE_MASK].label, "mapped")]
    params = "".join(p.read_text() for p in (Path(project.root) / "hls/params").glob("*.h"))
    assert "static const int FIXED_SHAPE = 1;" in params and "static const int OFFSET_C = 1;" in params
    assert "static const int WINDOW_ROWS = 9;" in params  # (3-1)*2 + 2*2 + 1: the pattern stays within R


@pytest.mark.parametrize("index", [1, 3, FIXED_DEPTHWISE_MASK])  # full / depthwise with mask; fixed depthwise
def test_deform_stage_is_synthesizable_cpp(deform_projects: dict[tuple[str, str], tuple[Graph, Project]], index: int) -> None:
    from hwcodesign.check.synthesizable import synthesis_problems

    _, project = deform_projects[(CASES[index].label, "mapped")]
    assert synthesis_problems(Path(project.root)) == []
