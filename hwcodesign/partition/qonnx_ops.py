"""QONNX's quantizers (`Quant`, `BipolarQuant`, `Trunc`) as standard ONNX ops: the package's one
definition of their formulas for the host parts.

A Brevitas or FINN export leaves QONNX quantizers in the float parts the board's CPU runs (a
weight's `Quant` feeding the last, unquantized layer; an input's `Quant` before a first layer
assigned to the host), and neither onnxruntime nor the driver's numpy executor knows QONNX's
custom ops. Each quantizer is therefore rewritten here into the standard ops that compute, op for
op and in the same order, what qonnx's own numpy implementation computes (qonnx 1.0.0,
`qonnx/custom_op/general/intquant.py`, `bipolar_quant.py`, `trunc.py`):

- Quant: y = x / scale + zero_point; a signed 1-bit Quant is bipolar (1 where y >= 0, else -1);
  otherwise y is clamped to the integer range *before* it is rounded by `rounding_mode`; the
  result is (y - zero_point) * scale.
- BipolarQuant: (1 where x >= 0, else -1) * scale.
- Trunc (version 1, or 2 from the QONNX domain's opset 2 on, as qonnx picks it): y = round(x /
  scale + zero_point), divided by the power of two that drops the low bits, (version 2: clamped to
  the output range), rounded by `rounding_mode`, shifted back and rescaled.

What qonnx derives from the constant parameters (the integer bounds, Trunc's power-of-two scale
and version 2's output zero point) is computed here with numpy on the same arrays, so it has the
type and value qonnx's run-time arithmetic gives it. The data path is float32 throughout (every
float parameter must be float32, so numpy's type promotion, which qonnx relies on, changes
nothing), and IEEE float32 division, addition and multiplication are correctly rounded in numpy
and onnxruntime alike, ONNX Round rounds half to even as `np.round` does, and the clamps are the
same compare-and-select qonnx writes with `np.where`: the rewritten ops give qonnx's values bit for
bit on both executors. Constant quantizers go through the same rewrite and are then evaluated at
build time by the numpy executor (`host_form`), so one definition serves both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.frontend.loader import QONNX_DOMAINS
from hwcodesign.onnx_edit import GraphEdit

QONNX_QUANTIZERS = ("Quant", "BipolarQuant", "Trunc")
MAX_BITS = 64  # a bound on nonsense (qonnx sets none): wider than any quantizer, and bounds still finite

# The parameters (inputs after x) of each quantizer and version, by role.
ROLES = {
    ("Quant", 1): ("scale", "zero point", "bit width"),
    ("BipolarQuant", 1): ("scale",),
    ("Trunc", 1): ("scale", "zero point", "input bit width", "output bit width"),
    ("Trunc", 2): ("scale", "zero point", "input bit width", "output scale", "output bit width"),
}
FLOAT_ROLES = ("scale", "zero point", "output scale")
# Attributes and their defaults (the frontend's for Quant; qonnx's for Trunc).
DEFAULTS = {
    ("Quant", 1): {"signed": 1, "narrow": 0, "rounding_mode": "ROUND"},
    ("BipolarQuant", 1): {},
    ("Trunc", 1): {"rounding_mode": "FLOOR"},
    ("Trunc", 2): {"signed": 1, "narrow": 0, "rounding_mode": "FLOOR"},
}
# The ONNX opset each op the rewrite writes first appears in (the rest are older than opset 7,
# the oldest the frontend reads).
SINCE = {"Round": 11, "GreaterOrEqual": 12, "Where": 9, "Sign": 9}


def is_qonnx_quantizer(node: onnx.NodeProto) -> bool:
    return node.domain in QONNX_DOMAINS and node.op_type in QONNX_QUANTIZERS


def qonnx_version(model: onnx.ModelProto, node: onnx.NodeProto) -> int:
    """The quantizer's version as qonnx picks it: its domain's opset import (1 when absent), the
    highest version of the op at or below it (only Trunc has a second)."""
    imported = next((entry.version for entry in model.opset_import if entry.domain == node.domain), 1)
    return 2 if node.op_type == "Trunc" and imported >= 2 else 1


@dataclass(frozen=True)
class Quantizer:
    """One QONNX quantizer node, read and checked: its attributes and its constant parameters."""

    node: onnx.NodeProto
    label: str  # how errors name the node
    version: int
    attributes: dict[str, int | str]
    values: dict[str, np.ndarray]  # by role

    @property
    def op(self) -> str:
        return self.node.op_type

    def refuse(self, reason: str) -> UnsupportedModelError:
        return UnsupportedModelError(self.label, self.op, reason)

    def bits(self, role: str) -> int:
        return int(self.values[role].reshape(-1)[0])

    def bounds(self, role: str = "bit width") -> tuple[np.ndarray, np.ndarray]:
        """The integer range as qonnx's min_int/max_int give it, in the float type y has when it is clamped."""
        bits, signed, narrow = self.bits(role), bool(self.attributes["signed"]), bool(self.attributes["narrow"])
        if signed:
            low, high = -(2 ** (bits - 1)) + (1 if narrow else 0), 2 ** (bits - 1) - 1
        else:
            low, high = 0, 2**bits - (2 if narrow else 1)
        return np.asarray(float(low), np.float32), np.asarray(float(high), np.float32)

    def trunc_scale(self) -> np.ndarray:
        """The power of two Trunc divides by, computed as qonnx does (v1: from the bit widths; v2:
        the ratio of the output scale to the scale, rounded to a power of two)."""
        with np.errstate(all="ignore"):
            if self.version == 1:
                return 2.0 ** (self.values["input bit width"] - self.values["output bit width"])
            return 2 ** np.round(np.log2(self.values["output scale"] / self.values["scale"]))


def read_quantizer(node: onnx.NodeProto, label: str, version: int,
                   constants: Mapping[str, np.ndarray]) -> Quantizer:
    """The quantizer with its parameters from `constants` (by tensor name), or an error naming the
    node for what the host cannot run as qonnx does."""
    roles = ROLES[(node.op_type, version)]

    def refuse(reason: str) -> UnsupportedModelError:
        return UnsupportedModelError(label, node.op_type, reason)

    if len(node.input) != len(roles) + 1 or len(node.output) != 1:
        raise refuse(f"has {len(node.input)} input(s) and {len(node.output)} output(s); version {version} of "
                     f"{node.op_type} (by the model's '{node.domain}' opset import) takes x, {', '.join(roles)} "
                     "and gives one output")
    attributes: dict[str, int | str] = dict(DEFAULTS[(node.op_type, version)])
    for attribute in node.attribute:
        if attribute.name in attributes:
            value = helper.get_attribute_value(attribute)
            attributes[attribute.name] = value.decode() if isinstance(value, bytes) else value
    for flag in ("signed", "narrow"):
        if flag in attributes and attributes[flag] not in (0, 1):
            raise refuse(f"attribute {flag}={attributes[flag]!r} must be 0 or 1")
    if "rounding_mode" in attributes:
        mode = str(attributes["rounding_mode"]).upper()
        if mode not in ROUNDING:
            raise refuse(f"rounding_mode {attributes['rounding_mode']!r} is none of qonnx's: {', '.join(ROUNDING)}")
        attributes["rounding_mode"] = mode
    values: dict[str, np.ndarray] = {}
    for role, tensor in zip(roles, node.input[1:], strict=True):
        if tensor not in constants:
            raise refuse(f"its {role} '{tensor}' is computed at run time; on the host it must be a constant "
                         "(an initializer, or computed from initializers only), as Brevitas exports it")
        values[role] = zero_point_as_float32(role, np.asarray(constants[tensor]))
    quantizer = Quantizer(node, label, version, attributes, values)
    check_values(quantizer)
    return quantizer


def zero_point_as_float32(role: str, value: np.ndarray) -> np.ndarray:
    """A zero point stored as integers (QKeras's exports to QONNX write int64 zeros) taken as the
    float32 of the same values when every one of them is exact there (|z| < 2**24); only a zero
    point of 0, which adds and subtracts nothing, keeps qonnx's result bit for bit, since qonnx's
    numpy then promotes the arithmetic to float64 (so its output is float64: the float32 host
    agrees to float32 rounding of the dequantized values)."""
    if role != "zero point" or value.dtype.kind not in "iu" or not np.all(np.abs(value) < 2 ** 24):
        return value
    return value.astype(np.float32)


def check_values(quantizer: Quantizer) -> None:
    """Float parameters in float32 (so qonnx's arithmetic stays in float32), one whole bit width."""
    for role, value in quantizer.values.items():
        if role in FLOAT_ROLES and value.dtype != np.float32:
            raise quantizer.refuse(f"its {role} is {value.dtype}: the host computes QONNX quantizers in float32 "
                                   "(with other float types qonnx's numpy promotion would change the arithmetic)")
        if "bit width" in role:
            bits = value.reshape(-1).astype(np.float64) if value.dtype.kind in "iuf" else np.array([np.nan])
            if bits.size != 1 or not (np.isfinite(bits[0]) and bits[0] == round(bits[0]) and 1 <= bits[0] <= MAX_BITS):
                raise quantizer.refuse(f"its {role} {value.reshape(-1)[:4].tolist()} must be one whole number "
                                       f"1..{MAX_BITS}")
    if quantizer.op == "Trunc" and quantizer.trunc_scale().dtype != np.float32:
        raise quantizer.refuse(f"its bit widths are {quantizer.values['input bit width'].dtype}: qonnx would "
                               "compute its power-of-two scale, and then the output, in float64; give them as float32")


# ---- the rewrite --------------------------------------------------------------------------------------------


class Emitter:
    """Writes one quantizer's standard ops into `edit`'s graph: fresh tensor and node names from the
    quantizer's, the last op writing the quantizer's own output under its own name."""

    def __init__(self, edit: GraphEdit, quantizer: Quantizer) -> None:
        self.edit, self.quantizer = edit, quantizer
        self.base = quantizer.node.name or quantizer.node.output[0]
        self.nodes: list[onnx.NodeProto] = []

    def op(self, op_type: str, *inputs: str, last: bool = False) -> str:
        node = self.quantizer.node
        output = node.output[0] if last else self.edit.fresh(f"{self.base}/{op_type.lower()}")
        name = node.name if last and node.name else self.edit.fresh(f"{self.base}/{op_type}")
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=name))
        return output

    def const(self, tag: str, value: np.ndarray | float) -> str:
        return self.edit.add_init(f"{self.base}/{tag}", np.asarray(value, np.float32))

    def param(self, role: str) -> str:
        """The parameter's tensor, or a float32 copy where `zero_point_as_float32` converted it."""
        roles = ROLES[(self.quantizer.op, self.quantizer.version)]
        name = self.quantizer.node.input[1 + roles.index(role)]
        value = self.quantizer.values[role]
        stored = self.edit.inits.get(name)
        if role == "zero point" and stored is not None and stored.data_type != onnx.TensorProto.FLOAT:
            return self.const("zero_point", value)
        return name


def clamp(emit: Emitter, y: str, role: str) -> str:
    """qonnx's clamp: where(y > max, max, y), then where(y < min, min, y)."""
    low, high = (emit.const(tag, bound) for tag, bound in zip(("min", "max"), emit.quantizer.bounds(role)))
    y = emit.op("Where", emit.op("Greater", y, high), high, y)
    return emit.op("Where", emit.op("Less", y, low), low, y)


def sign_times(emit: Emitter, y: str, magnitude: str) -> str:
    return emit.op("Mul", emit.op("Sign", y), magnitude)


# qonnx's rounding modes (resolve_rounding_mode), each as the ops of its numpy expression.
ROUNDING: dict[str, Callable[[Emitter, str], str]] = {
    "ROUND": lambda e, y: e.op("Round", y),
    "HALF_EVEN": lambda e, y: e.op("Round", y),
    "CEIL": lambda e, y: e.op("Ceil", y),
    "FLOOR": lambda e, y: e.op("Floor", y),
    # np.sign(y) * np.ceil(np.abs(y))
    "UP": lambda e, y: sign_times(e, y, e.op("Ceil", e.op("Abs", y))),
    # np.fix: floor where y >= 0, else ceil
    "DOWN": lambda e, y: e.op("Where", e.op("GreaterOrEqual", y, e.const("zero", 0.0)), e.op("Floor", y), e.op("Ceil", y)),
    # np.sign(y) * np.floor(np.abs(y) + 0.5)
    "HALF_UP": lambda e, y: sign_times(e, y, e.op("Floor", e.op("Add", e.op("Abs", y), e.const("half", 0.5)))),
    # np.sign(y) * np.ceil(np.abs(y) - 0.5)
    "HALF_DOWN": lambda e, y: sign_times(e, y, e.op("Ceil", e.op("Sub", e.op("Abs", y), e.const("half", 0.5)))),
}


def bipolar(emit: Emitter, y: str) -> str:
    """where(y >= 0, 1, -1)."""
    return emit.op("Where", emit.op("GreaterOrEqual", y, emit.const("zero", 0.0)), emit.const("one", 1.0),
                   emit.const("minus_one", -1.0))


def quant_ops(emit: Emitter, x: str) -> None:
    q = emit.quantizer
    zero_point, scale = emit.param("zero point"), emit.param("scale")
    y = emit.op("Add", emit.op("Div", x, scale), zero_point)
    if q.bits("bit width") == 1 and q.attributes["signed"]:
        y = bipolar(emit, y)
    else:
        y = ROUNDING[str(q.attributes["rounding_mode"])](emit, clamp(emit, y, "bit width"))
    emit.op("Mul", emit.op("Sub", y, zero_point), scale, last=True)


def bipolar_quant_ops(emit: Emitter, x: str) -> None:
    emit.op("Mul", bipolar(emit, x), emit.param("scale"), last=True)


def trunc_ops(emit: Emitter, x: str) -> None:
    q = emit.quantizer
    zero_point, scale = emit.param("zero point"), emit.param("scale")
    y = emit.op("Round", emit.op("Add", emit.op("Div", x, scale), zero_point))
    trunc_scale = q.trunc_scale()
    y = emit.op("Div", y, emit.const("trunc_scale", trunc_scale))
    if q.version == 2:
        y = clamp(emit, y, "output bit width")
    y = ROUNDING[str(q.attributes["rounding_mode"])](emit, y)
    if q.version == 1:
        emit.op("Mul", emit.op("Sub", y, zero_point), scale, last=True)
    else:
        output_zero_point = emit.const("output_zero_point", q.values["zero point"] / trunc_scale)
        emit.op("Mul", emit.op("Sub", y, output_zero_point), emit.param("output scale"), last=True)


REWRITES: dict[str, Callable[[Emitter, str], None]] = {
    "Quant": quant_ops, "BipolarQuant": bipolar_quant_ops, "Trunc": trunc_ops,
}


def standard_ops(quantizer: Quantizer, edit: GraphEdit) -> list[onnx.NodeProto]:
    """The standard ONNX nodes computing the quantizer, in order; their constants are added to
    `edit`'s graph as initializers."""
    emit = Emitter(edit, quantizer)
    REWRITES[quantizer.op](emit, quantizer.node.input[0])
    return emit.nodes


def opset_needed(nodes: list[onnx.NodeProto]) -> tuple[int, list[str]]:
    """The oldest default opset that has every op of `nodes`, and the ops that need it."""
    needed = max((SINCE.get(node.op_type, 7) for node in nodes), default=7)
    return needed, sorted({node.op_type for node in nodes if SINCE.get(node.op_type, 7) == needed})
