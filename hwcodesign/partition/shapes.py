"""The shapes the split reads: every tensor's inferred shape, and shape arithmetic on static shapes
folded into constants before anything is placed.

Old exporters (Brevitas before its dynamo path, torch's `x.view(x.size(0), -1)`) flatten with
`Shape -> Gather -> Unsqueeze -> Concat -> Reshape`. Read as written, that chain computes on the
activation (it is placed like float work, lands in a host part) and ONNX shape inference cannot
say what the Reshape makes, so the tensor crossing to the accelerator has no static shape. Where
the Shape's input has a static shape (a batch-1 graph input, anything inferred from it), the chain
is constant: it is evaluated here and the Reshape reads an initializer, a plain flatten.

The frontend folds Shape too (`frontend/plumbing.shape_of`, then the `fold-constants` pattern), on
the values it has lowered, which it knows even after the custom ops ONNX shape inference stops at;
this fold is the split's, on the ONNX model, for what the split must place and cut.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from hwcodesign.frontend.validate import fold_size_problem, run_one_node
from hwcodesign.partition.regions import QUANTIZER_TYPES
from hwcodesign.partition.state import static_shape

STANDARD = ("", "ai.onnx")


def with_inferred_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with every tensor's inferred shape in its value_info, and its graph outputs' too.

    ONNX shape inference stops at a QONNX quantizer (a custom op it has no schema for); quantizers
    are elementwise, so the shapes are inferred on a copy where each is an Identity, and copied
    back. Brevitas declares the graph output of a quantizer with symbolic dimensions only
    (`Quant79_dim_0`, ...), which inference keeps: the copy declares its outputs without a shape,
    and an output whose declared shape is not static takes the inferred one."""
    stand_in = onnx.ModelProto()
    stand_in.CopyFrom(model)
    for node in stand_in.graph.node:
        if node.op_type in QUANTIZER_TYPES and node.domain not in STANDARD:
            node.CopyFrom(helper.make_node("Identity", node.input[:1], node.output[:1], name=node.name))
    for value in stand_in.graph.output:
        if static_shape(value) is None:
            value.type.tensor_type.ClearField("shape")
    if not any(o.domain in STANDARD for o in stand_in.opset_import):  # a model of custom ops alone
        stand_in.opset_import.append(helper.make_opsetid("", 13))
    inferred = onnx.shape_inference.infer_shapes(stand_in)
    result = onnx.ModelProto()
    result.CopyFrom(model)
    del result.graph.value_info[:]
    result.graph.value_info.extend(inferred.graph.value_info)
    for declared, found in zip(result.graph.output, inferred.graph.output):
        if static_shape(declared) is None and static_shape(found) is not None:
            declared.type.tensor_type.shape.CopyFrom(found.type.tensor_type.shape)
    return result


def fold_static_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with each Shape of a statically shaped tensor, and every node computing on such shapes
    and constants only, replaced by initializers; the model itself when it has none.

    Nodes writing a graph output stay (a graph output is a node's), reading folded initializers. A
    node the ONNX reference cannot evaluate, or whose result would be too large, stays as it is:
    the split and the frontend then see it as before.
    """
    if not any(node.op_type == "Shape" and node.domain in STANDARD for node in model.graph.node):
        return model
    inferred = with_inferred_shapes(model)
    shapes = {value.name: static_shape(value)
              for value in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output)}
    initializers = {init.name: init for init in model.graph.initializer}
    graph_outputs = {value.name for value in model.graph.output}
    constant_nodes: dict[str, onnx.NodeProto] = {}  # Constant nodes by output, read only when a fold needs them
    folded: dict[str, np.ndarray] = {}
    folded_nodes: set[int] = set()
    for index, node in enumerate(model.graph.node):
        if node.domain not in STANDARD or any(output in graph_outputs for output in node.output):
            continue
        if node.op_type == "Constant" and not node.input:
            constant_nodes.update((output, node) for output in node.output)
            continue
        if node.op_type == "Shape":
            dims = shapes.get(node.input[0]) if node.input else None
            results = None if dims is None else [shape_slice(node, dims)]
        elif any(tensor in folded for tensor in node.input):
            results = evaluate(model, node, folded, initializers, constant_nodes)
        else:
            continue
        if results is not None:
            folded.update(zip(node.output, results))
            folded_nodes.add(index)
    if not folded_nodes:
        return model
    return with_folded(model, folded, folded_nodes)


def shape_slice(node: onnx.NodeProto, dims: tuple[int, ...]) -> np.ndarray:
    """The Shape's value: its `start`/`end` (opset 15) clamp and count from the end as a slice does."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    start, end = attrs.get("start", 0), attrs.get("end")
    return np.asarray(dims[start:end], np.int64)


def evaluate(model: onnx.ModelProto, node: onnx.NodeProto, folded: dict[str, np.ndarray],
             initializers: dict[str, onnx.TensorProto], constant_nodes: dict[str, onnx.NodeProto]) -> list[np.ndarray] | None:
    """`node`'s outputs when every input is a folded shape, an initializer or a Constant node's; else None."""
    feeds: dict[str, np.ndarray] = {}
    for tensor in (t for t in node.input if t):
        if tensor in folded:
            feeds[tensor] = folded[tensor]
        elif tensor in initializers:
            feeds[tensor] = numpy_helper.to_array(initializers[tensor])
        elif tensor in constant_nodes:
            value = run_node(model, constant_nodes[tensor], {})
            if value is None:
                return None
            feeds[tensor] = value[list(constant_nodes[tensor].output).index(tensor)]
        else:
            return None
    return run_node(model, node, feeds)


def run_node(model: onnx.ModelProto, node: onnx.NodeProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray] | None:
    """The ONNX reference's result of `node` on `feeds`, or None when it cannot or should not say."""
    if fold_size_problem(node, feeds, model) is not None:
        return None
    try:
        return run_one_node(node, feeds, model)
    except Exception:  # noqa: BLE001 - the reference evaluator raises many kinds; the node then stays
        return None


def with_folded(model: onnx.ModelProto, folded: dict[str, np.ndarray], folded_nodes: set[int]) -> onnx.ModelProto:
    """A copy of `model` without the folded nodes, each folded tensor a kept node reads an initializer
    (and, below IR 4, a graph input, as initializers had to be then)."""
    kept = [node for index, node in enumerate(model.graph.node) if index not in folded_nodes]
    read = {tensor for node in kept for tensor in node.input}
    result = onnx.ModelProto()
    result.CopyFrom(model)
    del result.graph.node[:]
    result.graph.node.extend(kept)
    for tensor in (t for t in folded if t in read):
        result.graph.initializer.append(numpy_helper.from_array(folded[tensor], tensor))
        if model.ir_version < 4:
            result.graph.input.append(helper.make_tensor_value_info(
                tensor, helper.np_dtype_to_tensor_dtype(folded[tensor].dtype), folded[tensor].shape))
    return result
