"""Careless and hostile models: each is refused with one clear error naming the node, op or file.

Every mutant below once crashed the frontend with a traceback, or was accepted although it is invalid
ONNX (onnxruntime refuses it too), or held the machine for minutes (issue 15).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from support.model_edits import node_named, set_attributes, set_initializer, set_opset
from support.qdq_by_hand import conv_bn_relu_qdq
from support.qonnx_by_hand import qonnx_two_convs
from support.sparse_models import SparseCase, SparseLayer, event_frames, sparse_models

from hwcodesign.cli import main
from hwcodesign.errors import HwcodesignError, ModelFormatError, UnsupportedModelError
from hwcodesign.passes import load_onnx
from hwcodesign.reference import run_reference

Mutant = Callable[[], onnx.ModelProto]


def qdq(edit: Callable[[onnx.ModelProto], object]) -> Mutant:
    """conv_bn_relu_qdq edited; its output shape left symbolic, so only the edit can be wrong."""
    def build() -> onnx.ModelProto:
        model = conv_bn_relu_qdq()
        for dim in model.graph.output[0].type.tensor_type.shape.dim:
            dim.dim_param = "any"
        edit(model)
        return model
    return build


def qonnx(edit: Callable[[onnx.ModelProto], object]) -> Mutant:
    def build() -> onnx.ModelProto:
        model = qonnx_two_convs(4)
        edit(model)
        return model
    return build


def quantized_by_quantize_linear(model: onnx.ModelProto) -> None:
    """The conv weights as floats, quantized in the graph by QuantizeLinear 'quant_w' (scale of 5 for 6 channels)."""
    set_initializer(model, "w_float", np.ones((6, 3, 3, 3), np.float32))
    set_initializer(model, "ws", np.full(5, 0.003, np.float32))
    set_initializer(model, "wz", np.zeros(5, np.int8))
    model.graph.node.insert(0, helper.make_node("QuantizeLinear", ["w_float", "ws", "wz"], ["w_q"], name="quant_w", axis=0))
    node_named(model, "dequant_w").input[0] = "w_q"


def quantized_by_quantize_linear_with_zero_scale(model: onnx.ModelProto) -> None:
    quantized_by_quantize_linear(model)
    set_initializer(model, "ws", np.zeros(6, np.float32))
    set_initializer(model, "wz", np.zeros(6, np.int8))


def clip_after_conv(lower: list[float]) -> Mutant:
    """conv_bn_relu_qdq with its Relu replaced by a Clip whose lower bound is `lower`."""
    def edit(model: onnx.ModelProto) -> None:
        set_initializer(model, "clip_lo", np.asarray(lower, np.float32))
        relu = node_named(model, "relu")
        relu.CopyFrom(helper.make_node("Clip", ["n", "clip_lo"], ["r"], name="clip"))
    return qdq(edit)


def rename(model: onnx.ModelProto, node: str, new_name: str) -> None:
    node_named(model, node).name = new_name


# finding 3: each of these raised a traceback (IndexError, ValueError...) from inside the frontend
TRACEBACKS: dict[str, tuple[Mutant, str, str]] = {
    "weight scale length": (qdq(lambda m: set_initializer(m, "ws", np.full(5, 0.003, np.float32))),
                            "dequant_w", "DequantizeLinear"),
    "weight zero point length": (qdq(lambda m: set_initializer(m, "wz", np.zeros(4, np.int8))),
                                 "dequant_w", "DequantizeLinear"),
    "axis out of range": (qdq(lambda m: set_attributes(m, "dequant_w", axis=4)), "dequant_w", "DequantizeLinear"),
    "axis of another length": (qdq(lambda m: set_attributes(m, "dequant_w", axis=1)), "dequant_w", "DequantizeLinear"),
    "bias scale length": (qdq(lambda m: set_initializer(m, "bs", np.full(5, 1e-4, np.float32))),
                          "dequant_b", "DequantizeLinear"),
    "quantize_value scale length": (qdq(quantized_by_quantize_linear), "quant_w", "QuantizeLinear"),
    "output scale 1e38": (qdq(lambda m: set_initializer(m, "ys", np.float32(1e38))), "quant_out", "QuantizeLinear"),
    "input scale 1e38": (qdq(lambda m: set_initializer(m, "xs", np.float32(1e38))), "quant_in", "QuantizeLinear"),
    "output scale inf": (qdq(lambda m: set_initializer(m, "ys", np.float32(np.inf))), "quant_out", "QuantizeLinear"),
    "output scale nan": (qdq(lambda m: set_initializer(m, "ys", np.float32(np.nan))), "quant_out", "QuantizeLinear"),
    "QONNX zero point outside its type": (qonnx(lambda m: set_initializer(m, "a1_q_zp", np.float32(300))),
                                          "a1_q", "Quant"),
    "QONNX NaN bit width": (qonnx(lambda m: set_initializer(m, "a1_q_bits", np.float32(np.nan))), "a1_q", "Quant"),
    "QONNX weight NaN bit width": (qonnx(lambda m: set_initializer(m, "w1_q_bits", np.float32(np.nan))),
                                   "w1_q", "Quant"),
    "float bias length": (qonnx(lambda m: set_initializer(m, "b1", np.zeros(5, np.float32))), "conv1", "Conv"),
    "infinite BatchNorm beta": (qdq(lambda m: set_initializer(m, "beta", np.full(6, np.inf, np.float32))),
                                "conv", "Conv"),
    "zero scale quantizing a weight": (qdq(quantized_by_quantize_linear_with_zero_scale), "quant_w", "QuantizeLinear"),
    "negative BatchNorm variance": (qdq(lambda m: set_initializer(m, "var", np.full(6, -1, np.float32))), "bn",
                                    "BatchNormalization"),
    "Clip bound of two values": (clip_after_conv([0.0, 1.0]), "clip", "Clip"),
    "empty weight": (qdq(lambda m: set_initializer(m, "w", np.zeros((6, 0, 3, 3), np.int8))),
                     "dequant_w", "DequantizeLinear"),
    "negative dilations": (qdq(lambda m: set_attributes(m, "conv", dilations=[-1, -1])), "conv", "Conv"),
    "zero strides": (qdq(lambda m: set_attributes(m, "conv", strides=[0, 0])), "conv", "Conv"),
    "negative pads": (qdq(lambda m: set_attributes(m, "conv", pads=[-2, -2, -2, -2])), "conv", "Conv"),
    # found by the fuzz harness (tests/fuzz) after the first round of fixes
    "zero weight scale": (qdq(lambda m: set_initializer(m, "ws", np.zeros(6, np.float32))), "ws", "DequantizeLinear"),
    "NaN in a QONNX float weight": (qonnx(lambda m: set_initializer(m, "w1", np.full((6, 3, 3, 3), np.nan, np.float32))),
                                    "w1", "Quant"),
    "QONNX signed=-1": (qonnx(lambda m: set_attributes(m, "w1_q", signed=-1)), "w1_q", "Quant"),
    "negative weight scale": (qdq(lambda m: set_initializer(m, "ws", np.full(6, -0.02, np.float32))),
                              "dequant_w", "DequantizeLinear"),
    "negative QONNX activation scale": (qonnx(lambda m: set_initializer(m, "a1_q_scale", np.float32(-1.0))),
                                        "a1_q", "Quant"),
    "QONNX narrow=2": (qonnx(lambda m: set_attributes(m, "a1_q", narrow=2)), "a1_q", "Quant"),
}


@pytest.mark.parametrize("case", TRACEBACKS)
def test_once_a_traceback_now_names_the_node(case: str) -> None:
    build, node, op_type = TRACEBACKS[case]
    with pytest.raises(HwcodesignError) as error:
        load_onnx(build())
    message = str(error.value)
    assert f"'{node}'" in message and op_type in message, message


def test_requantization_too_fine_for_the_multiplier_names_layer_and_output() -> None:
    model = qdq(lambda m: set_initializer(m, "ys", np.float32(1e-30)))()
    with pytest.raises(UnsupportedModelError) as error:
        load_onnx(model)
    assert error.value.node == "conv" and "'yq'" in str(error.value) and "scale" in str(error.value)


def onnxruntime_refuses(model: onnx.ModelProto) -> bool:
    """Does onnxruntime refuse the model (at load or on a run with zeros)?"""
    try:
        run_reference(model, {"x": np.zeros((1, 3, 10, 10), np.float32)})
    except Exception:  # onnxruntime raises its own exception types  # noqa: BLE001
        return True
    return False


def block_size_on_per_tensor(model: onnx.ModelProto) -> None:
    set_opset(model, 21)
    set_attributes(model, "quant_in", block_size=2)


# finding 4: invalid ONNX that onnxruntime refuses but the frontend used to accept
INVALID: dict[str, tuple[Mutant, str, str]] = {
    "float zero point": (qdq(lambda m: set_initializer(m, "wz", np.zeros(6, np.float32))),
                         "dequant_w", "DequantizeLinear"),
    "int32 activation": (qdq(lambda m: set_initializer(m, "yz", np.int32(0))), "quant_out", "QuantizeLinear"),
    "zero point 2**40": (qdq(lambda m: set_initializer(m, "wz", np.full(6, 2**40, np.int64))),
                         "dequant_w", "DequantizeLinear"),
    "int32 zero point of int8 weights": (qdq(lambda m: set_initializer(m, "wz", np.zeros(6, np.int32))),
                                         "dequant_w", "DequantizeLinear"),
    "one zero point for per-axis scales": (qdq(lambda m: set_initializer(m, "wz", np.int8(0))),
                                           "dequant_w", "DequantizeLinear"),
    "auto_pad with pads": (qdq(lambda m: set_attributes(m, "conv", auto_pad="SAME_UPPER")), "conv", "Conv"),
    "kernel_shape of rank 1": (qdq(lambda m: set_attributes(m, "conv", kernel_shape=[3])), "conv", "Conv"),
    "kernel_shape not the weight's": (qdq(lambda m: set_attributes(m, "conv", kernel_shape=[5, 5])), "conv", "Conv"),
    "block_size on a per-tensor quantizer": (qdq(block_size_on_per_tensor), "quant_in", "QuantizeLinear"),
    "duplicate node names": (qdq(lambda m: rename(m, "relu", "bn")), "bn", "Relu"),
    "int32 input into QuantizeLinear": (qdq(lambda m: m.graph.input[0].type.tensor_type.__setattr__("elem_type",
                                                                                                    TensorProto.INT32)),
                                        "quant_in", "QuantizeLinear"),
    "input scale of shape (1, 1)": (qdq(lambda m: set_initializer(m, "xs", np.full((1, 1), 0.02, np.float32))),
                                    "quant_in", "QuantizeLinear"),
}


@pytest.mark.parametrize("case", INVALID)
def test_invalid_onnx_is_refused_like_onnxruntime(case: str) -> None:
    build, node, op_type = INVALID[case]
    model = build()
    assert onnxruntime_refuses(model)
    with pytest.raises(HwcodesignError) as error:
        load_onnx(model)
    message = str(error.value)
    assert node in message and op_type in message, message


@pytest.mark.parametrize("version", [1, 6, 99])
def test_an_opset_whose_semantics_differ_or_are_unknown_is_refused(version: int) -> None:
    """Before opset 7 Add/Mul broadcast by attributes; a future opset may change any op."""
    if version > 7:
        model = set_opset(conv_bn_relu_qdq(), version)
        assert onnxruntime_refuses(model)
    else:  # QuantizeLinear does not exist yet there; QONNX's Quant is a custom op, at any opset
        model = set_opset(qonnx_two_convs(4), version)
    with pytest.raises(ModelFormatError, match=f"opset {version}"):
        load_onnx(model)


@pytest.mark.parametrize("attributes", [{"strides": 2}, {"kernel_shape": 3}, {"group": 0}, {"dilations": [-1, -1]}])
def test_window_attributes_of_a_custom_domain_conv(attributes: dict[str, object]) -> None:
    """hwcodesign.SubmConv escapes the checker's attribute types: an int where a list belongs, a zero group."""
    S, G, F = SparseLayer, SparseLayer("gap"), SparseLayer("fc", 4)
    case = SparseCase((S("subm", 6, 3), G, F))
    _, custom = sparse_models(case, event_frames(case, 0.3, 4, seed=1))
    conv = next(node for node in custom.graph.node if node.op_type == "SubmConv")
    set_attributes(custom, conv.name, **attributes)
    with pytest.raises(UnsupportedModelError) as error:
        load_onnx(custom)
    assert (error.value.node, error.value.op_type) == (conv.name, "SubmConv")
    assert next(iter(attributes)) in error.value.reason


# QONNX `Quant` quantizes floats; onnxruntime cannot run QONNX at all, so only our refusal is checked
QUANT_INPUTS: dict[str, onnx.TensorProto] = {
    "bool": numpy_helper.from_array(np.ones((6, 3, 3, 3), bool), "w1"),
    "float8": helper.make_tensor("w1", TensorProto.FLOAT8E4M3FN, (6, 3, 3, 3), np.ones(162, np.float32)),
    "int32": numpy_helper.from_array(np.ones((6, 3, 3, 3), np.int32), "w1"),
}


@pytest.mark.parametrize("kind", QUANT_INPUTS)
def test_quant_of_a_non_float_weight_is_refused(kind: str) -> None:
    model = qonnx_two_convs(4)
    index = next(i for i, init in enumerate(model.graph.initializer) if init.name == "w1")
    model.graph.initializer[index].CopyFrom(QUANT_INPUTS[kind])
    with pytest.raises(UnsupportedModelError) as error:
        load_onnx(model)
    assert (error.value.node, error.value.op_type) == ("w1_q", "Quant")
    assert "w1" in error.value.reason


def test_empty_weight_of_matching_scale_is_refused() -> None:
    model = conv_bn_relu_qdq()
    set_initializer(model, "w", np.zeros((0, 3, 3, 3), np.int8))
    set_initializer(model, "ws", np.zeros(0, np.float32))
    set_initializer(model, "wz", np.zeros(0, np.int8))
    with pytest.raises(HwcodesignError, match="node '"):
        load_onnx(model)


# ------------------------------------------------------------------ external data (finding 3)
def saved_with_external_data(tmp_path: Path) -> Path:
    path = tmp_path / "model.onnx"
    onnx.save_model(conv_bn_relu_qdq(), path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    return path


def relocate_external_data(path: Path, location: str) -> None:
    model = onnx.load(path, load_external_data=False)
    for init in model.graph.initializer:
        for entry in init.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save(model, path)


def test_external_data_missing_file(tmp_path: Path) -> None:
    path = saved_with_external_data(tmp_path)
    (tmp_path / "weights.bin").unlink()
    with pytest.raises(ModelFormatError, match="weights.bin"):
        load_onnx(path)


@pytest.mark.parametrize("location", ["../weights.bin", "ABSOLUTE"])
def test_external_data_outside_the_model_folder(tmp_path: Path, location: str) -> None:
    folder = tmp_path / "inner"
    folder.mkdir()
    path = saved_with_external_data(folder)
    location = str(folder / "weights.bin") if location == "ABSOLUTE" else location
    (folder / "weights.bin").rename(tmp_path / "weights.bin")
    relocate_external_data(path, location)
    with pytest.raises(ModelFormatError) as error:
        load_onnx(path)
    assert location in str(error.value) and "model.onnx" in str(error.value)


def test_external_data_truncated(tmp_path: Path) -> None:
    path = saved_with_external_data(tmp_path)
    data = tmp_path / "weights.bin"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(ModelFormatError, match="weights.bin"):
        load_onnx(path)


def test_external_data_declaring_a_huge_tensor_is_refused_before_reading(tmp_path: Path) -> None:
    path = saved_with_external_data(tmp_path)
    model = onnx.load(path, load_external_data=False)
    weight = next(init for init in model.graph.initializer if init.name == "w")
    weight.dims[:] = [1 << 20, 1 << 20, 3, 3]
    onnx.save(model, path)
    with pytest.raises(ModelFormatError) as error:
        load_onnx(path)
    assert "'w'" in str(error.value) and "GiB" in str(error.value)


# ------------------------------------------------------------------ files that are not model files (finding 7)
def test_a_directory_is_named_as_such(tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError, match="is a directory"):
        load_onnx(tmp_path)


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_a_device_is_not_a_regular_file() -> None:
    with pytest.raises(ModelFormatError, match="is not a regular file"):
        load_onnx("/dev/null")


def test_a_file_larger_than_protobuf_allows_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.onnx"
    with path.open("wb") as file:
        file.truncate(3 << 30)  # sparse: no disk used
    with pytest.raises(ModelFormatError, match="3 GiB"):
        load_onnx(path)


def test_a_name_too_long_for_the_file_system(tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError, match="File name too long"):
        load_onnx(tmp_path / ("m" * 5000 + ".onnx"))


# ------------------------------------------------------------------ every bad node at once (finding 7)
def three_bad_nodes() -> onnx.ModelProto:
    """x -> Q -> DQ feeding a Sin (then a Relu), a Sum of two tensors and a dilated MaxPool."""
    inits = [numpy_helper.from_array(np.array(np.float32(0.02)), "xs"),
             numpy_helper.from_array(np.array(np.uint8(128)), "xz")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], name="quant_in"),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xf"], name="dequant_in"),
             helper.make_node("Sin", ["xf"], ["h"], name="hsig"),
             helper.make_node("Relu", ["h"], ["y1"], name="after_hsig"),
             helper.make_node("Sum", ["xf", "xf"], ["y2"], name="sum"),
             helper.make_node("MaxPool", ["xf"], ["p"], name="pool", kernel_shape=[3, 3], strides=[2, 2],
                              dilations=[2, 2]),
             helper.make_node("QuantizeLinear", ["p", "xs", "xz"], ["y3"], name="quant_pool")]
    outputs = [helper.make_tensor_value_info(name, elem, shape) for name, elem, shape in
               (("y1", TensorProto.FLOAT, [1, 3, 10, 10]), ("y2", TensorProto.FLOAT, [1, 3, 10, 10]),
                ("y3", TensorProto.UINT8, [1, 3, 3, 3]))]
    graph = helper.make_graph(nodes, "three_bad", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 10, 10])],
                              outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=10)


def test_every_bad_node_is_listed_once_with_hints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = three_bad_nodes()
    with pytest.raises(HwcodesignError) as error:
        load_onnx(model)
    lines = str(error.value).splitlines()
    assert lines[0] == "3 nodes cannot be built:", lines
    assert len(lines) == 5 and all(line.startswith("  ") for line in lines[1:]), lines
    assert lines[4].startswith("  supported ops: ")  # said once, not on every unsupported node's line
    by_node = {line.split("'")[1]: line for line in lines[1:4]}
    assert set(by_node) == {"hsig", "sum", "pool"}  # not after_hsig: it only follows a failed node
    assert "Sin" in by_node["hsig"]
    assert "Sum" in by_node["sum"] and "Add" in by_node["sum"]
    assert "MaxPool" in by_node["pool"] and "dilated" in by_node["pool"]
    path = tmp_path / "three_bad.onnx"
    onnx.save(model, path)
    # the command line splits the whole model: the Sin and the Sum come after the last
    # quantizer with nothing quantized after them, so the host CPU runs them; the MaxPool stays refused
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("hwcodesign: error:") == 1
    assert "node 'pool' (op MaxPool): dilated" in err and "hsig" not in err and "'sum'" not in err


def test_a_single_problem_stays_one_line() -> None:
    model = qdq(lambda m: set_attributes(m, "conv", dilations=[-1, -1]))()
    with pytest.raises(HwcodesignError) as error:
        load_onnx(model)
    assert "\n" not in str(error.value)


def test_graph_error_with_one_problem_is_one_line() -> None:
    from hwcodesign.errors import GraphError
    assert "\n" not in str(GraphError(["edge 'a' has no producer"]))
    assert str(GraphError(["one", "two"])).count("\n") == 2


# ------------------------------------------------------------------ resources (finding 6)
def folding_into(op_type: str) -> onnx.ModelProto:
    """A tiny model whose constant subgraph folds (ConstantOfShape/Expand/Tile) into a 4 GiB float tensor."""
    huge = np.array([1, 1024, 1024, 1024], np.int64)
    one = numpy_helper.from_array(np.ones((1, 1, 1, 1), np.float32), "one")
    nodes = [helper.make_node("Constant", [], ["huge"], value=numpy_helper.from_array(huge)),
             {"ConstantOfShape": helper.make_node("ConstantOfShape", ["huge"], ["big"], name="blowup",
                                                  value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])),
              "Expand": helper.make_node("Expand", ["one", "huge"], ["big"], name="blowup"),
              "Tile": helper.make_node("Tile", ["one", "huge"], ["big"], name="blowup")}[op_type],
             helper.make_node("Add", ["x", "big"], ["y"], name="add")]
    graph = helper.make_graph(nodes, "blowup", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 1, 1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1024, 1024, 1024])], [one])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=10)


@pytest.mark.parametrize("op_type", ["ConstantOfShape", "Expand", "Tile"])
def test_constant_folding_refuses_a_huge_output_before_allocating(op_type: str) -> None:
    with pytest.raises(UnsupportedModelError) as error:
        load_onnx(folding_into(op_type))
    assert (error.value.node, error.value.op_type) == ("blowup", op_type)
    assert "4 GiB" in error.value.reason


def test_a_huge_declared_input_is_refused_up_front(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = qdq(lambda m: None)()
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value = dims[3].dim_value = 32768
    with pytest.raises(UnsupportedModelError) as error:
        load_onnx(model)
    assert error.value.node == "x" and "elements" in error.value.reason
    path = tmp_path / "huge_input.onnx"
    onnx.save(model, path)
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "'x'" in err


def scaled_by(model: onnx.ModelProto, gain: str, extra: list[onnx.NodeProto]) -> onnx.ModelProto:
    """conv_bn_relu_qdq with Mul(BatchNorm output, `gain`) before its Relu, `extra` nodes computing `gain`."""
    relu = node_named(model, "relu")
    relu.input[0] = "scaled"
    index = list(model.graph.node).index(relu)
    for node in reversed([*extra, helper.make_node("Mul", ["n", gain], ["scaled"], name="scale")]):
        model.graph.node.insert(index, node)
    return model


def per_tensor_at_opset_12() -> onnx.ModelProto:
    """conv_bn_relu_qdq at opset 12, which has no per-axis DequantizeLinear: per-tensor weights."""
    model = set_opset(conv_bn_relu_qdq(), 12)
    for name, value in (("ws", np.float32(0.004)), ("wz", np.int8(0)), ("bs", np.float32(0.004 * 0.02)),
                        ("bz", np.int32(0))):
        set_initializer(model, name, value)
    for name in ("dequant_w", "dequant_b"):
        node = node_named(model, name)
        kept = [a for a in node.attribute if a.name != "axis"]
        del node.attribute[:]
        node.attribute.extend(kept)
    return model


def test_constants_fold_at_the_models_opset() -> None:
    """Opset 12's Unsqueeze takes its axes as an attribute (opset 13 made them an input)."""
    gain = np.linspace(0.5, 2.0, 6, dtype=np.float32)
    folded = per_tensor_at_opset_12()
    set_initializer(folded, "gain", gain)
    scaled_by(folded, "gain_chw", [helper.make_node("Unsqueeze", ["gain"], ["gain_chw"], name="unsqueeze", axes=[1, 2])])
    direct = per_tensor_at_opset_12()
    set_initializer(direct, "gain_chw", gain.reshape(6, 1, 1))
    scaled_by(direct, "gain_chw", [])
    got, expected = load_onnx(folded).op("conv").requant, load_onnx(direct).op("conv").requant
    assert np.array_equal(got.multiplier, expected.multiplier) and np.array_equal(got.shift, expected.shift)


@pytest.mark.parametrize("edit", ["resize", "pads"])
def test_a_layer_output_too_large_for_a_frame_is_refused(edit: str) -> None:
    """A 10x10 input can become a 40960x40960 activation (a huge upsampling or padding)."""
    def upsample(model: onnx.ModelProto) -> None:
        set_initializer(model, "huge_scales", np.array([1, 1, 4096, 4096], np.float32))
        model.graph.node.append(helper.make_node("Resize", ["y", "", "huge_scales"], ["big"], name="upsample",
                                                 mode="nearest", coordinate_transformation_mode="asymmetric",
                                                 nearest_mode="floor"))
        model.graph.output[0].name = "big"

    def pad(model: onnx.ModelProto) -> None:
        set_attributes(model, "conv", pads=[20000, 20000, 20000, 20000])

    model = qdq(upsample if edit == "resize" else pad)()
    with pytest.raises(UnsupportedModelError) as error:
        load_onnx(model)
    assert (error.value.node, error.value.op_type) == (("upsample", "Resize") if edit == "resize" else ("conv", "Conv"))
    assert "elements" in error.value.reason


@pytest.mark.parametrize("text", ["{not json", "[" * 100_000, '{"conv": "int99"}', '["conv"]'])
def test_damaged_weight_format_metadata_names_the_key(text: str) -> None:
    model = conv_bn_relu_qdq()
    helper.set_model_props(model, {"hwcodesign.weight_formats": text})
    with pytest.raises(HwcodesignError, match="hwcodesign.weight_formats"):
        load_onnx(model)


def test_control_flow_on_constants_is_not_folded() -> None:
    """A Loop of 2**40 iterations on constants would make folding run for ever: it is refused, not run."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["v_in"], ["v_out"])],
        "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                 helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                 helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [])])
    model = conv_bn_relu_qdq()
    for name, value in (("trips", np.int64(2**40)), ("go", np.bool_(True)), ("v0", np.float32(0))):
        set_initializer(model, name, np.array(value))
    model.graph.node.insert(0, helper.make_node("Loop", ["trips", "go", "v0"], ["v_end"], name="forever", body=body))
    with pytest.raises(UnsupportedModelError) as error:
        load_onnx(model)
    assert (error.value.node, error.value.op_type) == ("forever", "Loop")
