"""Tool side of the host parts: an ONNX host part as the numpy executor's program, and the executor's source.

The board may lack onnxruntime, so every host part also ships as a program file the numpy executor
(`hwcodesign/host/runtime.py`) runs: the graph as JSON (nodes in order, attributes as JSON values)
plus one array per initializer and tensor attribute, in a deterministic .npz. Everything that
cannot be stored as plain numpy data is refused here, naming the node or tensor, rather than on the
board: subgraph attributes (If/Loop/Scan), sparse tensors, element types numpy lacks (bfloat16,
float8, strings). INT4/UINT4 tensors are stored as int8/uint8 and listed under "narrow", so a
QuantizeLinear saturating to them keeps its 4-bit range.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from hwcodesign.data_files import deterministic_npz
from hwcodesign.errors import HwcodesignError, UnsupportedModelError
from hwcodesign.host import runtime
from hwcodesign.host.runtime import (
    HOST_PROGRAM_FORMAT,
    HOST_PROGRAM_KEY,
    HOST_PROGRAM_VERSION,
    host_missing_ops,
)

NARROW_TYPES = {TensorProto.INT4: ("int4", np.int8), TensorProto.UINT4: ("uint4", np.uint8)}
# numpy dtypes a program may hold: what np.load reads back without pickle and the executor computes on
STORABLE = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
            "float16", "float32", "float64"}
UNSTORABLE_ATTRIBUTES = {AttributeProto.GRAPH: "a subgraph", AttributeProto.GRAPHS: "subgraphs",
                         AttributeProto.SPARSE_TENSOR: "a sparse tensor", AttributeProto.SPARSE_TENSORS: "sparse tensors",
                         AttributeProto.TYPE_PROTO: "a type", AttributeProto.TYPE_PROTOS: "types"}


class ProgramWriter:
    """Collects a program's arrays under short keys (i0.., a0..) and the names of its narrow tensors."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.narrow: dict[str, str] = {}
        self.counts: dict[str, int] = {}

    def store(self, tensor: TensorProto, prefix: str, owner: str, narrow_name: str | None = None) -> str:
        """Store `tensor` under a new key; `owner` names it in errors, `narrow_name` is the tensor a
        4-bit type is recorded for."""
        array = numpy_helper.to_array(tensor)
        if tensor.data_type in NARROW_TYPES:
            kind, storage = NARROW_TYPES[tensor.data_type]
            array = array.astype(storage)
            if narrow_name:
                self.narrow[narrow_name] = kind
        if array.dtype.name not in STORABLE:
            element = TensorProto.DataType.Name(tensor.data_type)
            raise HwcodesignError(f"{owner}: element type {element} cannot be stored in a host program "
                                  "(numpy has no such type); keep it out of the host part")
        key = f"{prefix}{self.counts.get(prefix, 0)}"
        self.counts[prefix] = self.counts.get(prefix, 0) + 1
        self.arrays[key] = array
        return key


def program_bytes(model: onnx.ModelProto) -> bytes:
    """The host program (.npz bytes, identical for an identical model) of a host part's ONNX model."""
    graph = model.graph
    writer = ProgramWriter()
    initializers = {init.name: writer.store(init, "i", f"initializer '{init.name}'", init.name)
                    for init in graph.initializer}
    nodes = [node_entry(node, writer) for node in graph.node]
    header = {
        "format": HOST_PROGRAM_FORMAT, "version": HOST_PROGRAM_VERSION, "opset": default_opset(model),
        "inputs": [value.name for value in graph.input if value.name not in initializers],
        "outputs": [value.name for value in graph.output],
        "initializers": initializers, "narrow": writer.narrow, "nodes": nodes,
    }
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return deterministic_npz({**writer.arrays, HOST_PROGRAM_KEY: np.frombuffer(text, np.uint8)})


def default_opset(model: onnx.ModelProto) -> int:
    """The version of the default ONNX domain the model imports (op semantics differ between opsets)."""
    versions = [entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")]
    if not versions:
        raise HwcodesignError("the host part imports no default ONNX opset")
    return versions[0]


def node_entry(node: onnx.NodeProto, writer: ProgramWriter) -> dict[str, Any]:
    return {"name": node.name, "op_type": node.op_type, "domain": node.domain,
            "inputs": list(node.input), "outputs": list(node.output),
            "attributes": {attribute.name: attribute_value(node, attribute, writer) for attribute in node.attribute}}


def attribute_value(node: onnx.NodeProto, attribute: AttributeProto, writer: ProgramWriter) -> Any:
    """An attribute as JSON: numbers, strings and lists as they are, tensors as {"tensor": key}."""
    if attribute.type in UNSTORABLE_ATTRIBUTES:
        raise UnsupportedModelError(node.name, node.op_type,
                                    f"attribute '{attribute.name}' holds {UNSTORABLE_ATTRIBUTES[attribute.type]}, "
                                    "which the host program cannot hold; move the node to the accelerator or "
                                    "out of the model")
    value = helper.get_attribute_value(attribute)
    owner = f"node '{node.name}' (op {node.op_type}) attribute '{attribute.name}'"
    # a Constant's 4-bit value is recorded for the tensor it defines (a QuantizeLinear zero point)
    defines = node.output[0] if node.op_type == "Constant" and node.output else None
    if attribute.type == AttributeProto.TENSOR:
        return {"tensor": writer.store(value, "a", owner, defines)}
    if attribute.type == AttributeProto.TENSORS:
        return {"tensors": [writer.store(tensor, "a", owner) for tensor in value]}
    if attribute.type == AttributeProto.STRING:
        return value.decode("utf-8")
    if attribute.type == AttributeProto.STRINGS:
        return [item.decode("utf-8") for item in value]
    if attribute.type == AttributeProto.FLOATS:
        return [float(item) for item in value]
    if attribute.type == AttributeProto.INTS:
        return [int(item) for item in value]
    return value


def numpy_missing(model: onnx.ModelProto) -> list[str]:
    """The op types of `model` the numpy executor does not implement (a custom domain's as domain:op):
    a host part with any needs onnxruntime on the board."""
    return host_missing_ops((node.domain, node.op_type) for node in model.graph.node)


def host_runtime_source() -> str:
    """The numpy executor's source, for the generated driver.py to embed verbatim."""
    return Path(runtime.__file__).read_text(encoding="utf-8")
