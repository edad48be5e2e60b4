"""QONNX `Quant` models at every bit width 2..8: golden == onnxruntime on the expanded model; QONNX's
custom domains read as qonnx reads them, declared or not."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from support.compare import compare_with_onnxruntime
from support.examples import build_models_module
from support.qonnx_by_hand import qonnx_two_convs, quant

from hwcodesign.cli import main
from hwcodesign.errors import ModelFormatError, ModelNote, UnsupportedModelError
from hwcodesign.frontend.loader import QONNX_DOMAINS
from hwcodesign.ops import Conv
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.sim import quantize_input, run_golden


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


def with_int32_bias(model: onnx.ModelProto, quantized: bool) -> onnx.ModelProto:
    """conv1's bias on its accumulator's grid (input scale x per-channel weight scale), as
    Brevitas's Int32Bias exports it: through a 32-bit `Quant` (`quantized`), or as the float
    values that Quant gives."""
    edited = onnx.ModelProto()
    edited.CopyFrom(model)
    inits = {init.name: numpy_helper.to_array(init) for init in edited.graph.initializer}
    scale = (inits["x_q_scale"] * inits["w1_q_scale"].reshape(-1)).astype(np.float32)
    bias = inits["b1"] * 200  # large enough that its integers need more than 16 bits
    conv = next(node for node in edited.graph.node if node.name == "conv1")
    if quantized:
        nodes, new_inits = [], []
        edited.graph.initializer.append(numpy_helper.from_array(bias.astype(np.float32), "b1_float"))
        quant(nodes, new_inits, "b1_float", "b1_q", scale, 32, signed=True)
        edited.graph.initializer.extend(new_inits)
        edited.graph.node.insert(0, nodes[0])
        conv.input[2] = "b1_q"
    else:
        values = (np.round(bias.astype(np.float32) / scale) * scale).astype(np.float32)
        edited.graph.initializer.append(numpy_helper.from_array(values, "b1_values"))
        conv.input[2] = "b1_values"
    return edited


def test_a_32_bit_bias_quantizer_is_folded_into_the_integer_bias() -> None:
    """Int32Bias: a constant's Quant may be as wide as an accumulator; the layer gets the same
    integer bias as from the float values the Quant gives (beyond 16 bits here)."""
    model = qonnx_two_convs(4)
    through_quant = optimize(load_onnx(with_int32_bias(model, quantized=True)))
    from_values = optimize(load_onnx(with_int32_bias(model, quantized=False)))
    conv, same = (next(op for op in g if isinstance(op, Conv) and op.name == "conv1") for g in (through_quant, from_values))
    assert np.array_equal(conv.bias, same.bias) and np.abs(conv.bias).max() >= 1 << 16
    frames = np.random.default_rng(3).uniform(0, 1, (20, 3, 10, 10)).astype(np.float32)
    outputs = [run_golden(g, quantize_input(g, frames)) for g in (through_quant, from_values)]
    assert all(np.array_equal(outputs[0][name], outputs[1][name]) for name in outputs[0])


def test_a_wide_activation_quantizer_is_refused_naming_the_limit() -> None:
    model = qonnx_two_convs(4)
    bits = next(init for init in model.graph.initializer if init.name == "a1_q_bits")
    bits.CopyFrom(numpy_helper.from_array(np.array(24, np.float32), "a1_q_bits"))
    with pytest.raises(UnsupportedModelError, match=r"a1_q.*bit width \[24.0\] must be one integer 1..16 for an "
                                                    r"activation \(constants such as biases take up to 32\)"):
        load_onnx(model)


def test_weights_through_a_wide_quantizer_take_the_type_their_values_need() -> None:
    """A 24-bit Quant on weights whose integers fit 4 bits gives 4-bit weights; integers that need
    more than 16 bits are refused naming the weights."""
    model = qonnx_two_convs(4)
    bits = next(init for init in model.graph.initializer if init.name == "w1_q_bits")
    bits.CopyFrom(numpy_helper.from_array(np.array(24, np.float32), "w1_q_bits"))
    conv = next(op for op in optimize(load_onnx(model)) if op.name == "conv1")
    assert str(conv.weight_type) == "int4"
    scale = next(init for init in model.graph.initializer if init.name == "w1_q_scale")
    scale.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(scale) / 2 ** 16, "w1_q_scale"))
    with pytest.raises(UnsupportedModelError, match=r"conv1.*weights 'w1_q' \(int24\) hold values of 2\d bits; "
                                                    r"weights take at most 16"):
        load_onnx(model)
