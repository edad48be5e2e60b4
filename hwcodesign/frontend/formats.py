"""Per-layer weight formats (int8, int4, DyBit n, ...) in and out of ONNX models.

Convention (README, "DyBit mixed precision"):
- A model carries its formats in the metadata entry `hwcodesign.weight_formats`: JSON mapping
  the name of a Conv/Gemm/MatMul node to a format name, e.g. {"conv2": "dybit4"}. Layers not
  named keep the integer type their QDQ/QONNX quantizer gives them.
- The weights of a named layer are a DequantizeLinear of an integer initializer whose values
  are the format's levels (DyBit: decoded levels, sign included) with per-output-channel scales
  and zero point 0. onnxruntime therefore runs the model as it is (it is a plain QDQ model),
  while the frontend types those weights as the format (and refuses values that are not its
  levels, naming the layer).
- `with_weight_formats` writes such a model from any QDQ model (re-quantizing the named layers'
  real weights to their formats); a sidecar JSON file ({"layers": {...}}, what `hwcodesign
  search` writes beside its model) is read with `load_formats_file` and applied the same way.
  A layer given a format twice is re-rounded from its current (already rounded) weights.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from hwcodesign.errors import HwcodesignError, UnsupportedModelError
from hwcodesign.quant.formats import WeightFormat

FORMATS_KEY = "hwcodesign.weight_formats"
WEIGHT_OPS = {"Conv": 1, "Gemm": 1, "MatMul": 1}  # op type -> index of the weight input


def read_formats(model: onnx.ModelProto) -> dict[str, WeightFormat]:
    """The formats a model's metadata names (empty when it names none)."""
    entry = next((p.value for p in model.metadata_props if p.key == FORMATS_KEY), None)
    if entry is None:
        return {}
    try:
        data = json.loads(entry)
    except (json.JSONDecodeError, RecursionError) as error:  # a hostile nesting exhausts the decoder's stack
        raise HwcodesignError(f"metadata '{FORMATS_KEY}' is not valid JSON: {error}") from None
    return parse_formats(data, f"metadata '{FORMATS_KEY}'")


def parse_formats(data: object, where: str) -> dict[str, WeightFormat]:
    """{"layer": "dybit4", ...} (or {"layers": {...}}) -> formats; a clear error otherwise."""
    if isinstance(data, dict) and isinstance(data.get("layers"), dict):
        data = data["layers"]
    if not isinstance(data, dict):
        raise HwcodesignError(f"{where}: expected a JSON object of layer name -> format (e.g. {{\"conv1\": \"dybit4\"}})")
    formats = {}
    for layer, text in data.items():
        try:
            formats[str(layer)] = WeightFormat.parse(str(text))
        except ValueError as error:
            raise HwcodesignError(f"{where}: layer '{layer}': {error}") from None
    return formats


def load_formats_file(path: Path) -> dict[str, WeightFormat]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise HwcodesignError(f"cannot read weight formats from {path}: {error}") from None
    return parse_formats(data, str(path))


def formats_json(formats: Mapping[str, WeightFormat]) -> str:
    return json.dumps({name: str(fmt) for name, fmt in sorted(formats.items())}, sort_keys=True)


def weight_nodes(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    """Conv/Gemm/MatMul nodes by name (a format names its layer by its node name)."""
    return {node.name: node for node in model.graph.node if node.op_type in WEIGHT_OPS and node.name}


def with_weight_formats(model: onnx.ModelProto, formats: Mapping[str, WeightFormat]) -> onnx.ModelProto:
    """A copy of `model` with the named layers' weights re-quantized to their formats (module
    doc) and the formats recorded in its metadata (merged with any it already names)."""
    result = onnx.ModelProto()
    result.CopyFrom(model)
    nodes = weight_nodes(result)
    unknown = sorted(set(formats) - set(nodes))
    if unknown:
        raise HwcodesignError(f"weight formats name layers the model does not have: {', '.join(unknown)} "
                              f"(Conv/Gemm/MatMul nodes: {', '.join(sorted(nodes)) or 'none'})")
    producers = {out: node for node in result.graph.node for out in node.output}
    initializers = {init.name: init for init in result.graph.initializer}
    taken = set(producers) | set(initializers) | {node.name for node in result.graph.node} | \
        {value.name for value in result.graph.input}
    for name, fmt in sorted(formats.items()):
        node = nodes[name]
        index = WEIGHT_OPS[node.op_type]
        real, axis = real_weight(node, index, producers, initializers, name)
        levels, scales = fmt.quantize(real, axis)
        # int8 holds every level up to DyBit 5; wider ones go in int32, which DequantizeLinear
        # takes at any opset >= 10 (int16 would need opset 21)
        container = np.int8 if int(np.abs(levels).max(initial=0)) <= 127 else np.int32
        prefix = fresh_name(f"{name}_{fmt}", taken)
        q_init = numpy_helper.from_array(levels.astype(container), f"{prefix}_q")
        s_init = numpy_helper.from_array(scales.astype(np.float32), f"{prefix}_scale")
        z_init = numpy_helper.from_array(np.zeros(len(scales), container), f"{prefix}_zero_point")
        result.graph.initializer.extend([q_init, s_init, z_init])
        dequantize = helper.make_node("DequantizeLinear", [q_init.name, s_init.name, z_init.name], [f"{prefix}_w"],
                                      name=f"{prefix}_dequantize", axis=axis)
        position = list(result.graph.node).index(node)
        result.graph.node.insert(position, dequantize)
        node.input[index] = dequantize.output[0]
    drop_unused(result)
    merged = {**read_formats(model), **formats}
    del result.metadata_props[:]
    result.metadata_props.extend(p for p in model.metadata_props if p.key != FORMATS_KEY)
    result.metadata_props.append(onnx.StringStringEntryProto(key=FORMATS_KEY, value=formats_json(merged)))
    return result


def fresh_name(base: str, taken: set[str]) -> str:
    """`base`, or `base_2`, `base_3`, ... so that the names it derives (`_q`, `_scale`, `_w`,
    ...) are new: applying formats twice to one layer must not collide with the first."""
    name, k = base, 1
    while any(n == name or n.startswith(name + "_") for n in taken):
        k += 1
        name = f"{base}_{k}"
    taken.update({name, f"{name}_q", f"{name}_scale", f"{name}_zero_point", f"{name}_w", f"{name}_dequantize"})
    return name


def real_weight(node: onnx.NodeProto, index: int, producers: dict[str, onnx.NodeProto],
                initializers: dict[str, onnx.TensorProto], layer: str) -> tuple[np.ndarray, int]:
    """The real weights of a layer and their output-channel axis: a float initializer, or a
    DequantizeLinear of an integer one (its dequantized values)."""
    source = node.input[index]
    axis = output_axis(node)
    if source in initializers:
        return numpy_helper.to_array(initializers[source]).astype(np.float64), axis
    producer = producers.get(source)
    if producer is None or producer.op_type != "DequantizeLinear" or producer.input[0] not in initializers:
        raise UnsupportedModelError(layer, node.op_type, f"weights '{source}' are neither an initializer nor a "
                                    "DequantizeLinear of one; a weight format cannot be applied")
    q = numpy_helper.to_array(initializers[producer.input[0]]).astype(np.float64)
    scale = numpy_helper.to_array(initializers[producer.input[1]]).astype(np.float64)
    zero = (numpy_helper.to_array(initializers[producer.input[2]]).astype(np.float64)
            if len(producer.input) > 2 and producer.input[2] else np.zeros_like(scale))
    dq_axis = next((a.i for a in producer.attribute if a.name == "axis"), 1)
    shape = [1] * q.ndim
    if scale.size > 1:
        shape[dq_axis] = -1
    return (q - zero.reshape(shape)) * scale.reshape(shape), axis


def output_axis(node: onnx.NodeProto) -> int:
    """The weight axis of output channels: 0 for Conv and Gemm(transB=1), 1 for MatMul/Gemm."""
    if node.op_type == "Conv":
        return 0
    if node.op_type == "Gemm":
        return 0 if any(a.name == "transB" and a.i for a in node.attribute) else 1
    return 1


def drop_unused(model: onnx.ModelProto) -> None:
    """Remove nodes and initializers nothing reads any more (the replaced DequantizeLinear)."""
    while True:
        read = {i for node in model.graph.node for i in node.input} | {o.name for o in model.graph.output}
        dead = [node for node in model.graph.node if not any(o in read for o in node.output)]
        if not dead:
            break
        for node in dead:
            model.graph.node.remove(node)
    read = {i for node in model.graph.node for i in node.input}
    unused = [init for init in model.graph.initializer if init.name not in read]
    for init in unused:
        model.graph.initializer.remove(init)
