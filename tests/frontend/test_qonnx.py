"""QONNX `Quant` models at every bit width 2..8: golden == onnxruntime on the expanded model; QONNX's
custom domains read as qonnx reads them, declared or not."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper
from support.compare import compare_with_onnxruntime
from support.examples import build_models_module
from support.qonnx_by_hand import qonnx_two_convs

from hwcodesign.cli import main
from hwcodesign.errors import ModelFormatError, ModelNote
from hwcodesign.frontend.loader import QONNX_DOMAINS
from hwcodesign.ops import Conv
from hwcodesign.passes import load_onnx, optimize


@pytest.mark.parametrize("bits", range(2, 9))
def test_qonnx_bit_widths_match_onnxruntime(bits: int) -> None:
    model = qonnx_two_convs(bits)
    graph = optimize(load_onnx(model))
    convs = [op for op in graph if isinstance(op, Conv)]
    assert [str(c.weight_type) for c in convs] == [f"int{bits}"] * 2
    assert str(graph.output_tensors()[0].dtype) == f"int{bits}"
    reference = build_models_module().expand_qonnx_quant(model)
    rng = np.random.default_rng(bits)
    inputs = [rng.uniform(0, 1, (1, 3, 10, 10)).astype(np.float32) for _ in range(20)]
    agreement = compare_with_onnxruntime(model, inputs, graph=graph, reference=reference)
    assert agreement.max_lsb <= 1, str(agreement)
    assert agreement.exact_fraction >= 0.99, str(agreement)


def test_narrow_weights_stay_symmetric() -> None:
    graph = load_onnx(qonnx_two_convs(4))
    first = next(op for op in graph if isinstance(op, Conv))
    assert first.weight.min() >= -7 and first.weight.max() <= 7


@pytest.mark.parametrize("domain", QONNX_DOMAINS)
def test_an_undeclared_qonnx_domain_is_read_as_qonnx_reads_it_with_a_note(domain: str) -> None:
    """QONNX zoo and qonnx-exported files may use a custom domain without its opset import; the
    import is added (to a copy) before the checker, and a note says so."""
    declared = qonnx_two_convs(4)
    model = qonnx_two_convs(4)
    for node in model.graph.node:
        if node.domain:
            node.domain = domain
    del model.opset_import[:]
    model.opset_import.append(helper.make_opsetid("", 13))
    with pytest.warns(ModelNote, match=rf"the QONNX domain '{re.escape(domain)}' without declaring an opset"):
        graph = optimize(load_onnx(model))
    assert [op.summary() for op in graph] == [op.summary() for op in optimize(load_onnx(declared))]
    assert [entry.domain for entry in model.opset_import] == [""], "the caller's model is not changed"


def test_an_undeclared_unknown_domain_is_still_refused_by_the_checker() -> None:
    model = qonnx_two_convs(4)
    model.graph.node[0].domain = "com.example.custom"
    with pytest.raises(ModelFormatError, match="No opset import for domain 'com.example.custom'"):
        load_onnx(model)


def test_the_command_line_prints_the_note_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = qonnx_two_convs(4)
    del model.opset_import[:]
    model.opset_import.append(helper.make_opsetid("", 13))
    onnx.save(model, tmp_path / "undeclared.onnx")
    assert main(["simulate", str(tmp_path / "undeclared.onnx"), "--board", "ultra96v2"]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("hwcodesign: note:")]
    assert len(notes) == 1 and "'qonnx.custom_op.general'" in notes[0], notes
