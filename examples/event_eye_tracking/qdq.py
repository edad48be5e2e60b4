"""Quantize the exported float eye tracker into QDQ form, in the frontend's sparse convention.

onnxruntime's ``quantize_static`` is not used: it treats the mask's Mul as an ordinary
quantizable product (the mask would get a uint8 Q/DQ pair and stop being the float 0/1 mask the
frontend recognises) and calibrates the input's scale from its range instead of keeping the
event count itself (scale 1). So the Q/DQ nodes are put into the torch-exported graph here, by
hand, as ``tests/support/sparse_models.py`` builds its models -- the exporter's own nodes (Abs,
ReduceMax, Greater, Cast, MaxPool, Conv -> Relu -> Mul) stay exactly as torch wrote them:

* the input: ``QuantizeLinear(events, 1.0, uint8 0) -> DequantizeLinear``, read by the mask
  and the stem (counts 0..15 are exact);
* every conv and the linear layer: int8 symmetric weights per output channel (scale
  max|w| / 127, zero point 0) and int32 biases on the grid input scale x weight scale;
* every activation a layer reads (after the mask Mul, an Add, the global pool) and the output:
  MinMax-calibrated uint8 on the float model over calibration frames; a ReLU output has minimum
  0 and so zero point 0, which makes an inactive site exactly the zero point the sparse stages
  skip. The regression output may be asymmetric (it is dense).

The mask subgraph stays float: it is structure (which sites are active), not data.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from hwcodesign.onnx_edit import GraphEdit, drop_unused_initializers
from hwcodesign.reference import Reference

MASK_OPS = ("Abs", "ReduceMax", "Greater", "Cast", "MaxPool")
# Ops whose activation inputs must be quantized tensors (Flatten passes its input's grid on).
READS_QUANTIZED = ("Conv", "Add", "GlobalAveragePool", "Flatten", "Gemm")
WEIGHT_QMAX = 127


def mask_tensors(model: onnx.ModelProto, input_name: str) -> set[str]:
    """Tensors of the active-site mask: everything the Abs of the input leads to through mask
    ops (Abs, ReduceMax, Greater, Cast, and MaxPool of a mask)."""
    masks: set[str] = set()
    for node in model.graph.node:  # the exporter writes nodes in topological order
        starts = node.op_type == "Abs" and node.input[0] == input_name
        continues = node.op_type in MASK_OPS and any(i in masks for i in node.input)
        if starts or continues:
            masks.update(node.output)
    return masks


def quantized_points(model: onnx.ModelProto, input_name: str) -> list[str]:
    """The float tensors that get a Q/DQ pair, in graph order: the input, every activation a
    conv, add, pool, flatten or linear layer reads, and the graph outputs."""
    inits = {i.name for i in model.graph.initializer}
    masks = mask_tensors(model, input_name)
    producers = {o: n for n in model.graph.node for o in n.output}
    points = [input_name]
    for node in model.graph.node:
        if node.op_type not in READS_QUANTIZED:
            continue
        data = node.input[:1] if node.op_type in ("Conv", "Gemm") else node.input
        for name in data:
            if name in inits or name in masks or name in points:
                continue
            if node.op_type == "Gemm" and producers.get(name) is not None and producers[name].op_type == "Flatten":
                continue  # Flatten's input is quantized: it streams the same values
            points.append(name)
    points.extend(o.name for o in model.graph.output if o.name not in points)
    return points


def calibrate(model: onnx.ModelProto, names: list[str], frames: np.ndarray, input_name: str) -> dict[str, tuple[float, float]]:
    """(min, max) of each named float tensor over `frames` (N, C, H, W), batch 1 at a time (in
    onnxruntime with its default graph optimisations, as when the example's scales were first made)."""
    wanted = [n for n in names if n != input_name]
    reference = Reference(model, intermediates=wanted, optimized=True)
    low = {n: np.inf for n in names}
    high = {n: -np.inf for n in names}
    for frame in frames:
        values = reference.run({input_name: frame[None].astype(np.float32)}, wanted)
        values[input_name] = frame
        for name in names:
            low[name] = min(low[name], float(np.min(values[name])))
            high[name] = max(high[name], float(np.max(values[name])))
    return {n: (low[n], high[n]) for n in names}


def uint8_grid(low: float, high: float) -> tuple[np.float32, np.uint8]:
    """MinMax uint8 scale and zero point covering [min(low, 0), max(high, 0)]; zero point 0
    whenever the tensor is never negative (every ReLU output)."""
    low, high = min(low, 0.0), max(high, 0.0)
    if high <= low:
        return np.float32(1.0), np.uint8(0)
    scale = np.float32((high - low) / 255.0)
    return scale, np.uint8(np.clip(np.rint(-low / float(scale)), 0, 255))


def int8_per_channel(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 weights per output channel (axis 0): q in [-127, 127], scale max|w| / 127."""
    absmax = np.abs(weight.reshape(len(weight), -1)).max(axis=1).astype(np.float64)
    scale = np.where(absmax > 0, absmax / WEIGHT_QMAX, 1.0).astype(np.float32)
    view = (-1,) + (1,) * (weight.ndim - 1)
    q = np.clip(np.rint(weight / scale.reshape(view)), -WEIGHT_QMAX, WEIGHT_QMAX).astype(np.int8)
    return q, scale


def quantize(float_model: onnx.ModelProto, calibration: np.ndarray, input_name: str) -> onnx.ModelProto:
    """The QDQ model of `float_model` (see the module docstring), calibrated on `calibration`
    (N, C, H, W) float event counts."""
    if not np.array_equal(calibration, np.rint(calibration)) or calibration.min() < 0 or calibration.max() > 255:
        raise ValueError("the input must be event counts 0..255: it is quantized with scale 1")
    points = quantized_points(float_model, input_name)
    ranges = calibrate(float_model, points, calibration, input_name)
    model = onnx.ModelProto()
    model.CopyFrom(float_model)
    graph = model.graph
    edit = GraphEdit(model)
    outputs = {o.name for o in graph.output}
    nodes = list(graph.node)
    grid: dict[str, tuple[str, str, float]] = {}  # float tensor -> (scale, zero point, scale value)
    prologue: list[onnx.NodeProto] = []
    after: dict[str, list[onnx.NodeProto]] = {}
    renamed: dict[str, str] = {}  # float tensor -> its dequantized replacement
    for name in points:
        if name == input_name:
            scale, zero = np.float32(1.0), np.uint8(0)
        else:
            scale, zero = uint8_grid(*ranges[name])
        s = edit.add_init(f"{name}_scale", scale)
        z = edit.add_init(f"{name}_zero_point", zero)
        grid[name] = (s, z, float(scale))
        source = name
        if name in outputs:  # keep the graph output's name on the dequantized value
            source = edit.fresh(f"{name}_float")
            producer = next(n for n in nodes if name in n.output)
            producer.output[list(producer.output).index(name)] = source
        q = edit.fresh(f"{name}_quantized")
        dq = name if name in outputs else edit.fresh(f"{name}_dequantized")
        pair = [edit.make_node("QuantizeLinear", [source, s, z], q), edit.make_node("DequantizeLinear", [q, s, z], dq)]
        if name == input_name:
            prologue.extend(pair)
        else:
            after.setdefault(source, []).extend(pair)
        if dq != name:
            renamed[name] = dq
    for node in nodes:
        node.input[:] = [renamed.get(i, i) for i in node.input]
    input_scales = {renamed.get(name, name): value for name, (_, _, value) in grid.items()}
    weight_nodes: dict[int, list[onnx.NodeProto]] = {}
    for index, node in enumerate(nodes):
        if node.op_type not in ("Conv", "Gemm"):
            continue
        if node.op_type == "Gemm":
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if not attrs.get("transB", 0) or attrs.get("transA", 0):
                raise ValueError(f"{node.name}: expected Gemm(x, W, b, transB=1) as torch exports nn.Linear")
        x_name = node.input[0]
        x_scale = input_scales.get(x_name)
        if x_scale is None:  # Gemm after Flatten: the flattened tensor keeps its input's grid
            flatten = next(n for n in nodes if x_name in n.output)
            x_scale = input_scales[flatten.input[0]]
        weight = numpy_helper.to_array(edit.inits[node.input[1]]).astype(np.float32)
        q, w_scale = int8_per_channel(weight)
        bias = numpy_helper.to_array(edit.inits[node.input[2]]).astype(np.float64)
        b_scale = (np.float64(x_scale) * w_scale.astype(np.float64)).astype(np.float32)
        q_bias = np.rint(bias / b_scale.astype(np.float64)).astype(np.int32)
        base = node.input[1]
        w_dq = edit.fresh(f"{base}_dequantized")
        b_dq = edit.fresh(f"{node.input[2]}_dequantized")
        weight_nodes[index] = [
            edit.make_node("DequantizeLinear", [edit.add_init(f"{base}_quantized", q), edit.add_init(f"{base}_scale", w_scale),
                                           edit.add_init(f"{base}_zero_point", np.zeros(len(q), np.int8))], w_dq, axis=0),
            edit.make_node("DequantizeLinear", [edit.add_init(f"{node.input[2]}_quantized", q_bias),
                                           edit.add_init(f"{node.input[2]}_scale", b_scale),
                                           edit.add_init(f"{node.input[2]}_zero_point", np.zeros(len(q), np.int32))],
                      b_dq, axis=0),
        ]
        node.input[1], node.input[2] = w_dq, b_dq
    ordered = list(prologue)
    for index, node in enumerate(nodes):
        ordered.extend(weight_nodes.get(index, []))
        ordered.append(node)
        for output in node.output:
            ordered.extend(after.get(output, []))
    edit.set_nodes(ordered)
    drop_unused_initializers(graph)
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model, full_check=True)
    return model


def activation_grids(model: onnx.ModelProto) -> list[tuple[str, float, int, int]]:
    """(quantized tensor, scale, zero point, ONNX element type) of every QuantizeLinear."""
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    rows = []
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear":
            zero = inits[node.input[2]]
            rows.append((node.output[0], float(inits[node.input[1]]), int(zero),
                         helper.np_dtype_to_tensor_dtype(zero.dtype)))
    return rows
