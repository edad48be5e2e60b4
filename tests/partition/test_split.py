"""The host/accelerator split on models as torch and onnxruntime's quantizer write them."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from support import host_models, op_cases
from support.onnx_models import IR_VERSION, GraphBuilder
from support.qonnx_by_hand import DOMAIN as QONNX_DOMAIN
from support.qonnx_by_hand import qonnx_two_convs, quant

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.ir.op import Input
from hwcodesign.partition import ACCELERATOR, AFTER, BEFORE, HostOptions, load_partitioned, split_model
from hwcodesign.passes import optimize
from hwcodesign.passes.lowering import handled_op_types
from hwcodesign.quantize import quantize_qdq
from hwcodesign.reference import Reference

SUPPORTED = handled_op_types()


@pytest.fixture(scope="module")
def models() -> dict[str, host_models.HostModel]:
    return {name: build() for name, build in host_models.BUILDERS.items()}


def host_nodes(partition: object, place: str) -> list[str]:
    return partition.placement.nodes(place)  # type: ignore[attr-defined]


def op_types(model: onnx.ModelProto | None) -> list[str]:
    return [] if model is None else [node.op_type for node in model.graph.node if node.op_type != "Constant"]


def test_normalisation_before_and_softmax_after(models: dict) -> None:
    partition = split_model(models["normalised_softmax"].model, SUPPORTED)
    assert op_types(partition.pre) == ["Sub", "Div"]
    assert op_types(partition.post) == ["Softmax", "QuantizeLinear", "DequantizeLinear"]
    assert partition.placement.reasons["/Softmax"] == "Softmax has no accelerator lowering"
    # the accelerator reads what the Div writes and ends at the dequantized logits
    assert partition.accelerator_inputs == ["/Div_output_0"]
    assert op_types(partition.accelerator)[-1] == "DequantizeLinear"
    assert [node.op_type for node in partition.accelerator.graph.node].count("Softmax") == 0


def test_gru_head_runs_on_the_host_with_its_state(models: dict) -> None:
    partition = split_model(models["gru_head"].model, SUPPORTED)
    assert "GRU" in op_types(partition.post) and "Gemm" in op_types(partition.post)
    assert partition.pre is None
    (state,) = partition.state
    assert (state.input, state.output, state.shape) == ("hidden", "hidden_next", (1, 1, host_models.HIDDEN))
    assert [t.name for t in partition.inputs] == ["frame"] and [t.name for t in partition.outputs] == ["centre"]


def test_bipolar_scaling_and_float_classifier(models: dict) -> None:
    bipolar = split_model(models["bipolar_input"].model, SUPPORTED)
    assert op_types(bipolar.pre) == ["Mul", "Sub"] and bipolar.post is None
    classifier = split_model(models["float_classifier"].model, SUPPORTED)
    assert op_types(classifier.post) == ["Gemm"] and classifier.pre is None


@pytest.mark.parametrize("case", sorted(op_cases.CASES))
def test_a_model_without_float_parts_is_its_own_accelerator_part(case: str) -> None:
    model, samples = op_cases.build(case)
    partition = split_model(quantize_qdq(model, samples), SUPPORTED)
    assert not partition.has_host_parts and partition.accelerator is partition.model


def test_assigned_first_layer_goes_before_with_its_quantizer(models: dict) -> None:
    """CoDeNet's split: the first conv on the ARM, the accelerator from the next quantizer on."""
    model = models["float_classifier"].model
    first = next(node.name for node in model.graph.node if node.op_type == "Conv")
    partition = split_model(model, SUPPORTED, HostOptions(host=(first,)))
    assert first in host_nodes(partition, BEFORE)
    assert op_types(partition.pre).count("QuantizeLinear") == 1  # the input's quantizer went with it
    (entry,) = partition.accelerator_inputs
    readers = [node.op_type for node in partition.accelerator.graph.node if entry in node.input]
    assert readers == ["QuantizeLinear"]  # the conv's output enters through the next layer's quantizer
    assert partition.placement.reasons[first] == "assigned to the host"


def test_assigning_a_middle_layer_is_refused_by_name(models: dict) -> None:
    model = models["float_classifier"].model
    middle = [node.name for node in model.graph.node if node.op_type == "Conv"][1]
    # the first conv computes before it on the accelerator, the global pool after it
    with pytest.raises(UnsupportedModelError, match=f"node '{middle}' .*re-enter"):
        split_model(model, SUPPORTED, HostOptions(host=(middle,)))


def test_unknown_host_name_is_refused(models: dict) -> None:
    with pytest.raises(UnsupportedModelError, match="'NoSuchNode' .*names no node and no op type"):
        split_model(models["float_classifier"].model, SUPPORTED, HostOptions(host=("NoSuchNode",)))


def test_state_pair_named_by_hand_must_match_shapes() -> None:
    b = GraphBuilder(0)
    x = b.input((1, 4, 6, 6))
    h = b.input((1, 3), name="h")
    conv = b.conv(x, 4, 4)
    flat = b.node("Flatten", [b.node("GlobalAveragePool", [conv])])
    y = b.node("Add", [b.node("Gemm", [flat, b.const(np.ones((4, 3), np.float32))]), h])
    model = b.model([y])
    model.graph.output.append(helper.make_tensor_value_info("h_out", TensorProto.FLOAT, [1, 4]))
    model.graph.node.append(helper.make_node("Identity", [flat], ["h_out"], name="copy"))
    samples = [{"input": np.random.default_rng(i).random((1, 4, 6, 6), np.float32), "h": np.zeros((1, 3), np.float32)}
               for i in range(4)]
    quantized = quantize_qdq(model, samples, nodes_to_exclude=[n.name for n in model.graph.node
                                                               if n.op_type in ("Gemm", "Add", "Identity")])
    with pytest.raises(UnsupportedModelError, match="'h' .*must be equal"):
        split_model(quantized, SUPPORTED, HostOptions(state=(("h", "h_out"),)))


def test_placement_covers_every_node_once(models: dict) -> None:
    for model in models.values():
        partition = split_model(model.model, SUPPORTED)
        places = partition.placement.places
        assert set(places.values()) <= {BEFORE, ACCELERATOR, AFTER}
        parts = [partition.pre, partition.accelerator, partition.post]
        extracted = [n.name for part in parts if part is not None for n in part.graph.node if n.name in places]
        assert sorted(extracted) == sorted(places)


def test_qonnx_model_splits_after_its_last_quant() -> None:
    """A QONNX model (custom-domain Quant nodes, which ONNX shape inference cannot see through)
    with a float Softmax after its last Quant: the Softmax is the host's, the accelerator ends at the
    Quant's output, whose shape comes through the quantizers."""
    model = qonnx_two_convs(4)
    output = model.graph.output[0]
    shape = [d.dim_value for d in output.type.tensor_type.shape.dim]
    model.graph.node.append(helper.make_node("Softmax", [output.name], ["probs"], name="softmax", axis=1))
    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info("probs", TensorProto.FLOAT, shape))
    partition = split_model(model, SUPPORTED)
    assert host_nodes(partition, AFTER) == ["softmax"] and partition.pre is None
    assert partition.accelerator_outputs == [output.name]
    (boundary,) = partition.accelerator.graph.output
    assert [d.dim_value for d in boundary.type.tensor_type.shape.dim] == shape


def conv_then(op_type: str) -> onnx.ModelProto:
    """Q -> DQ -> Conv -> <op_type> -> Q -> DQ: the op reads the conv's float accumulator, no quantizer between."""
    model, samples = op_cases.build("conv_relu")
    quantized = quantize_qdq(model, samples)  # the Relu folds into the conv's output quantizer
    conv = next(node for node in quantized.graph.node if node.op_type == "Conv")
    accumulator, conv.output[0] = conv.output[0], "accumulator"
    index = list(quantized.graph.node).index(conv) + 1
    quantized.graph.node.insert(index, helper.make_node(op_type, ["accumulator"], [accumulator], name="activation"))
    return quantized


def test_an_op_reading_an_unquantized_value_stays_for_the_frontend_to_refuse() -> None:
    model = conv_then("Elu")
    partition = split_model(model, SUPPORTED)
    assert partition.placement.places["activation"] == ACCELERATOR  # not cut after a float accumulator
    with pytest.raises(UnsupportedModelError, match="node 'activation' .*'accumulator' leaves the accelerator"):
        split_model(model, SUPPORTED, HostOptions(host=("Elu",)))


def annotated_mlp(pre: str = "scale") -> onnx.ModelProto:
    """A QONNX MLP as FINN's tools leave it: a FINN datatype annotation on most tensors
    (`graph.quantization_annotation`), float work before its first Quant (`2x - 1`, or a Reshape to
    a target the model takes as an input: `pre="reshape"`) and a Softmax after its last."""
    rng = np.random.default_rng(0)
    nodes: list = []
    inits = [numpy_helper.from_array(np.array(2, np.float32), "two"), numpy_helper.from_array(np.array(1, np.float32), "one")]
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 16])]
    source = "image"
    if pre == "reshape":
        inputs.append(helper.make_tensor_value_info("target", TensorProto.INT64, [2]))
        nodes.append(helper.make_node("Reshape", ["image", "target"], ["flat"], name="reshape"))
        source = "flat"
    nodes += [helper.make_node("Mul", [source, "two"], ["doubled"], name="mul"),
              helper.make_node("Sub", ["doubled", "one"], ["x"], name="sub")]
    h = quant(nodes, inits, "x", "x_q", np.array(1.0), 2, signed=True, narrow=True)
    for index, (fan_in, fan_out, bits) in enumerate([(16, 8, 4), (8, 3, 4)]):
        weights = rng.normal(0, 1, (fan_in, fan_out)).astype(np.float32)
        inits.append(numpy_helper.from_array(weights, f"w{index}"))
        w = quant(nodes, inits, f"w{index}", f"w{index}_q", np.array(np.abs(weights).max() / 7), 4, signed=True, narrow=True)
        nodes.append(helper.make_node("MatMul", [h, w], [f"acc{index}"], name=f"matmul{index}"))
        h = quant(nodes, inits, f"acc{index}", f"h{index}_q", np.array(0.5), bits, signed=True)
    nodes.append(helper.make_node("Softmax", [h], ["probs"], name="softmax", axis=1))
    graph = helper.make_graph(nodes, "annotated_mlp", inputs,
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 3])], inits)
    datatypes = {"image": "FLOAT32", "x": "FLOAT32", "x_q": "INT2", "w0_q": "INT4", "h0_q": "INT4", "h1_q": "INT4",
                 "probs": "FLOAT32"}
    for tensor, datatype in datatypes.items():
        annotation = graph.quantization_annotation.add()
        annotation.tensor_name = tensor
        annotation.quant_parameter_tensor_names.add(key="finn_datatype", value=datatype)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QONNX_DOMAIN, 1)],
                              ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    return model


def annotated(part: onnx.ModelProto | None) -> dict[str, str]:
    assert part is not None
    return {a.tensor_name: a.quant_parameter_tensor_names[0].value for a in part.graph.quantization_annotation}


def test_annotated_model_splits_each_part_keeping_its_tensors_annotations() -> None:
    """qonnx and the QONNX zoo write FINN datatypes as `quantization_annotation`, which onnx's
    Extractor refuses (`ValueError: len_quantization_annotation is 7`)."""
    model = annotated_mlp()
    partition = split_model(model, SUPPORTED)
    assert op_types(partition.pre) == ["Mul", "Sub"] and op_types(partition.post) == ["Softmax"]
    assert annotated(partition.pre) == {"image": "FLOAT32", "x": "FLOAT32"}
    assert annotated(partition.accelerator) == {"x": "FLOAT32", "x_q": "INT2", "w0_q": "INT4", "h0_q": "INT4",
                                                "h1_q": "INT4"}
    assert annotated(partition.post) == {"h1_q": "INT4", "probs": "FLOAT32"}
    assert len(model.graph.quantization_annotation) == 7, "the caller's model is not changed"
    x = np.random.default_rng(1).random((1, 16), np.float32)
    np.testing.assert_allclose(Reference(partition.pre).run({"image": x}, ["x"])["x"], 2 * x - 1, rtol=1e-6)
    _, graph = load_partitioned(model)
    layers = [op.summary() for op in optimize(graph) if not isinstance(op, Input)]
    assert [layer for layer in layers if layer != "Act clip"] == ["Linear", "Linear"]  # a clip: the narrow input


def test_a_crossing_tensor_without_a_static_shape_is_refused_by_its_node() -> None:
    """The Reshape's target is a graph input, so nothing after it has a static shape: the refusal
    names the node writing the crossing tensor and its op type."""
    with pytest.raises(UnsupportedModelError) as refusal:
        split_model(annotated_mlp(pre="reshape"), SUPPORTED)
    assert (refusal.value.node, refusal.value.op_type) == ("sub", "Sub")
    assert "its output 'x' crosses between host and accelerator" in str(refusal.value)
