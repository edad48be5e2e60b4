"""Base models for the fuzz harness and the mutators that break them, by family.

Families (issue 15's findings):
  structure  ONNX structure and attributes: nodes, names, dilations, strides, pads, kernel_shape...
  quantizers tensors and quantizers: scale/zero-point lengths, axes, dtypes, extreme scales, QONNX bits
  external   external data: missing, `../`, absolute, truncated, a directory or a device
  resources  huge declared inputs, constant folding blow-ups
  files      the model file itself: truncated, garbage, empty, a directory, a device, bit flips

A mutator edits a copy of a base model in place (and may write side files into the case's
folder) and returns a `Mutation` saying what it did, which names a good error message would
mention, and whether a correct tool must refuse the result ("refuse") or may accept it
("either": then onnxruntime, where it runs the base model, is the judge).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hwcodesign.quantize import quantize_qdq
from support.onnx_models import GraphBuilder
from support.qdq_by_hand import conv_bn_relu_qdq

REFUSE, EITHER = "refuse", "either"
QONNX_DOMAIN = "qonnx.custom_op.general"
HUGE = (1 << 16, 1 << 16)  # 4 Gi elements: 16 GiB of float32
# A refusal that quotes a failed allocation came from the harness's address-space limit, not from a
# size guard: on a machine with the memory to spare the same run would take it all.
OUT_OF_MEMORY = ("unable to allocate", "memoryerror", "out of memory")


@dataclass
class Mutation:
    description: str
    names: tuple[str, ...] = ()
    expect: str = REFUSE
    all_names: bool = False  # the message must name every one (several unsupported nodes)
    ort: bool = True  # onnxruntime's verdict is meaningful for this mutant
    inspect_expect: str | None = None  # a different expectation for `inspect` (it does not map)
    raw: bytes | None = None  # the model file's bytes when the mutation is on the bytes, not the proto
    forbidden: tuple[str, ...] = ()  # phrases a refusal must not rest on


Mutator = Callable[[onnx.ModelProto, np.random.Generator, Path], Mutation | None]
MUTATORS: dict[str, list[Mutator]] = {}


def mutator(family: str) -> Callable[[Mutator], Mutator]:
    def register(function: Mutator) -> Mutator:
        MUTATORS.setdefault(family, []).append(function)
        return function
    return register


# --- base models ---------------------------------------------------------------------------


def qdq_chain() -> onnx.ModelProto:
    """conv-relu-maxpool-conv(dilated)-relu-GAP-flatten-gemm on 3x8x8, QDQ by onnxruntime's quantizer."""
    b = GraphBuilder(seed=5)
    x = b.input((1, 3, 8, 8))
    x = b.node("MaxPool", [b.node("Relu", [b.conv(x, 3, 4, pads=[1, 1, 1, 1])])], kernel_shape=[2, 2], strides=[2, 2])
    x = b.node("Relu", [b.conv(x, 4, 4, dilations=[2, 2], pads=[2, 2, 2, 2])])
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])], axis=1)
    rng = np.random.default_rng(6)
    samples = [rng.normal(0, 1, (1, 3, 8, 8)).astype(np.float32) for _ in range(8)]
    return quantize_qdq(b.model([b.gemm(x, 4, 5)]), samples)


def base_models(out: Path, examples: bool = False) -> dict[str, Path]:
    """The models every mutation starts from, written into `out`: two small QDQ nets and the
    QONNX example CNN; with `examples`, also the ResNet-8 example (trains for ~15 s)."""
    from support.examples import build_models_module

    out.mkdir(parents=True, exist_ok=True)
    models = {"qdq_small": out / "qdq_small.onnx", "qdq_chain": out / "qdq_chain.onnx"}
    onnx.save(conv_bn_relu_qdq(), models["qdq_small"])
    onnx.save(qdq_chain(), models["qdq_chain"])
    build = build_models_module()
    models["qonnx_cnv"] = Path(build.build_qonnx_cnn(out))
    if examples:
        models["resnet8"] = Path(build.build_resnet_qdq(out, weight_bits=8))
    return models


# --- helpers -------------------------------------------------------------------------------


def pick(rng: np.random.Generator, items: list):
    return items[int(rng.integers(len(items)))] if items else None


def initializer(model: onnx.ModelProto, name: str) -> onnx.TensorProto | None:
    return next((init for init in model.graph.initializer if init.name == name), None)


def replace_initializer(model: onnx.ModelProto, name: str, tensor: onnx.TensorProto | np.ndarray) -> None:
    new = tensor if isinstance(tensor, onnx.TensorProto) else numpy_helper.from_array(np.asarray(tensor), name)
    new.name = name
    for index, init in enumerate(model.graph.initializer):
        if init.name == name:
            model.graph.initializer[index].CopyFrom(new)
            return
    model.graph.initializer.append(new)


def array(model: onnx.ModelProto, name: str) -> np.ndarray | None:
    init = initializer(model, name)
    return None if init is None else numpy_helper.to_array(init)


def nodes(model: onnx.ModelProto, *ops: str) -> list[onnx.NodeProto]:
    return [node for node in model.graph.node if not ops or node.op_type in ops]


def set_attribute(node: onnx.NodeProto, name: str, value: object) -> None:
    kept = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend(kept)
    node.attribute.append(helper.make_attribute(name, value))


def node_names(node: onnx.NodeProto) -> tuple[str, ...]:
    return tuple(n for n in (node.name, *node.output) if n)


def weight_dequantizers(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """DequantizeLinear nodes of weights (an initializer of rank >= 2)."""
    found = []
    for node in nodes(model, "DequantizeLinear"):
        weight = array(model, node.input[0])
        if weight is not None and weight.ndim >= 2:
            found.append(node)
    return found


def activation_quantizers(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [node for node in nodes(model, "QuantizeLinear")
            if len(node.input) > 1 and initializer(model, node.input[1])]


def qonnx_quants(model: onnx.ModelProto, weights: bool | None = None) -> list[onnx.NodeProto]:
    """QONNX Quant nodes; `weights`: only those on an initializer (True) or on activations (False)."""
    found = [node for node in model.graph.node if node.op_type == "Quant"]
    if weights is None:
        return found
    return [node for node in found if (initializer(model, node.input[0]) is not None) == weights]


def strip_shapes(model: onnx.ModelProto) -> None:
    """Forget intermediate shapes and make the outputs' symbolic, so a changed input shape is not
    contradicted by them (the checker wants an output shape, not its sizes)."""
    del model.graph.value_info[:]
    for output in model.graph.output:
        for index, dim in enumerate(output.type.tensor_type.shape.dim):
            if index:
                dim.dim_param = f"{output.name}_{index}"


def users(model: onnx.ModelProto, tensor: str) -> tuple[str, ...]:
    """Every node reading `tensor` (a shared scale is named by whichever node a message picks)."""
    return tuple(node.name for node in model.graph.node if tensor in node.input and node.name)


# --- (a) structure and attributes ----------------------------------------------------------


@mutator("structure")
def delete_node(model, rng, work):
    node = pick(rng, list(model.graph.node))
    model.graph.node.remove(node)
    return Mutation(f"deleted node '{node.name}' ({node.op_type})", node_names(node) + (node.op_type,))


@mutator("structure")
def duplicate_node(model, rng, work):
    node = pick(rng, list(model.graph.node))
    index = list(model.graph.node).index(node)
    model.graph.node.insert(index + 1, copy.deepcopy(node))
    return Mutation(f"node '{node.name}' ({node.op_type}) twice", node_names(node))


@mutator("structure")
def duplicate_node_name(model, rng, work):
    named = [node for node in model.graph.node if node.name]
    if len(named) < 2:
        return None
    first, second = rng.choice(len(named), 2, replace=False)
    named[int(second)].name = named[int(first)].name
    return Mutation(f"two nodes named '{named[int(first)].name}'", (named[int(first)].name,))


@mutator("structure")
def conv_dilations(model, rng, work):
    node = pick(rng, nodes(model, "Conv"))
    if node is None:
        return None
    value = int(pick(rng, [-1, 0, -3, 1000, (1 << 31) - 1]))
    set_attribute(node, "dilations", [value, value])
    return Mutation(f"{node.name}: dilations=[{value}, {value}]", (node.name, "dilation"))


@mutator("structure")
def conv_strides(model, rng, work):
    node = pick(rng, nodes(model, "Conv", "MaxPool", "AveragePool"))
    if node is None:
        return None
    value = int(pick(rng, [0, -1, -2, 100]))
    set_attribute(node, "strides", [value, value])
    return Mutation(f"{node.name}: strides=[{value}, {value}]", (node.name, "stride"),
                    expect=EITHER if value > 0 else REFUSE)


@mutator("structure")
def conv_pads(model, rng, work):
    node = pick(rng, nodes(model, "Conv", "MaxPool", "AveragePool"))
    if node is None:
        return None
    pads = pick(rng, [[-1, -1, -1, -1], [1, 1], [1, 1, 1, 1, 1, 1], [1000, 1000, 1000, 1000], [5, 0, 0, 5]])
    set_attribute(node, "pads", pads)
    invalid = len(pads) != 4 or min(pads) < 0
    return Mutation(f"{node.name}: pads={pads}", (node.name, "pad"), expect=REFUSE if invalid else EITHER)


@mutator("structure")
def kernel_shape(model, rng, work):
    node = pick(rng, nodes(model, "Conv", "MaxPool", "AveragePool"))
    if node is None:
        return None
    shape = pick(rng, [[3], [5, 5], [0, 0], [3, 3, 3], [-3, -3]])
    if node.op_type != "Conv" and shape == [5, 5]:
        shape = [0, 0]
    set_attribute(node, "kernel_shape", shape)
    return Mutation(f"{node.name}: kernel_shape={shape}", (node.name, "kernel"))


@mutator("structure")
def auto_pad_with_pads(model, rng, work):
    candidates = [n for n in nodes(model, "Conv", "MaxPool", "AveragePool")]
    node = pick(rng, candidates)
    if node is None:
        return None
    mode = pick(rng, ["SAME_UPPER", "SAME_LOWER", "VALID", "BOGUS"])
    if not any(a.name == "pads" for a in node.attribute):
        set_attribute(node, "pads", [1, 1, 1, 1])
    set_attribute(node, "auto_pad", mode)
    return Mutation(f"{node.name}: auto_pad={mode} together with pads", (node.name, "auto_pad"))


@mutator("structure")
def conv_group(model, rng, work):
    node = pick(rng, nodes(model, "Conv"))
    if node is None:
        return None
    value = int(pick(rng, [0, -1, 2, 3, 7]))
    set_attribute(node, "group", value)
    return Mutation(f"{node.name}: group={value}", (node.name, "group"), expect=REFUSE if value <= 0 else EITHER)


@mutator("structure")
def unknown_op(model, rng, work):
    node = pick(rng, nodes(model, "Relu", "Conv", "MaxPool", "BatchNormalization", "Gemm", "MatMul"))
    if node is None:
        return None
    original = node.op_type
    node.op_type = pick(rng, ["Relux", "Conv2D", "NoSuchOp"])
    return Mutation(f"{node.name}: op {original} renamed {node.op_type}", (node.name, node.op_type))


@mutator("structure")
def unsupported_ops(model, rng, work):
    """Every Relu replaced by a valid op the hardware lacks: the message must list every one."""
    relus = nodes(model, "Relu")
    if not relus:
        return None
    op = pick(rng, ["Softplus", "Elu", "Sin", "Erf", "Sigmoid"])
    for node in relus:
        node.op_type = op
    return Mutation(f"{len(relus)} Relu -> {op}", tuple(n.name for n in relus), all_names=True, expect=EITHER)


@mutator("structure")
def reduce_mean_as_gap(model, rng, work):
    node = pick(rng, nodes(model, "GlobalAveragePool"))
    if node is None:
        return None
    node.op_type = "ReduceMean"
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset >= 18:
        axes = model.graph.initializer.add()
        axes.CopyFrom(numpy_helper.from_array(np.array([2, 3], np.int64), f"{node.name}_axes"))
        node.input.append(axes.name)
    else:
        set_attribute(node, "axes", [2, 3])
    return Mutation(f"{node.name}: GlobalAveragePool written as ReduceMean over H,W", (node.name,), expect=EITHER)


@mutator("structure")
def opset_version(model, rng, work):
    version = int(pick(rng, [1, 6, 99, 0]))
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            entry.version = version
    return Mutation(f"default opset {version}", ("opset", "domain_version", "version"))


@mutator("structure")
def input_element_type(model, rng, work):
    value = model.graph.input[0]
    kind = pick(rng, [TensorProto.INT32, TensorProto.BOOL, TensorProto.STRING, TensorProto.FLOAT16, TensorProto.INT64])
    value.type.tensor_type.elem_type = kind
    return Mutation(f"input '{value.name}' of type {TensorProto.DataType.Name(kind)}", (value.name,), expect=EITHER)


@mutator("structure")
def input_shape(model, rng, work):
    value = model.graph.input[0]
    dims = value.type.tensor_type.shape.dim
    choice = int(rng.integers(5))
    if choice == 0:
        del dims[-1]
        what = "rank 3"
    elif choice == 1:
        dims[2].dim_value = 0
        what = "H = 0"
    elif choice == 2:
        dims[3].dim_value = -4
        what = "W = -4"
    elif choice == 3:
        dims[2].dim_param = "height"
        what = "dynamic H"
    else:
        dims[1].dim_value = dims[1].dim_value + 1
        what = "one more channel than the weights take"
    strip_shapes(model)
    return Mutation(f"input '{value.name}': {what}", (value.name,))


@mutator("structure")
def cycle(model, rng, work):
    first, last = model.graph.node[0], model.graph.node[-1]
    first.input[0] = last.output[0]
    return Mutation(f"{first.name} reads {last.output[0]} (a cycle)", node_names(first) + node_names(last))


@mutator("structure")
def dangling_output(model, rng, work):
    output = model.graph.output[0]
    original = output.name
    output.name = "nowhere"
    return Mutation(f"graph output '{original}' renamed 'nowhere'", ("nowhere",))


@mutator("structure")
def attribute_type(model, rng, work):
    node = pick(rng, nodes(model, "Conv", "MaxPool"))
    if node is None:
        return None
    name = pick(rng, ["strides", "kernel_shape", "pads"])
    set_attribute(node, name, pick(rng, ["3", 2.5, [1.5, 1.5]]))
    return Mutation(f"{node.name}: attribute {name} of the wrong type", (node.name, name))


@mutator("structure")
def missing_input(model, rng, work):
    node = pick(rng, [n for n in model.graph.node if len(n.input) >= 2])
    if node is None:
        return None
    index = int(rng.integers(len(node.input)))
    node.input[index] = ""
    return Mutation(f"{node.name}: input {index} left empty", (node.name,), expect=EITHER)


# --- (b) tensors and quantizers -------------------------------------------------------------


def weight_quantizer(model: onnx.ModelProto, rng: np.random.Generator) -> onnx.NodeProto | None:
    return pick(rng, weight_dequantizers(model))


@mutator("quantizers")
def scale_length(model, rng, work):
    node = pick(rng, [n for n in weight_dequantizers(model) if array(model, n.input[1]).size > 1])
    if node is None:
        return None
    scale = array(model, node.input[1])
    replace_initializer(model, node.input[1], scale[:-1] if rng.random() < 0.5 else np.concatenate([scale, scale[:1]]))
    return Mutation(f"{node.name}: per-channel scale of {scale.size} channels cut or grown by one",
                    (node.name, node.input[1], node.input[0]))


@mutator("quantizers")
def zero_point_length(model, rng, work):
    node = pick(rng, [n for n in weight_dequantizers(model) if len(n.input) > 2 and array(model, n.input[2]).size > 1])
    if node is None:
        return None
    zero = array(model, node.input[2])
    replace_initializer(model, node.input[2], zero[: max(1, zero.size // 2)])
    return Mutation(f"{node.name}: zero point of {zero.size} channels halved",
                    (node.name, node.input[2], node.input[0]))


@mutator("quantizers")
def quantizer_axis(model, rng, work):
    node = pick(rng, [n for n in weight_dequantizers(model) if array(model, n.input[1]).size > 1])
    if node is None:
        return None
    weight, scale = array(model, node.input[0]), array(model, node.input[1])
    axis = int(pick(rng, [1, weight.ndim - 1, weight.ndim, 7, -weight.ndim - 1]))
    set_attribute(node, "axis", axis)
    valid = -weight.ndim <= axis < weight.ndim and weight.shape[axis] == scale.size
    return Mutation(f"{node.name}: axis={axis} (weight {weight.shape}, {scale.size} scales)", (node.name, "axis"),
                    expect=EITHER if valid else REFUSE)


@mutator("quantizers")
def zero_point_type(model, rng, work):
    node = pick(rng, [n for n in activation_quantizers(model) if len(n.input) > 2])
    if node is None:
        return None
    zero = array(model, node.input[2])
    kind = pick(rng, ["float32", "int32", "int64 2**40", "uint16"])
    if kind == "int64 2**40":
        value = np.full(zero.shape, 1 << 40, np.int64)
    else:
        value = zero.astype(kind)
    replace_initializer(model, node.input[2], value)
    return Mutation(f"{node.name}: zero point '{node.input[2]}' as {kind}",
                    (node.input[2], *users(model, node.input[2])),
                    expect=EITHER if kind == "uint16" else REFUSE)


@mutator("quantizers")
def scale_value(model, rng, work):
    quantizers = activation_quantizers(model) + weight_dequantizers(model)
    node = pick(rng, quantizers)
    if node is None:
        return None
    value, expect = extreme_scale(model, node, rng, [np.nan, np.inf, -np.inf, 0.0, -0.02, 1e38, 1e-30, 1e-45])
    return Mutation(f"{node.name}: scale '{node.input[1]}' = {value}", (node.input[1], *users(model, node.input[1])),
                    expect=expect)


def extreme_scale(model: onnx.ModelProto, node: onnx.NodeProto, rng: np.random.Generator,
                  values: list[float]) -> tuple[float, str]:
    """Every element of the node's scale set to one of `values`; a finite positive one may be accepted."""
    value = float(pick(rng, values))
    scale = array(model, node.input[1])
    replace_initializer(model, node.input[1], np.full(scale.shape, value, scale.dtype))
    return value, EITHER if np.isfinite(value) and value > 0 else REFUSE


@mutator("quantizers")
def scale_type(model, rng, work):
    node = pick(rng, activation_quantizers(model))
    if node is None:
        return None
    kind = pick(rng, ["float16", "float64", "int32"])
    replace_initializer(model, node.input[1], array(model, node.input[1]).astype(kind))
    return Mutation(f"{node.name}: scale '{node.input[1]}' as {kind}", (node.input[1], *users(model, node.input[1])),
                    expect=EITHER)


@mutator("quantizers")
def weight_type(model, rng, work):
    node = weight_quantizer(model, rng)
    if node is None:
        return None
    weight = array(model, node.input[0])
    kind = pick(rng, [TensorProto.BOOL, TensorProto.FLOAT8E4M3FN, TensorProto.INT32, TensorProto.UINT16,
                      TensorProto.FLOAT])
    values = (weight != 0).ravel().tolist() if kind == TensorProto.BOOL else weight.astype(np.float64).ravel().tolist()
    if kind in (TensorProto.INT32, TensorProto.UINT16):
        values = [int(abs(v)) if kind == TensorProto.UINT16 else int(v) for v in values]
    replace_initializer(model, node.input[0], helper.make_tensor(node.input[0], kind, weight.shape, values))
    return Mutation(f"{node.name}: weight '{node.input[0]}' as {TensorProto.DataType.Name(kind)}",
                    (node.name, node.input[0]), expect=EITHER)


@mutator("quantizers")
def empty_weight(model, rng, work):
    node = weight_quantizer(model, rng) or pick(rng, qonnx_quants(model, weights=True))
    if node is None:
        return None
    weight = array(model, node.input[0])
    replace_initializer(model, node.input[0], np.zeros((0,) + weight.shape[1:], weight.dtype))
    return Mutation(f"{node.name}: weight '{node.input[0]}' with 0 output channels", (node.name, node.input[0]))


@mutator("quantizers")
def block_size(model, rng, work):
    candidates = [n for n in nodes(model, "QuantizeLinear", "DequantizeLinear")
                  if len(n.input) > 1 and array(model, n.input[1]) is not None and array(model, n.input[1]).size == 1]
    node = pick(rng, candidates)
    if node is None:
        return None
    set_attribute(node, "block_size", int(pick(rng, [2, 4, 16])))
    return Mutation(f"{node.name}: block_size on a per-tensor quantizer", (node.name, "block_size"))


@mutator("quantizers")
def truncated_raw_data(model, rng, work):
    candidates = [init for init in model.graph.initializer if init.raw_data and len(init.raw_data) > 8]
    init = pick(rng, candidates)
    if init is None:
        return None
    init.raw_data = init.raw_data[: len(init.raw_data) // 2]
    return Mutation(f"initializer '{init.name}' with half its raw data", (init.name, *users(model, init.name)))


@mutator("quantizers")
def scale_rank(model, rng, work):
    node = pick(rng, activation_quantizers(model))
    if node is None:
        return None
    replace_initializer(model, node.input[1], array(model, node.input[1]).reshape(1, 1))
    return Mutation(f"{node.name}: scale '{node.input[1]}' of shape (1, 1)",
                    (node.input[1], *users(model, node.input[1])),
                    expect=EITHER)


@mutator("quantizers")
def qonnx_bit_width(model, rng, work):
    node = pick(rng, qonnx_quants(model))
    if node is None:
        return None
    value = float(pick(rng, [np.nan, 0.0, -4.0, 1.5, 64.0, 1e9, np.inf]))
    replace_initializer(model, node.input[3], np.float32(value))
    return Mutation(f"{node.name}: bit width {value}", (node.name, node.input[3], "bit"), ort=False)


@mutator("quantizers")
def qonnx_zero_point(model, rng, work):
    node = pick(rng, qonnx_quants(model))
    if node is None:
        return None
    value = float(pick(rng, [100.0, -1000.0, np.nan, 0.5, np.inf]))
    replace_initializer(model, node.input[2], np.float32(value))
    return Mutation(f"{node.name}: zero point {value}", (node.name, node.input[2], "zero"), ort=False,
                    expect=EITHER if value in (0.5, 100.0) else REFUSE)  # 100: inside an 8-bit type


@mutator("quantizers")
def qonnx_scale(model, rng, work):
    node = pick(rng, qonnx_quants(model))
    if node is None:
        return None
    value, expect = extreme_scale(model, node, rng, [np.nan, 0.0, -1.0, np.inf, 1e38, 1e-30])
    return Mutation(f"{node.name}: scale {value}", (node.name, node.input[1], "scale"), ort=False, expect=expect)


@mutator("quantizers")
def qonnx_attributes(model, rng, work):
    node = pick(rng, qonnx_quants(model))
    if node is None:
        return None
    name, value = pick(rng, [("signed", 2), ("narrow", 5), ("rounding_mode", "BOGUS"), ("rounding_mode", "FLOOR"),
                             ("signed", -1)])
    set_attribute(node, name, value)
    return Mutation(f"{node.name}: {name}={value}", (node.name, name), ort=False,
                    expect=EITHER if value == "FLOOR" else REFUSE)


@mutator("quantizers")
def qonnx_bipolar(model, rng, work):
    node = pick(rng, qonnx_quants(model, weights=True))
    if node is None:
        return None
    node.op_type = "BipolarQuant"
    del node.input[2:]
    return Mutation(f"{node.name}: weight Quant -> BipolarQuant", (node.name, "BipolarQuant"), ort=False, expect=EITHER)


@mutator("quantizers")
def qonnx_inputs(model, rng, work):
    node = pick(rng, qonnx_quants(model))
    if node is None:
        return None
    del node.input[-1]
    return Mutation(f"{node.name}: Quant without its bit width input", (node.name,), ort=False)


@mutator("quantizers")
def float_weight_values(model, rng, work):
    node = pick(rng, qonnx_quants(model, weights=True))
    if node is None:
        return None
    weight = array(model, node.input[0]).copy()
    weight.flat[int(rng.integers(weight.size))] = pick(rng, [np.nan, np.inf])
    replace_initializer(model, node.input[0], weight)
    return Mutation(f"{node.name}: a NaN/inf in float weight '{node.input[0]}'", (node.name, node.input[0]), ort=False)


# --- (c) external data ---------------------------------------------------------------------


def externalize(model: onnx.ModelProto, location: str, offset: int = 0, length: int | None = None) -> tuple[str, bytes]:
    """Move the largest initializer out to `location`; returns its name and the bytes it had."""
    init = max(model.graph.initializer, key=lambda t: len(t.raw_data) or numpy_helper.to_array(t).nbytes)
    data = init.raw_data or numpy_helper.to_array(init).tobytes()
    for field in ("float_data", "int32_data", "int64_data", "double_data"):
        init.ClearField(field)
    init.ClearField("raw_data")
    init.data_location = TensorProto.EXTERNAL
    entries = {"location": location, "offset": str(offset), "length": str(len(data) if length is None else length)}
    for key, value in entries.items():
        entry = init.external_data.add()
        entry.key, entry.value = key, value
    return init.name, data


@mutator("external")
def external_valid(model, rng, work):
    name, data = externalize(model, "weights.bin")
    (work / "weights.bin").write_bytes(data)
    return Mutation(f"'{name}' in weights.bin (valid)", (name, "weights.bin"), expect=EITHER)


@mutator("external")
def external_missing(model, rng, work):
    name, _ = externalize(model, "missing.bin")
    return Mutation(f"'{name}' in missing.bin, which does not exist", ("missing.bin",))


@mutator("external")
def external_parent(model, rng, work):
    name, data = externalize(model, "../outside.bin")
    (work.parent / "outside.bin").write_bytes(data)
    return Mutation(f"'{name}' in ../outside.bin (outside the model's folder)", ("outside.bin",))


@mutator("external")
def external_absolute(model, rng, work):
    target = pick(rng, [str(work / "weights.bin"), "/etc/hostname"])
    name, data = externalize(model, target)
    (work / "weights.bin").write_bytes(data)
    return Mutation(f"'{name}' at the absolute path {target}", (target, Path(target).name))


@mutator("external")
def external_truncated(model, rng, work):
    name, data = externalize(model, "weights.bin")
    (work / "weights.bin").write_bytes(data[: len(data) // 2])
    return Mutation(f"'{name}' in weights.bin cut in half", ("weights.bin", name))


@mutator("external")
def external_offset(model, rng, work):
    name, data = externalize(model, "weights.bin")
    offset = int(pick(rng, [len(data), 1 << 40, -8]))
    init = initializer(model, name)
    next(entry for entry in init.external_data if entry.key == "offset").value = str(offset)
    (work / "weights.bin").write_bytes(data)
    return Mutation(f"'{name}' at offset {offset} of weights.bin ({len(data)} bytes)", ("weights.bin", name))


@mutator("external")
def external_directory(model, rng, work):
    name, _ = externalize(model, "weights")
    (work / "weights").mkdir()
    return Mutation(f"'{name}' in 'weights', a directory", ("weights",))


@mutator("external")
def external_device(model, rng, work):
    device = pick(rng, ["/dev/zero", "/dev/null"])
    name, _ = externalize(model, device, length=1 << 34)
    return Mutation(f"'{name}' in {device} with length 2**34", (device, name))


# --- (d) resources -------------------------------------------------------------------------


@mutator("resources")
def huge_input(model, rng, work):
    value = model.graph.input[0]
    side = int(pick(rng, [32768, 65536, 1 << 20]))
    value.type.tensor_type.shape.dim[2].dim_value = side
    value.type.tensor_type.shape.dim[3].dim_value = side
    strip_shapes(model)
    return Mutation(f"input '{value.name}' declared {side}x{side}", (value.name, str(side), "does not fit"), ort=False,
                    expect=REFUSE, inspect_expect=EITHER, forbidden=OUT_OF_MEMORY)


def blown_up_scale(model: onnx.ModelProto, rng: np.random.Generator, build: Callable[[str, str], list[onnx.NodeProto]],
                   what: str) -> Mutation | None:
    """An activation scale recomputed as scale * max(<a huge constant of ones>): the same value,
    but folding it allocates gigabytes."""
    node = pick(rng, activation_quantizers(model)) or pick(rng, qonnx_quants(model, weights=False))
    if node is None:
        return None
    ones = f"fuzz_{what}_ones"
    added = build(ones, node.input[1])
    factor = helper.make_node("ReduceMax", [ones], [f"fuzz_{what}_max"], name=f"fuzz_{what}_max", keepdims=0)
    scaled = helper.make_node("Mul", [node.input[1], factor.output[0]], [f"fuzz_{what}_scale"],
                              name=f"fuzz_{what}_mul")
    index = list(model.graph.node).index(node)
    for offset, new in enumerate([*added, factor, scaled]):
        model.graph.node.insert(index + offset, new)
    node.input[1] = scaled.output[0]
    names = tuple(n.name for n in added)
    return Mutation(f"{node.name}: scale folded through a {what} of {HUGE[0]}x{HUGE[1]}", names + (what,), ort=False,
                    expect=EITHER, forbidden=OUT_OF_MEMORY)


@mutator("resources")
def constant_of_shape(model, rng, work):
    def build(out, scale):
        shape = numpy_helper.from_array(np.array(HUGE, np.int64), "fuzz_huge_shape")
        model.graph.initializer.append(shape)
        return [helper.make_node("ConstantOfShape", [shape.name], [out], name="fuzz_constant_of_shape",
                                 value=numpy_helper.from_array(np.array([1.0], np.float32)))]
    return blown_up_scale(model, rng, build, "ConstantOfShape")


@mutator("resources")
def expand(model, rng, work):
    def build(out, scale):
        shape = numpy_helper.from_array(np.array(HUGE, np.int64), "fuzz_huge_shape")
        one = numpy_helper.from_array(np.array(1.0, np.float32), "fuzz_one")
        model.graph.initializer.extend([shape, one])
        return [helper.make_node("Expand", [one.name, shape.name], [out], name="fuzz_expand")]
    return blown_up_scale(model, rng, build, "Expand")


@mutator("resources")
def tile(model, rng, work):
    def build(out, scale):
        one = numpy_helper.from_array(np.ones((1, 1), np.float32), "fuzz_one")
        repeats = numpy_helper.from_array(np.array(HUGE, np.int64), "fuzz_repeats")
        model.graph.initializer.extend([one, repeats])
        return [helper.make_node("Tile", [one.name, repeats.name], [out], name="fuzz_tile")]
    return blown_up_scale(model, rng, build, "Tile")


@mutator("resources")
def deep_chain(model, rng, work):
    node = pick(rng, nodes(model, "Relu")) or pick(rng, nodes(model, "Conv"))
    if node is None:
        return None
    depth = int(pick(rng, [3000, 20000]))
    original = node.output[0]
    node.output[0] = "fuzz_chain_0"
    chain = [helper.make_node("Identity", [f"fuzz_chain_{i}"], [f"fuzz_chain_{i + 1}" if i + 1 < depth else original],
                              name=f"fuzz_identity_{i}") for i in range(depth)]
    index = list(model.graph.node).index(node)
    for offset, new in enumerate(chain):
        model.graph.node.insert(index + 1 + offset, new)
    return Mutation(f"{depth} Identity nodes after {node.name}", (), ort=False, expect=EITHER)


# --- (e) the model file --------------------------------------------------------------------
# These return raw bytes (or None with a side effect on the path: see fuzz_cases.model_file_case).


@mutator("files")
def truncated_bytes(model, rng, work):
    data = model.SerializeToString()
    cut = int(rng.integers(1, len(data)))
    return Mutation(f"model cut to {cut} of {len(data)} bytes", (), raw=data[:cut], expect=EITHER)


@mutator("files")
def garbage_bytes(model, rng, work):
    size = int(pick(rng, [1, 17, 4096, 100000]))
    return Mutation(f"{size} random bytes", (), raw=rng.integers(0, 256, size, dtype=np.uint8).tobytes())


@mutator("files")
def empty_file(model, rng, work):
    return Mutation("an empty file", (), raw=b"")


@mutator("files")
def text_file(model, rng, work):
    return Mutation("a JSON text file named .onnx", (), raw=b'{"graph": {"node": []}}\n')


@mutator("files")
def bit_flips(model, rng, work):
    data = bytearray(model.SerializeToString())
    flips = int(pick(rng, [1, 2, 8, 64]))
    for _ in range(flips):
        position = int(rng.integers(len(data)))
        data[position] ^= 1 << int(rng.integers(8))
    return Mutation(f"{flips} random bit flips", (), raw=bytes(data), expect=EITHER)
