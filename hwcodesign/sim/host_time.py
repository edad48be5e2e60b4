"""Estimated time of a partitioned model's host parts on the board's CPU.

The host parts (float pre/post-processing, a GRU/LSTM head, Softmax) run on the board's ARM cores
in the generated driver. Their time cannot be measured off the board, so the simulator estimates
it: count each node's floating-point operations from its ONNX definition and shapes, divide by
the rate one core sustains (clock x peak fp32 FLOP per cycle x an assumed sustained fraction,
`boards.Cpu.sustained_flops`), and add a fixed per-node dispatch cost, since small batch-1 host
parts are often dominated by interpreter and call overhead rather than arithmetic. The result is
an estimate resting on the board file's stated assumptions and says so; `benchmark()` on the
board measures the real figure.

Counting rules (one FLOP = one elementary arithmetic operation or one transcendental function
evaluation per element, so the count does not depend on how a library implements `exp`):
  - Conv, ConvTranspose, Gemm, MatMul: 2 per multiply-accumulate, plus one add per output
    element when a bias (Gemm's C) is given;
  - GRU / LSTM, per time step, direction and batch row, as the ONNX operator defines them: the
    input and recurrent products of every gate (3 gates for GRU, 4 for LSTM) at 2 per MAC, per
    gate element one add joining the two products, 2 bias adds when B is given and the gate's
    activation; then the state update (`_RECURRENT`);
  - elementwise ops: `_PER_ELEMENT` FLOPs per output element; normalisations and Softmax by their
    ONNX formulas per element; reductions and pools: one per input element read (per window
    element for pools);
  - data movement (Reshape, Transpose, Concat, Slice, ...): 0 FLOPs, but its bytes are counted;
  - any other op: one FLOP per output element, marked as a guess in `HostOpCount.rule`.
Bytes touched are every input (weights included) and output tensor's size, for reports; the time
formula uses FLOPs and node count only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import onnx
from onnx import helper, shape_inference

from hwcodesign.boards import Cpu
from hwcodesign.errors import HwcodesignError

# Elementwise ops: FLOPs per output element. Sigmoid = exp, add, divide; the rest one operation.
_PER_ELEMENT = {
    **dict.fromkeys(("Add", "Sub", "Mul", "Div", "Neg", "Abs", "Relu", "Max", "Min", "Pow", "Sqrt",
                     "Reciprocal", "Exp", "Log", "Tanh", "Erf", "Floor", "Ceil", "Round", "Sign",
                     "Clip", "Cos", "Sin", "Equal", "Less", "Greater", "Where", "Not", "And", "Or",
                     "Cast", "QuantizeLinear", "DequantizeLinear"), 1),
    "LeakyRelu": 2,  # compare, multiply
    "PRelu": 2,
    "Elu": 3,  # compare, exp, multiply-subtract
    "Selu": 4,
    "Sigmoid": 3,
    "HardSigmoid": 3,  # multiply, add, clip
    "HardSwish": 4,  # the HardSigmoid, then a multiply
    "Softplus": 3,  # exp, add, log
    "Gelu": 5,  # divide, erf, add, multiply, multiply
    # Normalisations and Softmax per element, by the ONNX formulas:
    # Softmax: max, subtract, exp, sum, divide.
    "Softmax": 5,
    "LogSoftmax": 5,  # max, subtract, exp, sum, (log once per row), subtract
    # BatchNormalization (inference): subtract mean, divide by sqrt(var + eps), scale, shift.
    "BatchNormalization": 4,
    # Layer/instance normalisation: mean (sum), subtract, square, sum, divide, scale, shift.
    "LayerNormalization": 7,
    "InstanceNormalization": 7,
}
_DATA_MOVEMENT = frozenset((
    "Reshape", "Identity", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Split",
    "Slice", "Gather", "Shape", "Constant", "ConstantOfShape", "Expand", "Tile", "Pad",
    "DepthToSpace", "SpaceToDepth", "Dropout",
))
_REDUCTIONS = frozenset((
    "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceL1",
    "ReduceSumSquare", "ReduceLogSumExp", "ArgMax", "ArgMin", "GlobalAveragePool", "GlobalMaxPool",
))
_POOLS = frozenset(("AveragePool", "MaxPool", "LpPool"))
# Recurrent ops: gates, each gate's activation FLOPs per element (ONNX default activations), and
# the state update per hidden element.
#   GRU: z, r sigmoid (3 each), h tanh (1); update r*H (1) then (1-z)*h + z*H (4) = 5.
#   LSTM: i, o, f sigmoid, c tanh; update f*C + i*c (3), tanh(C) (1), o*tanh(C) (1) = 5.
_RECURRENT = {"GRU": ((3, 3, 1), 5), "LSTM": ((3, 3, 3, 1), 5)}
# LSTM peepholes (input P): a multiply and an add for each of the i, o, f gates per element.
_PEEPHOLE_FLOPS = 3 * 2


@dataclass(frozen=True)
class HostOpCount:
    """One host-part node's work: what the estimate charges and why."""

    op_type: str
    name: str
    flops: int
    bytes: int
    rule: str
    """How the FLOPs were counted ("matmul", "elementwise x3", "data movement", ...)."""


@dataclass(frozen=True)
class HostEstimate:
    """Estimated time of one host part on one core of the board's CPU (not a measurement)."""

    seconds: float
    compute_seconds: float
    dispatch_seconds: float
    flops: int
    bytes: int
    operations: tuple[HostOpCount, ...]
    cpu: Cpu

    def describe(self) -> str:
        """One line for reports: the time, that it is an estimate, the CPU and what it assumes."""
        cpu = self.cpu
        assumed = ", ".join(cpu.assumed) if cpu.assumed else "nothing"
        return (
            f"host estimate {self.seconds * 1e3:.3f} ms on one {cpu.core} core at {cpu.clock_mhz:g} MHz "
            f"({self.flops:,} FLOPs at {cpu.sustained_flops / 1e9:.2f} GFLOP/s sustained = "
            f"{self.compute_seconds * 1e3:.3f} ms, {len(self.operations)} ops x {cpu.dispatch_us:g} us dispatch = "
            f"{self.dispatch_seconds * 1e3:.3f} ms); an estimate, not measured: assumes {assumed} "
            f"(board file [cpu]); benchmark() on the board measures it"
        )


def estimate_host_seconds(model: onnx.ModelProto, cpu: Cpu) -> HostEstimate:
    """Estimated seconds for one frame of a host part (a static batch-1 ONNX model) on `cpu`:
    FLOPs / sustained FLOP/s + nodes x dispatch cost."""
    operations = tuple(host_operations(model))
    flops = sum(op.flops for op in operations)
    compute = flops / cpu.sustained_flops
    dispatch = len(operations) * cpu.dispatch_us * 1e-6
    return HostEstimate(
        seconds=compute + dispatch,
        compute_seconds=compute,
        dispatch_seconds=dispatch,
        flops=flops,
        bytes=sum(op.bytes for op in operations),
        operations=operations,
        cpu=cpu,
    )


def host_operations(model: onnx.ModelProto) -> list[HostOpCount]:
    """Per node of the model's main graph, in order: its FLOPs and bytes touched.

    Shapes come from onnx shape inference; host parts are static batch-1 models, so a tensor
    whose shape stays unknown is refused, naming the node, rather than silently counted as zero.
    """
    graph = shape_inference.infer_shapes(model, strict_mode=True).graph
    tensors: dict[str, tuple[tuple[int, ...], int]] = {}  # name -> (shape, bytes per element)
    for init in graph.initializer:
        tensors[init.name] = (tuple(init.dims), _itemsize(init.data_type))
    for node in graph.node:
        for attribute in node.attribute:
            if node.op_type == "Constant" and attribute.name == "value":
                tensors[node.output[0]] = (tuple(attribute.t.dims), _itemsize(attribute.t.data_type))
    for info in (*graph.input, *graph.value_info, *graph.output):
        tensor = info.type.tensor_type
        if tensor.HasField("shape") and info.name not in tensors:
            dims = tuple(dim.dim_value if dim.HasField("dim_value") else -1 for dim in tensor.shape.dim)
            tensors[info.name] = (dims, _itemsize(tensor.elem_type))

    def shape(node: onnx.NodeProto, name: str) -> tuple[int, ...]:
        found = tensors.get(name)
        if found is None or any(dim < 0 for dim in found[0]):
            raise HwcodesignError(
                f"host-time estimate: node '{node.name or node.op_type}' ({node.op_type}): tensor '{name}' has "
                f"no static shape after shape inference; host parts must be static batch-1 models"
            )
        return found[0]

    counts = []
    for node in graph.node:
        # Aligned with node.input: None where an optional input is left out (an empty name).
        inputs = [shape(node, name) if name else None for name in node.input]
        outputs = [shape(node, name) for name in node.output if name]
        size = sum(math.prod(shape(node, name)) * tensors[name][1] for name in (*node.input, *node.output) if name)
        flops, rule = _node_flops(node, inputs, outputs)
        counts.append(HostOpCount(node.op_type, node.name, flops, size, rule))
    return counts


def _node_flops(node: onnx.NodeProto, inputs: list[tuple[int, ...] | None],
                outputs: list[tuple[int, ...]]) -> tuple[int, str]:
    """FLOPs of one node from its input shapes (None for an omitted optional input) and output
    shapes, with the rule that counted them."""
    op = node.op_type
    out_elements = math.prod(outputs[0]) if outputs else 0
    attributes = {attribute.name: helper.get_attribute_value(attribute) for attribute in node.attribute}
    def given(index: int) -> bool:
        return len(inputs) > index and inputs[index] is not None

    if op in ("Conv", "ConvTranspose"):
        weight = _required(inputs, 1)  # Conv (M, C/group, k...), ConvTranspose (C, M/group, k...)
        if op == "Conv":
            macs = out_elements * math.prod(weight[1:])
        else:  # every input element scatters into M/group x k... outputs
            macs = math.prod(_required(inputs, 0)) * math.prod(weight[1:])
        bias = out_elements if given(2) else 0
        return 2 * macs + bias, "matmul"
    if op == "Gemm":
        a = _required(inputs, 0)
        k = a[0] if attributes.get("transA", 0) else a[1]
        bias = out_elements if given(2) else 0
        return 2 * out_elements * k + bias, "matmul"
    if op == "MatMul":
        return 2 * out_elements * _required(inputs, 0)[-1], "matmul"
    if op in _RECURRENT:
        return _recurrent_flops(op, attributes, inputs, given), "recurrent (ONNX definition)"
    if op in _PER_ELEMENT:
        per = _PER_ELEMENT[op]
        return per * out_elements, f"elementwise x{per}"
    if op in _REDUCTIONS:
        return math.prod(_required(inputs, 0)), "reduction: one per input element"
    if op in _POOLS:
        window = math.prod(attributes.get("kernel_shape", ()))
        return out_elements * window, "pool: one per window element"
    if op in _DATA_MOVEMENT:
        return 0, "data movement"
    return out_elements, "unknown op: guessed one per output element"


def _recurrent_flops(op: str, attributes: dict[str, object], inputs: list[tuple[int, ...] | None],
                     given: Callable[[int], bool]) -> int:
    """GRU/LSTM FLOPs per the ONNX operator definitions, over all time steps and directions.

    X is (seq, batch, input) (layout 0) or (batch, seq, input) (layout 1); W is
    (directions, gates x hidden, input). Each step computes, per gate, an input product X_t W^T
    and a recurrent product H_{t-1} R^T, joins them (and the biases when B is given), applies the
    gate's activation, and updates the state.
    """
    activations, update = _RECURRENT[op]
    x, w = _required(inputs, 0), _required(inputs, 1)
    steps, batch = (x[1], x[0]) if attributes.get("layout", 0) else (x[0], x[1])
    directions, gate_rows, input_size = w
    hidden = gate_rows // len(activations)
    has_bias = given(3)  # B; LSTM's peepholes P are input 7
    products = 2 * gate_rows * (input_size + hidden)
    gates = sum(hidden * (1 + (2 if has_bias else 0) + activation) for activation in activations)
    peepholes = _PEEPHOLE_FLOPS * hidden if op == "LSTM" and given(7) else 0
    per_step = products + gates + update * hidden + peepholes
    return per_step * steps * batch * directions


def _required(inputs: list[tuple[int, ...] | None], index: int) -> tuple[int, ...]:
    """A required input's shape; a model missing it fails the ONNX checker, so say so."""
    found = inputs[index] if index < len(inputs) else None
    if found is None:
        raise HwcodesignError(f"host-time estimate: required input {index} missing (the model fails the ONNX checker)")
    return found


def _itemsize(data_type: int) -> int:
    """Bytes per element of an ONNX tensor type."""
    return helper.tensor_dtype_to_np_dtype(data_type).itemsize
