"""Small in-place edits of an ONNX model, for building the careless and hostile variants of a good one."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


def node_named(model: onnx.ModelProto, name: str) -> onnx.NodeProto:
    return next(node for node in model.graph.node if node.name == name)


def set_initializer(model: onnx.ModelProto, name: str, array: np.ndarray) -> onnx.ModelProto:
    """Replace (or add) the initializer `name` by `array`, keeping its place in the list."""
    tensor = numpy_helper.from_array(np.asarray(array), name)
    for index, init in enumerate(model.graph.initializer):
        if init.name == name:
            model.graph.initializer[index].CopyFrom(tensor)
            return model
    model.graph.initializer.append(tensor)
    return model


def set_attributes(model: onnx.ModelProto, node: str, **attributes: object) -> onnx.ModelProto:
    """Set (replace) attributes of the node named `node`."""
    target = node_named(model, node)
    kept = [a for a in target.attribute if a.name not in attributes]
    del target.attribute[:]
    target.attribute.extend(kept + [helper.make_attribute(key, value) for key, value in attributes.items()])
    return model


def set_opset(model: onnx.ModelProto, version: int) -> onnx.ModelProto:
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = version
    return model
