"""Tests for examples/build_models.py (example quantized ONNX models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from support.examples import build_models_module

from hwcodesign.reference import Reference

pytest.importorskip("onnxruntime")
pytest.importorskip("torch")

bm = build_models_module()


@pytest.fixture(scope="module")
def models(example_models: dict[str, Path]) -> dict[str, Path]:
    return example_models


def _runnable(models, key) -> onnx.ModelProto:
    model = onnx.load(str(models[key]))
    return bm.expand_qonnx_quant(model) if key == "cnv" else model


def test_file_names(models):
    assert models["w8a8"].name == "resnet8_qdq_w8a8.onnx"
    assert models["w4a8"].name == "resnet8_qdq_w4a8.onnx"
    assert models["cnv"].name == "cnv_qonnx_w4a4.onnx"
    assert all(p.is_file() for p in models.values())


@pytest.mark.parametrize("key", ["w8a8", "w4a8", "cnv", "float"])
def test_checker_and_io(models, key):
    model = onnx.load(str(models[key]))
    onnx.checker.check_model(model, full_check=key != "cnv")
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["logits"]
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 32, 32]


@pytest.mark.parametrize("key", ["w8a8", "w4a8", "cnv"])
def test_ort_runs_and_classifies(models, key):
    reference = Reference(_runnable(models, key))
    rng = np.random.default_rng(0)
    y = reference.first(rng.random((1, 3, 32, 32), dtype=np.float32))
    assert y.shape == (1, 10) and np.all(np.isfinite(y))
    # i.i.d. noise images all look alike to a trained classifier (constant argmax
    # is expected there), so "random inputs" are random samples of the synthetic
    # task: a random prototype plus random noise.
    x, labels = bm.synthetic_samples(20, stream=4)
    outs = reference.frames(x)
    assert np.all(np.isfinite(outs))
    preds = outs.argmax(axis=1)
    assert len(set(preds.tolist())) >= 3, preds
    assert np.mean(preds == labels) >= 0.6


@pytest.mark.parametrize("key", ["w8a8", "w4a8"])
def test_qdq_close_to_float(models, key):
    x, _ = bm.synthetic_samples(20, stream=5)
    ref = Reference(models["float"])
    q = Reference(models[key])
    agree = [np.argmax(ref.first(x[i : i + 1])) == np.argmax(q.first(x[i : i + 1])) for i in range(20)]
    assert np.mean(agree) >= 0.8


@pytest.mark.parametrize("key,wtype", [("w8a8", TensorProto.INT8), ("w4a8", TensorProto.INT4)])
def test_qdq_structure(models, key, wtype):
    model = onnx.load(str(models[key]))
    counts = bm.op_counts(model)
    assert counts["Conv"] == 9 and counts["Gemm"] == 1 and counts["Add"] == 3
    assert counts["QuantizeLinear"] > 0 and counts["DequantizeLinear"] > counts["QuantizeLinear"]
    assert all(":" not in op for op in counts)  # standard-domain Q/DQ only
    inits = {i.name: i for i in model.graph.initializer}
    dq_inputs = [
        inits[n.input[0]] for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits
    ]
    types = {t.data_type for t in dq_inputs}
    assert wtype in types and TensorProto.INT32 in types  # weights and int32 biases
    opset = {o.domain: o.version for o in model.opset_import}[""]
    assert opset >= (21 if wtype == TensorProto.INT4 else 17)


def test_qonnx_structure(models):
    model = onnx.load(str(models["cnv"]))
    quants = [n for n in model.graph.node if n.op_type == "Quant"]
    assert len(quants) == 10
    assert all(n.domain == bm.QONNX_DOMAIN for n in quants)
    assert {o.domain: o.version for o in model.opset_import}[bm.QONNX_DOMAIN] == 1
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    by_x = {n.input[0]: n for n in quants}
    q_in = by_x["input"]
    assert inits[q_in.input[3]] == 8 and np.isclose(inits[q_in.input[1]], 1 / 255)
    for w, shape in [
        ("conv1_w", (16, 1, 1, 1)),
        ("conv2_w", (32, 1, 1, 1)),
        ("conv3_w", (32, 1, 1, 1)),
        ("fc_w", ()),
    ]:
        n = by_x[w]
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        assert attrs["signed"] == 1 and attrs["narrow"] == 1 and attrs["rounding_mode"] == b"ROUND"
        assert inits[n.input[3]] == 4 and inits[n.input[1]].shape == shape
    counts = bm.op_counts(model)
    assert counts["Conv"] == 3 and counts["BatchNormalization"] == 2 and counts["MaxPool"] == 2
    assert counts["MatMul"] == 1 and counts["Relu"] == 3


def test_expanded_cnv_output_on_grid(models):
    model = onnx.load(str(models["cnv"]))
    expanded = bm.expand_qonnx_quant(model)
    assert not any(n.op_type == "Quant" for n in expanded.graph.node)
    assert bm.QONNX_DOMAIN not in {o.domain for o in expanded.opset_import}
    onnx.checker.check_model(expanded, full_check=True)
    scale = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}["logits_scale"]
    x, _ = bm.synthetic_samples(4, stream=6)
    reference = Reference(expanded)
    for i in range(4):
        q = reference.first(x[i : i + 1]) / scale
        assert np.allclose(q, np.round(q), atol=1e-3) and q.min() >= -128 and q.max() <= 127


# --- expand_qonnx_quant vs a numpy reference of QONNX Quant -----------------


def _quant_ref(x, scale, zeropt, bits, signed, narrow):
    """numpy QONNX Quant (as qonnx.custom_op.general.quant: clamp, then np.round)."""
    y = x / scale + zeropt
    if signed and bits == 1:
        y = np.where(y >= 0, np.float32(1), np.float32(-1))
    else:
        lo, hi = bm.qonnx_int_range(bits, signed, narrow)
        y = np.round(np.clip(y, np.float32(lo), np.float32(hi)))
    return ((y - zeropt) * scale).astype(np.float32)


def _single_quant_model(
    shape, scale, zeropt, bits, signed, narrow, rounding_mode="ROUND", const_bits=True, opset=13
):
    inits = [
        numpy_helper.from_array(np.asarray(scale, np.float32), "s"),
        numpy_helper.from_array(np.asarray(zeropt, np.float32), "z"),
    ]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)]
    if const_bits:
        inits.append(numpy_helper.from_array(np.asarray(float(bits), np.float32), "b"))
    else:
        inputs.append(helper.make_tensor_value_info("b", TensorProto.FLOAT, []))
    node = helper.make_node(
        "Quant",
        ["x", "s", "z", "b"],
        ["y"],
        domain=bm.QONNX_DOMAIN,
        signed=int(signed),
        narrow=int(narrow),
        rounding_mode=rounding_mode,
    )
    graph = helper.make_graph(
        [node], "q", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], inits
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(bm.QONNX_DOMAIN, 1)]
    )
    model.ir_version = 8
    return model


def _test_input(rng, shape, scale, zeropt, bits):
    span = float(2**bits) * 1.5
    k = rng.integers(-int(span) * 2, int(span) * 2, size=shape)
    ties = (k / 2.0 - zeropt) * scale  # exact half-way cases (scales are powers of 2)
    noise = (rng.uniform(-span, span, size=shape) - zeropt) * scale
    return np.where(rng.random(shape) < 0.5, ties, noise).astype(np.float32)


@pytest.mark.parametrize("bits", range(2, 9))
@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("narrow", [False, True])
def test_expand_matches_numpy(bits, signed, narrow):
    rng = np.random.default_rng(bits * 4 + signed * 2 + narrow)
    shape = [2, 3, 4, 5]
    scale = (2.0 ** rng.integers(-6, 2, size=(1, 3, 1, 1))).astype(np.float32)  # per-channel
    for zeropt in (0.0, 1.0 if not signed else -1.0):
        model = _single_quant_model(shape, scale, zeropt, bits, signed, narrow)
        x = _test_input(rng, shape, scale, zeropt, bits)
        y = Reference(bm.expand_qonnx_quant(model)).first(x)
        np.testing.assert_array_equal(y, _quant_ref(x, scale, np.float32(zeropt), bits, signed, narrow))
        q = y / scale + zeropt
        lo, hi = bm.qonnx_int_range(bits, signed, narrow)
        assert q.min() == lo and q.max() == hi  # range is exercised at both ends


def test_expand_random_scale_and_bipolar():
    rng = np.random.default_rng(7)
    shape = [64]
    x = rng.normal(0, 3, size=shape).astype(np.float32)
    scale = np.float32(0.173)
    for bits, signed in [(3, True), (5, False), (1, True)]:
        model = _single_quant_model(shape, scale, 0.0, bits, signed, False)
        y = Reference(bm.expand_qonnx_quant(model)).first(x)
        np.testing.assert_array_equal(y, _quant_ref(x, scale, np.float32(0), bits, signed, False))


def test_expand_rejects_unsupported():
    with pytest.raises(ValueError, match="rounding_mode"):
        bm.expand_qonnx_quant(_single_quant_model([4], 1.0, 0.0, 4, True, False, rounding_mode="FLOOR"))
    with pytest.raises(ValueError, match="bitwidth"):
        bm.expand_qonnx_quant(_single_quant_model([4], 1.0, 0.0, 4, True, False, const_bits=False))


def test_expand_opset11():
    x = np.linspace(-3, 3, 16, dtype=np.float32)
    model = _single_quant_model([16], 0.25, 0.0, 3, True, True, opset=11)
    y = Reference(bm.expand_qonnx_quant(model)).first(x)
    np.testing.assert_array_equal(y, _quant_ref(x, np.float32(0.25), np.float32(0), 3, True, True))
    with pytest.raises(ValueError, match="opset"):
        bm.expand_qonnx_quant(_single_quant_model([16], 0.25, 0.0, 1, True, False, opset=11))


def test_expand_leaves_input_model_untouched():
    model = _single_quant_model([4], 1.0, 0.0, 4, True, False)
    before = model.SerializeToString()
    bm.expand_qonnx_quant(model)
    assert model.SerializeToString() == before
