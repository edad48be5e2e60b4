"""A lookup table's entries: the matched float subgraph run on every input level, as onnxruntime runs it.

The subgraph (the nodes between the DequantizeLinear of one quantized tensor and the
QuantizeLinear of the result) becomes a small ONNX model of its own: the input levels (and, for
`x * f(x)` written with f(x) quantized, the table of f(x) on those levels) go through the model's
own DequantizeLinear, the float nodes exactly as written, and the output's QuantizeLinear. That
model runs under onnxruntime with optimisations off (`hwcodesign.reference`), the semantics the
golden model is held to, so the table is onnxruntime's output level by level. Without
onnxruntime (an optional dependency) the host parts' numpy executor (`hwcodesign/host/runtime.py`)
runs the same model; tests/ops/test_table.py holds the two equal on every level of every
supported function.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from hwcodesign.errors import HwcodesignError
from hwcodesign.host.program import program_bytes
from hwcodesign.host.runtime import load_program, run_program
from hwcodesign.ir.types import IntType, Tensor
from hwcodesign.reference import onnxruntime_installed

ONNX_TYPES = {(8, False): onnx.TensorProto.UINT8, (8, True): onnx.TensorProto.INT8,
              (16, False): onnx.TensorProto.UINT16, (16, True): onnx.TensorProto.INT16,
              (4, False): onnx.TensorProto.UINT4, (4, True): onnx.TensorProto.INT4}
NUMPY_TYPES = {(8, False): np.uint8, (8, True): np.int8, (16, False): np.uint16, (16, True): np.int16,
               (4, False): np.uint8, (4, True): np.int8}
MIN_OPSET = 13  # per-tensor QuantizeLinear/DequantizeLinear with every integer type above but 4-bit
NARROW_OPSET = 21  # 4-bit QuantizeLinear/DequantizeLinear
SOURCE = "levels"
OUTPUT = "table"


@dataclass(frozen=True)
class Leaf:
    """A quantized tensor the float subgraph reads through a DequantizeLinear: the source itself
    (`levels` None) or a lookup of it (its value on each source level)."""

    tensor: Tensor
    levels: np.ndarray | None = None
    function: str = ""  # the lookup's function, for the table's name


@dataclass(frozen=True)
class FloatFunction:
    """The float subgraph of one quantized tensor: `leaves` by the float tensor names its nodes
    read, `constants` likewise (as onnxruntime reads them), `nodes` in order, `output` the float
    tensor its QuantizeLinear quantizes."""

    source: Tensor
    leaves: Mapping[str, Leaf]
    constants: Mapping[str, np.ndarray]
    nodes: tuple[onnx.NodeProto, ...]
    output: str
    opset: int


def input_levels(dtype: IntType) -> np.ndarray:
    return np.arange(dtype.min, dtype.max + 1, dtype=np.int64)


def table_model(function: FloatFunction, out: Tensor) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """The subgraph as a model of its own (input levels -> output levels) and its feeds."""
    for dtype in [leaf.tensor.dtype for leaf in function.leaves.values()] + [out.dtype]:
        if (dtype.bits, dtype.signed) not in ONNX_TYPES:
            raise HwcodesignError(f"a lookup table on {dtype} tensors: only 4-, 8- and 16-bit types are supported")
    levels = input_levels(function.source.dtype)
    # 4-bit types, and a 16-bit output (a mean table's fine grid), need opset 21's quantizers
    narrow = any(leaf.tensor.dtype.bits == 4 for leaf in function.leaves.values()) or out.dtype.bits != 8
    inputs, feeds, nodes, initializers = [], {}, [], []
    fed: dict[str, str] = {}
    for name, leaf in function.leaves.items():
        tensor, key = leaf.tensor, (leaf.tensor.dtype.bits, leaf.tensor.dtype.signed)
        if tensor.name not in fed:
            fed[tensor.name] = f"{SOURCE}_{len(fed)}"
            values = levels if leaf.levels is None else leaf.levels
            feeds[fed[tensor.name]] = values.astype(NUMPY_TYPES[key])
            inputs.append(helper.make_tensor_value_info(fed[tensor.name], ONNX_TYPES[key], [levels.size]))
        scale, zero_point = grid(f"{name}_grid", tensor)
        initializers += [scale, zero_point]
        nodes.append(helper.make_node("DequantizeLinear", [fed[tensor.name], scale.name, zero_point.name], [name]))
    initializers += [numpy_helper.from_array(np.asarray(array), name) for name, array in function.constants.items()]
    nodes += [copy_node(node) for node in function.nodes]
    scale, zero_point = grid(f"{OUTPUT}_grid", out)
    initializers += [scale, zero_point]
    nodes.append(helper.make_node("QuantizeLinear", [function.output, scale.name, zero_point.name], [OUTPUT]))
    output = helper.make_tensor_value_info(OUTPUT, ONNX_TYPES[(out.dtype.bits, out.dtype.signed)], None)
    graph = helper.make_graph(nodes, "lookup_table", inputs, [output], initializers)
    opset = max(function.opset, NARROW_OPSET if narrow else MIN_OPSET)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 10)
    return model, feeds


def grid(name: str, tensor: Tensor) -> tuple[onnx.TensorProto, onnx.TensorProto]:
    """A tensor's scale (float32, as the model stores it) and zero point as initializers."""
    key = (tensor.dtype.bits, tensor.dtype.signed)
    scale = numpy_helper.from_array(np.asarray(tensor.scale, np.float32), f"{name}_scale")
    zero_point = helper.make_tensor(f"{name}_zero_point", ONNX_TYPES[key], [], [tensor.zero_point])
    return scale, zero_point


def copy_node(node: onnx.NodeProto) -> onnx.NodeProto:
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    return copy


def compute_table(function: FloatFunction, out: Tensor, backend: str = "auto") -> np.ndarray:
    """The output level for every input level (int64), from onnxruntime ("onnxruntime"), the numpy
    executor ("numpy"), or onnxruntime when it is installed ("auto")."""
    model, feeds = table_model(function, out)
    if backend == "onnxruntime" or backend == "auto" and onnxruntime_available():
        from hwcodesign.reference import Reference

        result = Reference(model).run(feeds)[OUTPUT]
    else:
        result = run_program(load_program(program_bytes(model)), feeds)[OUTPUT]
    table = np.asarray(result).astype(np.int64).reshape(-1)
    if table.size != input_levels(function.source.dtype).size:
        raise HwcodesignError(f"the float function of '{function.source.name}' does not keep one value per element "
                              f"(it gave {table.size} values for {input_levels(function.source.dtype).size} levels)")
    return table


def fine_table(function: FloatFunction, bits: int) -> tuple[np.ndarray, float]:
    """The function's value on every input level as signed `bits`-bit integers on the finest
    power-of-two grid they fit with the largest above half the range (so each entry is within
    half a step of the value, a step being at most 2**(2 - bits) of the largest value), and that
    grid's scale: what a mean of the function's values sums. HwcodesignError for values beyond
    2**30 steps of 2**32."""
    dtype = IntType(bits, signed=True)
    exponent, fitted = 0, None
    for _ in range(24):
        grid = Tensor(OUTPUT, (1, 1, 1, 1), dtype, 2.0 ** exponent, 0)
        table = compute_table(function, grid)
        largest = int(np.abs(table).max())
        if largest >= dtype.max:  # saturated: the last grid that fitted, else a coarser one
            if fitted is not None:
                return fitted
            if exponent >= 32:
                break
            exponent += bits // 2
            continue
        fitted = table, float(grid.scale)
        if largest > dtype.max // 2 or exponent <= -64:
            return fitted
        # finer by the headroom the largest entry leaves (at least one step)
        exponent -= max(1, (dtype.max // (largest + 1)).bit_length() - 1) if largest else bits - 1
    raise HwcodesignError(f"the float function of '{function.source.name}' has values no {bits}-bit grid holds")


def onnxruntime_available() -> bool:
    return onnxruntime_installed()
