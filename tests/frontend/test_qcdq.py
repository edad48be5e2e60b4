"""Brevitas's QCDQ below 8 bits: QuantizeLinear -> Clip -> DequantizeLinear read as one quantizer of
the Clip's range, for activations and weights, at every bit width 2..8, signed, unsigned and
narrow-range, as `export_onnx_qcdq` writes them (TorchScript: integer weights; dynamo: a
QuantizeLinear on the weights); golden == onnxruntime. A Clip anywhere else is what it was."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from support.compare import compare_with_onnxruntime

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.ir.types import IntType
from hwcodesign.ops import Conv
from hwcodesign.passes import PassOptions, load_onnx, optimize
from hwcodesign.passes.pipeline import lower
from hwcodesign.reference import Reference
from hwcodesign.sim import quantize_input, run_golden

pytest.importorskip("brevitas")
from support.brevitas_layers import Exports, conv_net, trunc_pool  # noqa: E402

SHAPE = (1, 3, 8, 8)
ACTIVATIONS = ("signed", "narrow", "unsigned", "unsigned-narrow")
RANGES = {  # the integers each activation kind keeps at `bits`
    "signed": lambda b: (-(1 << (b - 1)), (1 << (b - 1)) - 1),
    "narrow": lambda b: (1 - (1 << (b - 1)), (1 << (b - 1)) - 1),
    "unsigned": lambda b: (0, (1 << b) - 1),
    "unsigned-narrow": lambda b: (0, (1 << b) - 2),
}


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Exports:
    return Exports(tmp_path_factory.mktemp("qcdq"))


def conv_export(exports: Exports, bits: int, activation: str, exporter: str = "qcdq") -> onnx.ModelProto:
    narrow = activation in ("narrow", "unsigned-narrow")
    return exports(f"conv{bits}-{activation}", conv_net(bits, activation, weight_narrow=narrow), SHAPE, exporter)


def frames(count: int = 20, spread: float = 2.0) -> list[np.ndarray]:
    """Wide enough that inputs and outputs saturate at both ends of every range."""
    rng = np.random.default_rng(5)
    return [rng.normal(0, spread, SHAPE).astype(np.float32) for _ in range(count)]


def node_named(model: onnx.ModelProto, op_type: str, index: int = 0) -> onnx.NodeProto:
    return [node for node in model.graph.node if node.op_type == op_type][index]


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("bits", range(2, 9))
def test_qcdq_bit_widths_match_onnxruntime(exports: Exports, bits: int, activation: str) -> None:
    model = conv_export(exports, bits, activation)
    clips = [node for node in model.graph.node if node.op_type == "Clip"]
    assert clips or (bits == 8 and activation in ("signed", "unsigned")), "Brevitas writes a Clip below 8 bits"
    graph = optimize(load_onnx(model))
    conv = next(op for op in graph if isinstance(op, Conv))
    narrow_weights = activation in ("narrow", "unsigned-narrow")
    assert conv.weight_type == IntType(bits, True)
    assert conv.weight.min() >= -(1 << (bits - 1)) + narrow_weights and conv.weight.max() <= (1 << (bits - 1)) - 1
    output = graph.output_tensors()[0]
    assert output.dtype == IntType(bits, activation in ("signed", "narrow"))
    assert (conv.requant.lo, conv.requant.hi) == RANGES[activation](bits)
    agreement = compare_with_onnxruntime(model, frames(), graph=graph)
    assert agreement.max_lsb <= 1, str(agreement)
    assert agreement.exact_fraction >= 0.99, str(agreement)


@pytest.mark.parametrize(("bits", "activation"), [(2, "signed"), (3, "unsigned"), (4, "narrow"), (8, "unsigned-narrow")])
def test_dynamo_export_quantizes_weights_through_the_clip(exports: Exports, bits: int, activation: str) -> None:
    """Brevitas's dynamo QCDQ export writes QuantizeLinear(W) -> Clip -> DequantizeLinear."""
    model = conv_export(exports, bits, activation, "qcdq-dynamo")
    initializers = {init.name for init in model.graph.initializer}
    assert any(node.op_type == "QuantizeLinear" and node.input[0] in initializers for node in model.graph.node)
    graph = optimize(load_onnx(model))
    assert next(op for op in graph if isinstance(op, Conv)).weight_type == IntType(bits, True)
    agreement = compare_with_onnxruntime(model, frames(), graph=graph)
    assert agreement.max_lsb <= 1 and agreement.exact_fraction >= 0.99, str(agreement)


def test_a_narrow_input_is_clamped_to_the_clip(exports: Exports) -> None:
    """The host quantizes into the whole int4; the reference clips an input below -7.5 to -7, so
    a clamp layer follows the accelerator's input."""
    graph = optimize(load_onnx(conv_export(exports, 4, "narrow")))
    first, clamp = list(graph)[:2]
    assert first.output.dtype == IntType(4, True) and (clamp.requant.lo, clamp.requant.hi) == (-7, 7)
    agreement = compare_with_onnxruntime(conv_export(exports, 4, "narrow"), frames(spread=6.0), graph=graph)
    assert agreement.max_lsb <= 1 and agreement.exact_fraction >= 0.99, str(agreement)


def test_qcdq_trunc_avg_pool_is_a_narrow_quantizer_after_the_pool(exports: Exports) -> None:
    """QCDQ writes TruncAvgPool2d as AveragePool -> QuantizeLinear -> Clip -> DequantizeLinear: a
    rounding (not a Trunc) to the 4-bit range, here of the window sum / 4. The golden model rounds
    its ties to even; onnxruntime's float average lands a hair off them, either way: elements
    differ (by 1) only at those ties."""
    model = exports("trunc-pool4", trunc_pool(4, "floor", adaptive=False, out_bits=4), SHAPE, "qcdq")
    assert [node.op_type for node in model.graph.node][-4:] == ["AveragePool", "QuantizeLinear", "Clip",
                                                                 "DequantizeLinear"]
    graph = optimize(load_onnx(model))
    relu, pool = list(graph)[-2:]
    assert graph.output_tensors()[0].dtype == IntType(4, False)
    assert np.all(pool.requant.multiplier * 4 == 1 << pool.requant.shift), "the output is the window sum / 4"
    pooled = next(node for node in model.graph.node if node.op_type == "AveragePool").input[0]
    reference = Reference(model, intermediates=[pooled])
    for x in frames():
        expected = reference.run({reference.input_names[0]: x})
        pool_input = relu.output.quantize(expected[pooled])
        window_sums = pool_input.reshape(1, 3, 4, 2, 4, 2).sum(axis=(3, 5))
        golden = run_golden(graph, quantize_input(graph, x))[pool.output.name]
        difference = np.abs(golden - pool.output.quantize(expected[reference.output_names[0]]))
        differ = difference != 0
        assert difference.max() <= 1
        assert np.all(window_sums[differ] % 4 == 2), "differences only at ties"


def refused(model: onnx.ModelProto, node: onnx.NodeProto, reason: str) -> None:
    with pytest.raises(UnsupportedModelError, match=rf"node '{re.escape(node.name)}' \(op {node.op_type}\): {reason}"):
        load_onnx(model)


def rewired(model: onnx.ModelProto, op_type: str, index: int, value: int) -> onnx.NodeProto:
    """The first `op_type` node of `model`, its input `index` now a new int8 constant `value`."""
    node = node_named(model, op_type)
    name = f"{op_type}_input{index}_{value}"
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.array(value, np.int8), name))
    node.input[index] = name
    return node


def test_a_clip_read_by_more_than_its_dequantizer_stays_an_activation(exports: Exports) -> None:
    """A Clip whose integers something else reads is not a quantizer's: lowered as before, it
    clips a real value, which its DequantizeLinear refuses to read as integers."""
    model = conv_export(exports, 4, "signed")
    clip = node_named(model, "Clip")
    model.graph.output.append(onnx.helper.make_tensor_value_info(clip.output[0], onnx.TensorProto.INT8, list(SHAPE)))
    dequantize = next(node for node in model.graph.node if clip.output[0] in node.input and
                      node.op_type == "DequantizeLinear")
    refused(model, dequantize, "cannot dequantize .* it is not an integer tensor")


def test_an_empty_clip_range_is_refused_naming_the_clip(exports: Exports) -> None:
    model = conv_export(exports, 4, "signed")
    refused(model, rewired(model, "Clip", 1, 100), r"range \[100, 7\] keeps no value")


def test_a_zero_point_outside_the_clip_is_refused_naming_the_quantizer(exports: Exports) -> None:
    model = conv_export(exports, 2, "signed")
    refused(model, rewired(model, "QuantizeLinear", 2, 3),
            r"zero point \[3\] is outside the range \[-2, 1\] of the Clip after it")


def test_without_the_pass_a_qcdq_activation_is_refused(exports: Exports) -> None:
    model = conv_export(exports, 4, "signed")
    assert len(load_onnx(model)) == 2
    with pytest.raises(UnsupportedModelError, match=r"\(op DequantizeLinear\): cannot dequantize"):
        load_onnx(model, PassOptions(frozenset({"recognize-narrow-quantizers"})))


def clip_model(bounds: tuple[float, float], opset: int) -> onnx.ModelProto:
    """x -> QuantizeLinear(int8) -> Clip -> DequantizeLinear -> Relu -> QuantizeLinear: the Clip's
    bounds as inputs (opset 13) or attributes (opset 10)."""
    helper = onnx.helper
    inits = [onnx.numpy_helper.from_array(np.array(0.5, np.float32), "s"),
             onnx.numpy_helper.from_array(np.array(0, np.int8), "z")]
    if opset >= 11:
        inits += [onnx.numpy_helper.from_array(np.array(b, np.int8), n) for b, n in zip(bounds, ("lo", "hi"))]
        clip = helper.make_node("Clip", ["xq", "lo", "hi"], ["xc"], name="clip")
    else:
        clip = helper.make_node("Clip", ["xq"], ["xc"], name="clip", min=bounds[0], max=bounds[1])
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q"), clip,
             helper.make_node("DequantizeLinear", ["xc", "s", "z"], ["xd"], name="dq"),
             helper.make_node("Relu", ["xd"], ["r"], name="relu"),
             helper.make_node("QuantizeLinear", ["r", "s", "z"], ["y"], name="q_out")]
    graph = helper.make_graph(nodes, "clip", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2, 4, 4])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.INT8, [1, 2, 4, 4])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=7)


@pytest.mark.parametrize("opset", [10, 13])
def test_clip_bounds_as_inputs_or_attributes(opset: int) -> None:
    """Before opset 11 Clip's bounds are attributes (the ONNX checker allows only float Clips
    there, so this reads the lowering alone)."""
    graph = lower(clip_model((-2, 1), opset))
    assert graph.inputs[0].output.dtype == IntType(2, True)
    assert graph.output_tensors()[0].dtype == IntType(8, True)


def test_a_clip_with_fractional_bounds_is_not_a_quantizer() -> None:
    with pytest.raises(UnsupportedModelError, match=r"'dq' \(op DequantizeLinear\): cannot dequantize"):
        lower(clip_model((-1.5, 1), 10))


def test_brevitas_refuses_a_binary_qcdq_quantizer(tmp_path: Path) -> None:
    """Below 2 bits there is no QCDQ: Brevitas asserts before writing anything (bipolar and 1-bit
    quantizers export only as QONNX)."""
    with pytest.raises(AssertionError, match="Binary quant not supported"):
        Exports(tmp_path)("conv1", conv_net(1, "signed", weight_narrow=False), SHAPE, "qcdq")
