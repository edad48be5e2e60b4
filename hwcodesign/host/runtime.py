"""The host parts of a partitioned model, run on the board's CPU.

A host part (the float ops before the accelerator, or after it: a normalisation, a GRU head, a
Softmax) runs under onnxruntime when the board image has it, else under the numpy executor here,
which implements the ops of `HOST_OPS` with ONNX semantics. `HostModel` strings the parts and the
accelerator together frame by frame, carrying recurrent state between frames.

This file is copied verbatim into the generated standalone driver.py (`host_runtime_source` in
hwcodesign/host/program.py), so it imports only the standard library and numpy (onnxruntime lazily,
and only if present), runs nothing at import, has no `from __future__` line (it would be a syntax
error in the middle of driver.py), and prefixes its public names with Host / HOST_.

A host program is the numpy executor's form of an ONNX graph: an .npz (loaded with
allow_pickle=False, so a program file cannot run code) whose entry `HOST_PROGRAM_KEY` holds the
graph as JSON text in a uint8 array, and one entry per initializer and tensor attribute.
"""

import io
import json
import math
import os
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

HOST_PROGRAM_KEY = "__program__"
HOST_PROGRAM_FORMAT = "hwcodesign-host-program"
HOST_PROGRAM_VERSION = 1
HOST_BACKENDS = ("auto", "onnxruntime", "numpy")

# ONNX TensorProto element types the executor handles, as numpy dtypes (INT4/UINT4 live in int8/uint8).
HOST_ELEMENT_TYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32, 7: np.int64,
                      9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64}
# Quantized integer types: (lowest, highest, numpy storage). "int4"/"uint4" are narrow types stored wide.
HOST_QUANT_TYPES = {"uint8": (0, 255, np.uint8), "int8": (-128, 127, np.int8), "uint16": (0, 65535, np.uint16),
                    "int16": (-32768, 32767, np.int16), "int4": (-8, 7, np.int8), "uint4": (0, 15, np.uint8)}
_QUANT_TYPE_OF_ELEMENT = {2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 21: "uint4", 22: "int4"}


class HostError(ValueError):
    """A host part cannot run: bad input, a missing op, a malformed program. The message says what to change."""


class HostNode:
    """One ONNX node of a host program: its attributes decoded, its inputs' narrow types resolved."""

    __slots__ = ("name", "op_type", "domain", "inputs", "outputs", "attributes", "opset", "input_kinds")

    def __init__(self, name: str, op_type: str, domain: str, inputs: Sequence[str], outputs: Sequence[str],
                 attributes: dict[str, Any], opset: int, input_kinds: Sequence[str | None] = ()) -> None:
        self.name, self.op_type, self.domain = name, op_type, domain
        self.inputs, self.outputs = tuple(inputs), tuple(outputs)
        self.attributes, self.opset = attributes, opset
        self.input_kinds = tuple(input_kinds) or (None,) * len(self.inputs)

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attributes.get(name, default)

    def label(self) -> str:
        """How errors name the node: its name, or (unnamed) what it computes."""
        shown = self.name or f"<unnamed, output '{self.outputs[0] if self.outputs else ''}'>"
        return f"node '{shown}' (op {self.op_type})"

    def runnable(self) -> bool:
        return _runnable(self.domain, self.op_type)


class HostProgram:
    """A host part as the numpy executor runs it: graph inputs and outputs, nodes in order, constants."""

    def __init__(self, inputs: Sequence[str], outputs: Sequence[str], nodes: Sequence[HostNode],
                 constants: dict[str, np.ndarray], opset: int) -> None:
        self.inputs, self.outputs = list(inputs), list(outputs)
        self.nodes, self.constants, self.opset = list(nodes), constants, opset

    def missing_ops(self) -> list[str]:
        """Op types the numpy executor does not implement (a custom domain's as domain:op)."""
        return host_missing_ops((node.domain, node.op_type) for node in self.nodes)


def host_missing_ops(ops: Iterable[tuple[str, str]]) -> list[str]:
    """Of (domain, op type) pairs, the op types the numpy executor lacks (a custom domain's as domain:op)."""
    return sorted({op if domain in ("", "ai.onnx") else f"{domain}:{op}" for domain, op in ops
                   if not _runnable(domain, op)})


def _runnable(domain: str, op_type: str) -> bool:
    return domain in ("", "ai.onnx") and op_type in HOST_OPS


# ---- loading a program -------------------------------------------------------------------------------------


def load_program(source: str | os.PathLike[str] | bytes) -> HostProgram:
    """A host program from its .npz file or bytes; a HostError says why one is unreadable."""
    shown = "host program" if isinstance(source, bytes | bytearray) else str(source)
    try:
        with np.load(io.BytesIO(source) if isinstance(source, bytes | bytearray) else source,
                     allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        header = json.loads(bytes(arrays.pop(HOST_PROGRAM_KEY)).decode("utf-8"))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as error:
        raise HostError(f"{shown} is not a readable host program ({type(error).__name__}: {error})") from None
    if header.get("format") != HOST_PROGRAM_FORMAT or header.get("version") != HOST_PROGRAM_VERSION:
        raise HostError(f"{shown} is not a version {HOST_PROGRAM_VERSION} host program "
                        f"(format {header.get('format')!r}, version {header.get('version')!r}); regenerate the project")
    narrow = header.get("narrow", {})
    nodes = [HostNode(entry["name"], entry["op_type"], entry.get("domain", ""), entry["inputs"], entry["outputs"],
                      {key: _decoded(value, arrays) for key, value in entry["attributes"].items()}, header["opset"],
                      [narrow.get(name) for name in entry["inputs"]])
             for entry in header["nodes"]]
    constants = {name: arrays[key] for name, key in header["initializers"].items()}
    return HostProgram(header["inputs"], header["outputs"], nodes, constants, header["opset"])


def _decoded(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """An attribute as stored in the JSON (tensors as {"tensor": key} references) with its arrays put back."""
    if isinstance(value, dict) and "tensor" in value:
        return arrays[value["tensor"]]
    if isinstance(value, dict) and "tensors" in value:
        return [arrays[key] for key in value["tensors"]]
    return value


# ---- running a program -------------------------------------------------------------------------------------


def run_program(program: HostProgram, feeds: Mapping[str, np.ndarray],
                outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Run the nodes in order on `feeds` (graph inputs by name); the graph outputs (or the named tensors).

    Floating-point warnings are silenced: ONNX semantics give inf and NaN where numpy would warn.
    """
    missing = [name for name in program.inputs if name not in feeds]
    if missing:
        raise HostError(f"the host program needs inputs {missing}; got {sorted(feeds)}")
    env: dict[str, np.ndarray] = {**program.constants, **{name: np.asarray(value) for name, value in feeds.items()}}
    with np.errstate(all="ignore"):
        for node in program.nodes:
            for name, value in zip(node.outputs, _execute(node, [_fetch(env, node, name) for name in node.inputs])):
                if name:
                    env[name] = value
    wanted = program.outputs if outputs is None else list(outputs)
    absent = [name for name in wanted if name not in env]
    if absent:
        raise HostError(f"the host program computes no tensors {absent}")
    return {name: env[name] for name in wanted}


def _fetch(env: dict[str, np.ndarray], node: HostNode, name: str) -> np.ndarray | None:
    """An input of `node` ("" is an omitted optional input: None)."""
    if not name:
        return None
    if name not in env:
        raise HostError(f"{node.label()}: input '{name}' is computed by no earlier node")
    return env[name]


def _execute(node: HostNode, args: list[np.ndarray | None]) -> list[np.ndarray]:
    """One node's outputs; errors name the node (and an op the executor lacks, the way out)."""
    if not node.runnable():
        where = "" if node.domain in ("", "ai.onnx") else f" of domain '{node.domain}'"
        raise HostError(f"{node.label()}: the numpy host executor does not implement {node.op_type}{where}; "
                        "the board needs onnxruntime to run this host part (pip install onnxruntime)")
    try:
        result = HOST_OPS[node.op_type](node, args)
    except HostError as error:
        raise HostError(f"{node.label()}: {error}") from None
    except (ValueError, IndexError, TypeError, ZeroDivisionError) as error:
        raise HostError(f"{node.label()} failed on inputs of shapes "
                        f"{[None if a is None else a.shape for a in args]}: {error}") from error
    values = [np.asarray(value) for value in (result if isinstance(result, tuple) else (result,))]
    unmade = [name for name in node.outputs[len(values):] if name]
    if unmade:
        raise HostError(f"{node.label()}: the numpy host executor does not compute outputs {unmade} "
                        "(training-mode or index outputs); the board needs onnxruntime for them")
    return values


# ---- helpers shared by the ops -----------------------------------------------------------------------------


def _ints(values: Any) -> list[int]:
    return [int(value) for value in np.asarray(values).reshape(-1)]


def _optional(args: Sequence[np.ndarray | None], index: int) -> np.ndarray | None:
    return args[index] if len(args) > index else None


def _axes(node: HostNode, args: Sequence[np.ndarray | None], index: int) -> list[int] | None:
    """Axes given as the input at `index` (newer opsets) or as the `axes` attribute (older ones)."""
    given = _optional(args, index)
    if given is not None:
        return _ints(given)
    attribute = node.attr("axes")
    return None if attribute is None else [int(axis) for axis in attribute]


def _positive(axes: Sequence[int], rank: int) -> tuple[int, ...]:
    return tuple(axis + rank if axis < 0 else axis for axis in axes)


def _float64(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x) without overflow: e^-|x| only ever shrinks."""
    wide = _float64(x)
    small = np.exp(-np.abs(wide))
    return np.where(wide >= 0, 1.0 / (1.0 + small), small / (1.0 + small)).astype(x.dtype)


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(_float64(x)).astype(x.dtype)


def _op_hard_sigmoid(node: HostNode, args: list) -> np.ndarray:
    """max(0, min(1, alpha * x + beta)) in x's type, as onnxruntime computes it."""
    x = args[0]
    alpha, beta = x.dtype.type(node.attr("alpha", 0.2)), x.dtype.type(node.attr("beta", 0.5))
    return np.maximum(np.minimum(alpha * x + beta, x.dtype.type(1)), x.dtype.type(0))


def _op_hard_swish(node: HostNode, args: list) -> np.ndarray:
    """x * HardSigmoid(x) with alpha 1/6 and beta 0.5 (the ONNX function's body)."""
    x = args[0]
    hard = np.maximum(np.minimum(x.dtype.type(1.0 / 6.0) * x + x.dtype.type(0.5), x.dtype.type(1)), x.dtype.type(0))
    return x * hard


def _softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + e^x) without overflow: x + log1p(e^-x) for positive x."""
    wide = _float64(x)
    return np.where(wide > 0, wide + np.log1p(np.exp(-wide)), np.log1p(np.exp(wide))).astype(x.dtype)


def _op_gelu(node: HostNode, args: list) -> np.ndarray:
    """x * 0.5 * (1 + erf(x / sqrt 2)), or the tanh approximation (approximate="tanh")."""
    x = args[0]
    wide = _float64(x)
    if node.attr("approximate", "none") == "tanh":
        inner = np.tanh(math.sqrt(2.0 / math.pi) * (wide + 0.044715 * wide**3))
    else:
        inner = _float64(_erf(wide / math.sqrt(2.0)))
    return (0.5 * wide * (1.0 + inner)).astype(x.dtype)


def _unary(function: Callable[[np.ndarray], np.ndarray]) -> Callable[[HostNode, list], np.ndarray]:
    return lambda node, args: function(args[0])


def _binary(function: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[[HostNode, list], np.ndarray]:
    return lambda node, args: function(args[0], args[1])


def _variadic(function: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[[HostNode, list], np.ndarray]:
    def op(node: HostNode, args: list) -> np.ndarray:
        result = args[0]
        for arg in args[1:]:
            result = function(result, arg)
        return result
    return op


# ---- elementwise -------------------------------------------------------------------------------------------


def _op_div(node: HostNode, args: list) -> np.ndarray:
    """Float division, or C's integer division (the quotient truncated toward zero)."""
    a, b = args
    if not np.issubdtype(a.dtype, np.integer):
        return a / b
    quotient = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (b < 0), -quotient, quotient).astype(a.dtype)


def _op_pow(node: HostNode, args: list) -> np.ndarray:
    base, exponent = args
    return np.power(_float64(base), _float64(exponent)).astype(base.dtype)


def _op_leaky_relu(node: HostNode, args: list) -> np.ndarray:
    x = args[0]
    return np.where(x < 0, x * x.dtype.type(node.attr("alpha", 0.01)), x)


def _op_clip(node: HostNode, args: list) -> np.ndarray:
    """Bounds as inputs (opset 11+) or attributes (older); an absent one does not clip."""
    x = args[0]
    low, high = _optional(args, 1), _optional(args, 2)
    low = node.attr("min") if low is None else low
    high = node.attr("max") if high is None else high
    if low is not None:
        x = np.maximum(x, np.asarray(low, x.dtype))
    if high is not None:
        x = np.minimum(x, np.asarray(high, x.dtype))
    return x


def _op_cast(node: HostNode, args: list) -> np.ndarray:
    target = node.attr("to")
    if target not in HOST_ELEMENT_TYPES:
        raise HostError(f"casting to ONNX element type {target} is not implemented")
    return args[0].astype(HOST_ELEMENT_TYPES[target])


def _op_where(node: HostNode, args: list) -> np.ndarray:
    return np.where(args[0], args[1], args[2])


# ---- softmax, argmax, reductions ---------------------------------------------------------------------------


def _softmax_like(log: bool) -> Callable[[HostNode, list], np.ndarray]:
    """Softmax / LogSoftmax along `axis` (opset 13+); before 13 over the input coerced to 2-D at `axis`."""
    def op(node: HostNode, args: list) -> np.ndarray:
        x = args[0]
        legacy = node.opset < 13
        axis = _positive([node.attr("axis", 1 if legacy else -1)], x.ndim)[0]
        wide = _float64(x).reshape(int(np.prod(x.shape[:axis])), -1) if legacy else _float64(x)
        along = 1 if legacy else axis
        shifted = wide - wide.max(axis=along, keepdims=True)
        total = np.exp(shifted).sum(axis=along, keepdims=True)
        result = shifted - np.log(total) if log else np.exp(shifted) / total
        return result.reshape(x.shape).astype(x.dtype)
    return op


def _arg_extreme(function: Callable[..., np.ndarray]) -> Callable[[HostNode, list], np.ndarray]:
    """ArgMax / ArgMin: the first index of the extreme value, or the last with select_last_index."""
    def op(node: HostNode, args: list) -> np.ndarray:
        x = args[0]
        axis = _positive([node.attr("axis", 0)], x.ndim)[0]
        if node.attr("select_last_index", 0):
            index = x.shape[axis] - 1 - function(np.flip(x, axis), axis=axis)
        else:
            index = function(x, axis=axis)
        index = np.asarray(index, np.int64)
        return np.expand_dims(index, axis) if node.attr("keepdims", 1) else index
    return op


def _reduce(function: Callable[..., np.ndarray]) -> Callable[[HostNode, list], np.ndarray]:
    """ReduceX over the axes (input 1 or attribute); none given: all of them, or none with noop_with_empty_axes."""
    def op(node: HostNode, args: list) -> np.ndarray:
        x = args[0]
        axes = _axes(node, args, 1)
        if not axes and node.attr("noop_with_empty_axes", 0):
            return x
        chosen = _positive(axes, x.ndim) if axes else None
        return np.asarray(function(x, axis=chosen, keepdims=bool(node.attr("keepdims", 1)))).astype(x.dtype)
    return op


def _op_global_pool(function: Callable[..., np.ndarray]) -> Callable[[HostNode, list], np.ndarray]:
    def op(node: HostNode, args: list) -> np.ndarray:
        x = args[0]
        return function(x, axis=tuple(range(2, x.ndim)), keepdims=True).astype(x.dtype)
    return op


# ---- linear algebra, normalisation ---------------------------------------------------------------------------


def _op_gemm(node: HostNode, args: list) -> np.ndarray:
    a, b, c = args[0], args[1], _optional(args, 2)
    a = a.T if node.attr("transA", 0) else a
    b = b.T if node.attr("transB", 0) else b
    y = (a @ b) * a.dtype.type(node.attr("alpha", 1.0))
    return y if c is None else y + c * c.dtype.type(node.attr("beta", 1.0))


def _op_batch_norm(node: HostNode, args: list) -> np.ndarray:
    """Inference form: (x - mean) / sqrt(var + epsilon) * scale + bias, per channel (axis 1)."""
    if node.attr("training_mode", 0):
        raise HostError("training_mode=1 is not an inference batch normalization")
    x, scale, bias, mean, var = args[:5]
    along = (1, -1) + (1,) * (x.ndim - 2)
    factor = scale / np.sqrt(var + var.dtype.type(node.attr("epsilon", 1e-5)))
    return (x - mean.reshape(along)) * factor.reshape(along) + bias.reshape(along)


# ---- shapes ------------------------------------------------------------------------------------------------


def _op_reshape(node: HostNode, args: list) -> np.ndarray:
    """-1 is inferred; 0 copies the input's dimension unless allowzero=1 (then it is a real 0)."""
    x, shape = args[0], _ints(args[1])
    if not node.attr("allowzero", 0):
        shape = [x.shape[index] if size == 0 else size for index, size in enumerate(shape)]
    return x.reshape(shape)


def _op_flatten(node: HostNode, args: list) -> np.ndarray:
    x = args[0]
    axis = _positive([node.attr("axis", 1)], x.ndim)[0]
    return x.reshape(int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:])))


def _op_squeeze(node: HostNode, args: list) -> np.ndarray:
    x, axes = args[0], _axes(node, args, 1)
    return np.squeeze(x) if not axes else np.squeeze(x, axis=_positive(axes, x.ndim))


def _op_unsqueeze(node: HostNode, args: list) -> np.ndarray:
    x, axes = args[0], _axes(node, args, 1) or []
    return np.expand_dims(x, _positive(axes, x.ndim + len(axes)))


def _op_transpose(node: HostNode, args: list) -> np.ndarray:
    perm = node.attr("perm")
    return np.transpose(args[0], None if perm is None else list(perm))


def _op_concat(node: HostNode, args: list) -> np.ndarray:
    return np.concatenate([arg for arg in args if arg is not None], axis=node.attr("axis"))


def _op_shape(node: HostNode, args: list) -> np.ndarray:
    start, end = node.attr("start", 0), node.attr("end")
    return np.array(args[0].shape, np.int64)[start:end]


def _op_gather(node: HostNode, args: list) -> np.ndarray:
    data, indices = args
    axis = _positive([node.attr("axis", 0)], data.ndim)[0]
    indices = np.asarray(indices, np.int64)
    return np.take(data, np.where(indices < 0, indices + data.shape[axis], indices), axis=axis)


def _op_expand(node: HostNode, args: list) -> np.ndarray:
    x = args[0]
    return np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(_ints(args[1])))).copy()


def _op_constant_of_shape(node: HostNode, args: list) -> np.ndarray:
    value = node.attr("value")
    value = np.zeros(1, np.float32) if value is None else np.asarray(value)
    return np.full(_ints(args[0]), value.reshape(-1)[0], value.dtype)


def _op_constant(node: HostNode, args: list) -> np.ndarray:
    """The value of whichever value attribute the node has (tensor, float(s), int(s))."""
    makers = {"value": np.asarray, "value_float": lambda v: np.array(v, np.float32),
              "value_floats": lambda v: np.array(v, np.float32), "value_int": lambda v: np.array(v, np.int64),
              "value_ints": lambda v: np.array(v, np.int64)}
    for name, make in makers.items():
        if name in node.attributes:
            return make(node.attributes[name])
    raise HostError(f"has none of the value attributes {list(makers)} the executor implements")


def _onnx_slice(start: int, end: int, step: int, size: int) -> slice:
    """ONNX's clamping of one axis' start/end (which differs from Python's for negative steps)."""
    if step == 0:
        raise HostError("a Slice step is 0")
    start, end = start + size if start < 0 else start, end + size if end < 0 else end
    if step > 0:
        return slice(min(max(start, 0), size), min(max(end, 0), size), step)
    start, end = min(max(start, 0), size - 1), min(max(end, -1), size - 1)
    return slice(start, None if end < 0 else end, step)


def _op_slice(node: HostNode, args: list) -> np.ndarray:
    """starts/ends/axes/steps as inputs (opset 10+) or attributes (opset 1)."""
    x = args[0]
    starts = _ints(args[1]) if len(args) > 1 else list(node.attr("starts"))
    ends = _ints(args[2]) if len(args) > 2 else list(node.attr("ends"))
    axes = _axes(node, args, 3) or list(range(len(starts)))
    steps = _ints(args[4]) if _optional(args, 4) is not None else [1] * len(starts)
    index = [slice(None)] * x.ndim
    for start, end, axis, step in zip(starts, ends, _positive(axes, x.ndim), steps):
        index[axis] = _onnx_slice(start, end, step, x.shape[axis])
    return x[tuple(index)]


def _op_pad(node: HostNode, args: list) -> np.ndarray:
    """Pads as inputs (opset 11+: pads, constant_value, axes) or attributes; negative pads crop."""
    x = args[0]
    if len(args) > 1:
        pads, value, axes = _ints(args[1]), _optional(args, 2), _axes(node, args, 3)
    else:
        pads, value, axes = list(node.attr("pads")), node.attr("value", 0.0), None
    axes = list(_positive(axes, x.ndim)) if axes else list(range(x.ndim))
    widths = [(0, 0)] * x.ndim
    for position, axis in enumerate(axes):
        widths[axis] = (pads[position], pads[position + len(axes)])
    x = x[tuple(slice(-min(begin, 0), size + min(end, 0)) for (begin, end), size in zip(widths, x.shape))]
    grow = [(max(begin, 0), max(end, 0)) for begin, end in widths]
    mode = node.attr("mode", "constant")
    if mode == "constant":
        fill = 0 if value is None else np.asarray(value).reshape(-1)[0]
        return np.pad(x, grow, mode="constant", constant_values=np.asarray(fill).astype(x.dtype))
    if mode in ("reflect", "edge", "wrap"):
        return np.pad(x, grow, mode=mode)
    raise HostError(f"Pad mode '{mode}' is not implemented")


# ---- quantization ------------------------------------------------------------------------------------------


def _along_axis(parameter: np.ndarray, x: np.ndarray, node: HostNode) -> np.ndarray:
    """A scale or zero point shaped to broadcast against x: per tensor, per axis (1-D), or blocked."""
    if parameter.size == 1:
        return parameter.reshape(())
    axis = _positive([node.attr("axis", 1)], x.ndim)[0]
    if parameter.ndim == 1:
        return parameter.reshape([-1 if dim == axis else 1 for dim in range(x.ndim)])
    block = node.attr("block_size", 0)
    if not block:
        raise HostError(f"a {parameter.ndim}-D scale or zero point needs block_size")
    return np.take(np.repeat(parameter, block, axis=axis), range(x.shape[axis]), axis=axis)


def _quant_type(node: HostNode, zero_point: np.ndarray | None) -> str:
    """The output's integer type: the zero point's (int4/uint4 as the program declares), else
    output_dtype (opset 21), else uint8."""
    narrow = node.input_kinds[2] if len(node.input_kinds) > 2 else None
    if narrow:
        return narrow
    if zero_point is not None:
        return zero_point.dtype.name
    return _QUANT_TYPE_OF_ELEMENT.get(node.attr("output_dtype", 0) or 2, "unsupported")


def _op_quantize(node: HostNode, args: list) -> np.ndarray:
    """round_half_even(x / scale) + zero point, saturated to the integer type (in float32, as onnxruntime)."""
    x, scale, zero_point = args[0], args[1], _optional(args, 2)
    kind = _quant_type(node, zero_point)
    if kind not in HOST_QUANT_TYPES:
        raise HostError(f"quantizing to {kind} is not implemented")
    low, high, storage = HOST_QUANT_TYPES[kind]
    scaled = np.rint(np.asarray(x, np.float32) / _along_axis(scale, x, node).astype(np.float32))
    if zero_point is not None:
        scaled = scaled + _along_axis(zero_point, x, node).astype(np.float32)
    return np.clip(scaled, low, high).astype(storage)


def _op_dequantize(node: HostNode, args: list) -> np.ndarray:
    """(x - zero point) * scale, the difference exact in int32 as onnxruntime computes it."""
    x, scale, zero_point = args[0], args[1], _optional(args, 2)
    difference = x.astype(np.int32)
    if zero_point is not None:
        difference = difference - _along_axis(zero_point, x, node).astype(np.int32)
    return difference.astype(scale.dtype) * _along_axis(scale, x, node)


# ---- convolution and pooling (2-D, NCHW) ---------------------------------------------------------------------


def _pads(node: HostNode, sizes: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
          dilations: Sequence[int]) -> list[int]:
    """[begin..., end...] per spatial axis from `pads` or `auto_pad` (SAME_UPPER puts the odd one at the end)."""
    auto = node.attr("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        return list(node.attr("pads", [0] * 2 * len(sizes)))
    if auto == "VALID":
        return [0] * 2 * len(sizes)
    begins, ends = [], []
    for size, k, stride, dilation in zip(sizes, kernel, strides, dilations):
        total = max(0, (-(-size // stride) - 1) * stride + (k - 1) * dilation + 1 - size)
        small, large = total // 2, total - total // 2
        begins.append(small if auto == "SAME_UPPER" else large)
        ends.append(large if auto == "SAME_UPPER" else small)
    return begins + ends


def _geometry(node: HostNode, x: np.ndarray, kernel: Sequence[int],
              ceil_mode: bool) -> tuple[list[int], list[int], list[int], list[int], list[int]]:
    """Strides, dilations, pads, output sizes and the extra end padding ceil_mode's last window needs.

    With ceil_mode a last window that would start in the end padding is dropped (onnxruntime's rule).
    """
    if x.ndim != 4:
        raise HostError(f"the numpy executor implements 2-D (NCHW) {node.op_type} only, got a {x.ndim}-D input")
    sizes = list(x.shape[2:])
    strides = list(node.attr("strides", [1, 1]))
    dilations = list(node.attr("dilations", [1, 1]))
    pads = _pads(node, sizes, kernel, strides, dilations)
    outs, extra = [], []
    for axis, (size, k, stride, dilation) in enumerate(zip(sizes, kernel, strides, dilations)):
        padded = size + pads[axis] + pads[axis + 2]
        span = padded - dilation * (k - 1) - 1
        out = (-(-span // stride) if ceil_mode else span // stride) + 1
        if ceil_mode and (out - 1) * stride >= size + pads[axis]:
            out -= 1
        outs.append(out)
        extra.append(max(0, (out - 1) * stride + dilation * (k - 1) + 1 - padded))
    return strides, dilations, pads, outs, extra


def _windows(x: np.ndarray, kernel: Sequence[int], strides: Sequence[int], dilations: Sequence[int],
             outs: Sequence[int]) -> np.ndarray:
    """im2col of a padded NCHW x: (N, C, kh, kw, oh, ow), one strided slice per kernel tap."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, strides, dilations, outs
    columns = np.empty(x.shape[:2] + (kh, kw, oh, ow), x.dtype)
    for i in range(kh):
        for j in range(kw):
            columns[:, :, i, j] = x[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
    return columns


def _padded(x: np.ndarray, pads: Sequence[int], extra: Sequence[int] = (0, 0), fill: float = 0) -> np.ndarray:
    widths = [(0, 0), (0, 0), (pads[0], pads[2] + extra[0]), (pads[1], pads[3] + extra[1])]
    return np.pad(x, widths, mode="constant", constant_values=fill)


def _op_conv(node: HostNode, args: list) -> np.ndarray:
    """Grouped, strided, dilated 2-D convolution as one matrix product per group over im2col columns."""
    x, w, bias = args[0], args[1], _optional(args, 2)
    group, kernel = node.attr("group", 1), list(w.shape[2:])
    strides, dilations, pads, outs, _ = _geometry(node, x, kernel, ceil_mode=False)
    columns = _windows(_padded(x, pads), kernel, strides, dilations, outs)
    batch, channels = x.shape[:2]
    columns = columns.reshape(batch, group, channels // group * kernel[0] * kernel[1], outs[0] * outs[1])
    weights = w.reshape(group, w.shape[0] // group, -1)
    y = np.matmul(weights[None], columns).reshape(batch, w.shape[0], outs[0], outs[1])
    return y if bias is None else y + bias.reshape(1, -1, 1, 1)


def _op_max_pool(node: HostNode, args: list) -> np.ndarray:
    x, kernel = args[0], list(node.attr("kernel_shape"))
    strides, dilations, pads, outs, extra = _geometry(node, x, kernel, bool(node.attr("ceil_mode", 0)))
    lowest = -np.inf if np.issubdtype(x.dtype, np.floating) else np.iinfo(x.dtype).min
    return _windows(_padded(x, pads, extra, lowest), kernel, strides, dilations, outs).max(axis=(2, 3))


def _op_average_pool(node: HostNode, args: list) -> np.ndarray:
    """Window sums over counts: the counts take the explicit padding with count_include_pad, never the
    extra end padding of ceil_mode (onnxruntime's divisor)."""
    x, kernel = args[0], list(node.attr("kernel_shape"))
    strides, dilations, pads, outs, extra = _geometry(node, x, kernel, bool(node.attr("ceil_mode", 0)))
    sums = _windows(_padded(x, pads, extra), kernel, strides, dilations, outs).sum(axis=(2, 3))
    inside = np.ones((1, 1) + x.shape[2:], x.dtype)
    if node.attr("count_include_pad", 0):
        inside = _padded(inside, pads, fill=1)
        pads = [0, 0, 0, 0]
    counts = _windows(_padded(inside, pads, extra), kernel, strides, dilations, outs).sum(axis=(2, 3))
    return (sums / counts).astype(x.dtype)


# ---- recurrent layers (GRU, LSTM; layout 0) ---------------------------------------------------------------------

_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": _sigmoid, "tanh": np.tanh, "relu": lambda x: np.maximum(x, x.dtype.type(0))}


def _activations(node: HostNode, defaults: Sequence[str], direction: int) -> list[Callable[[np.ndarray], np.ndarray]]:
    """The direction's activation functions (f, g[, h]); those with alpha/beta parameters are refused."""
    names = node.attr("activations") or list(defaults) * 2
    if node.attr("activation_alpha") or node.attr("activation_beta"):
        raise HostError("activation_alpha/activation_beta are not implemented")
    chosen = names[direction * len(defaults):(direction + 1) * len(defaults)]
    unknown = [name for name in chosen if name.lower() not in _ACTIVATIONS]
    if unknown:
        raise HostError(f"activations {unknown} are not implemented (only {sorted(_ACTIVATIONS)})")
    return [_ACTIVATIONS[name.lower()] for name in chosen]


def _clipped(node: HostNode) -> Callable[[np.ndarray], np.ndarray]:
    """The cell clip applied to gate pre-activations (identity without the `clip` attribute)."""
    bound = node.attr("clip")
    return (lambda x: x) if bound is None else (lambda x: np.clip(x, -bound, bound).astype(x.dtype))


def _recurrence(node: HostNode, args: list, gates: int, initial_count: int, defaults: Sequence[str],
                step_for: Callable[..., Callable[[np.ndarray, tuple], tuple]]) -> tuple[np.ndarray, ...]:
    """Run a recurrent layer: X projected by W (+ Wb) once, then `step` per time step and direction.

    `step_for(node, r, rb, extra, activations)` makes one direction's step (states -> states, the hidden
    state first). Inputs X, W, R, B, sequence_lens, then `initial_count` initial states, then extras.
    Outputs Y (seq, directions, batch, hidden) and each final state (directions, batch, hidden).
    """
    if node.attr("layout", 0):
        raise HostError("layout=1 (batch first) is not implemented (onnxruntime refuses it too)")
    x, w, r, bias = args[0], args[1], args[2], _optional(args, 3)
    lengths = _optional(args, 4)
    if lengths is not None and any(length != x.shape[0] for length in _ints(lengths)):
        raise HostError("sequence_lens shorter than the sequence are not implemented")
    directions, hidden = w.shape[0], r.shape[-1]
    reverse_only = node.attr("direction", "forward") == "reverse"
    starts = [_optional(args, 5 + index) for index in range(initial_count)]
    starts = [np.zeros((directions, x.shape[1], hidden), x.dtype) if start is None else start for start in starts]
    extra = _optional(args, 5 + initial_count)
    ys, finals = [], []
    for d in range(directions):
        width = gates * hidden
        projected = x @ w[d].T + (0 if bias is None else bias[d, :width])
        rb = np.zeros(width, x.dtype) if bias is None else bias[d, width:]
        step = step_for(node, r[d], rb, None if extra is None else extra[d], _activations(node, defaults, d))
        states, outputs = tuple(start[d] for start in starts), [None] * x.shape[0]
        order = range(x.shape[0] - 1, -1, -1) if reverse_only or d == 1 else range(x.shape[0])
        for t in order:
            states = step(projected[t], states)
            outputs[t] = states[0]
        ys.append(np.stack(outputs) if outputs else np.zeros((0, x.shape[1], hidden), x.dtype))
        finals.append(states)
    ends = [np.stack([states[index] for states in finals]) for index in range(initial_count)]
    return (np.stack(ys, axis=1), *ends)


def _gru_step(node: HostNode, r: np.ndarray, rb: np.ndarray, unused: Any,
              activations: list) -> Callable[[np.ndarray, tuple], tuple]:
    """GRU gates z, r, h (ONNX order); linear_before_reset applies R_h before the reset gate."""
    f, g = activations
    clip = _clipped(node)
    hidden = r.shape[-1]
    rz, rr, rh = r[:hidden], r[hidden:2 * hidden], r[2 * hidden:]
    bz, br, bh = rb[:hidden], rb[hidden:2 * hidden], rb[2 * hidden:]
    before_reset = node.attr("linear_before_reset", 0)

    def step(xw: np.ndarray, states: tuple) -> tuple:
        (h,) = states
        z = f(clip(xw[:, :hidden] + h @ rz.T + bz))
        reset = f(clip(xw[:, hidden:2 * hidden] + h @ rr.T + br))
        recurrent = reset * (h @ rh.T + bh) if before_reset else (reset * h) @ rh.T + bh
        candidate = g(clip(xw[:, 2 * hidden:] + recurrent))
        return ((1 - z) * candidate + z * h,)
    return step


def _lstm_step(node: HostNode, r: np.ndarray, rb: np.ndarray, peepholes: np.ndarray | None,
               activations: list) -> Callable[[np.ndarray, tuple], tuple]:
    """LSTM gates i, o, f, c (ONNX order), optional peepholes (i, o, f), input_forget couples f = 1 - i."""
    f, g, h_act = activations
    clip = _clipped(node)
    hidden = r.shape[-1]
    couple = node.attr("input_forget", 0)
    pi, po, pf = (np.zeros(hidden, r.dtype),) * 3 if peepholes is None else np.split(peepholes, 3)

    def step(xw: np.ndarray, states: tuple) -> tuple:
        h, c = states
        pre = xw + h @ r.T + rb
        i = f(clip(pre[:, :hidden] + pi * c))
        forget = 1 - i if couple else f(clip(pre[:, 2 * hidden:3 * hidden] + pf * c))
        cell = forget * c + i * g(clip(pre[:, 3 * hidden:]))
        o = f(clip(pre[:, hidden:2 * hidden] + po * cell))
        return (o * h_act(cell), cell)
    return step


def _op_gru(node: HostNode, args: list) -> tuple[np.ndarray, ...]:
    return _recurrence(node, args, 3, 1, ("Sigmoid", "Tanh"), _gru_step)


def _op_lstm(node: HostNode, args: list) -> tuple[np.ndarray, ...]:
    return _recurrence(node, args, 4, 2, ("Sigmoid", "Tanh", "Tanh"), _lstm_step)


# The numpy executor's ops: op type -> function(node, inputs) -> output or tuple of outputs.
HOST_OPS: dict[str, Callable[[HostNode, list], Any]] = {
    "Add": _binary(np.add), "Sub": _binary(np.subtract), "Mul": _binary(np.multiply), "Div": _op_div,
    "Pow": _op_pow, "Min": _variadic(np.minimum), "Max": _variadic(np.maximum),
    "Greater": _binary(np.greater), "Less": _binary(np.less), "Equal": _binary(np.equal),
    "GreaterOrEqual": _binary(np.greater_equal), "LessOrEqual": _binary(np.less_equal), "Where": _op_where,
    "Relu": _unary(lambda x: np.maximum(x, x.dtype.type(0))), "LeakyRelu": _op_leaky_relu,
    "Sigmoid": _unary(_sigmoid), "Tanh": _unary(np.tanh), "Clip": _op_clip, "Erf": _unary(_erf),
    "HardSigmoid": _op_hard_sigmoid, "HardSwish": _op_hard_swish, "Softplus": _unary(_softplus), "Gelu": _op_gelu,
    "Sqrt": _unary(np.sqrt), "Exp": _unary(np.exp), "Log": _unary(np.log), "Neg": _unary(np.negative),
    "Abs": _unary(np.abs), "Sign": _unary(np.sign), "Identity": _unary(lambda x: x), "Cast": _op_cast,
    "Round": _unary(np.round), "Floor": _unary(np.floor), "Ceil": _unary(np.ceil),
    "Softmax": _softmax_like(log=False), "LogSoftmax": _softmax_like(log=True),
    "ArgMax": _arg_extreme(np.argmax), "ArgMin": _arg_extreme(np.argmin),
    "ReduceMean": _reduce(np.mean), "ReduceMax": _reduce(np.max), "ReduceMin": _reduce(np.min),
    "ReduceSum": _reduce(np.sum), "GlobalAveragePool": _op_global_pool(np.mean),
    "GlobalMaxPool": _op_global_pool(np.max),
    "Gemm": _op_gemm, "MatMul": _binary(np.matmul), "BatchNormalization": _op_batch_norm,
    "Reshape": _op_reshape, "Flatten": _op_flatten, "Squeeze": _op_squeeze, "Unsqueeze": _op_unsqueeze,
    "Transpose": _op_transpose, "Concat": _op_concat, "Shape": _op_shape, "Gather": _op_gather,
    "Slice": _op_slice, "Pad": _op_pad, "Expand": _op_expand, "Constant": _op_constant,
    "ConstantOfShape": _op_constant_of_shape,
    "QuantizeLinear": _op_quantize, "DequantizeLinear": _op_dequantize,
    "Conv": _op_conv, "MaxPool": _op_max_pool, "AveragePool": _op_average_pool,
    "GRU": _op_gru, "LSTM": _op_lstm,
}


# ---- host parts and the whole model --------------------------------------------------------------------------


def _onnxruntime() -> Any:
    """The onnxruntime module, or None when the board image lacks it."""
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime


def _ort_session(ort: Any, path: Path) -> Any:
    """A session with the reference semantics: no graph optimisations, CPU, one thread, quiet."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class HostPart:
    """One host part (pre or post) of the model, run one frame (batch-1 tensors) at a time.

    `spec` is {"onnx": file, "program": file, "inputs": [...], "outputs": [...]}, files in `folder`.
    `backend`: "onnxruntime", "numpy", or "auto" (onnxruntime if importable, else numpy); `.backend`
    says which one runs. The numpy backend refuses, at load, a part with ops it lacks.
    """

    def __init__(self, folder: str | os.PathLike[str], spec: Mapping[str, Any], backend: str = "auto") -> None:
        if backend not in HOST_BACKENDS:
            raise HostError(f"unknown host backend '{backend}': use one of {list(HOST_BACKENDS)}")
        self.inputs, self.outputs = list(spec["inputs"]), list(spec["outputs"])
        ort = None if backend == "numpy" else _onnxruntime()
        if backend == "onnxruntime" and ort is None:
            raise HostError("the onnxruntime host backend needs onnxruntime (pip install onnxruntime), "
                            "or use backend='numpy'")
        self._session, self._program = None, None
        if ort is not None:
            path = Path(folder) / spec["onnx"]
            if not path.is_file():
                raise HostError(f"host part {path} not found")
            self._session, self.backend = _ort_session(ort, path), "onnxruntime"
        else:
            self._program, self.backend = self._numpy_program(Path(folder) / spec["program"]), "numpy"

    def _numpy_program(self, path: Path) -> HostProgram:
        program = load_program(path)
        missing = program.missing_ops()
        if missing:
            raise HostError(f"host part {path.name} uses ops the numpy executor does not implement: "
                            f"{', '.join(missing)}; the board needs onnxruntime for it (pip install onnxruntime)")
        return program

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The part's outputs by name, for its inputs by name (other entries of `feeds` are ignored)."""
        missing = [name for name in self.inputs if name not in feeds]
        if missing:
            raise HostError(f"host part needs inputs {missing}")
        given = {name: feeds[name] for name in self.inputs}
        if self._session is not None:
            return dict(zip(self.outputs, self._session.run(self.outputs, given)))
        return run_program(self._program, given, self.outputs)


class HostModel:
    """The whole model around the accelerator: the driver's HOST dict (pre, post, state, port names).

    `run_batch` runs pre frame by frame, the accelerator once on the stacked batch, then post frame by
    frame in order, each frame's state outputs becoming the next frame's state inputs. `state` holds
    the state between calls (zeros after `reset()`); `seconds` accumulates the time spent in pre and post.
    """

    def __init__(self, folder: str | os.PathLike[str], host_spec: Mapping[str, Any], backend: str = "auto") -> None:
        self.spec = host_spec
        self.pre = HostPart(folder, host_spec["pre"], backend) if host_spec.get("pre") else None
        self.post = HostPart(folder, host_spec["post"], backend) if host_spec.get("post") else None
        self.seconds = {"pre": 0.0, "post": 0.0}
        self._check_spec()
        self.reset()

    @property
    def backend(self) -> str | None:
        """Which executor runs the host parts (None when there are none)."""
        part = self.pre or self.post
        return None if part is None else part.backend

    def _check_spec(self) -> None:
        """State lives in post only: pre runs before any frame's state exists, so it may not read it."""
        post_outputs = set(self.post.outputs if self.post else ())
        for entry in self.spec.get("state", []):
            if self.pre is not None and entry["input"] in self.pre.inputs:
                raise HostError(f"state input '{entry['input']}' feeds the pre part; "
                                "only the post part may carry state")
            if entry["output"] not in post_outputs:
                raise HostError(f"state output '{entry['output']}' is not an output of the post part")
        for entry in self.spec["inputs"]:
            if not entry["shape"] or entry["shape"][0] != 1:
                raise HostError(f"model input '{entry['name']}' must have batch 1, declared {entry['shape']}")

    def reset(self) -> None:
        """Zero the carried state (the start of a new sequence)."""
        self.state = {entry["input"]: np.zeros(entry["shape"], entry["dtype"]) for entry in self.spec.get("state", [])}

    def run_batch(self, inputs: Mapping[str, Any],
                  accelerator: Callable[[dict[str, np.ndarray]], Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """The model's outputs (N, ...) by name for its inputs (N, ...) by name (a single frame may drop N).

        `accelerator` maps float batches by port tensor name to float (dequantized) batches by port name.
        The state advances only when the whole batch succeeds.
        """
        envs = self._frames(inputs)
        start = time.perf_counter()
        if self.pre is not None:
            for env in envs:
                env.update(self.pre.run(env))
        self.seconds["pre"] += time.perf_counter() - start
        self._accelerate(envs, accelerator)
        start = time.perf_counter()
        state, results = dict(self.state), []
        for env in envs:
            env.update(state)
            if self.post is not None:
                env.update(self.post.run(env))
            state = {entry["input"]: env[entry["output"]] for entry in self.spec.get("state", [])}
            results.append(self._frame_outputs(env))
        self.seconds["post"] += time.perf_counter() - start
        self.state = state
        return {entry["name"]: np.concatenate([frame[entry["name"]] for frame in results])
                for entry in self.spec["outputs"]}

    def _frames(self, inputs: Mapping[str, Any]) -> list[dict[str, np.ndarray]]:
        """Per-frame environments (batch-1 tensors) from the user's inputs, checked and cast."""
        if not isinstance(inputs, Mapping):
            raise HostError("pass the model inputs as a dict by input name")
        expected = [entry["name"] for entry in self.spec["inputs"]]
        unknown, missing = sorted(set(inputs) - set(expected)), [name for name in expected if name not in inputs]
        if missing or unknown:
            problems = ([f"missing {missing}"] if missing else []) + \
                ([f"unknown {unknown} (state is carried by the model: reset() clears it)"] if unknown else [])
            raise HostError(f"the model takes inputs {expected}; " + "; ".join(problems))
        batches = {entry["name"]: _input_batch(entry, inputs[entry["name"]]) for entry in self.spec["inputs"]}
        counts = {len(batch) for batch in batches.values()}
        if len(counts) > 1:
            raise HostError(f"the inputs have different frame counts: {sorted(counts)}")
        if counts == {0}:
            raise HostError("the inputs hold no frames")
        count = counts.pop() if counts else 1
        return [{name: batch[index:index + 1] for name, batch in batches.items()} for index in range(count)]

    def _accelerate(self, envs: list[dict[str, np.ndarray]],
                    accelerator: Callable[[dict[str, np.ndarray]], Mapping[str, np.ndarray]]) -> None:
        """One accelerator call on the stacked batch; its outputs split back into the frames."""
        ports_in, ports_out = self.spec.get("accelerator_inputs", {}), self.spec.get("accelerator_outputs", {})
        if not ports_in and not ports_out:
            return
        unmade = [name for name in ports_in if name not in envs[0]]
        if unmade:
            raise HostError(f"accelerator inputs {unmade} are neither model inputs nor pre outputs")
        batch = {port: np.concatenate([env[name] for env in envs]).astype(np.float32, copy=False)
                 for name, port in ports_in.items()}
        results = accelerator(batch)
        for port, name in ports_out.items():
            if port not in results:
                raise HostError(f"the accelerator returned no output '{port}' (it returned {sorted(results)})")
            value = np.asarray(results[port], np.float32)
            if value.ndim == 0 or len(value) != len(envs):
                raise HostError(f"the accelerator's output '{port}' has shape {value.shape}, not {len(envs)} frames")
            shape = self.spec.get("boundary_shapes", {}).get(name)
            if shape is not None:  # the accelerator's ports are (N, C, H, W); the model's tensor may be (N, C)
                value = value.reshape(len(envs), *shape[1:])
            for index, env in enumerate(envs):
                env[name] = value[index:index + 1]

    def _frame_outputs(self, env: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        frame = {}
        for entry in self.spec["outputs"]:
            if entry["name"] not in env:
                raise HostError(f"model output '{entry['name']}' is computed by no host part nor the accelerator")
            value = np.asarray(env[entry["name"]])
            if list(value.shape) != list(entry["shape"]):
                raise HostError(f"model output '{entry['name']}' has shape {value.shape}, declared {entry['shape']}")
            frame[entry["name"]] = value
        return frame


def _input_batch(entry: Mapping[str, Any], value: Any) -> np.ndarray:
    """A model input as (N, ...): a frame (...) or (1, ...) or a batch (N, ...) of the declared (1, ...)."""
    name, frame_shape, dtype = entry["name"], tuple(entry["shape"][1:]), np.dtype(entry["dtype"])
    array = np.asarray(value)
    if array.shape == frame_shape:
        array = array[None]
    if array.shape[1:] != frame_shape or array.ndim != len(frame_shape) + 1:
        raise HostError(f"input '{name}' must be one frame {frame_shape} or a batch (N, *{frame_shape}), "
                        f"got shape {array.shape}")
    if array.dtype.kind not in "biuf" or (dtype.kind in "biu" and array.dtype.kind == "f"):
        raise HostError(f"input '{name}' must be {'numbers' if dtype.kind == 'f' else 'integers'}, got {array.dtype}")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise HostError(f"input '{name}' contains NaN or infinity")
    return array.astype(dtype, copy=False)
