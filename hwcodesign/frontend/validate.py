"""Checks on what a model's tensors and attributes say, where the ONNX checker stops short.

The checker (even with `full_check`) does not relate a per-axis scale to its weight's shape,
bound a tensor's size, look inside custom-domain ops (QONNX `Quant`) or compare window
attributes with the weights. Each check here turns what would be a numpy traceback (or a
silently wrong design) into an `UnsupportedModelError` naming the node, or a `ModelFormatError`
naming the file and tensor.

Size bounds, stated once:
- `MAX_TENSOR_BYTES` (1 GiB) for one initializer or one folded constant, `MAX_WEIGHT_BYTES`
  (2 GiB) for all initializers: the boards' DDR (2-4 GiB, shared with Linux) must hold the
  weights an engine design streams, so larger models can never run; the bound is checked
  before any byte is read or allocated.
- `MAX_FRAME_ELEMENTS` (2**26, e.g. 4 x 4096 x 4096) for one input frame or one layer's output:
  the driver places each frame in one contiguous DDR buffer, and the golden model and simulators
  hold every activation of a frame as int64 host arrays (512 MiB at this bound), so a larger
  frame only stalls the tools for minutes before some later, vaguer refusal.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from hwcodesign.errors import ModelFormatError, UnsupportedModelError

MAX_TENSOR_BYTES = 1 << 30
MAX_WEIGHT_BYTES = 2 << 30
MAX_FRAME_ELEMENTS = 1 << 26
FLOAT32_MAX = float(np.finfo(np.float32).max)
FLOAT32_TINY = float(np.finfo(np.float32).tiny)  # smallest normal float32
REAL_DTYPES = (np.float16, np.float32, np.float64)


def gib(size: int) -> str:
    return f"{size / 2**30:.3g} GiB"


def element_bytes(elem_type: int) -> int:
    """Bytes per element of an ONNX type (1 for sub-byte and unknown types: a lower bound)."""
    try:
        return max(1, int(np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).itemsize))
    except (KeyError, TypeError, ValueError):
        return 1


def declared_bytes(dims: Sequence[int], elem_type: int) -> int:
    return math.prod(max(0, int(d)) for d in dims) * element_bytes(elem_type)


def check_declared_sizes(model: onnx.ModelProto, origin: str) -> None:
    """Refuse initializers whose declared size is out of bounds, before their data is read."""
    total = 0
    for init in model.graph.initializer:
        size = declared_bytes(init.dims, init.data_type)
        total += size
        if size > MAX_TENSOR_BYTES:
            raise ModelFormatError(
                f"{origin}: initializer '{init.name}' declares shape {list(init.dims)}, {gib(size)}; "
                f"tensors above {gib(MAX_TENSOR_BYTES)} are refused (no board's DDR could hold the weights)")
    if total > MAX_WEIGHT_BYTES:
        raise ModelFormatError(f"{origin}: initializers declare {gib(total)} in all; models above "
                               f"{gib(MAX_WEIGHT_BYTES)} of weights are refused (no board's DDR could hold them)")


def input_size_problem(value: onnx.ValueInfoProto) -> UnsupportedModelError | None:
    """A graph input declaring more than `MAX_FRAME_ELEMENTS` per frame (batch and unknown dims as 1)."""
    dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
            for d in value.type.tensor_type.shape.dim]
    problem = frame_size_problem(dims)
    return UnsupportedModelError(value.name, "graph input", f"{problem}; export the model at a smaller input "
                                 "size") if problem else None


def frame_size_problem(shape: Sequence[int]) -> str | None:
    """An input or activation of more than `MAX_FRAME_ELEMENTS` per frame (`shape` with its batch)."""
    elements = math.prod(shape[1:])
    if elements <= MAX_FRAME_ELEMENTS:
        return None
    return (f"shape {tuple(shape)} is {elements} elements per frame, above the {MAX_FRAME_ELEMENTS} the flow "
            "accepts (a frame must fit a contiguous DDR buffer and the simulators' host arrays)")


def duplicate_node_names(model: onnx.ModelProto) -> list[UnsupportedModelError]:
    """ONNX requires unique node names; a repeated one would make every message ambiguous."""
    counts = Counter(node.name for node in model.graph.node if node.name)
    problems = []
    for name, count in counts.items():
        if count > 1:
            ops = ", ".join(sorted({n.op_type for n in model.graph.node if n.name == name}))
            problems.append(UnsupportedModelError(name, ops, f"{count} nodes share this name; node names must be "
                                                  "unique (ONNX IR spec)"))
    return problems


def check_window(name: str, op_type: str, attrs: dict[str, object], kernel: tuple[int, ...]) -> None:
    """Window attributes of a Conv/pool against the kernel it really has (from its weights for a Conv)."""
    declared = attrs.get("kernel_shape")
    if declared is not None and tuple(int_list(name, op_type, "kernel_shape", declared)) != kernel:
        raise UnsupportedModelError(name, op_type, f"kernel_shape {declared} does not match the "
                                    f"{len(kernel)}-D kernel {list(kernel)}")
    if len(kernel) != 2 or min(kernel) < 1:
        raise UnsupportedModelError(name, op_type, f"kernel {list(kernel)}: only 2-D windows of positive size")
    for key, length, least in (("strides", 2, 1), ("dilations", 2, 1), ("pads", 4, 0)):
        values = attrs.get(key)
        if values is None:
            continue
        values = int_list(name, op_type, key, values)
        if len(values) != length or min(values) < least:
            raise UnsupportedModelError(name, op_type, f"{key} {values}: needs {length} values >= {least}")
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    if auto_pad not in ("NOTSET", "") and "pads" in attrs:
        raise UnsupportedModelError(name, op_type, f"auto_pad {auto_pad} together with explicit pads; the ONNX "
                                    "spec allows one or the other")
    groups = int_list(name, op_type, "group", attrs.get("group", 1))
    if len(groups) != 1 or groups[0] < 1:
        raise UnsupportedModelError(name, op_type, f"group {attrs['group']} must be one integer >= 1")


def int_list(name: str, op_type: str, key: str, value: object) -> list[int]:
    """An integer attribute as a list (custom-domain nodes escape the checker's attribute types)."""
    values = value if isinstance(value, list | tuple) else [value]
    if not all(isinstance(v, int | np.integer) for v in values):
        raise UnsupportedModelError(name, op_type, f"{key} {value!r} must be integers")
    return [int(v) for v in values]


def check_scale(name: str, op_type: str, scale: np.ndarray, levels: int | None = None) -> None:
    """Scales must be finite and not negative; an activation's (`levels` codes) positive and its range a float32."""
    if scale.size == 0:
        raise UnsupportedModelError(name, op_type, "the scale is empty")
    if not np.all(np.isfinite(scale)):
        raise UnsupportedModelError(name, op_type, f"scale {scale.reshape(-1)[:4].tolist()} is not finite")
    if np.any(scale < 0):  # no exporter writes one; the requantization multipliers assume a positive scale
        raise UnsupportedModelError(name, op_type, f"scale {scale.reshape(-1)[:4].tolist()} is negative")
    if levels is None:
        return
    value = float(scale.reshape(-1)[0])
    if not value >= FLOAT32_TINY:
        raise UnsupportedModelError(name, op_type, f"scale must be a positive normal float32, got {value:.6g}")
    if value * levels > FLOAT32_MAX:
        raise UnsupportedModelError(name, op_type, f"scale {value:.6g} times {levels} levels overflows float32")


def per_axis_view(name: str, op_type: str, scale: np.ndarray, zero_point: np.ndarray, axis: int,
                  shape: tuple[int, ...]) -> list[int]:
    """The broadcast view of a 1-D per-axis scale along `axis` of a tensor of `shape`, checked."""
    ndim = len(shape)
    if not -ndim <= axis < ndim:
        raise UnsupportedModelError(name, op_type, f"axis {axis} is outside the {ndim}-D tensor {list(shape)}")
    axis %= ndim
    if scale.ndim > 1 or scale.size != shape[axis]:
        raise UnsupportedModelError(name, op_type, f"{scale.size} scales for axis {axis} of length {shape[axis]} "
                                    f"(tensor {list(shape)})")
    if zero_point.shape != scale.shape:  # the spec (and onnxruntime) wants one zero point per scale
        raise UnsupportedModelError(name, op_type, f"zero point of shape {list(zero_point.shape)} for scales of "
                                    f"shape {list(scale.shape)}; per-axis quantization needs one zero point per scale")
    view = [1] * ndim
    view[axis] = -1
    return view


def quant_input_problem(array: np.ndarray, tensor: str, op_type: str) -> str | None:
    """A quantizer (QONNX `Quant`, QuantizeLinear) quantizes real numbers: a bool, integer or
    float8 input is not one (and onnxruntime has no QuantizeLinear kernel for an int32 input)."""
    if array.dtype in REAL_DTYPES:
        return None
    return f"input '{tensor}' is {array.dtype}; {op_type} quantizes float16/float32/float64 tensors"


def one_node_model(node: onnx.NodeProto, feeds: dict[str, np.ndarray], model: onnx.ModelProto) -> onnx.ModelProto:
    """`node` alone, its inputs as initializers, at the opsets of the `model` it comes from (an
    op's meaning changes with the opset: Unsqueeze's axes moved from attribute to input)."""
    inits = [numpy_helper.from_array(np.asarray(value), key) for key, value in feeds.items()]
    graph = helper.make_graph([node], "fold", [], [onnx.ValueInfoProto(name=o) for o in node.output if o], inits)
    return helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version)


def run_one_node(node: onnx.NodeProto, feeds: dict[str, np.ndarray], model: onnx.ModelProto) -> list[np.ndarray]:
    """`node`'s outputs on constant `feeds` by the ONNX reference evaluator (`one_node_model`);
    it raises whatever the evaluator raises, which callers turn into a refusal or a skip."""
    return [np.asarray(result) for result in ReferenceEvaluator(one_node_model(node, feeds, model)).run(None, {})]


def fold_size_problem(node: onnx.NodeProto, feeds: dict[str, np.ndarray], model: onnx.ModelProto) -> str | None:
    """Would folding `node` on these constants allocate more than `MAX_TENSOR_BYTES`? Asked of
    ONNX shape inference (with the constants' values), so nothing is allocated to find out."""
    try:
        inferred = onnx.shape_inference.infer_shapes(one_node_model(node, feeds, model), data_prop=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError, ValueError):
        return None  # the evaluator will say what is wrong with the node
    for value in inferred.graph.output:
        tensor = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
        if not tensor.HasField("shape") or -1 in dims:
            continue
        size = declared_bytes(dims, tensor.elem_type)
        if size > MAX_TENSOR_BYTES:
            return (f"folding this constant would allocate {gib(size)} for '{value.name}' (shape {dims}); "
                    f"constants above {gib(MAX_TENSOR_BYTES)} are refused")
    return None
