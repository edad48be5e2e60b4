"""ONNX DeformConv from a QDQ model: the three-way check (onnxruntime ~ golden == C simulation),
and the refusal of offsets too wide to stream; the fixed shape (offsets = Mul(d, P), P the
square pattern) detected, bounded by d's Clip, and refused precisely when P is almost right."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from support.codegen import build_all
from support.compare import compare_with_onnxruntime
from support.deform_cases import DeformCase, deform_qdq_model

from hwcodesign.backends import emit_project
from hwcodesign.backends.dataflow import map_pipeline
from hwcodesign.boards import load_board
from hwcodesign.cli.commands import layer_table
from hwcodesign.errors import UnsupportedModelError
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.sim.golden import quantize_input, run_golden

CASES = [
    DeformCase(),
    DeformCase(mask=True),
    DeformCase(channels=6, out_channels=6, groups=6, offset_range=4),
    DeformCase(channels=6, out_channels=6, groups=6, mask=True, offset_range=1),
    DeformCase(offset_range=8, size=12, stride=2),
    DeformCase(groups=2, offset_groups=2, mask=True, offset_range=2),
    DeformCase(fixed_shape=True),
    DeformCase(channels=6, out_channels=6, groups=6, mask=True, dilation=2, size=11, offset_range=4, fixed_shape=True),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_deform_conv_three_way(case: DeformCase, tmp_path: Path) -> None:
    model, samples = deform_qdq_model(case)
    graph = optimize(load_onnx(model))
    deform = next(op for op in graph if op.kind == "DeformConv")
    assert deform.offset_range == case.offset_range and deform.depthwise == (case.groups == case.channels)
    assert deform.has_mask == case.mask and deform.fixed_shape == case.fixed_shape
    agreement = compare_with_onnxruntime(model, samples, graph=graph)
    assert agreement.max_lsb <= 1, str(agreement)
    project = emit_project(graph, map_pipeline(graph, load_board("zcu104")), tmp_path / "deform")
    build_all([project])
    frames = np.concatenate([quantize_input(graph, s) for s in samples])
    golden = run_golden(graph, frames)
    assert all(np.array_equal(project.csim(frames)[name], value) for name, value in golden.items())


def test_unbounded_offsets_are_refused_with_the_fix() -> None:
    """Without the Clip, offsets range as far as their quantization reaches (here +-40 px)."""
    model, _ = deform_qdq_model(DeformCase(offset_range=2))
    clip = next(node for node in model.graph.node if node.name == "off_clip")
    model.graph.node.remove(clip)
    for node in model.graph.node:
        if node.name == "off_dq_quant":
            node.input[0] = "off_c"
            scale = next(i for i in model.graph.initializer if i.name == node.input[1])
            scale.CopyFrom(onnx.numpy_helper.from_array(np.float32(40 / 127), scale.name))
    with pytest.raises(UnsupportedModelError) as error:
        load_onnx(model)
    message = str(error.value)
    assert "DeformConv" in message and "line buffer" in message and "Clip(min=-R, max=R)" in message
    assert "40.3 pixels" in message and "83 rows" in message


def test_clip_on_the_offset_branch_bounds_the_range() -> None:
    """With the Clip kept, the same wide quantization still gives R = 2: the clamp is what counts."""
    model, _ = deform_qdq_model(DeformCase(offset_range=2))
    for node in model.graph.node:
        if node.name == "off_dq_quant":
            scale = next(i for i in model.graph.initializer if i.name == node.input[1])
            scale.CopyFrom(onnx.numpy_helper.from_array(np.float32(40 / 127), scale.name))
    deform = next(op for op in load_onnx(model) if op.kind == "DeformConv")
    assert deform.offset_range == 2


def with_pattern(case: DeformCase, pattern: np.ndarray) -> onnx.ModelProto:
    model, _ = deform_qdq_model(case)
    init = next(i for i in model.graph.initializer if i.name == "pattern")
    init.CopyFrom(onnx.numpy_helper.from_array(pattern.astype(np.float32), "pattern"))
    return model


def test_fixed_shape_is_detected_with_its_bound() -> None:
    """d clipped to +-R / max|p_k| (here 4 / 2): R = 4, d clamped at floor(4 * 256 / 2) / 256."""
    case = DeformCase(dilation=2, offset_range=4, size=11, fixed_shape=True)
    graph = load_onnx(deform_qdq_model(case)[0])
    deform = next(op for op in graph if op.kind == "DeformConv")
    assert deform.fixed_shape and deform.offset_range == 4 and deform.offset_limit == 512
    assert graph.input_tensors(deform)[1].channels == 1
    assert deform.offset_requant.hi == 512
    assert "R4 fixed" in layer_table(graph)


def test_fixed_shape_pattern_in_either_operand_order() -> None:
    model, _ = deform_qdq_model(DeformCase(fixed_shape=True))
    mul = next(node for node in model.graph.node if node.name == "pattern_mul")
    mul.input[0], mul.input[1] = mul.input[1], mul.input[0]
    assert next(op for op in load_onnx(model) if op.kind == "DeformConv").fixed_shape


@pytest.mark.parametrize(("pattern", "message"), [
    (DeformCase(fixed_shape=True).pattern.reshape(1, 1, 1, 18), "P must have shape (1, 18, 1, 1)"),
    (DeformCase(fixed_shape=True).pattern[:, ::-1].copy(), "not the square pattern of a 3x3 kernel"),
    (DeformCase(fixed_shape=True, dilation=2).pattern, "not the square pattern of a 3x3 kernel at dilation (1, 1)"),
])
def test_almost_a_fixed_shape_is_refused_naming_the_mul(pattern: np.ndarray, message: str) -> None:
    with pytest.raises(UnsupportedModelError) as error:
        load_onnx(with_pattern(DeformCase(fixed_shape=True), pattern))
    assert "node 'pattern_mul' (op Mul)" in str(error.value) and "'deform'" in str(error.value)
    assert message in str(error.value)


def test_a_mul_of_another_size_is_an_ordinary_mul() -> None:
    """A scalar gain is no pattern: lowered as today, an unquantized scale of the offsets."""
    with pytest.raises(UnsupportedModelError, match="unquantized layer 'pattern_mul'"):
        load_onnx(with_pattern(DeformCase(fixed_shape=True), np.float32(2.0)))
