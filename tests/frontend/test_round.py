"""ONNX Round as the frontend lowers it: a quantizer onto the integers (scale 1), typed by the
bounded range before it; an unbounded Round is refused naming the node."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from support.qdq_by_hand import conv_bn_relu_qdq

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.reference import Reference
from hwcodesign.sim.golden import run_golden


def rounded(activation: str) -> onnx.ModelProto:
    """conv_bn_relu_qdq with its Relu replaced by `activation` -> Round: Clip(0, 6), a uint8 Q/DQ
    pair of scale 0.03 (Round of a quantized tensor), or nothing."""
    model = conv_bn_relu_qdq()
    graph = model.graph
    relu = next(n for n in graph.node if n.op_type == "Relu")
    at = list(graph.node).index(relu)
    graph.node.remove(relu)
    source = "n"
    if activation == "clip":
        graph.initializer.extend([numpy_helper.from_array(np.float32(0), "lo"), numpy_helper.from_array(np.float32(6), "hi")])
        graph.node.insert(at, helper.make_node("Clip", ["n", "lo", "hi"], ["clipped"], name="clip"))
        source, at = "clipped", at + 1
    if activation == "quantized":
        graph.node.insert(at, helper.make_node("QuantizeLinear", ["n", "ys", "yz"], ["nq"], name="quant_n"))
        graph.node.insert(at + 1, helper.make_node("DequantizeLinear", ["nq", "ys", "yz"], ["nd"], name="dequant_n"))
        source, at = "nd", at + 2
    graph.node.insert(at, helper.make_node("Round", [source], ["r"], name="round"))
    return model


@pytest.mark.parametrize("activation", ["clip", "quantized"])
def test_a_bounded_round_is_the_integers_within_one_of_onnxruntime(tmp_path: Path, activation: str) -> None:
    """The Round layer's integers against onnxruntime's Round output: equal but at ties, where a
    quantized input's float32 value q * scale can land either side of x.5 (then one apart, as
    every requantization is within 1 LSB); the end output follows."""
    model = rounded(activation)
    onnx.save(model, tmp_path / "round.onnx")
    graph = optimize(load_onnx(tmp_path / "round.onnx"))
    (layer,) = [op for op in graph if op.output.scale == 1.0]
    assert layer.output.zero_point == 0 and (layer.output.dtype.bits, layer.output.dtype.signed) == (8, False)
    frames = np.random.default_rng(1).normal(0, 1, (4, 3, 10, 10)).astype(np.float32)
    reference = Reference(model, intermediates=["r"])
    expected = np.concatenate([reference.run({"x": frame[None]}, ["r"])["r"] for frame in frames])
    golden = run_golden(graph, graph.inputs[0].output.quantize(frames), keep_intermediates=True)[layer.output.name]
    differ = np.abs(golden - expected.reshape(golden.shape))
    assert differ.max() <= 1 and np.count_nonzero(differ) <= golden.size // 100
    assert len(np.unique(golden)) > 3


def test_an_unbounded_round_is_refused_naming_it(tmp_path: Path) -> None:
    onnx.save(rounded("none"), tmp_path / "unbounded.onnx")
    with pytest.raises(UnsupportedModelError, match=r"round.*rounds an unbounded value: put a Clip before it"):
        load_onnx(tmp_path / "unbounded.onnx")
