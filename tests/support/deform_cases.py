"""Deformable-conv layers built directly in the IR (integer weights, offsets, masks), with the
same layer in float for onnxruntime's DeformConv, so golden and C simulation can be checked
against a reference nobody here wrote."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from hwcodesign.ir import Graph, Input, IntType, Tensor, make_requant
from hwcodesign.ops import DeformConv
from hwcodesign.reference import Reference
from support.onnx_models import IR_VERSION

UINT8, INT8 = IntType(8, False), IntType(8, True)
FRAC_BITS = 8


@dataclass(frozen=True)
class DeformCase:
    channels: int = 4
    out_channels: int = 6
    size: int = 9
    kernel: int = 3
    stride: int = 1
    dilation: int = 1
    groups: int = 1
    offset_groups: int = 1
    offset_range: int = 2
    mask: bool = False
    weight_bits: int = 8
    fixed_shape: bool = False
    seed: int = 0

    @property
    def label(self) -> str:
        return (f"c{self.channels}o{self.out_channels}k{self.kernel}s{self.stride}d{self.dilation}g{self.groups}"
                f"og{self.offset_groups}R{self.offset_range}{'m' if self.mask else ''}w{self.weight_bits}"
                f"{'f' if self.fixed_shape else ''}")

    @property
    def pattern(self) -> np.ndarray:
        """The fixed shape's P, (1, 2*G*K*K, 1, 1): (dy, dx) of each tap from the kernel centre,
        for each offset group and tap in ONNX DeformConv's offset order."""
        centre = (self.kernel - 1) / 2
        taps = [((i - centre) * self.dilation, (j - centre) * self.dilation)
                for i in range(self.kernel) for j in range(self.kernel)]
        return np.tile(np.asarray(taps, np.float32).reshape(-1), self.offset_groups).reshape(1, -1, 1, 1)

    @property
    def offset_limit(self) -> float:
        """The clamp on one offset input value, in pixels: R, or for a fixed shape the largest d
        whose outermost tap stays within R, on the 1/256 grid (floor(R * 256 / max|p_k|) / 256)."""
        if not self.fixed_shape:
            return float(self.offset_range)
        reach = max(1, (self.kernel - 1) // 2 * self.dilation)  # 1x1 and even kernels are refused
        return ((self.offset_range << FRAC_BITS) // reach) / 2**FRAC_BITS


@dataclass
class DeformLayer:
    graph: Graph
    x_scale: float
    offset_scale: float
    weight_scale: np.ndarray
    weight: np.ndarray
    bias_real: np.ndarray
    out: Tensor


def deform_layer(case: DeformCase, prefix: str = "") -> DeformLayer:
    """One DeformConv fed by three graph inputs (x, offset, mask): the hardware layer under test.
    `prefix` starts every tensor and op name (several cases in one graph, support/deform_suite.py)."""
    rng = np.random.default_rng(case.seed)
    pad = (case.kernel - 1) * case.dilation // 2
    out_size = (case.size + 2 * pad - (case.kernel - 1) * case.dilation - 1) // case.stride + 1
    taps = case.kernel * case.kernel
    x = Tensor(f"{prefix}x", (1, case.channels, case.size, case.size), UINT8, 0.02, 100)
    # int8 offsets covering a little more than +-R (a fixed shape's d: +-R / max|p_k|), so the
    # clamp is exercised
    offset_scale = (case.offset_limit + (0.25 if case.fixed_shape else 0.5)) / 127
    offset_channels = case.offset_groups * (1 if case.fixed_shape else 2 * taps)
    offset = Tensor(f"{prefix}offset", (1, offset_channels, out_size, out_size), INT8, offset_scale, 0)
    mask = Tensor(f"{prefix}mask", (1, case.offset_groups * taps, out_size, out_size), UINT8, 1 / 255, 0)
    qmax = 2 ** (case.weight_bits - 1) - 1
    weight = rng.integers(-qmax, qmax + 1, (case.out_channels, case.channels // case.groups, case.kernel, case.kernel))
    weight_scale = rng.uniform(0.5, 1.5, case.out_channels) * 0.4 / (qmax * np.sqrt(weight[0].size))
    bias_real = rng.normal(0, 0.1, case.out_channels)
    out = Tensor(f"{prefix}y", (1, case.out_channels, out_size, out_size), UINT8, 0.03, 60)
    sample_shift = FRAC_BITS
    acc_scale = x.scale * weight_scale * (mask.scale if case.mask else 1.0) / 2.0 ** (2 * FRAC_BITS - sample_shift)
    bias = np.rint(bias_real / acc_scale).astype(np.int64)
    requant = make_requant(acc_scale / out.scale, out.zero_point, 0, 255)
    limit = int(case.offset_limit * 2**FRAC_BITS)
    offset_requant = make_requant(np.array([offset_scale * 2.0**FRAC_BITS]), 0, -limit, limit)
    inputs = (x.name, offset.name, mask.name) if case.mask else (x.name, offset.name)
    op = DeformConv(f"{prefix}deform", inputs, out, weight, IntType(case.weight_bits, True), bias, (case.stride, case.stride),
                    (pad, pad, pad, pad), (case.dilation, case.dilation), case.groups, case.offset_groups,
                    case.offset_range, FRAC_BITS, offset_requant, sample_shift, requant, case.fixed_shape)
    ops = [Input(x.name, (), x), Input(offset.name, (), offset)] + ([Input(mask.name, (), mask)] if case.mask else [])
    graph = Graph.from_ops("deform", [*ops, op], [out.name])
    return DeformLayer(graph, x.scale, offset_scale, weight_scale, weight, bias * acc_scale, out)


def random_inputs(layer: DeformLayer, frames: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    values = {}
    for op in layer.graph.inputs:
        dtype = op.output.dtype
        values[op.name] = rng.integers(dtype.min, dtype.max + 1, (frames,) + op.output.shape[1:])
    return values


def onnxruntime_reference(layer: DeformLayer, case: DeformCase, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """onnxruntime's float DeformConv on the dequantized layer, requantized to the output grid.

    A fixed shape feeds d (clamped) and onnxruntime computes the offsets as Mul(d, P); with
    several offset groups d and P get a group axis first (ONNX broadcasts one channel only).
    """

    tensors = {op.name: op.output for op in layer.graph.inputs}
    pad = (case.kernel - 1) * case.dilation // 2
    names = ["x", "w", "offset", "b"] + (["mask"] if case.mask else [])
    nodes, inits = [], []
    if case.fixed_shape and case.offset_groups == 1:  # the plain pattern the frontend recognises
        names[2] = "offsets"
        inits.append(numpy_helper.from_array(case.pattern, "P"))
        nodes.append(helper.make_node("Mul", ["offset", "P"], ["offsets"]))
    elif case.fixed_shape:
        names[2] = "offsets"
        groups, out_size = case.offset_groups, tensors["offset"].shape[2:]
        inits.append(numpy_helper.from_array(case.pattern.reshape(1, groups, -1, 1, 1), "P"))
        inits.append(numpy_helper.from_array(np.array([1, groups, 1, *out_size], np.int64), "d_shape"))
        inits.append(numpy_helper.from_array(np.array([1, -1, *out_size], np.int64), "offsets_shape"))
        nodes += [helper.make_node("Reshape", ["offset", "d_shape"], ["d"]),
                  helper.make_node("Mul", ["d", "P"], ["offsets_g"]),
                  helper.make_node("Reshape", ["offsets_g", "offsets_shape"], ["offsets"])]
    nodes.append(helper.make_node("DeformConv", names, ["y"], kernel_shape=[case.kernel] * 2, pads=[pad] * 4,
                                  strides=[case.stride] * 2, dilations=[case.dilation] * 2, group=case.groups,
                                  offset_group=case.offset_groups))
    feeds = ["x", "w", "offset", "b"] + (["mask"] if case.mask else [])
    values = [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in feeds]
    model = helper.make_model(helper.make_graph(nodes, "deform", values, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                                                inits),
                              opset_imports=[helper.make_opsetid("", 19)], ir_version=IR_VERSION)
    reference = Reference(model)
    weight = (layer.weight * layer.weight_scale.reshape(-1, 1, 1, 1)).astype(np.float32)
    limit = case.offset_limit
    outputs = []
    for frame in range(inputs["x"].shape[0]):
        feed = {"x": tensors["x"].dequantize(inputs["x"][frame:frame + 1]).astype(np.float32), "w": weight,
                "offset": np.clip(tensors["offset"].dequantize(inputs["offset"][frame:frame + 1]), -limit, limit).astype(np.float32),
                "b": layer.bias_real.astype(np.float32)}
        if case.mask:
            feed["mask"] = tensors["mask"].dequantize(inputs["mask"][frame:frame + 1]).astype(np.float32)
        outputs.append(layer.out.quantize(reference.run(feed)["y"]))
    return np.concatenate(outputs)


# The variant grid the golden and C-simulation tests share: full and depthwise, with and without
# a mask, R in {1, 2, 4, 8}, stride 2, dilation 2, grouped with two offset groups, 4-bit weights.
GRID = [
    DeformCase(),
    DeformCase(mask=True),
    DeformCase(channels=6, out_channels=6, groups=6, offset_range=2),
    DeformCase(channels=6, out_channels=6, groups=6, mask=True, offset_range=4),
    DeformCase(offset_range=1, stride=2),
    DeformCase(offset_range=8, size=12),
    DeformCase(groups=2, offset_groups=2, mask=True),
    DeformCase(dilation=2, offset_range=4, size=11),
    DeformCase(weight_bits=4, offset_range=4, mask=True),
]

# Fixed shape (one d per pixel and offset group scales the square pattern), the variants folded
# into four layers (each C-simulated at three foldings): full and depthwise, with and without a
# mask, R in {1, 2, 4}, strides 1 and 2, dilations 1 and 2, two offset groups.
FIXED_GRID = [
    DeformCase(fixed_shape=True, mask=True, offset_range=1, stride=2),
    DeformCase(channels=6, out_channels=6, groups=6, offset_range=4, fixed_shape=True),
    DeformCase(channels=6, out_channels=6, groups=6, mask=True, dilation=2, size=11, fixed_shape=True),
    DeformCase(groups=2, offset_groups=2, dilation=2, offset_range=4, size=11, fixed_shape=True),
]


def deform_qdq_model(case: DeformCase, calibration: int = 8):
    """A QDQ ONNX model: x -> (offset conv -> Clip(-R, R)), (mask conv -> Clip(0, 1)) -> DeformConv.

    Quantized by hand the way a QDQ exporter would: uint8 input and output (output range
    calibrated on the float model), int8 offsets with scale R/127 (so the Clip's range is the
    quantized range), uint8 mask with scale 1/255, int8 per-channel weights, float biases.
    A fixed shape's offset conv gives d, one channel per offset group, clipped to +-R / max|p_k|
    (quantized likewise), and the offsets are Mul(d, P), P the square pattern (`DeformCase.pattern`).
    Returns (model, float input samples for testing).
    """
    import onnx
    from onnx import numpy_helper

    rng = np.random.default_rng(case.seed)
    taps = case.kernel * case.kernel
    pad = (case.kernel - 1) * case.dilation // 2
    shape = (1, case.channels, case.size, case.size)
    out_size = (case.size + 2 * pad - (case.kernel - 1) * case.dilation - 1) // case.stride + 1
    out_shape = [1, case.out_channels, out_size, out_size]
    nodes, inits = [], []

    def const(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def qdq(x: str, out: str, scale: float, zero_point: int, dtype: type) -> str:
        s, z = const(f"{out}_s", np.float32(scale)), const(f"{out}_z", dtype(zero_point))
        nodes.append(helper.make_node("QuantizeLinear", [x, s, z], [f"{out}_q"], name=f"{out}_quant"))
        nodes.append(helper.make_node("DequantizeLinear", [f"{out}_q", s, z], [out], name=f"{out}_dequant"))
        return out

    def int8_weight(name: str, w: np.ndarray) -> str:
        scale = (np.abs(w).reshape(w.shape[0], -1).max(axis=1) / 127).astype(np.float32)
        q = np.clip(np.rint(w / scale.reshape(-1, 1, 1, 1)), -127, 127).astype(np.int8)
        nodes.append(helper.make_node("DequantizeLinear", [const(f"{name}_q", q), const(f"{name}_s", scale),
                                                           const(f"{name}_z", np.zeros(w.shape[0], np.int8))],
                                      [name], name=f"{name}_dequant", axis=0))
        return name

    def branch(x: str, name: str, channels: int, lo: float, hi: float, gain: float) -> str:
        w = rng.normal(0, gain / np.sqrt(case.channels * 9), (channels, case.channels, 3, 3)).astype(np.float32)
        b = rng.normal(0, gain * 0.3, channels).astype(np.float32)
        nodes.append(helper.make_node("Conv", [x, int8_weight(f"{name}_w", w), const(f"{name}_b", b)], [f"{name}_c"],
                                      name=f"{name}_conv", pads=[1, 1, 1, 1], strides=[case.stride] * 2))
        nodes.append(helper.make_node("Clip", [f"{name}_c", const(f"{name}_lo", np.float32(lo)),
                                               const(f"{name}_hi", np.float32(hi))], [f"{name}_clip"], name=f"{name}_clip"))
        return f"{name}_clip"

    x_dq = qdq("x", "x_dq", 4 / 255, 128, np.uint8)
    if case.fixed_shape:
        bound = case.offset_range / ((case.kernel - 1) // 2 * case.dilation)  # d's clip: R / max|p_k|
        offset = branch(x_dq, "off", case.offset_groups, -bound, bound, 2.0 * bound)
        d_dq = qdq(offset, "d_dq", bound / 127, 0, np.int8)
        nodes.append(helper.make_node("Mul", [d_dq, const("pattern", case.pattern)], ["off_dq"], name="pattern_mul"))
        offset_dq = "off_dq"
    else:
        offset = branch(x_dq, "off", 2 * case.offset_groups * taps, -case.offset_range, case.offset_range,
                        2.0 * case.offset_range)
        offset_dq = qdq(offset, "off_dq", case.offset_range / 127, 0, np.int8)
    inputs = [x_dq, None, offset_dq]
    if case.mask:
        mask = branch(x_dq, "mask", case.offset_groups * taps, 0.0, 1.0, 1.0)
        inputs.append(None)
        inputs.append(qdq(mask, "mask_dq", 1 / 255, 0, np.uint8))
    weight = rng.normal(0, 1 / np.sqrt(case.channels // case.groups * taps),
                        (case.out_channels, case.channels // case.groups, case.kernel, case.kernel)).astype(np.float32)
    inputs[1] = int8_weight("deform_w", weight)
    bias = const("deform_b", rng.normal(0, 0.1, case.out_channels).astype(np.float32))
    if case.mask:
        inputs[3] = bias
    else:
        inputs.append(bias)
    nodes.append(helper.make_node("DeformConv", inputs, ["y_f"], name="deform", kernel_shape=[case.kernel] * 2,
                                  pads=[pad] * 4, strides=[case.stride] * 2, dilations=[case.dilation] * 2,
                                  group=case.groups, offset_group=case.offset_groups))

    def model_with(output_nodes: list, output: str):
        graph = helper.make_graph(nodes + output_nodes, "deform_qdq",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                                  [helper.make_tensor_value_info(output, TensorProto.FLOAT, out_shape)], list(inits))
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=IR_VERSION)
        return onnx.shape_inference.infer_shapes(model)

    samples = [rng.normal(0, 1, shape).astype(np.float32) for _ in range(calibration + 20)]
    reference = Reference(model_with([], "y_f"))
    values = np.concatenate([reference.first(s).ravel() for s in samples[:calibration]])
    lo, hi = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    scale = (hi - lo) / 255
    zero_point = int(np.clip(np.rint(-lo / scale), 0, 255))
    s, z = const("y_s", np.float32(scale)), const("y_z", np.uint8(zero_point))
    tail = [helper.make_node("QuantizeLinear", ["y_f", s, z], ["y_q"], name="y_quant"),
            helper.make_node("DequantizeLinear", ["y_q", s, z], ["y"], name="y_dequant")]
    return model_with(tail, "y"), samples[calibration:]
