"""DeformConv: C simulation of the generated stage == golden model, at several foldings.

Together with tests/sim/test_deform_golden.py (golden within 1 LSB of onnxruntime's DeformConv)
this is the three-way check for the full and depthwise variants, with and without a mask,
offset ranges 1..8, strides, dilation and groups, with free offsets and with a fixed shape.
"""

from __future__ import annotations

import numpy as np
import pytest
from support.codegen import VARIANTS, build_all
from support.deform_cases import GRID, DeformCase, deform_layer, random_inputs
from support.deform_suite import CASES, DeformSuite, prefix

from hwcodesign.hardware.folding import Folding
from hwcodesign.mapper.cost import layer_cost, stage_plan
from hwcodesign.sim.golden import run_golden

FIXED_DEPTHWISE_MASK = len(GRID) + 2


@pytest.fixture(scope="module")
def deform_outputs(deform_suite: DeformSuite) -> tuple[dict[str, np.ndarray], dict[str, dict[str, np.ndarray]]]:
    """The golden model's outputs of every case on 20 random frames, and each variant's C
    simulation of the same frames (one run of every case)."""
    build_all(list(deform_suite.projects.values()))
    inputs = deform_suite.inputs(frames=20, seed=5)
    golden = run_golden(deform_suite.graph, inputs)
    return golden, {variant: project.csim(inputs) for variant, project in deform_suite.projects.items()}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_deform_csim_equals_golden(deform_suite: DeformSuite, deform_outputs: tuple, case: DeformCase,
                                   variant: str) -> None:
    golden, simulated = deform_outputs[0][deform_suite.output(case)], deform_outputs[1][variant][deform_suite.output(case)]
    assert np.array_equal(simulated, golden), f"{np.count_nonzero(simulated != golden)} elements differ"


def test_each_case_is_its_own_layer(deform_suite: DeformSuite) -> None:
    """The suite's golden model of a case is the case's layer alone: nothing crosses cases."""
    case = CASES[1]
    alone = deform_layer(case)
    inputs = random_inputs(alone, frames=3, seed=2)
    suite_inputs = deform_suite.inputs(frames=3, seed=0)
    suite_inputs.update({f"{prefix(case)}{name}": values for name, values in inputs.items()})
    assert np.array_equal(run_golden(deform_suite.graph, suite_inputs)[deform_suite.output(case)],
                          run_golden(alone.graph, inputs)["y"])


def case_params(deform_suite: DeformSuite, case: DeformCase, variant: str = "mapped") -> str:
    """The params header of the case's deformable stage."""
    root = deform_suite.projects[variant].root
    (header,) = (root / "hls/params").glob(f"*_{prefix(case)}deform.h")
    return header.read_text()


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


def test_generated_stage_uses_the_bounded_window(deform_suite: DeformSuite) -> None:
    params = case_params(deform_suite, CASES[5])  # R = 8
    assert "static const int WINDOW_ROWS = 19;" in params  # (3-1)*1 + 2*8 + 1
    assert "hwc_deform<" in (deform_suite.projects["mapped"].root / "hls/top.cpp").read_text()


def test_fixed_shape_converts_fewer_offsets() -> None:
    """One offset conversion (a DSP) per offset group instead of 2*K*K, for a few pattern LUTs."""
    costs = {}
    for fixed in (False, True):
        layer = deform_layer(DeformCase(channels=16, out_channels=16, size=16, groups=2, offset_groups=2, fixed_shape=fixed))
        op = next(o for o in layer.graph if o.kind == "DeformConv")
        costs[fixed] = layer_cost(op, layer.graph.input_tensors(op), Folding(4, 8))
    assert costs[False].dsp - costs[True].dsp == 2 * (2 * 9) - 2
    assert costs[True].bram18k == costs[False].bram18k  # the same line buffer: R bounds both


def test_fixed_shape_stage_reads_one_offset_per_group(deform_suite: DeformSuite) -> None:
    params = case_params(deform_suite, CASES[FIXED_DEPTHWISE_MASK])
    assert "static const int FIXED_SHAPE = 1;" in params and "static const int OFFSET_C = 1;" in params
    assert "static const int WINDOW_ROWS = 9;" in params  # (3-1)*2 + 2*2 + 1: the pattern stays within R


def test_deform_stages_are_synthesizable_cpp(deform_suite: DeformSuite) -> None:
    """Every case's stage at the ILP's foldings, in both views (C++ build and Vitis's)."""
    from hwcodesign.check.synthesizable import compile_problems, synthesis_problems

    root = deform_suite.projects["mapped"].root
    assert synthesis_problems(root) + compile_problems(root, synthesis_view=True) == []
