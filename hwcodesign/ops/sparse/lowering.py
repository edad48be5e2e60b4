"""Lowering of submanifold sparse convs, in the ONNX convention of `hwcodesign/frontend/sparse.py`.

`recognize-sparse-masks` reads the float active-site mask subgraph (Abs, ReduceMax/ReduceSum,
Greater, Cast, MaxPool of a mask) and a Mul by a mask, which makes the conv before it sparse;
the custom `hwcodesign.SubmConv` is the sparse family's own rule.

onnxruntime's `quantize_static` with default settings quantizes the mask too (a uint8 Q/DQ pair
on the Cast and on each MaxPool, the Mul's output re-quantized). That form is still exactly a
mask when the grid keeps 0 at 0 and an active site at some positive value m: the pattern reads
it as a mask whose sites weigh m, and the Mul becomes the conv's output scaled by m on the next
quantizer's grid (a requantization the golden model computes as onnxruntime does). A grid that
loses the mask (m <= 0) is refused, naming the node and `hwcodesign quantize`, which keeps the
mask float.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import onnx

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.frontend.context import LoweringContext
from hwcodesign.frontend.quantizers import int_type
from hwcodesign.frontend.sparse import CONVENTION, MASK_OPS
from hwcodesign.frontend.values import Activation, ActiveMask, Constant, FloatInput, MaskStep, Pending, Value
from hwcodesign.frontend.windows import ceil_mode_pads, window_pads
from hwcodesign.ir.op import window_output_size
from hwcodesign.ir.types import ActiveSet, Tensor
from hwcodesign.ops.conv.ir import Conv
from hwcodesign.ops.facets.lowering import FamilyLowering, Pattern
from hwcodesign.ops.sparse.ir import DOWNSAMPLINGS, ConvGeometry, SubmanifoldConv, allowed_actives


def mask_root(value: Value | None) -> str | None:
    """The sparse input a mask starts from: a float graph input or its quantized tensor."""
    if isinstance(value, FloatInput):
        return value.name
    if isinstance(value, Activation) and value.tensor.active is not None and not value.tensor.active.steps \
            and value.tensor.active.root == value.tensor.name:
        return value.tensor.name
    return None


def mask_abs(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    root = mask_root(ctx.values.get(node.input[0]))
    assert root is not None, "recognize_mask claims only an Abs of a sparse network input"
    ctx.values[node.output[0]] = MaskStep(root, "abs")


def mask_reduce(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    source = mask_step(ctx, node, name, "abs")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    axes = attrs.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        value = ctx.values.get(node.input[1])
        axes = value.array.reshape(-1).tolist() if isinstance(value, Constant) else None
    if [int(a) for a in (axes or [])] not in ([1], [-3]) or not int(attrs.get("keepdims", 1)):
        raise UnsupportedModelError(name, node.op_type, f"the active-site mask reduces over the channels only "
                                                        f"(axes=[1], keepdims=1), not axes={axes}")
    ctx.values[node.output[0]] = MaskStep(source.root, "reduced")


def mask_greater(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    source = mask_step(ctx, node, name, "reduced")
    threshold = ctx.values.get(node.input[1])
    if not isinstance(threshold, Constant) or np.any(threshold.array != 0):
        raise UnsupportedModelError(name, node.op_type, "the active-site mask compares with 0 (a site is active "
                                                        "when any channel is nonzero)")
    ctx.values[node.output[0]] = MaskStep(source.root, "bool")


def mask_cast(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    source = mask_step(ctx, node, name, "bool")
    ctx.values[node.output[0]] = ActiveMask(source.root)


def mask_step(ctx: LoweringContext, node: onnx.NodeProto, name: str, stage: str) -> MaskStep:
    value = ctx.values.get(node.input[0])
    if not isinstance(value, MaskStep) or value.stage != stage:
        raise UnsupportedModelError(name, node.op_type, f"{node.op_type} is supported only inside the active-site "
                                                        f"mask of a sparse network; {CONVENTION}")
    return value


def mask_pool(ctx: LoweringContext, node: onnx.NodeProto, name: str, mask: ActiveMask) -> None:
    """MaxPool of a mask: the next level's active sites after a strided sparse layer."""
    if node.op_type != "MaxPool":
        raise UnsupportedModelError(name, node.op_type, f"a mask is downsampled by MaxPool; {CONVENTION}")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    kernel = tuple(int(k) for k in attrs["kernel_shape"])
    stride = tuple(int(s) for s in attrs.get("strides", (1, 1)))
    if tuple(int(d) for d in attrs.get("dilations", (1, 1))) != (1, 1):
        raise UnsupportedModelError(name, node.op_type, f"a mask's MaxPool has no dilation; {CONVENTION}")
    shape = mask_shape(ctx, mask)
    pads = window_pads(node, name, attrs, shape, kernel, stride, (1, 1))
    if int(attrs.get("ceil_mode", 0)):  # the last window may be partial: pad it (inactive) to whole
        pads = ceil_mode_pads(shape, kernel, stride, pads)
    step = (*kernel, *stride, *pads)
    ctx.values[node.output[0]] = ActiveMask(mask.root, mask.steps + (step,), mask.value)  # type: ignore[arg-type]


def mask_shape(ctx: LoweringContext, mask: ActiveMask) -> tuple[int, int, int, int]:
    n, _, h, w = active_set_tensor(ctx, mask.root).shape
    for kh, kw, sh, sw, top, left, bottom, right in mask.steps:
        h = window_output_size(h, kh, sh, top + bottom, 1)
        w = window_output_size(w, kw, sw, left + right, 1)
    return (n, 1, h, w)


def active_set_tensor(ctx: LoweringContext, root: str) -> Tensor:
    """The quantized sparse input tensor a mask's root names."""
    tensor_name = ctx.input_tensor_of.get(root, root)
    for value in ctx.values.values():
        if isinstance(value, Activation) and value.tensor.name == tensor_name:
            return value.tensor
    raise UnsupportedModelError(root, "active-site mask", "its sparse input is never quantized")


def active_set(ctx: LoweringContext, mask: ActiveMask) -> ActiveSet:
    return ActiveSet(active_set_tensor(ctx, mask.root).name, mask.steps)


def mask_mul(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> bool:
    """Mul by an active-site mask makes the conv before it sparse; False if not a mask Mul."""
    a, b = ctx.values.get(node.input[0]), ctx.values.get(node.input[1])
    if isinstance(a, ActiveMask):
        a, b = b, a
    if not isinstance(b, ActiveMask):
        if isinstance(a, MaskStep | ActiveMask):
            raise UnsupportedModelError(name, node.op_type, f"a mask multiplies a conv's output; {CONVENTION}")
        return False
    if b.grid is not None:
        raise UnsupportedModelError(name, node.op_type, "multiplies by the integer mask before its DequantizeLinear; "
                                                        f"{QUANTIZE_HINT}")
    active = active_set(ctx, b)
    out = node.output[0]
    if isinstance(a, Pending):
        pending = sparse_pending(ctx, a, active, name)
        ctx.values[out] = pending if b.value == 1.0 else pending.with_changes(gain=pending.gain * b.value)
        return True
    if isinstance(a, Activation) and a.tensor.active == active:
        masked = a  # already sparse on this level: the mask changes nothing
    elif isinstance(a, Activation):
        masked = Activation(make_producer_sparse(ctx, a.tensor.name, active, name), a.flat)
    else:
        raise UnsupportedModelError(name, node.op_type, f"masks '{node.input[0]}', which is not a conv's output")
    if b.value == 1.0:
        ctx.values[out] = masked
    else:  # a quantized mask's active sites weigh m: the product is the conv's output times m
        pending = ctx.builders.requantize(ctx, masked, name, "identity", False)
        ctx.values[out] = pending.with_changes(gain=pending.gain * b.value)
    return True


QUANTIZE_HINT = ("keep the mask and its Muls float (`hwcodesign quantize` does; with onnxruntime's quantize_static, "
                 "put the mask's Cast, MaxPool and Mul nodes in nodes_to_exclude)")


def quantized_mask(ctx: LoweringContext, node: onnx.NodeProto, name: str, mask: ActiveMask) -> None:
    """QuantizeLinear of a mask (as quantize_static writes it by default): still a mask when its
    grid keeps inactive sites at 0 and active ones at a positive value."""
    if mask.grid is not None:
        raise UnsupportedModelError(name, node.op_type, "quantizes an already quantized mask")
    scale = ctx.constant(node, name, 1, "scale").astype(np.float64).reshape(-1)
    zero = ctx.optional(node, 2)
    zero_array = zero.array if isinstance(zero, Constant) else np.zeros(1, np.uint8)
    if scale.size != 1 or zero_array.size != 1 or not np.isfinite(scale[0]) or scale[0] <= 0:
        raise UnsupportedModelError(name, node.op_type, f"quantizes the active-site mask with a per-channel or "
                                                        f"non-positive scale; {QUANTIZE_HINT}")
    dtype = int_type(node, name, onnx.helper.np_dtype_to_tensor_dtype(zero_array.dtype))
    zp = int(zero_array.reshape(-1)[0])
    q_active = int(np.clip(np.rint(mask.value / scale[0]) + zp, dtype.min, dtype.max))
    value = (q_active - zp) * float(scale[0])
    if value <= 0:
        raise UnsupportedModelError(name, node.op_type, f"quantizes the active-site mask onto a grid where an active "
                                                        f"site becomes {value:g}, so the mask is lost; {QUANTIZE_HINT}")
    ctx.values[node.output[0]] = ActiveMask(mask.root, mask.steps, value, (float(scale[0]), zp))


def dequantized_mask(ctx: LoweringContext, node: onnx.NodeProto, name: str, mask: ActiveMask) -> None:
    """DequantizeLinear of a quantized mask on its own grid: the float mask again, sites weighing m."""
    scale = ctx.constant(node, name, 1, "scale").astype(np.float64).reshape(-1)
    zero = ctx.optional(node, 2)
    zp = int(zero.array.reshape(-1)[0]) if isinstance(zero, Constant) else 0
    if mask.grid is None or scale.size != 1 or not np.isclose(scale[0], mask.grid[0], rtol=1e-7, atol=0) \
            or zp != mask.grid[1]:
        raise UnsupportedModelError(name, node.op_type, f"dequantizes the active-site mask off the grid it was "
                                                        f"quantized with; {QUANTIZE_HINT}")
    ctx.values[node.output[0]] = ActiveMask(mask.root, mask.steps, mask.value)


def sparse_pending(ctx: LoweringContext, pending: Pending, active: ActiveSet, name: str) -> Pending:
    window = pending.window
    if window is None:
        raise UnsupportedModelError(name, "Mul", f"masks the output of '{pending.node}' ({pending.op_type}); only a "
                                                 "conv (with its BatchNorm and activation) becomes a sparse layer")
    geometry = ConvGeometry(window.kernel, window.stride, window.pads, window.in_size, pending.shape[2:])  # type: ignore[arg-type]
    check_active(active, window.source_active, geometry, name, pending.node)
    return pending.with_changes(active=active, passthrough=None)


def sparse_allowed(source: ActiveSet | None, geometry: ConvGeometry, name: str, op_type: str,
                   layer: str) -> dict[str, ActiveSet]:
    """The active sets conv `layer` may have as a sparse conv (`allowed_actives`); refused if its
    input is dense."""
    if source is None:
        raise UnsupportedModelError(name, op_type, f"'{layer}' reads a dense tensor; a sparse conv reads the sparse "
                                                   f"network input or another sparse layer's output")
    return allowed_actives(source, geometry)


def check_active(active: ActiveSet, source: ActiveSet | None, geometry: ConvGeometry, name: str, layer: str) -> None:
    """The mask `active` applied to conv `layer` must be one its input's active set allows."""
    allowed = sparse_allowed(source, geometry, name, "Mul", layer)
    if active not in allowed.values():
        implied = " or ".join(f"{a} ({rule})" for rule, a in allowed.items())
        raise UnsupportedModelError(
            name, "Mul", f"applies the mask {active} to '{layer}', whose active sites are {implied}: a stride-1 "
                         f"sparse conv keeps its input's, a strided one needs {DOWNSAMPLING_MASKS}")


DOWNSAMPLING_MASKS = ("MaxPool(mask) with kernel and strides equal to the conv's strides (ESDA's block rule; "
                      "ceil_mode=1 for a partial last block) or with the conv's own kernel, strides and pads "
                      "(spconv's window rule)")


def make_producer_sparse(ctx: LoweringContext, tensor_name: str, active: ActiveSet, name: str) -> Tensor:
    """A mask applied after the conv's quantizer: turn that conv (already emitted) into the
    sparse conv it stands for."""
    index = next((i for i, op in enumerate(ctx.ops) if op.output.name == tensor_name), None)
    op = ctx.ops[index] if index is not None else None
    if not isinstance(op, Conv):
        raise UnsupportedModelError(name, "Mul", f"masks '{tensor_name}', which no conv produces; {CONVENTION}")
    source = next(o.output for o in ctx.ops if o.output.name == op.inputs[0])
    check_active(active, source.active, ConvGeometry(op.kernel, op.stride, op.pads, source.shape[2:],  # type: ignore[arg-type]
                                                     op.output.shape[2:]), name, op.name)
    tensor = op.output.with_active(active)
    ctx.ops[index] = SubmanifoldConv(op.name, op.inputs, tensor, op.weight, op.weight_type, op.bias, op.stride,
                                      op.pads, op.dilation, op.groups, op.requant)
    for key, value in list(ctx.values.items()):
        if isinstance(value, Activation) and value.tensor.name == tensor_name:
            ctx.values[key] = Activation(tensor, value.flat)
    return tensor


def subm_conv(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    """hwcodesign.SubmConv: a Conv whose output has the active sites its input implies; a strided
    one downsamples by its `downsampling` attribute (`DOWNSAMPLINGS`; default "block", ESDA's)."""
    rule = ctx.attrs(node).get("downsampling", b"block")
    rule = rule.decode() if isinstance(rule, bytes) else str(rule)
    if rule not in DOWNSAMPLINGS:
        raise UnsupportedModelError(name, node.op_type, f"downsampling '{rule}' is none of {', '.join(DOWNSAMPLINGS)}")
    conv_node = onnx.NodeProto()
    conv_node.CopyFrom(node)
    conv_node.ClearField("attribute")
    conv_node.attribute.extend(a for a in node.attribute if a.name != "downsampling")  # Conv's own attributes
    ctx.lower_as("Conv", conv_node, name)
    pending = ctx.values[node.output[0]]
    assert isinstance(pending, Pending) and pending.window is not None
    window = pending.window
    geometry = ConvGeometry(window.kernel, window.stride, window.pads, window.in_size, pending.shape[2:])  # type: ignore[arg-type]
    allowed = sparse_allowed(window.source_active, geometry, name, node.op_type, name)
    active = allowed.get(rule, allowed.get("submanifold"))
    ctx.values[node.output[0]] = pending.with_changes(active=active, passthrough=None)


def recognize_mask(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> bool:
    """`recognize-sparse-masks`: a node of the mask subgraph, a pool of a mask, or a Mul by one."""
    if node.op_type == "Abs" and mask_root(ctx.values.get(node.input[0])) is None:
        return False  # |x| of a feature map: the elementwise family's activation
    if node.op_type in MASK_OPS:
        MASK_STEPS[node.op_type](ctx, node, name)
        return True
    if node.op_type == "Mul":
        return mask_mul(ctx, node, name)
    mask = ctx.values.get(node.input[0])
    if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
        if not isinstance(mask, ActiveMask):
            return False  # an ordinary quantizer: the plumbing's rule
        (quantized_mask if node.op_type == "QuantizeLinear" else dequantized_mask)(ctx, node, name, mask)
        return True
    if isinstance(mask, ActiveMask):  # the active sites of a strided sparse level
        mask_pool(ctx, node, name, mask)
        return True
    return False


MASK_STEPS = {"Abs": mask_abs, "ReduceMax": mask_reduce, "ReduceSum": mask_reduce, "Greater": mask_greater,
              "Cast": mask_cast}

LOWERING = FamilyLowering(
    rules=MappingProxyType({"SubmConv": subm_conv}),
    patterns=(Pattern("recognize-sparse-masks", (*MASK_OPS, "Mul", "MaxPool", "AveragePool", "QuantizeLinear",
                                                 "DequantizeLinear"), recognize_mask,
                      "the active-site mask subgraph (float, or quantized as quantize_static does by default) and "
                      "Mul by a mask: the conv before it becomes sparse"),),
)
