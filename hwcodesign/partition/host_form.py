"""A host part as onnxruntime and the driver's numpy executor run it: its QONNX quantizers made
standard ONNX, those on constants folded into float initializers.

When a host part is cut from a QONNX model, each QONNX quantizer in it becomes the standard ops
`qonnx_ops` defines. A quantizer whose inputs are all constants (a weight's `Quant`) is then
evaluated now, with whatever constant ops follow it on the way to its consumer (the Transpose or
Reshape of a quantized weight), by the numpy executor the board runs, and the part keeps only
the resulting float tensors as initializers: what qonnx computes at every run, computed once.
Quantizers on activations stay as their standard ops, which both executors run as qonnx does.
A quantizer whose scale, zero point or bit width is not constant is refused by name.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.host.program import default_opset, program_bytes
from hwcodesign.host.runtime import HostError, load_program, run_program
from hwcodesign.onnx_edit import GraphEdit, drop_unused_initializers, keep_used_opsets
from hwcodesign.partition.qonnx_ops import (
    is_qonnx_quantizer,
    opset_needed,
    qonnx_version,
    read_quantizer,
    standard_ops,
)
from hwcodesign.partition.regions import NodeGraph


def host_form(model: onnx.ModelProto, elem_types: Mapping[str, int] | None = None) -> onnx.ModelProto:
    """`model` (a host part) with no QONNX quantizer left: constant ones folded, the others as
    standard ops. `elem_types` gives tensors' ONNX element types where known (a quantizer's input
    must be float32). A part without QONNX quantizers is returned as it is."""
    if not any(is_qonnx_quantizer(node) for node in model.graph.node):
        return model
    result = onnx.ModelProto()
    result.CopyFrom(model)
    fold_constants(result, rewrite_quantizers(result, elem_types or {}))
    keep_used_opsets(result)
    return result


def label(node: onnx.NodeProto) -> str:
    return node.name or f"<unnamed {node.op_type} writing '{node.output[0] if node.output else ''}'>"


def rewrite_quantizers(model: onnx.ModelProto, elem_types: Mapping[str, int]) -> list[onnx.NodeProto]:
    """Replace each QONNX quantizer by its standard ops, in place and in graph order (so the
    constants a later one reads are computed by ops the executor knows); returns the quantizers
    whose inputs were all constants."""
    constant = NodeGraph(model).constant
    types = {**elem_types, **{init.name: init.data_type for init in model.graph.initializer}}
    edit = GraphEdit(model)
    on_constants = []
    index = 0
    while index < len(model.graph.node):
        if not is_qonnx_quantizer(model.graph.node[index]):
            index += 1
            continue
        node = onnx.NodeProto()
        node.CopyFrom(model.graph.node[index])
        name = label(node)
        elem_type = types.get(node.input[0], TensorProto.FLOAT)
        if elem_type != TensorProto.FLOAT:
            raise UnsupportedModelError(name, node.op_type, f"its input '{node.input[0]}' is "
                                        f"{TensorProto.DataType.Name(elem_type)}: the host computes QONNX quantizers "
                                        "in float32")
        values = constant_values(model, [tensor for tensor in node.input[1:] if tensor in constant], name, node.op_type)
        quantizer = read_quantizer(node, name, qonnx_version(model, node), values)  # refuses run-time parameters
        nodes = standard_ops(quantizer, edit)
        if node.input[0] in constant:
            on_constants.append(node)
        else:
            check_opset(node, name, nodes, default_opset(model))
        rest = list(model.graph.node)
        del model.graph.node[:]
        model.graph.node.extend([*rest[:index], *nodes, *rest[index + 1:]])
        index += len(nodes)
    return on_constants


def check_opset(node: onnx.NodeProto, name: str, nodes: list[onnx.NodeProto], opset: int) -> None:
    """An activation's quantizer stays in the part as its standard ops: the part's opset must have them."""
    needed, ops = opset_needed(nodes)
    if opset < needed:
        raise UnsupportedModelError(name, node.op_type, f"runs on the host as standard ONNX ops, and {', '.join(ops)} "
                                    f"needs opset {needed}; the model imports opset {opset}")


def fold_constants(model: onnx.ModelProto, quantizers: list[onnx.NodeProto]) -> None:
    """Evaluate the constant nodes writing the (rewritten) `quantizers`' outputs and every constant
    node after them, and keep the values the rest of the graph reads as initializers; drop what
    then computes nothing."""
    if not quantizers:
        return
    graph = NodeGraph(model)
    seeds = {graph.producer[quantizer.output[0]] for quantizer in quantizers}
    fold, stack = set(), list(seeds)
    while stack:
        index = stack.pop()
        if index in fold:
            continue
        fold.add(index)
        stack.extend(c for t in graph.nodes[index].output if t for c in graph.consumers.get(t, ())
                     if c in graph.constant_nodes)
    frontier = list(dict.fromkeys(
        tensor for index in sorted(fold) for tensor in graph.nodes[index].output
        if tensor and (tensor in graph.outputs or any(c not in fold for c in graph.consumers.get(tensor, ())))))
    values = constant_values(model, frontier, label(quantizers[0]), quantizers[0].op_type)
    kept = [node for index, node in enumerate(graph.nodes) if index not in fold]
    del model.graph.node[:]
    model.graph.node.extend(live_nodes(kept, {value.name for value in model.graph.output}))
    model.graph.initializer.extend(numpy_helper.from_array(values[tensor], tensor) for tensor in frontier)
    drop_unused_initializers(model.graph)


def live_nodes(nodes: list[onnx.NodeProto], outputs: set[str]) -> list[onnx.NodeProto]:
    """`nodes` without those whose outputs nobody reads (after folding: the constants' computations)."""
    while True:
        read = outputs | {tensor for node in nodes for tensor in node.input}
        live = [node for node in nodes if any(tensor in read for tensor in node.output if tensor)]
        if len(live) == len(nodes):
            return live
        nodes = live


def constant_values(model: onnx.ModelProto, tensors: list[str], name: str, op_type: str) -> dict[str, np.ndarray]:
    """The values of constant `tensors` of `model`: initializers as they are, the others computed
    by the numpy host executor from the nodes that write them. An error names node `name`."""
    initializers = {init.name: init for init in model.graph.initializer}
    values = {t: numpy_helper.to_array(initializers[t]) for t in tensors if t in initializers}
    wanted = [t for t in tensors if t not in initializers]
    if not wanted:
        return values
    producer = {t: node for node in model.graph.node for t in node.output if t}
    needed, stack = set(), list(wanted)
    while stack:
        tensor = stack.pop()
        node = producer.get(tensor)
        if node is not None and id(node) not in needed:
            needed.add(id(node))
            stack.extend(t for t in node.input if t)
    nodes = [node for node in model.graph.node if id(node) in needed]
    read = {t for node in nodes for t in node.input}
    graph = helper.make_graph(nodes, "constants", [], [helper.make_empty_tensor_value_info(t) for t in wanted],
                              [init for init in model.graph.initializer if init.name in read])
    sub = helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    try:
        values.update(run_program(load_program(program_bytes(sub)), {}, wanted))
    except HostError as error:
        raise UnsupportedModelError(name, op_type, f"its constants cannot be computed when the host part is made: "
                                    f"{error}") from None
    return values
