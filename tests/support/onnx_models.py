"""Tiny float ONNX models built with onnx.helper, quantized by onnxruntime's own quantizer.

Quantizing with `hwcodesign.quantize.quantize_qdq` (onnxruntime's `quantize_static`, QDQ format)
gives the tests the exact QDQ patterns real users feed the compiler, with scales nobody here chose.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hwcodesign.quantize import quantize_qdq

IR_VERSION = 10  # onnxruntime in the pinned range reads IR <= 10 reliably


class GraphBuilder:
    """Accumulates float nodes and initializers; names are generated so tests stay short."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.counter = 0

    def name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def const(self, array: np.ndarray, prefix: str = "c") -> str:
        name = self.name(prefix)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def input(self, shape: Sequence[int], name: str = "input") -> str:
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)))
        return name

    def node(self, op_type: str, inputs: Sequence[str], **attrs: object) -> str:
        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out + "_node", **attrs))
        return out

    def conv(self, x: str, c_in: int, c_out: int, k: int = 3, groups: int = 1, bias: bool = True,
             **attrs: object) -> str:
        fan_in = c_in // groups * k * k
        w = self.rng.normal(0, 1 / np.sqrt(fan_in), (c_out, c_in // groups, k, k)).astype(np.float32)
        inputs = [x, self.const(w, "w")]
        if bias:
            inputs.append(self.const(self.rng.normal(0, 0.1, c_out).astype(np.float32), "b"))
        return self.node("Conv", inputs, group=groups, kernel_shape=[k, k], **attrs)

    def batch_norm(self, x: str, channels: int) -> str:
        rng = self.rng
        params = [
            rng.uniform(0.5, 1.5, channels), rng.normal(0, 0.2, channels),
            rng.normal(0, 0.2, channels), rng.uniform(0.5, 2.0, channels),
        ]
        return self.node("BatchNormalization", [x] + [self.const(p.astype(np.float32)) for p in params])

    def gemm(self, x: str, c_in: int, c_out: int, trans_b: int = 1) -> str:
        w = self.rng.normal(0, 1 / np.sqrt(c_in), (c_out, c_in) if trans_b else (c_in, c_out))
        b = self.rng.normal(0, 0.1, c_out)
        return self.node("Gemm", [x, self.const(w.astype(np.float32), "w"), self.const(b.astype(np.float32), "b")],
                         transB=trans_b)

    def model(self, outputs: Sequence[str], opset: int = 17) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, "test", self.inputs,
            [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
            self.initializers,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=IR_VERSION)
        model = onnx.shape_inference.infer_shapes(model)
        onnx.checker.check_model(model)
        return model


def two_inputs_two_outputs_qdq(path: Path) -> Path:
    """Inputs a (3x8x8) and b (2x8x8) -> relu(conv a) + conv b -> (conv of the sum, the sum), QDQ:
    dicts both ways for drivers and notebooks; as an engine program, three instructions, the
    residual Add run in a conv's output stage (its skip on the aux feature-map master), and two
    inputs and two outputs at their own arena addresses."""
    b = GraphBuilder(seed=3)
    first, second = b.input((1, 3, 8, 8), "a"), b.input((1, 2, 8, 8), "b")
    total = b.node("Add", [b.node("Relu", [b.conv(first, 3, 4, pads=[1, 1, 1, 1])]), b.conv(second, 2, 4, k=1)])
    float_model = b.model([b.conv(total, 4, 5, k=1), total])
    onnx.save(float_model, path.with_suffix(".float.onnx"))
    rng = np.random.default_rng(0)
    feeds = [{"a": rng.normal(0, 1, (1, 3, 8, 8)).astype(np.float32),
              "b": rng.normal(0, 1, (1, 2, 8, 8)).astype(np.float32)} for _ in range(8)]
    onnx.save(quantize_qdq(float_model, feeds, ir_version=IR_VERSION), path)
    return path


def mlp_qdq(path: Path) -> Path:
    """An MLP whose input is rank 2, (N, 16), as MNIST or keyword-spotting MLPs are exported:
    Gemm 16->12, ReLU, Gemm 12->4, QDQ. The compiler streams it as (N, 16, 1, 1); frames, the
    driver and the notebook take it as the model has it."""
    b = GraphBuilder(seed=5)
    x = b.input((1, 16), "features")
    float_model = b.model([b.gemm(b.node("Relu", [b.gemm(x, 16, 12)]), 12, 4)])
    rng = np.random.default_rng(1)
    feeds = [{"features": rng.normal(0, 1, (1, 16)).astype(np.float32)} for _ in range(8)]
    onnx.save(quantize_qdq(float_model, feeds, ir_version=IR_VERSION), path)
    return path


def mnist_conv_qdq(path: Path) -> Path:
    """An MNIST-like CNN, QDQ: a 1x28x28 image -> Conv 1->8, ReLU, MaxPool, Conv 8->16, ReLU,
    MaxPool, Gemm 784->10. Its one-channel input is the narrow kind several of whose pixels
    share a stream word (`ir/stream_layout.py`)."""
    b = GraphBuilder(seed=11)
    x = b.input((1, 1, 28, 28), "image")
    first = b.node("MaxPool", [b.node("Relu", [b.conv(x, 1, 8, pads=[1, 1, 1, 1])])], kernel_shape=[2, 2], strides=[2, 2])
    second = b.node("MaxPool", [b.node("Relu", [b.conv(first, 8, 16, pads=[1, 1, 1, 1])])], kernel_shape=[2, 2],
                    strides=[2, 2])
    float_model = b.model([b.gemm(b.node("Flatten", [second]), 16 * 7 * 7, 10)])
    rng = np.random.default_rng(2)
    feeds = [{"image": rng.random((1, 1, 28, 28)).astype(np.float32)} for _ in range(8)]
    onnx.save(quantize_qdq(float_model, feeds, ir_version=IR_VERSION), path)
    return path


def one_channel_map_qdq(path: Path, height: int = 13, width: int = 11) -> Path:
    """A one-channel image to a one-channel map of the same size (a segmentation or denoising
    head), QDQ: Conv 1->4, ReLU, Conv 4->1. Both ports share stream words between pixels, and an
    odd pixel count leaves the last word of each frame partly filled."""
    b = GraphBuilder(seed=13)
    x = b.input((1, 1, height, width), "image")
    float_model = b.model([b.conv(b.node("Relu", [b.conv(x, 1, 4, pads=[1, 1, 1, 1])]), 4, 1, pads=[1, 1, 1, 1])])
    rng = np.random.default_rng(3)
    feeds = [{"image": rng.random((1, 1, height, width)).astype(np.float32)} for _ in range(8)]
    onnx.save(quantize_qdq(float_model, feeds, ir_version=IR_VERSION), path)
    return path
