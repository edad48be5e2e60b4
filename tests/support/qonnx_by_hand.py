"""QONNX `Quant` models written node by node (the format Brevitas/FINN export)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from support.onnx_models import IR_VERSION

DOMAIN = "qonnx.custom_op.general"


def quant(nodes: list, inits: list, x: str, out: str, scale: np.ndarray, bits: int, signed: bool,
          narrow: bool = False, zero_point: float = 0.0) -> str:
    names = [f"{out}_scale", f"{out}_zp", f"{out}_bits"]
    inits += [numpy_helper.from_array(np.asarray(scale, np.float32), names[0]),
              numpy_helper.from_array(np.array(zero_point, np.float32), names[1]),
              numpy_helper.from_array(np.array(bits, np.float32), names[2])]
    nodes.append(helper.make_node("Quant", [x] + names, [out], name=out, domain=DOMAIN,
                                  signed=int(signed), narrow=int(narrow), rounding_mode="ROUND"))
    return out


def qonnx_two_convs(bits: int, seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    nodes: list = []
    inits: list = []
    x = quant(nodes, inits, "input", "x_q", np.array(1 / 255), 8, signed=False)
    w1 = rng.normal(0, 0.3, (6, 3, 3, 3)).astype(np.float32)
    inits.append(numpy_helper.from_array(w1, "w1"))
    w_max = 2 ** (bits - 1) - 1
    w1_q = quant(nodes, inits, "w1", "w1_q", np.abs(w1).max(axis=(1, 2, 3), keepdims=True) / w_max, bits, True, narrow=True)
    inits.append(numpy_helper.from_array(rng.normal(0, 0.1, 6).astype(np.float32), "b1"))
    nodes.append(helper.make_node("Conv", [x, w1_q, "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]))
    nodes.append(helper.make_node("Relu", ["c1"], ["r1"], name="relu1"))
    a1 = quant(nodes, inits, "r1", "a1_q", np.array(1.5 / (2**bits - 1)), bits, signed=False)
    nodes.append(helper.make_node("MaxPool", [a1], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]))
    w2 = rng.normal(0, 0.3, (4, 6, 3, 3)).astype(np.float32)
    inits.append(numpy_helper.from_array(w2, "w2"))
    w2_q = quant(nodes, inits, "w2", "w2_q", np.array(np.abs(w2).max() / w_max), bits, True)
    nodes.append(helper.make_node("Conv", ["p1", w2_q], ["c2"], name="conv2"))
    quant(nodes, inits, "c2", "y", np.array(4.0 / 2 ** (bits - 1)), bits, signed=True)
    graph = helper.make_graph(
        nodes, "qonnx_two_convs", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 10, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 3, 3])], inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(DOMAIN, 1)],
                              ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    return model


def bipolar_quant(nodes: list, inits: list, x: str, out: str, scale: np.ndarray) -> str:
    """QONNX `BipolarQuant`: scale * sign(x), sign(0) = +1."""
    inits.append(numpy_helper.from_array(np.asarray(scale, np.float32), f"{out}_scale"))
    nodes.append(helper.make_node("BipolarQuant", [x, f"{out}_scale"], [out], name=out, domain=DOMAIN))
    return out


def batch_norm(nodes: list, inits: list, x: str, out: str, channels: int, rng: np.random.Generator) -> str:
    """A BatchNormalization with statistics that put each channel's threshold somewhere else, and
    some negative gammas (a flipped comparison in a sign output stage)."""
    params = {"gamma": rng.uniform(0.3, 1.5, channels) * rng.choice([-1, 1], channels),
              "beta": rng.uniform(-0.5, 0.5, channels), "mean": rng.uniform(-3, 3, channels),
              "var": rng.uniform(0.5, 4, channels)}
    names = [f"{out}_{key}" for key in params]
    inits += [numpy_helper.from_array(value.astype(np.float32), name) for name, value in zip(names, params.values())]
    nodes.append(helper.make_node("BatchNormalization", [x, *names], [out], name=out, epsilon=1e-4))
    return out


def qonnx_binary_net(seed: int = 0) -> onnx.ModelProto:
    """A small FINN-style binarised CNN as QONNX writes it: an 8-bit input into a conv with bipolar
    weights (W1A8), BatchNorm and a bipolar activation; a padded conv of bipolar weights and
    activations (W1A1, its padding taps 0) and an unpadded one (XNOR-popcount) into a 2-bit
    activation; a max pool and a fully connected layer with bipolar weights on the 2-bit
    activations (W1A2); the 8-bit output."""
    rng = np.random.default_rng(seed)
    nodes: list = []
    inits: list = []
    x = quant(nodes, inits, "input", "x_q", np.array(1 / 255), 8, signed=False)
    for name, shape in (("w1", (8, 3, 3, 3)), ("w2", (8, 8, 3, 3)), ("w3", (8, 8, 3, 3)), ("w4", (10, 72))):
        inits.append(numpy_helper.from_array(rng.normal(0, 1, shape).astype(np.float32), name))
    w1 = bipolar_quant(nodes, inits, "w1", "w1_q", rng.uniform(0.5, 1.5, (8, 1, 1, 1)))
    nodes.append(helper.make_node("Conv", [x, w1], ["c1"], name="conv1"))
    a1 = bipolar_quant(nodes, inits, batch_norm(nodes, inits, "c1", "bn1", 8, rng), "a1_q", np.array(1.0))
    w2 = bipolar_quant(nodes, inits, "w2", "w2_q", np.array(0.7))
    nodes.append(helper.make_node("Conv", [a1, w2], ["c2"], name="conv2_padded", pads=[1, 1, 1, 1]))
    a2 = bipolar_quant(nodes, inits, batch_norm(nodes, inits, "c2", "bn2", 8, rng), "a2_q", np.array(1.0))
    w3 = bipolar_quant(nodes, inits, "w3", "w3_q", np.array(0.7))
    nodes.append(helper.make_node("Conv", [a2, w3], ["c3"], name="conv3_xnor"))
    a3 = quant(nodes, inits, batch_norm(nodes, inits, "c3", "bn3", 8, rng), "a3_q", np.array(0.5), 2, signed=False)
    nodes.append(helper.make_node("MaxPool", [a3], ["p3"], name="pool3", kernel_shape=[2, 2], strides=[2, 2]))
    nodes.append(helper.make_node("Flatten", ["p3"], ["f3"], name="flatten"))
    w4 = bipolar_quant(nodes, inits, "w4", "w4_q", np.array(0.25))
    nodes.append(helper.make_node("Gemm", ["f3", w4], ["g4"], name="fc4", transB=1))
    quant(nodes, inits, "g4", "y", np.array(0.25), 8, signed=True)
    graph = helper.make_graph(
        nodes, "qonnx_binary_net", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 10, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(DOMAIN, 1)],
                              ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    return model
