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
