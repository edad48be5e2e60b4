"""Lowering of ONNX DeformConv (opset 19): quantized input, offsets (and mask), bounded offsets.

The offsets of a fixed-shape DeformConv are Mul(d, P), P the square pattern: the pattern
`recognize-fixed-shape-offsets` takes such a Mul before the elementwise rule would, records d,
and the DeformConv reading it becomes a fixed-shape one.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import onnx

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.frontend.context import LoweringContext, node_name
from hwcodesign.frontend.epilogue import add_bias, real_constant
from hwcodesign.frontend.validate import check_window
from hwcodesign.frontend.values import Activation, Constant, FinalStage, Pending, QuantizedConstant
from hwcodesign.frontend.weights import (
    bias_and_requant,
    bias_real,
    output_channel_scale,
    refuse_weight_format,
    unit_requant,
    weights,
)
from hwcodesign.ir.op import Op
from hwcodesign.ir.requant import make_requant
from hwcodesign.ops.conv.ir import Conv
from hwcodesign.ops.deform.ir import DeformConv
from hwcodesign.ops.facets.lowering import FamilyLowering, Pattern

DEFORM_FRAC_BITS = 8  # sampling positions and bilinear weights in 1/256 pixel
DEFORM_SAMPLE_SHIFT = 8  # a bilinear sample keeps 8 fractional bits of the input LSB
MAX_OFFSET_RANGE = 16  # pixels; (K-1)*dil + 33 line-buffer rows at most


def deform_conv(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    """ONNX DeformConv (opset 19) with quantized input, offsets (and mask), bounded offsets.

    The offset bound R comes from the offset tensor's quantized range, i.e. from a Clip on
    the offset branch before its QuantizeLinear; offsets that can move further than
    `MAX_OFFSET_RANGE` pixels are refused, since their line buffer would not fit on chip.
    Offsets computed as Mul(d, P), P the square pattern (`fixed_shape_mul`), make it a
    fixed-shape DeformConv reading d, whose clamped range times max|p_k| bounds R.
    """
    x = ctx.activation(node, name, 0)
    weight = weights(ctx, node, name, 1)
    fixed_d = ctx.fixed_shape_offsets.get(node.input[2]) if len(node.input) > 2 else None
    offset = fixed_d if fixed_d is not None else ctx.activation(node, name, 2)
    mask = ctx.activation(node, name, 4) if len(node.input) > 4 and node.input[4] else None
    attrs = ctx.attrs(node)
    refuse_weight_format(ctx, name, node.op_type, "deformable convolutions keep integer weights")
    w_scale, w_int, w_type = output_channel_scale(name, node.op_type, weight, 0)
    if w_int.ndim != 4:
        raise UnsupportedModelError(name, node.op_type, f"{w_int.ndim - 2}-D deformable convolution; only 2-D")
    check_window(name, node.op_type, attrs, w_int.shape[2:])
    out_channels = w_int.shape[0]
    stride = tuple(int(v) for v in attrs.get("strides", (1, 1)))  # type: ignore[union-attr]
    dilation = tuple(int(v) for v in attrs.get("dilations", (1, 1)))  # type: ignore[union-attr]
    pads = tuple(int(v) for v in attrs.get("pads", (0, 0, 0, 0)))  # type: ignore[union-attr]
    groups = int(attrs.get("group", 1))  # type: ignore[arg-type]
    offset_groups = int(attrs.get("offset_group", 1))  # type: ignore[arg-type]
    reach = pattern_reach(w_int.shape[2:], dilation) if fixed_d is not None else None
    integer = offset.tensor.scale == 1.0  # whole pixels (CoDeNet's rounded offsets): no interpolation
    offset_range = offset_bound(ctx, offset, name, node.op_type, w_int.shape[2], dilation[0], reach, integer)
    frac, sample_shift = (0, 0) if integer else (DEFORM_FRAC_BITS, DEFORM_SAMPLE_SHIFT)
    limit = (offset_range << frac) // (reach or 1)  # DeformConv.offset_limit
    offset_requant = make_requant(np.array([offset.tensor.scale * 2.0**frac]), 0, -limit, limit)
    mask_scale = mask.tensor.scale if mask is not None else 1.0
    acc_scale = x.tensor.scale * w_scale * mask_scale / 2.0 ** (2 * frac - sample_shift)
    layer_name = ctx.unique(name)
    inputs = (x.tensor.name, offset.tensor.name) + ((mask.tensor.name,) if mask is not None else ())

    def build(stage: FinalStage) -> Op:
        bias, requant = bias_and_requant(name, node.op_type, stage)
        return DeformConv(layer_name, inputs, stage.output, w_int, w_type, bias, stride, pads, dilation,  # type: ignore[arg-type]
                          groups, offset_groups, offset_range, frac, offset_requant, sample_shift, requant,
                          fixed_shape=fixed_d is not None)

    probe = Conv(layer_name, (x.tensor.name,), x.tensor, w_int, w_type, np.zeros(out_channels, np.int64),
                 stride, pads, dilation, groups, unit_requant())  # type: ignore[arg-type]
    shape = probe.output_shape([x.tensor.shape])
    pending = Pending(name, node.op_type, shape, acc_scale, build, bias=np.zeros(out_channels))
    ctx.values[node.output[0]] = add_bias(pending, bias_real(ctx, node, name, 3, out_channels), node)


def offset_bound(ctx: LoweringContext, offset: Activation, name: str, op_type: str, kernel: int, dilation: int,
                 pattern: int | None = None, integer: bool = False) -> int:
    """Pixels the offsets can move a sample: what their quantized (and clamped) range reaches.

    A fixed shape's offsets are d * p_k, so its d reaches `pattern` = max|p_k| times further.
    Integer offsets reach exactly their range (a Clip at N rounds to N on the integers), so no
    value is clamped that the model computes.
    """
    gain = pattern or 1
    tensor = offset.tensor
    lo, hi = tensor.dtype.min, tensor.dtype.max
    producer = next((op for op in ctx.ops if op.output.name == tensor.name), None)
    if producer is not None and producer.requants():
        lo = max(lo, min(rq.lo for rq in producer.requants()))
        hi = min(hi, max(rq.hi for rq in producer.requants()))
    reach = max(abs(lo - tensor.zero_point), abs(hi - tensor.zero_point)) * tensor.scale * gain
    # a Clip at R quantizes to a range ending within one step of R (of R / gain for d)
    offset_range = max(1, int(np.ceil(reach - (0 if integer else tensor.scale * gain))))
    if offset_range > MAX_OFFSET_RANGE:
        rows = (kernel - 1) * dilation + 2 * offset_range + 1
        bound = "offsets with Clip(min=-R, max=R)" if pattern is None else (
            f"fixed-shape scale d with Clip(min=-R/{pattern}, max=R/{pattern}) ({pattern} = max |p_k|)")
        raise UnsupportedModelError(
            name, op_type,
            f"offsets can move samples {reach:.3g} pixels (the quantized range of '{tensor.name}'); the hardware "
            f"streams rows through a line buffer, and reaching that far would need {rows} rows of it. Bound the "
            f"{bound} on the offset branch before its QuantizeLinear, R <= {MAX_OFFSET_RANGE}",
        )
    return offset_range


def fixed_shape_mul(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> bool:
    """Is this Mul(d, P) the offsets of fixed-shape DeformConvs? Then record d and say so.

    It is when its output feeds only DeformConv offset inputs, one operand is a quantized
    activation d and the other a constant with one value per offset channel (2*G*K*K) while d
    has fewer channels. Then P must be the square pattern (`DeformConv.square_pattern`) in
    ONNX offset order (group, tap, (y, x)), shaped (1, 2*G*K*K, 1, 1), and d one channel per
    offset group: what is off is refused, naming this node. Anything else is an ordinary Mul.
    """
    out = node.output[0]
    graph = ctx.model.graph
    consumers = [(node_name(n, i), n) for i, n in enumerate(graph.node) if out in n.input]
    refuse_quantized_pattern(ctx, node, name)
    if not consumers or out in {v.name for v in graph.output} or not all(
        n.op_type == "DeformConv" and [i for i, t in enumerate(n.input) if t == out] == [2] for _, n in consumers
    ):
        return False
    a, b = ctx.value(node, name, 0), ctx.value(node, name, 1)
    if real_constant(a) is not None:
        a, b = b, a
    constant = real_constant(b)
    if constant is None or not isinstance(a, Activation) or a.tensor.channels >= constant.size:
        return False  # e.g. a per-channel scale of free offsets
    geometries = [deform_geometry(ctx, n, consumer) for consumer, n in consumers]
    if any(2 * groups * kernel[0] * kernel[1] != constant.size for kernel, _, groups in geometries):
        return False
    for (consumer, _), geometry in zip(consumers, geometries):
        check_fixed_shape(node, name, consumer, geometry, a, constant)
    ctx.fixed_shape_offsets[out] = a
    return True


def refuse_quantized_pattern(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    """A Mul(d, P) (d fewer channels than the constant P) whose output reaches a DeformConv's
    offsets through a QuantizeLinear/DequantizeLinear pair (what onnxruntime's quantize_static
    writes around every Mul) is a fixed shape put on a calibrated grid: refused, naming this node
    and the way to quantize it."""
    for _, quantizer in ctx.readers(node.output[0]):
        if quantizer.op_type != "QuantizeLinear":
            continue
        for _, dequantizer in ctx.readers(quantizer.output[0]):
            deforms = [consumer for consumer, reader in ctx.readers(dequantizer.output[0])
                       if dequantizer.op_type == "DequantizeLinear" and reader.op_type == "DeformConv"
                       and len(reader.input) > 2 and reader.input[2] == dequantizer.output[0]]
            a, b = ctx.value(node, name, 0), ctx.value(node, name, 1)
            if real_constant(a) is not None:
                a, b = b, a
            constant = real_constant(b)
            fixed_shape = constant is not None and isinstance(a, Activation) and a.tensor.channels < constant.size
            if deforms and fixed_shape:  # (a per-channel scale of free offsets stays an ordinary Mul)
                raise UnsupportedModelError(
                    name, node.op_type, f"the offsets Mul(d, P) of DeformConv '{deforms[0]}' are quantized (a "
                    "QuantizeLinear/DequantizeLinear pair between them, as onnxruntime's quantize_static writes): "
                    "a calibrated grid moves CoDeNet's integer offsets off the integers; quantize the float model "
                    "with `hwcodesign quantize`, which keeps the offset chain float")


def deform_geometry(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> tuple[tuple[int, int], tuple[int, int], int]:
    """Kernel, dilation and offset groups of a DeformConv node, before its weights are lowered."""
    attrs = ctx.attrs(node)
    kernel = tuple(int(k) for k in attrs.get("kernel_shape", ()))  # type: ignore[union-attr]
    if len(kernel) != 2:
        kernel = constant_shape(ctx, node.input[1])[2:]
    if len(kernel) != 2:
        raise UnsupportedModelError(name, node.op_type, "the kernel shape is unknown; give it a kernel_shape attribute")
    dilation = tuple(int(v) for v in attrs.get("dilations", (1, 1)))  # type: ignore[union-attr]
    return kernel, dilation, int(attrs.get("offset_group", 1))  # type: ignore[return-value, arg-type]


def constant_shape(ctx: LoweringContext, tensor: str) -> tuple[int, ...]:
    """A weight's shape, even before the DequantizeLinear that reads its initializer is visited."""
    producer = next((n for n in ctx.model.graph.node if tensor in n.output), None)
    if producer is not None and producer.op_type in ("DequantizeLinear", "Identity"):
        tensor = producer.input[0]
    value = ctx.values.get(tensor)
    if isinstance(value, QuantizedConstant):
        return tuple(value.q.shape)
    if isinstance(value, Constant):
        return tuple(value.array.shape)
    return ()


def check_fixed_shape(node: onnx.NodeProto, name: str, consumer: str,
                      geometry: tuple[tuple[int, int], tuple[int, int], int], d: Activation,
                      constant: np.ndarray) -> None:
    """The Mul's constant has a pattern's size, so it is meant as one: refuse what is off, precisely."""
    kernel, dilation, groups = geometry
    where = f"offsets = Mul(d, P) of DeformConv '{consumer}' look like a fixed shape, but"
    if kernel[0] % 2 == 0 or kernel[1] % 2 == 0 or kernel == (1, 1):
        raise UnsupportedModelError(
            name, node.op_type, f"{where} a fixed shape scales the taps about a centre tap: it needs an odd kernel "
            f"larger than 1x1, not {kernel[0]}x{kernel[1]}")
    pattern = DeformConv.square_pattern(kernel, dilation)
    expected = np.tile(pattern.reshape(-1), groups).reshape(1, -1, 1, 1)
    broadcast = (1,) * (4 - constant.ndim) + constant.shape  # as ONNX aligns it against d
    if broadcast != expected.shape:
        raise UnsupportedModelError(
            name, node.op_type, f"{where} P must have shape {expected.shape} ((dy, dx) per offset group and tap, "
            f"broadcast over the pixels), not {constant.shape}")
    if not np.allclose(constant.reshape(expected.shape), expected, rtol=0, atol=1e-6):
        raise UnsupportedModelError(
            name, node.op_type, f"{where} P is not the square pattern of a {kernel[0]}x{kernel[1]} kernel at dilation "
            f"{dilation}: tap k = (i, j) needs ((i - (KH-1)/2) * dil_h, (j - (KW-1)/2) * dil_w), i.e. "
            f"{pattern.tolist()} per offset group")
    if groups != 1 or d.tensor.channels != 1:
        raise UnsupportedModelError(
            name, node.op_type, f"{where} d '{d.tensor.name}' has {d.tensor.channels} channels for offset_group="
            f"{groups}; a fixed shape needs one d per offset group, and ONNX broadcasts Mul(d, P) only with one "
            "channel, so use offset_group=1")


def pattern_reach(kernel: tuple[int, ...], dilation: tuple[int, ...]) -> int:
    """max |p_k| of a fixed shape: pixels one unit of d moves the outermost tap."""
    return int(np.abs(DeformConv.square_pattern(kernel, dilation)).max(initial=0))  # type: ignore[arg-type]


LOWERING = FamilyLowering(
    rules=MappingProxyType({"DeformConv": deform_conv}),
    patterns=(Pattern("recognize-fixed-shape-offsets", ("Mul",), fixed_shape_mul,
                      "Mul(d, P) feeding only DeformConv offsets, P the square pattern: a fixed-shape DeformConv"),),
)
