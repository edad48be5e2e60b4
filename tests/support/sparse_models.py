"""Sparse (event-camera) test networks in the ONNX convention of frontend/sparse.py, built node by
node: the masked-dense form onnxruntime runs as the reference, and the same network with the
custom hwcodesign.SubmConv node. Activation scales are calibrated on the float model; weights
are int8 per channel, biases int32, activations uint8 after ReLU (zero point 0, so inactive
sites are exactly the zero point), the input uint8 event counts with scale 1."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hwcodesign.reference import Reference
from support.onnx_models import IR_VERSION

OPSET = 19


@dataclass(frozen=True)
class SparseLayer:
    """One layer of a test network: a sparse conv, a residual add of the output `of` layers back,
    a global average pool, or a fully connected output."""

    kind: str  # "subm" | "add" | "gap" | "fc"
    channels: int = 0
    kernel: int = 3
    stride: int = 1
    depthwise: bool = False
    of: int = 0


@dataclass(frozen=True)
class SparseCase:
    layers: tuple[SparseLayer, ...]
    channels: int = 2
    height: int = 12
    width: int = 14
    seed: int = 0
    downsampling: str = "block"  # the strided layers' rule (hwcodesign.ops.sparse.ir.DOWNSAMPLINGS)

    @property
    def label(self) -> str:
        parts = []
        for layer in self.layers:
            if layer.kind == "subm":
                parts.append(f"s{layer.kernel}x{layer.stride}c{layer.channels}{'dw' if layer.depthwise else ''}")
            else:
                parts.append(layer.kind)
        if self.downsampling != "block" and any(layer.stride > 1 for layer in self.layers):
            parts.append(self.downsampling)
        return "-".join(parts)


def event_frames(case: SparseCase, density: float, frames: int, seed: int) -> np.ndarray:
    """(N, C, H, W) float event counts: exactly round(density * H * W) active sites per frame,
    each with counts 1..3 in a random nonempty subset of the channels."""
    rng = np.random.default_rng(seed)
    sites = case.height * case.width
    active = max(1, round(density * sites))
    out = np.zeros((frames, case.channels, case.height, case.width), np.float32)
    for n in range(frames):
        chosen = rng.choice(sites, active, replace=False)
        for site in chosen:
            y, x = divmod(int(site), case.width)
            channels = rng.random(case.channels) < 0.6
            channels[rng.integers(case.channels)] = True
            out[n, channels, y, x] = rng.integers(1, 4, int(channels.sum()))
    return out


class _Builder:
    def __init__(self, case: SparseCase, custom: bool, scales: dict[str, float] | None) -> None:
        self.case, self.custom, self.scales = case, custom, scales or {}
        self.rng = np.random.default_rng(case.seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def const(self, array: np.ndarray, prefix: str = "c") -> str:
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], domain: str = "", **attrs: object) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, domain=domain, **attrs))
        return out

    def qdq(self, x: str, key: str, quantize: bool, signed: bool = False) -> str:
        """Q/DQ at a layer output (or the float value and nothing, for calibration): uint8 after
        a ReLU, int8 for the signed fully connected output."""
        if not quantize:
            return x
        scale = self.const(np.float32(self.scales[key] / (2 if signed else 1)), "s")
        zero = self.const(np.int8(0) if signed else np.uint8(0), "z")
        return self.node("DequantizeLinear", [self.node("QuantizeLinear", [x, scale, zero]), scale, zero])


def build(case: SparseCase, custom: bool = False, scales: dict[str, float] | None = None,
          calibration_outputs: bool = False) -> tuple[onnx.ModelProto, list[str]]:
    """The network as ONNX; without `scales`, the float model whose named layer outputs
    calibrate them (the returned names, in layer order)."""
    quantize = scales is not None
    b = _Builder(case, custom, scales)
    x = "events"
    if quantize:
        one, zero = b.const(np.float32(1.0), "s"), b.const(np.uint8(0), "z")
        x = b.node("DequantizeLinear", [b.node("QuantizeLinear", ["events", one, zero]), one, zero])
    masks = [b.node("Cast", [b.node("Greater", [b.node("ReduceMax", [b.node("Abs", [x]), b.const(np.array([1], np.int64))],
                                                       keepdims=1), b.const(np.float32(0))])], to=TensorProto.FLOAT)]
    outputs, keys = [x], []
    channels, level = case.channels, 0
    rng = b.rng
    for index, layer in enumerate(case.layers):
        key = f"l{index}"
        if layer.kind == "subm":
            groups = channels if layer.depthwise else 1
            out_channels = channels if layer.depthwise else layer.channels
            pad = (layer.kernel - 1) // 2
            fan_in = channels // groups * layer.kernel ** 2
            weight = rng.normal(0, 1.6 / np.sqrt(fan_in), (out_channels, channels // groups, layer.kernel, layer.kernel))
            bias = rng.normal(0, 0.2, out_channels)
            w, bias_name = weights(b, weight, bias, quantize, b.scales.get(keys[-1] if keys else "", 1.0) if quantize else 1.0)
            attrs = dict(kernel_shape=[layer.kernel] * 2, strides=[layer.stride] * 2, pads=[pad] * 4, group=groups)
            if custom:
                rule = {} if case.downsampling == "block" else {"downsampling": case.downsampling}  # block: the default
                y = b.node("SubmConv", [outputs[-1], w, bias_name], domain="hwcodesign", **attrs, **rule)
                y = b.node("Relu", [y])
            else:
                y = b.node("Relu", [b.node("Conv", [outputs[-1], w, bias_name], **attrs)])
                if layer.stride > 1:
                    if case.downsampling == "block":  # ESDA's: any active site in the stride x stride block
                        pool = dict(kernel_shape=[layer.stride] * 2, strides=[layer.stride] * 2, ceil_mode=1)
                    else:  # spconv's: any active site under the conv's own window
                        pool = dict(kernel_shape=[layer.kernel] * 2, strides=[layer.stride] * 2, pads=[pad] * 4)
                    masks.append(b.node("MaxPool", [masks[-1]], **pool))
                    level = len(masks) - 1
                y = b.node("Mul", [y, masks[level]])
            channels = out_channels
        elif layer.kind == "add":
            y = b.node("Add", [outputs[-1], outputs[-1 - layer.of]])
        elif layer.kind == "gap":
            y = b.node("GlobalAveragePool", [outputs[-1]])
        else:
            weight = rng.normal(0, 1 / np.sqrt(channels), (layer.channels, channels))
            w, bias_name = weights(b, weight, rng.normal(0, 0.1, layer.channels), quantize,
                                   b.scales.get(keys[-1], 1.0) if quantize else 1.0)
            y = b.node("Gemm", [b.node("Flatten", [outputs[-1]]), w, bias_name], transB=1)
            channels = layer.channels
        keys.append(key)
        if not quantize:
            b.nodes[-1].output[0] = key
            y = key
        outputs.append(b.qdq(y, key, quantize, signed=layer.kind == "fc"))
    graph = helper.make_graph(
        b.nodes, "sparse", [helper.make_tensor_value_info("events", TensorProto.FLOAT, [1, case.channels, case.height, case.width])],
        [helper.make_tensor_value_info(outputs[-1], TensorProto.FLOAT, [1, channels] if quantize else None)], b.inits)
    if calibration_outputs:
        graph.output.extend([helper.make_tensor_value_info(k, TensorProto.FLOAT, None) for k in keys[:-1]])
    opsets = [helper.make_opsetid("", OPSET)] + ([helper.make_opsetid("hwcodesign", 1)] if custom else [])
    model = helper.make_model(graph, opset_imports=opsets, ir_version=IR_VERSION)
    if not custom:  # the checker knows no hwcodesign domain
        model = onnx.shape_inference.infer_shapes(model)
        onnx.checker.check_model(model)
    return model, keys


def weights(b: _Builder, weight: np.ndarray, bias: np.ndarray, quantize: bool, x_scale: float) -> tuple[str, str]:
    """int8 per-channel weights and int32 bias behind DequantizeLinear (float when calibrating)."""
    if not quantize:
        return b.const(weight.astype(np.float32), "w"), b.const(bias.astype(np.float32), "b")
    axis_shape = (-1,) + (1,) * (weight.ndim - 1)
    w_scale = np.abs(weight).reshape(weight.shape[0], -1).max(axis=1) / 127
    q = np.clip(np.rint(weight / w_scale.reshape(axis_shape)), -127, 127).astype(np.int8)
    q_bias = np.rint(bias / (w_scale * x_scale)).astype(np.int32)
    w = b.node("DequantizeLinear", [b.const(q, "wq"), b.const(w_scale.astype(np.float32), "ws"),
                                    b.const(np.zeros(weight.shape[0], np.int8), "wz")], axis=0)
    bias_name = b.node("DequantizeLinear", [b.const(q_bias, "bq"), b.const((w_scale * x_scale).astype(np.float32), "bs"),
                                            b.const(np.zeros(weight.shape[0], np.int32), "bz")], axis=0)
    return w, bias_name


def sparse_models(case: SparseCase, calibration: np.ndarray) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """(masked-dense QDQ model, the same with hwcodesign.SubmConv), scales calibrated on the float
    model's outputs for `calibration` frames (N, C, H, W)."""
    float_model, keys = build(case, calibration_outputs=True)
    reference = Reference(float_model)
    results = [list(reference.run({"events": frame[None]}).values()) for frame in calibration]
    ordered = [keys[-1]] + keys[:-1]  # graph outputs: the last layer first, then the others
    scales = {}
    for position, key in enumerate(ordered):
        largest = max(float(np.abs(r[position]).max()) for r in results)
        scales[key] = max(largest, 1e-3) / 255
    masked, _ = build(case, scales=scales)
    custom, _ = build(case, custom=True, scales=scales)
    return masked, custom
