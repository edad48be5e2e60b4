"""1-bit bipolar networks (QONNX `BipolarQuant`, FINN's BNNs): the sign output stage, the lowering
against qonnx's own executor, and the XNOR-popcount stage in C simulation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper
from support.qonnx_by_hand import DOMAIN, bipolar_quant, qonnx_binary_net, quant
from support.qonnx_reference import qonnx_tensors

from hwcodesign.backends.choose import emit_project
from hwcodesign.backends.dataflow import map_pipeline
from hwcodesign.boards import load_board
from hwcodesign.errors import UnsupportedModelError
from hwcodesign.hardware.units import xnor_macs
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.requant import sign_requant
from hwcodesign.mapper.cost import candidate_foldings
from hwcodesign.ops import Conv, Linear
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.sim import run_golden


def test_the_sign_stage_is_the_sign_of_the_real_value_for_every_accumulator() -> None:
    rng = np.random.default_rng(0)
    ratio = np.concatenate([rng.uniform(-3, 3, 40), [0.0, 1e-9, -1e-9]])
    fraction = np.concatenate([rng.uniform(-0.5, 0.5, 37), [0.5, -0.5, 0.0, 0.5, -0.5, 0.0]])
    stage = sign_requant(ratio, fraction, -1, 1)
    acc = np.arange(-300, 301)[:, None] * np.ones((1, ratio.size), np.int64)
    expected = np.where(ratio * (acc + fraction) >= 0, 1, -1)
    assert stage.is_sign()
    assert np.array_equal(stage.apply(acc), expected)


def test_after_a_relu_the_sign_is_always_plus_one() -> None:
    stage = sign_requant(np.array([1.0, -2.0]), None, 0, 1)
    assert stage.is_sign()
    assert np.array_equal(stage.apply(np.arange(-9, 9)[:, None] * np.ones((1, 2), np.int64)), np.ones((18, 2)))


def test_bipolar_weights_are_the_sign_qonnx_computes() -> None:
    from qonnx.custom_op.general.bipolar_quant import binary_quant

    graph = load_onnx(qonnx_binary_net())
    model = qonnx_binary_net()
    weights = {init.name: onnx.numpy_helper.to_array(init) for init in model.graph.initializer}
    convs = [op for op in graph if isinstance(op, Conv | Linear)]
    assert [str(op.weight_type) for op in convs] == ["bipolar"] * 4
    for op, name in zip(convs, ("w1", "w2", "w3", "w4")):
        reference = binary_quant(weights[name], np.float32(1.0))
        assert np.array_equal(op.weight.reshape(reference.shape), reference)


def accelerator_inputs(graph: Graph, reference: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {op.name: op.output.quantize(reference[op.name]).reshape(-1, *op.output.shape[1:]) for op in graph.inputs}


def test_a_binarised_network_equals_qonnx_exactly() -> None:
    """Every layer fed qonnx's own inputs: the sign stages and the 2-bit and 8-bit outputs equal
    qonnx's execution on every element (the accumulators are exact integers)."""
    model = qonnx_binary_net()
    graph = optimize(load_onnx(model))
    frames = [np.random.default_rng(i).uniform(0, 1, (1, 3, 10, 10)).astype(np.float32) for i in range(20)]
    tensors = [op.output for op in graph if op.kind != "Input"]
    reference = qonnx_tensors(model, frames, [t.name for t in tensors] + [op.name for op in graph.inputs])
    golden = run_golden(graph, accelerator_inputs(graph, reference), keep_intermediates=True)
    kinds = {str(t.dtype) for t in tensors}
    assert {"bipolar", "uint2", "int8"} <= kinds
    for tensor in tensors:
        expected = tensor.quantize(reference[tensor.name]).reshape(golden[tensor.name].shape)
        assert np.array_equal(golden[tensor.name], expected), tensor.name


def test_xnor_stages_take_no_dsp_and_run_bit_exact(tmp_path: Path) -> None:
    """Bipolar x bipolar lanes are XNORs and a popcount in LUTs (never offered DSPs) unless the
    window is padded; sign output stages take no DSP; C simulation equals the golden model."""
    graph = optimize(load_onnx(qonnx_binary_net()))
    mapping = map_pipeline(graph, load_board("pynqz2"))
    binary = {op.name: op for op in graph if isinstance(op, Conv) and xnor_macs(op.weight_type,
                                                                                graph.input_tensors(op)[0].dtype)}
    assert sorted(binary) == ["conv2_padded", "conv3_xnor"]
    for op in binary.values():
        assert {f.mac for f in candidate_foldings(op, graph.input_tensors(op))} == {"lut"}
    signs = [op for op in graph if isinstance(op, Conv) and op.requant.is_sign()]
    assert [op.name for op in signs] == ["conv1", "conv2_padded"]
    for op in signs:
        if mapping.foldings[op.name].mac == "lut":
            assert mapping.costs[op.name].dsp == 0, op.name
    project = emit_project(graph, mapping, tmp_path / "binary")
    params = project.root / "hls" / "params"
    xnor = {path.stem for path in params.glob("*.h") if "static const int XNOR = 1;" in path.read_text()}
    assert [name.split("_", 1)[1] for name in xnor] == ["conv3_xnor"]
    frames = np.random.default_rng(1).integers(0, 256, (6, *graph.inputs[0].output.shape[1:]))
    simulated, expected = project.csim(frames), run_golden(graph, frames)
    for name, values in expected.items():
        assert np.array_equal(simulated[name], values), name


@pytest.mark.parametrize("op_type", ["Add"])
def test_a_bipolar_sum_is_refused_naming_the_node(op_type: str) -> None:
    nodes: list = []
    inits: list = []
    x = quant(nodes, inits, "input", "x_q", np.array(1 / 255), 8, signed=False)
    nodes.append(helper.make_node(op_type, [x, x], ["s"], name="the_sum"))
    bipolar_quant(nodes, inits, "s", "y", np.array(1.0))
    graph = helper.make_graph(nodes, "sum", [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1, 2, 4, 4])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2, 4, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(DOMAIN, 1)],
                              ir_version=10)
    with pytest.raises(UnsupportedModelError, match="the_sum.*bipolar"):
        load_onnx(model)


@pytest.mark.parametrize(("quantizer", "message"), [
    ("BipolarQuant", r"scale \[4, 1, 1, 1\] does not broadcast to 'w1' \[8, 3, 3, 3\]"),
    ("Quant", r"scale \[4, 1, 1, 1\] and zero point \[\] do not broadcast to 'w1' \[8, 3, 3, 3\]"),
])
def test_a_weight_scale_that_does_not_fit_the_weights_is_refused_naming_both(quantizer: str, message: str) -> None:
    model = qonnx_binary_net()
    scale = next(node for node in model.graph.node if node.output[0] == "w1_q").input[1]
    init = next(i for i in model.graph.initializer if i.name == scale)
    init.CopyFrom(onnx.numpy_helper.from_array(np.ones((4, 1, 1, 1), np.float32), scale))
    if quantizer == "Quant":
        node = next(node for node in model.graph.node if node.output[0] == "w1_q")
        for suffix, value in (("zp", 0.0), ("bits", 2.0)):
            model.graph.initializer.append(onnx.numpy_helper.from_array(np.array(value, np.float32), f"w1_q_{suffix}"))
        node.CopyFrom(helper.make_node("Quant", [node.input[0], scale, "w1_q_zp", "w1_q_bits"], ["w1_q"], name="w1_q",
                                       domain=DOMAIN, signed=1, narrow=0, rounding_mode="ROUND"))
    with pytest.raises(UnsupportedModelError, match=message):
        load_onnx(model)
