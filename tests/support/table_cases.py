"""One tiny float model per lookup-table function (conv -> f -> 1x1 conv), for the table family's
tests: golden == onnxruntime, C simulation == golden, the stage's loop counts.

`f` is written as exporters write it: the ONNX op itself, or its arithmetic. The arithmetic forms
list their inner nodes (`TableCase.inner`), which the quantizer leaves float (`nodes_to_exclude`)
as a quantizer that quantizes only at the function's ends does; onnxruntime's quantize_static
with its defaults quantizes each Add/Mul on its own, which makes them separate layers instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx

from support.onnx_models import GraphBuilder

SHAPE = (1, 4, 12, 12)
SQRT2 = np.float32(math.sqrt(2.0))


@dataclass(frozen=True)
class TableCase:
    function: Callable[[GraphBuilder, str], tuple[str, list[str]]]  # f(b, x) -> (f(x), inner node names)
    opset: int = 17


def single(op: str, **attrs: object) -> Callable[[GraphBuilder, str], tuple[str, list[str]]]:
    return lambda b, x: (b.node(op, [x], **attrs), [])


def silu(b: GraphBuilder, x: str) -> tuple[str, list[str]]:
    # quantize_static quantizes the Sigmoid's output: Mul(DQ(x), DQ(Q(Sigmoid(DQ(x)))))
    return b.node("Mul", [x, b.node("Sigmoid", [x])]), []


def hard_swish_mul(b: GraphBuilder, x: str) -> tuple[str, list[str]]:
    return b.node("Mul", [x, b.node("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5)]), []


def hard_swish_arithmetic(b: GraphBuilder, x: str) -> tuple[str, list[str]]:
    shifted = b.node("Add", [x, b.const(np.float32(3))])
    clipped = b.node("Clip", [shifted, b.const(np.float32(0)), b.const(np.float32(6))])
    scaled = b.node("Div", [clipped, b.const(np.float32(6))])
    product = b.node("Mul", [x, scaled])
    return product, [f"{t}_node" for t in (shifted, clipped, scaled, product)]


def gelu_erf(b: GraphBuilder, x: str) -> tuple[str, list[str]]:
    inner = b.node("Add", [b.node("Erf", [b.node("Div", [x, b.const(SQRT2)])]), b.const(np.float32(1))])
    half = b.node("Mul", [b.node("Mul", [x, inner]), b.const(np.float32(0.5))])
    return half, [n.name for n in b.nodes[-5:]]


CASES: dict[str, TableCase] = {
    "sigmoid": TableCase(single("Sigmoid")),
    "hard_sigmoid": TableCase(single("HardSigmoid", alpha=1.0 / 6.0, beta=0.5)),
    "hard_swish": TableCase(single("HardSwish")),
    "tanh": TableCase(single("Tanh")),
    "exp": TableCase(single("Exp")),
    "erf": TableCase(single("Erf")),
    "softplus": TableCase(single("Softplus")),
    "gelu": TableCase(single("Gelu"), opset=20),
    "gelu_tanh": TableCase(single("Gelu", approximate="tanh"), opset=20),
    "gelu_erf": TableCase(gelu_erf),
    "silu": TableCase(silu),
    "hard_swish_mul": TableCase(hard_swish_mul),
    "hard_swish_arithmetic": TableCase(hard_swish_arithmetic),
}


MEAN_CASES = ("hard_swish", "sigmoid", "silu")
"""Functions also averaged over H, W with only the mean quantized (LookupMean), as dynamo's
MobileNetV3 ends: ReduceMean(HardSwish(x)) -> QuantizeLinear."""


def mean_of(b: GraphBuilder, x: str, case: str) -> tuple[str, list[str]]:
    """ReduceMean over H, W (keepdims) of the case's function of x, the function's nodes left float."""
    first = len(b.nodes)
    y, _ = CASES[case].function(b, x)
    float_nodes = [node.name for node in b.nodes[first:]]
    return b.node("ReduceMean", [y, b.const(np.array([2, 3], np.int64), "axes")], keepdims=1), float_nodes


def build(case: str, seed: int = 0) -> tuple[onnx.ModelProto, list[np.ndarray], list[str]]:
    """The float model, calibration inputs and the nodes to leave float."""
    b = GraphBuilder(seed)
    x = b.conv(b.input(SHAPE), 4, 4, pads=[1, 1, 1, 1])
    y, inner = CASES[case].function(b, x)
    out = b.conv(y, 4, 4, k=1)
    rng = np.random.default_rng(seed + 1)
    samples = [rng.normal(0, 1, SHAPE).astype(np.float32) for _ in range(16)]
    return b.model([out], opset=CASES[case].opset), samples, inner


def all_tables_model(symmetric: bool) -> onnx.ModelProto:
    """Every case on one shared conv output, one output each, and the means of MEAN_CASES,
    quantized (uint8 or int8 activations): one project, one C build for all of them."""
    from hwcodesign.quantize import quantize_qdq

    b = GraphBuilder(0)
    x = b.conv(b.input(SHAPE), 4, 4, pads=[1, 1, 1, 1])
    outputs, inner = [], []
    for case in sorted(CASES):
        y, nodes = CASES[case].function(b, x)
        outputs.append(b.conv(y, 4, 4, k=1))
        inner += nodes
    for case in MEAN_CASES:
        mean, nodes = mean_of(b, x, case)
        outputs.append(b.conv(mean, 4, 4, k=1))
        inner += nodes
    rng = np.random.default_rng(1)
    samples = [rng.normal(0, 1, SHAPE).astype(np.float32) for _ in range(16)]
    return quantize_qdq(b.model(outputs, opset=20), samples, symmetric_activations=symmetric, nodes_to_exclude=inner)
