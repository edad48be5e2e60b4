"""Lowering of elementwise layers: activations (Relu, Clip, LeakyRelu, Abs), Add, the product of two
activations (Mul, a squeeze-excitation gate), and the per-channel affine ops (Mul or Add by a constant, BatchNormalization) that fold into the layer before them.

Two patterns run before these rules: `fold-batch-norm` folds a BatchNormalization into the
pending layer's output stage (there is no other rule for it), and `fold-activations` fuses an
activation into the pending layer it follows; without it an activation needs a quantized input.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import onnx

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.frontend.context import LoweringContext
from hwcodesign.frontend.epilogue import add_bias, channel_vector, real_constant, scale_pending
from hwcodesign.frontend.values import Activation, Constant, FinalStage, OutputQuantizer, Pending
from hwcodesign.ir.op import Op
from hwcodesign.ir.requant import Requant, shared_shift
from hwcodesign.ops.elementwise.ir import Act, Add, Mul
from hwcodesign.ops.facets.lowering import FamilyLowering, Pattern


def add(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    a, b = ctx.value(node, name, 0), ctx.value(node, name, 1)
    if real_constant(a) is not None:
        a, b = b, a
    constant = real_constant(b)
    if constant is not None:
        if isinstance(a, Activation):
            a = ctx.builders.affine(ctx, a, name)
        if not isinstance(a, Pending):
            raise UnsupportedModelError(name, node.op_type, "adds two constants or a float input")
        bias = channel_vector(constant, a.channels, name, node)
        ctx.values[node.output[0]] = add_bias(a, bias, node)
        return
    lhs = ctx.require_activation(node.input[0], name, node.op_type).tensor
    rhs = ctx.require_activation(node.input[1], name, node.op_type).tensor
    if lhs.shape != rhs.shape:
        raise UnsupportedModelError(name, node.op_type, f"broadcasting add of {lhs.shape} and {rhs.shape}")
    layer_name = ctx.unique(name)

    def build(stage: FinalStage) -> Op:
        if stage.negative_ratio is not None:
            raise UnsupportedModelError(name, node.op_type, "LeakyRelu fused after Add; quantize the sum first")
        ratio = float(stage.ratio[0])
        multipliers, shift = shared_shift([ratio * lhs.scale, ratio * rhs.scale])
        requant = Requant(np.ones(1, np.int64), np.full(1, shift, np.int64), stage.output.zero_point, stage.lo, stage.hi)
        return Add(layer_name, (lhs.name, rhs.name), stage.output, (multipliers[0], multipliers[1]), requant)

    ctx.values[node.output[0]] = Pending(name, node.op_type, lhs.shape, np.ones(1), build, has_bias=False,
                                          active=lhs.active)


def mul(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    a, b = ctx.value(node, name, 0), ctx.value(node, name, 1)
    if real_constant(a) is not None:
        a, b = b, a
    constant = real_constant(b)
    if constant is None:
        product(ctx, node, name)
        return
    if isinstance(a, Activation):
        a = ctx.builders.affine(ctx, a, name)
    if not isinstance(a, Pending):
        raise UnsupportedModelError(name, node.op_type, f"input '{node.input[0]}' is not an activation")
    gain = channel_vector(constant, a.channels, name, node)
    ctx.values[node.output[0]] = scale_pending(a, gain, node, name)


def product(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    """DQ(a) * DQ(b) -> Q: the integer product of the centred inputs on the grid a_scale * b_scale,
    requantized once by the quantizer that follows. Either input may be a per-channel gate
    (N, C, 1, 1) of the other (squeeze-excitation writes `gate * map`); the map goes first."""
    lhs = ctx.require_activation(node.input[0], name, node.op_type).tensor
    rhs = ctx.require_activation(node.input[1], name, node.op_type).tensor
    if lhs.shape[2:] == (1, 1) and rhs.shape[2:] != (1, 1):
        lhs, rhs = rhs, lhs
    broadcast = lhs.shape != rhs.shape
    if broadcast and (len(lhs.shape) != 4 or tuple(rhs.shape) != (*lhs.shape[:2], 1, 1)):
        raise UnsupportedModelError(name, node.op_type, f"product of {lhs.shape} and {rhs.shape}: only the same shape "
                                    "or a per-channel gate (N, C, 1, 1) of an (N, C, H, W) map is supported")
    if lhs.active is not None or rhs.active is not None:
        raise UnsupportedModelError(name, node.op_type, "product of sparse activations; quantize a dense tensor first")
    layer_name = ctx.unique(name)

    def build(stage: FinalStage) -> Op:
        return Mul(layer_name, (lhs.name, rhs.name), stage.output, stage.requant(), broadcast)

    ctx.values[node.output[0]] = Pending(name, node.op_type, lhs.shape, np.full(1, lhs.scale * rhs.scale), build,
                                          has_bias=False)


def batch_norm(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    source = ctx.value(node, name, 0)
    gamma, beta, mean, var = (ctx.constant(node, name, i, what) for i, what in
                              ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")))
    epsilon = float(ctx.attrs(node).get("epsilon", 1e-5))
    if not np.all(var.astype(np.float64) + epsilon > 0):
        raise UnsupportedModelError(name, node.op_type, f"variance + epsilon must be positive (variance "
                                    f"'{node.input[4]}', epsilon {epsilon:g})")
    a = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + epsilon)
    b = beta.astype(np.float64) - a * mean.astype(np.float64)
    if isinstance(source, Activation):
        source = ctx.builders.affine(ctx, source, name)
    if not isinstance(source, Pending):
        raise UnsupportedModelError(name, node.op_type, f"input '{node.input[0]}' is not an activation")
    pending = scale_pending(source, a, node, name)
    ctx.values[node.output[0]] = add_bias(pending, b, node)


def elementwise_pending(ctx: LoweringContext, x: Activation, name: str, function: str, passthrough: bool) -> Pending:
    """acc = x - zero_point on x's grid; becomes an Act op once its output is quantized."""
    tensor = x.tensor
    layer_name = ctx.unique(name)

    def build(stage: FinalStage) -> Op:
        requant = stage.requant()
        return Act(layer_name, (tensor.name,), stage.output, pending_function(stage, function), requant)

    return Pending(
        name, function, tensor.shape, np.full(1, tensor.scale), build, has_bias=False,
        passthrough=OutputQuantizer.of(tensor) if passthrough else None, flat=x.flat, active=tensor.active,
    )


def activation_input(ctx: LoweringContext, node: onnx.NodeProto, name: str, function: str, exact: bool,
                     fuse: bool) -> Pending:
    """The pending layer an activation applies to: the one before it when fusing (`fold-activations`),
    else a new elementwise layer on its quantized input."""
    source = ctx.value(node, name, 0)
    if isinstance(source, Pending) and fuse:
        if source.activation not in ("none", "relu", "clip") or (function == "leaky_relu" and source.activation != "none"):
            raise UnsupportedModelError(name, node.op_type, f"second activation after '{source.node}' cannot be fused")
        return source
    if isinstance(source, Pending):
        source = ctx.activation(node, name, 0)
    if isinstance(source, Activation):
        return elementwise_pending(ctx, source, name, function, passthrough=exact)
    raise UnsupportedModelError(name, node.op_type, f"input '{node.input[0]}' is not an activation")


def set_clip(ctx: LoweringContext, node: onnx.NodeProto, name: str, lo: float, hi: float, function: str,
             fuse: bool) -> None:
    pending = activation_input(ctx, node, name, function, exact=True, fuse=fuse)
    old_lo, old_hi = pending.clip_range
    activation = function if pending.activation == "none" else "clip"
    ctx.values[node.output[0]] = pending.with_changes(
        activation=activation, clip_range=(max(old_lo, lo), min(old_hi, hi))
    )


def relu(ctx: LoweringContext, node: onnx.NodeProto, name: str, fuse: bool) -> None:
    set_clip(ctx, node, name, 0.0, np.inf, "relu", fuse)


def clip(ctx: LoweringContext, node: onnx.NodeProto, name: str, fuse: bool) -> None:
    attrs = ctx.attrs(node)
    lo = float(attrs.get("min", -np.inf))
    hi = float(attrs.get("max", np.inf))
    for index in (1, 2):
        value = ctx.optional(node, index)
        if value is None:
            continue
        if not isinstance(value, Constant):
            raise UnsupportedModelError(name, node.op_type, "clip bounds must be constants")
        if value.array.size != 1 or np.isnan(value.array).any():
            raise UnsupportedModelError(name, node.op_type, f"clip bound '{node.input[index]}' must be one number, "
                                        f"not {value.array.reshape(-1)[:4].tolist()} of shape {list(value.array.shape)}")
        if index == 1:
            lo = float(value.array.reshape(()))
        else:
            hi = float(value.array.reshape(()))
    set_clip(ctx, node, name, lo, hi, "relu" if lo == 0 and not np.isfinite(hi) else "clip", fuse)


def leaky_relu(ctx: LoweringContext, node: onnx.NodeProto, name: str, fuse: bool) -> None:
    negative_slope(ctx, node, name, fuse, float(ctx.attrs(node).get("alpha", 0.01)))


def absolute(ctx: LoweringContext, node: onnx.NodeProto, name: str, fuse: bool) -> None:
    """|x| is a LeakyRelu of slope -1: the output stage's negative multiplier flips the sign, so
    Abs costs no hardware of its own and no second rounding."""
    negative_slope(ctx, node, name, fuse, -1.0)


def negative_slope(ctx: LoweringContext, node: onnx.NodeProto, name: str, fuse: bool, alpha: float) -> None:
    """An activation scaling negative values by `alpha`: the output stage's second multiplier."""
    pending = activation_input(ctx, node, name, "leaky_relu", exact=False, fuse=fuse)
    if not pending.has_bias and pending.op_type not in ("identity", "leaky_relu"):
        raise UnsupportedModelError(name, node.op_type, f"{node.op_type} fused after {pending.op_type}; quantize its input first")
    ctx.values[node.output[0]] = pending.with_changes(activation="leaky_relu", leaky_alpha=alpha, passthrough=None)


def pending_function(stage: FinalStage, function: str) -> str:
    if stage.negative_ratio is not None:
        return "leaky_relu"
    if function in ("relu", "clip"):
        return function
    return "identity" if (stage.lo, stage.hi) == (stage.output.dtype.min, stage.output.dtype.max) else "clip"


ACTIVATIONS = {"Relu": relu, "Clip": clip, "LeakyRelu": leaky_relu, "Abs": absolute}


def activation(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    """An activation on its own: an elementwise layer reading a quantized input."""
    ACTIVATIONS[node.op_type](ctx, node, name, fuse=False)


def fold_activation(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> bool:
    """`fold-activations`: an activation of a pending layer becomes that layer's clamp (or slope)."""
    if not isinstance(ctx.values.get(node.input[0]), Pending):
        return False
    ACTIVATIONS[node.op_type](ctx, node, name, fuse=True)
    return True


def fold_batch_norm(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> bool:
    """`fold-batch-norm`: a BatchNormalization is a per-channel affine folded into the layer before it."""
    batch_norm(ctx, node, name)
    return True


LOWERING = FamilyLowering(
    rules=MappingProxyType({"Add": add, "Mul": mul, **dict.fromkeys(ACTIVATIONS, activation)}),
    patterns=(
        Pattern("fold-batch-norm", ("BatchNormalization",), fold_batch_norm,
                "BatchNormalization folded into the output stage of the layer before it"),
        Pattern("fold-activations", tuple(ACTIVATIONS), fold_activation,
                "Relu, Clip, LeakyRelu, Abs of an unquantized layer fused into its output stage"),
    ),
    builders=MappingProxyType({"requantize": elementwise_pending}),
)
