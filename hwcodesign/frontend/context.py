"""The state one lowering shares between its rules: what every ONNX tensor stands for, the IR ops
built so far, and the helpers every rule reads operands and finishes layers with.

The family rules (`hwcodesign/ops/<family>/lowering.py`) and the plumbing here all work on one
`LoweringContext`; the driver (`hwcodesign/passes/lowering.py`) makes it, installs the rules and
the `Builders`, and walks the nodes. The toolkit sits below the op families, so the few IR ops
its plumbing must create (a graph input, a requantizing identity, a per-channel affine layer)
come from the families through `Builders` rather than by import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.frontend.formats import read_formats
from hwcodesign.frontend.validate import fold_size_problem, frame_size_problem, run_one_node
from hwcodesign.frontend.values import (
    Activation,
    Constant,
    FinalStage,
    FloatInput,
    OutputQuantizer,
    Padded,
    Pending,
    QuantizedConstant,
    Value,
)
from hwcodesign.ir.op import Op
from hwcodesign.ir.requant import RatioOutOfRange
from hwcodesign.ir.types import BipolarType, Tensor
from hwcodesign.onnx_edit import fresh_name
from hwcodesign.quant.formats import WeightFormat

Rule = Callable[["LoweringContext", onnx.NodeProto, str], None]
LAYOUT_OPS = ("Transpose", "Reshape", "Flatten", "Unsqueeze", "Squeeze", "Identity")
"""Ops that only move elements: on quantized weights they fold (`fold_quantized_layout`)."""


@dataclass(frozen=True)
class Builders:
    """The layers the toolkit's plumbing creates whose IR ops belong to a family.

    `input(ctx, source, tensor)` emits the accelerator input for a quantized graph input (boundary);
    `requantize(ctx, x, name, function, passthrough)` is an elementwise layer on x's grid that its
    quantizer finishes (elementwise); `affine(ctx, x, name)` a per-channel scale and shift of x
    with nothing to fold into (conv: a 1x1 depthwise conv with unit weights).
    """

    input: Callable[[LoweringContext, FloatInput, Tensor], None]
    requantize: Callable[[LoweringContext, Activation, str, str, bool], Pending]
    affine: Callable[[LoweringContext, Activation, str], Pending]


@dataclass
class LoweringContext:
    """One lowering of one model: values by tensor name, the ops emitted, the names taken."""

    model: onnx.ModelProto
    rules: Mapping[str, Rule]
    builders: Builders
    weight_formats: dict[str, WeightFormat] = field(init=False)  # layer -> format (frontend/formats.py)
    values: dict[str, Value] = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)
    used_names: set[str] = field(default_factory=set)
    fixed_shape_offsets: dict[str, Activation] = field(default_factory=dict)  # Mul(d, P) outputs -> d
    input_tensor_of: dict[str, str] = field(default_factory=dict)  # graph input name -> its quantized IR tensor
    sparse_roots: set[str] = field(default_factory=set)  # graph inputs of a sparse network (frontend/sparse.py)
    weight_formats_used: set[str] = field(default_factory=set)
    _readers: dict[str, list[tuple[str, onnx.NodeProto]]] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.weight_formats = read_formats(self.model)

    def lower_as(self, op_type: str, node: onnx.NodeProto, name: str) -> None:
        """Lower `node` with the rule of another op type (a SubmConv is a Conv first)."""
        self.rules[op_type](self, node, name)

    def unique(self, name: str) -> str:
        """A name for an IR tensor or layer that no earlier one of this lowering has taken."""
        return fresh_name(name, self.used_names)

    def emit(self, op: Op) -> None:
        self.ops.append(op)

    # ------------------------------------------------------------ operands
    def value(self, node: onnx.NodeProto, name: str, index: int) -> Value:
        if index >= len(node.input) or not node.input[index]:
            raise UnsupportedModelError(name, node.op_type, f"input {index} is missing")
        tensor = node.input[index]
        if tensor not in self.values:
            raise UnsupportedModelError(name, node.op_type, f"input '{tensor}' is not defined")
        return self.values[tensor]

    def optional(self, node: onnx.NodeProto, index: int) -> Value | None:
        if index >= len(node.input) or not node.input[index]:
            return None
        return self.values.get(node.input[index])

    def constant(self, node: onnx.NodeProto, name: str, index: int, what: str) -> np.ndarray:
        """A constant operand as real numbers (quantized constants are dequantized)."""
        value = self.value(node, name, index)
        if isinstance(value, QuantizedConstant):
            return (value.q - value.zero_point) * value.scale
        if not isinstance(value, Constant):
            raise UnsupportedModelError(
                name, node.op_type, f"{what} ('{node.input[index]}') must be a constant initializer"
            )
        return value.array

    @staticmethod
    def attrs(node: onnx.NodeProto) -> dict[str, object]:
        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def activation(self, node: onnx.NodeProto, name: str, index: int) -> Activation:
        return self.require_activation(node.input[index], name, node.op_type)

    def require_activation(self, tensor_name: str, node: str, op_type: str) -> Activation:
        """The quantized activation behind a tensor; exact unquantized layers get finalized."""
        value = self.values.get(tensor_name)
        if isinstance(value, Activation):
            return value
        if isinstance(value, Pending) and value.passthrough is not None:
            self.finalize(value, value.passthrough, tensor_name)
            return self.values[tensor_name]  # type: ignore[return-value]
        if isinstance(value, Padded):
            raise UnsupportedModelError(value.node, "Pad", f"its output '{tensor_name}' is read by {node} ({op_type}); "
                                        "a Pad folds only into the Conv, MaxPool or AveragePool reading it")
        reasons = {
            Pending: "comes from an unquantized layer '{src}' ({op}); add a QuantizeLinear/Quant after it",
            FloatInput: "is a float graph input; quantize it first with QuantizeLinear or Quant",
            Constant: "is a float constant; hardware needs quantized activations here",
            QuantizedConstant: "is a constant; only activations can flow here",
        }
        what = next((text for kind, text in reasons.items() if isinstance(value, kind)), "is not defined")
        source = value.node if isinstance(value, Pending) else ""
        source_op = value.op_type if isinstance(value, Pending) else ""
        raise UnsupportedModelError(
            node, op_type, f"input '{tensor_name}' " + what.format(src=source, op=source_op)
        )

    # ------------------------------------------------------------ the graph ahead of the walk
    def readers(self, tensor: str) -> list[tuple[str, onnx.NodeProto]]:
        """The nodes reading `tensor` with their names, in graph order (indexed once per lowering),
        for rules that must see what follows a node (a QuantizeLinear whose Clip narrows it)."""
        if self._readers is None:
            self._readers = {}
            for index, node in enumerate(self.model.graph.node):
                for read in dict.fromkeys(node.input):
                    self._readers.setdefault(read, []).append((node_name(node, index), node))
        return self._readers.get(tensor, [])

    def is_graph_output(self, tensor: str) -> bool:
        return any(value.name == tensor for value in self.model.graph.output)

    def constant_ahead(self, tensor: str) -> np.ndarray | None:
        """A constant's value now, or ahead of the walk (its initializer or Constant node); None
        when `tensor` is not one."""
        value = self.values.get(tensor)
        if isinstance(value, Constant):
            return value.array
        for init in self.model.graph.initializer:
            if init.name == tensor:
                return numpy_helper.to_array(init)
        node = next((node for node in self.model.graph.node if tensor in node.output), None)
        if node is not None and node.op_type == "Constant":
            return self.constant_node_value(node, node.name)
        return None

    # ------------------------------------------------------------ constants
    def constant_node_value(self, node: onnx.NodeProto, name: str) -> np.ndarray:
        try:
            return run_one_node(node, {}, self.model)[0]
        except Exception as error:  # the reference evaluator raises many kinds
            raise UnsupportedModelError(name, node.op_type, f"cannot read its value: {error}") from None

    def fold_constant(self, node: onnx.NodeProto, name: str) -> None:
        feeds = {i: self.values[i].array for i in node.input if i}  # type: ignore[union-attr]
        for output, result in zip(node.output, self.evaluate(node, name, feeds)):
            self.values[output] = Constant(result)

    def fold_quantized_layout(self, node: onnx.NodeProto, name: str) -> None:
        """A layout op (`LAYOUT_OPS`) on quantized weights: the same op on their integers, scales
        and zero points (each broadcast to the weights' shape), so a per-channel scale moves with
        its axis (TorchScript and Brevitas write `DequantizeLinear(W) -> Transpose -> MatMul`)."""
        weights = self.values[node.input[0]]
        assert isinstance(weights, QuantizedConstant)
        rest = {i: self.values[i].array for i in node.input[1:] if i}  # type: ignore[union-attr]
        parts = [np.ascontiguousarray(np.broadcast_to(part, weights.q.shape))
                 for part in (weights.q, weights.scale, weights.zero_point)]
        q, scale, zero_point = (self.evaluate(node, name, {node.input[0]: part, **rest})[0] for part in parts)
        self.values[node.output[0]] = QuantizedConstant(q, scale, zero_point, weights.dtype)

    def evaluate(self, node: onnx.NodeProto, name: str, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """`node` run on constant `feeds` by the ONNX reference evaluator, refused when too large."""
        too_big = fold_size_problem(node, feeds, self.model)
        if too_big:
            raise UnsupportedModelError(name, node.op_type, too_big)
        try:
            return run_one_node(node, feeds, self.model)
        except Exception as error:  # the reference evaluator raises many kinds
            raise UnsupportedModelError(name, node.op_type, f"cannot fold constant: {error}") from None

    # ------------------------------------------------------------ finishing a layer
    def finalize(self, pending: Pending, quantizer: OutputQuantizer, out: str, ratio: float | None = None) -> None:
        """Fix a pending layer's output grid: fold gain/bias/activation into one Requant.

        `ratio` (accumulator to output integers) is given when the quantizer states it exactly
        rather than through the scales: a QONNX Trunc divides by a power of two, while its output
        scale is a float that only approximates the pool's scale times that power.
        """
        too_big = frame_size_problem(pending.shape)
        if too_big:
            raise UnsupportedModelError(pending.node, pending.op_type, f"output {too_big}")
        channels = pending.channels
        exact = pending.gain * pending.acc_scale / quantizer.scale if ratio is None else ratio
        ratio_c = np.broadcast_to(exact, (channels,)).astype(np.float64)
        bias = np.broadcast_to(pending.bias, (channels,)).astype(np.float64)
        lo, hi = quantizer.lo, quantizer.hi
        clip_lo, clip_hi = pending.clip_range
        thresholds = None if quantizer.thresholds is None else np.asarray(quantizer.thresholds, np.float64)
        if thresholds is not None and (np.isfinite(clip_lo) or np.isfinite(clip_hi) or pending.activation != "none"):
            raise UnsupportedModelError(pending.node, pending.op_type, f"a ReLU, Clip or activation before the "
                                        f"thresholds of '{out}'; fold it into the thresholds (FINN's streamlining does)")
        # (thresholds come with no clip, refused above)
        if isinstance(quantizer.dtype, BipolarType):  # the sign of the clipped value
            lo, hi = (0 if clip_lo >= 0 else -1), (-1 if clip_hi < 0 else 1)
        else:
            if np.isfinite(clip_lo):
                lo = max(lo, int(np.rint(clip_lo / quantizer.scale)) + quantizer.zero_point)
            if np.isfinite(clip_hi):
                hi = min(hi, int(np.rint(clip_hi / quantizer.scale)) + quantizer.zero_point)
        if lo > hi:
            raise UnsupportedModelError(
                pending.node, pending.op_type, f"activation range is empty on the output grid [{quantizer.lo}, {quantizer.hi}]"
            )
        negative = ratio_c * pending.leaky_alpha if pending.activation == "leaky_relu" else None
        tensor = Tensor(out, pending.shape, quantizer.dtype, quantizer.scale, quantizer.zero_point, pending.active)
        try:
            op = pending.build(FinalStage(tensor, ratio_c, bias, lo, hi, negative, thresholds))
        except RatioOutOfRange as error:
            raise UnsupportedModelError(
                pending.node, pending.op_type, f"{error}: the output '{out}' has scale {quantizer.scale:.3g}, too fine "
                "for the scale of what it requantizes; check the quantizer scales") from None
        signs = [r.is_sign() for r in op.requants()]
        if isinstance(quantizer.dtype, BipolarType) and not (signs and all(signs)):
            raise UnsupportedModelError(pending.node, pending.op_type, f"its output '{out}' is bipolar (BipolarQuant), "
                                        "which a conv, linear or pooling layer computes as a sign; this op's output "
                                        "stage cannot: quantize its output to an integer type first")
        compared = [r.thresholds is not None or r.is_sign() for r in op.requants()]
        if thresholds is not None and not (compared and all(compared)):
            raise UnsupportedModelError(pending.node, pending.op_type, f"its output '{out}' is thresholded "
                                        "(MultiThreshold), which a conv, linear or pooling layer or an integer "
                                        "activation can be; this op's output stage cannot")
        self.emit(op)
        self.values[out] = Activation(tensor, pending.flat)


def node_name(node: onnx.NodeProto, index: int) -> str:
    return node.name or f"{node.op_type}_{index}"
