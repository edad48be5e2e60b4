"""Shape arithmetic on static shapes folded before the split, and the shapes the split reads."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from support.onnx_models import IR_VERSION
from support.qonnx_by_hand import qonnx_two_convs

from hwcodesign.partition.shapes import fold_static_shapes, with_inferred_shapes
from hwcodesign.partition.state import static_shape
from hwcodesign.reference import Reference


def flatten_by_shape(batch: int | str = 1, opset: int = 13) -> onnx.ModelProto:
    """`x.view(x.size(0), -1)` as TorchScript writes it: Shape -> Gather -> Unsqueeze -> Concat -> Reshape."""
    inits = [numpy_helper.from_array(np.array(0, np.int64), "index"),
             numpy_helper.from_array(np.array([0], np.int64), "axes"),
             numpy_helper.from_array(np.array([-1], np.int64), "rest")]
    nodes = [helper.make_node("Shape", ["x"], ["shape"], name="shape"),
             helper.make_node("Gather", ["shape", "index"], ["n"], name="gather", axis=0),
             helper.make_node("Unsqueeze", ["n", "axes"], ["n1"], name="unsqueeze"),
             helper.make_node("Concat", ["n1", "rest"], ["target"], name="concat", axis=0),
             helper.make_node("Reshape", ["x", "target"], ["flat"], name="reshape"),
             helper.make_node("Relu", ["flat"], ["y"], name="relu")]
    graph = helper.make_graph(nodes, "flatten_by_shape",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 2, 3, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 24])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=IR_VERSION)


def op_types(model: onnx.ModelProto) -> list[str]:
    return [node.op_type for node in model.graph.node]


def test_flatten_by_shape_folds_to_a_reshape_of_a_constant() -> None:
    model = flatten_by_shape()
    folded = fold_static_shapes(model)
    assert op_types(folded) == ["Reshape", "Relu"]
    target = {init.name: numpy_helper.to_array(init) for init in folded.graph.initializer}["target"]
    assert target.tolist() == [1, -1]
    onnx.checker.check_model(folded, full_check=True)
    assert static_shape(with_inferred_shapes(folded).graph.value_info[0]) == (1, 24)
    x = np.random.default_rng(0).normal(size=(1, 2, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(Reference(folded).run({"x": x}, ["y"])["y"], Reference(model).run({"x": x}, ["y"])["y"])
    assert op_types(model)[0] == "Shape", "the caller's model is not changed"


def test_shape_of_a_symbolic_batch_is_left_to_the_frontend() -> None:
    model = flatten_by_shape(batch="N")
    assert fold_static_shapes(model) is model


def test_model_without_shape_nodes_is_returned_as_is() -> None:
    model = qonnx_two_convs(4)
    assert fold_static_shapes(model) is model


def test_shape_start_and_end_slice_as_the_spec_says() -> None:
    """Opset 15's Shape(start, end): here the dimensions after the batch, multiplied into one."""
    model = flatten_by_shape(opset=15)
    shape_node = model.graph.node[0]
    shape_node.attribute.extend([helper.make_attribute("start", 1), helper.make_attribute("end", 10)])
    model.graph.node[1].CopyFrom(helper.make_node("ReduceProd", ["shape"], ["n"], name="prod", keepdims=0))
    model.graph.node[3].CopyFrom(helper.make_node("Concat", ["rest", "n1"], ["target"], name="concat", axis=0))
    folded = fold_static_shapes(model)
    assert op_types(folded) == ["Reshape", "Relu"]
    target = {init.name: numpy_helper.to_array(init) for init in folded.graph.initializer}["target"]
    assert target.tolist() == [-1, 24]


def test_a_node_writing_a_graph_output_stays_and_reads_the_folded_value() -> None:
    model = flatten_by_shape()
    model.graph.output.append(helper.make_tensor_value_info("n1", TensorProto.INT64, [1]))
    folded = fold_static_shapes(model)
    assert op_types(folded) == ["Unsqueeze", "Concat", "Reshape", "Relu"]
    assert {"n", "axes", "rest"} <= {init.name for init in folded.graph.initializer}
    x = np.zeros((1, 2, 3, 4), np.float32)
    assert Reference(folded).run({"x": x}, ["n1"])["n1"].tolist() == [1]


def test_a_quantizer_output_declared_with_symbolic_dims_takes_the_inferred_shape() -> None:
    """Brevitas declares a Quant graph output as (Quant79_dim_0, ...): the split reads the real shape."""
    model = qonnx_two_convs(4)
    dims = model.graph.output[0].type.tensor_type.shape.dim
    for axis, dim in enumerate(dims):
        dim.Clear()
        dim.dim_param = f"Quant_y_dim_{axis}"
    inferred = with_inferred_shapes(model)
    assert static_shape(inferred.graph.output[0]) == (1, 4, 3, 3)
    assert static_shape(model.graph.output[0]) is None, "the caller's model is not changed"


def test_below_ir_4_a_folded_value_is_a_graph_input_too() -> None:
    """IR 3 wants every initializer listed as a graph input (as opset-8-era exporters wrote them)."""
    inits = [numpy_helper.from_array(np.array(0, np.int64), "index"), numpy_helper.from_array(np.array([-1], np.int64), "rest")]
    nodes = [helper.make_node("Shape", ["x"], ["shape"]), helper.make_node("Gather", ["shape", "index"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n"], ["n1"], axes=[0]),
             helper.make_node("Concat", ["n1", "rest"], ["target"], axis=0), helper.make_node("Reshape", ["x", "target"], ["y"])]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3]),
              *(helper.make_tensor_value_info(init.name, init.data_type, init.dims) for init in inits)]
    graph = helper.make_graph(nodes, "ir3", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6])], inits)
    folded = fold_static_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 8)], ir_version=3))
    onnx.checker.check_model(folded)
    assert op_types(folded) == ["Reshape"] and "target" in [value.name for value in folded.graph.input]
