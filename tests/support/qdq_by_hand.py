"""QDQ models written node by node, for patterns onnxruntime's quantizer never emits."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from support.onnx_models import IR_VERSION


def conv_bn_relu_qdq(seed: int = 0, channels: int = 6, negative_gamma: bool = True) -> onnx.ModelProto:
    """Q(x) -> DQ -> Conv(DQ int8 weights, DQ int32 bias) -> BatchNorm -> Relu -> Q -> DQ.

    BatchNorm sits in the float domain between the conv and its quantizer, as exporters leave it
    when the model was not pre-processed; one gamma is negative to exercise sign handling.
    """
    rng = np.random.default_rng(seed)
    weight = rng.integers(-127, 128, (channels, 3, 3, 3)).astype(np.int8)
    weight_scale = (rng.random(channels) * 0.004 + 0.002).astype(np.float32)
    x_scale, x_zero = np.float32(0.02), np.uint8(128)
    bias = rng.integers(-2000, 2000, channels).astype(np.int32)
    gamma = rng.uniform(0.5, 1.5, channels).astype(np.float32)
    if negative_gamma:
        gamma[0] = -gamma[0]
    inits = [
        numpy_helper.from_array(weight, "w"), numpy_helper.from_array(weight_scale, "ws"),
        numpy_helper.from_array(np.zeros(channels, np.int8), "wz"),
        numpy_helper.from_array(bias, "b"), numpy_helper.from_array(weight_scale * x_scale, "bs"),
        numpy_helper.from_array(np.zeros(channels, np.int32), "bz"),
        numpy_helper.from_array(np.array(x_scale), "xs"), numpy_helper.from_array(np.array(x_zero), "xz"),
        numpy_helper.from_array(np.array(np.float32(0.03)), "ys"), numpy_helper.from_array(np.array(np.uint8(0)), "yz"),
        numpy_helper.from_array(gamma, "gamma"),
        numpy_helper.from_array(rng.normal(0, 0.3, channels).astype(np.float32), "beta"),
        numpy_helper.from_array(rng.normal(0, 0.3, channels).astype(np.float32), "mean"),
        numpy_helper.from_array(rng.uniform(0.5, 2, channels).astype(np.float32), "var"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], name="quant_in"),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xf"], name="dequant_in"),
        helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wf"], name="dequant_w", axis=0),
        helper.make_node("DequantizeLinear", ["b", "bs", "bz"], ["bf"], name="dequant_b", axis=0),
        helper.make_node("Conv", ["xf", "wf", "bf"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["n"], name="bn"),
        helper.make_node("Relu", ["n"], ["r"], name="relu"),
        helper.make_node("QuantizeLinear", ["r", "ys", "yz"], ["yq"], name="quant_out"),
        helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"], name="dequant_out"),
    ]
    graph = helper.make_graph(
        nodes, "conv_bn_relu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 10, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, 10, 10])], inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    return model
