"""The host's QONNX quantizers (hwcodesign/partition/qonnx_ops.py) against qonnx's own numpy functions.

Each quantizer, made standard ONNX by `host_form`, runs on the driver's numpy executor and on
onnxruntime; on a constant input it is folded into an initializer. All three must equal qonnx's
`quant`, `binary_quant`, `trunc_v1` and `trunc_v2` (qonnx 1.0.0) bit for bit, signed zeros
included, on inputs that land on exact ties, right beside them, beyond both ends of the integer
range and at random, for every rounding mode and the signed / narrow variants. Bad parameters are
refused naming the node and the op.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from qonnx.custom_op.general.bipolar_quant import binary_quant
from qonnx.custom_op.general.quant import quant as qonnx_quant
from qonnx.custom_op.general.trunc import trunc_v1, trunc_v2
from support.onnx_models import IR_VERSION

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.host.program import program_bytes
from hwcodesign.host.runtime import load_program, run_program
from hwcodesign.partition.host_form import host_form
from hwcodesign.partition.qonnx_ops import ROUNDING
from hwcodesign.reference import Reference

DOMAIN = "qonnx.custom_op.general"
SHAPE = (2, 3, 40)
MODES = sorted(ROUNDING)
SIGNS = [(True, False), (True, True), (False, False), (False, True)]
SIGN_IDS = ["signed", "signed-narrow", "unsigned", "unsigned-narrow"]


def f32(value: object) -> np.ndarray:
    return np.asarray(value, np.float32)


def quantizer_model(op: str, params: list[np.ndarray], x: np.ndarray | None = None, version: int = 1,
                    opset: int = 17, **attributes: object) -> onnx.ModelProto:
    """One QONNX quantizer on a graph input "x" (or, given `x`, on a constant), its output "y"."""
    names = [f"p{i}" for i in range(len(params))]
    inits = [numpy_helper.from_array(value, name) for name, value in zip(names, params, strict=True)]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)]
    if x is not None:
        inits.append(numpy_helper.from_array(x, "x"))
        inputs = []
    node = helper.make_node(op, ["x", *names], ["y"], name="q", domain=DOMAIN, **attributes)
    graph = helper.make_graph([node], "q", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, SHAPE)],
                              inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(DOMAIN, version)],
                             ir_version=IR_VERSION)


def host_results(op: str, params: list[np.ndarray], x: np.ndarray, version: int = 1,
                 **attributes: object) -> dict[str, np.ndarray]:
    """y as the numpy executor and onnxruntime compute the host form, and as folded from a constant x."""
    form = host_form(quantizer_model(op, params, version=version, **attributes))
    assert {node.domain for node in form.graph.node} == {""} and [o.domain for o in form.opset_import] == [""]
    folded = host_form(quantizer_model(op, params, x, version=version, **attributes))
    assert not folded.graph.node
    return {
        "numpy": run_program(load_program(program_bytes(form)), {"x": x})["y"],
        "onnxruntime": Reference(form).run({"x": x})["y"],
        "folded": numpy_helper.to_array(next(init for init in folded.graph.initializer if init.name == "y")),
    }


def assert_bitwise(results: dict[str, np.ndarray], expected: np.ndarray) -> None:
    for name, got in results.items():
        assert (got.dtype, got.shape) == (expected.dtype, expected.shape), name
        np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32), err_msg=name)


def grid_inputs(rng: np.random.Generator, scale: np.ndarray, zero_point: np.ndarray, low: float,
                high: float) -> np.ndarray:
    """x whose x / scale + zero_point is an exact half (a tie), a float beside one, or random, from
    beyond the low end of [low, high] to beyond its high end (each channel starts with 0, -0 and a
    value past either end). With power-of-two scales the ties are exact."""
    grid = rng.integers(int(2 * low) - 6, int(2 * high) + 7, SHAPE) / 2.0
    grid[..., 2:4] = (low - 1.5, high + 1.5)
    x = f32((grid - zero_point) * scale)
    beside = np.nextafter(x, np.where(rng.random(SHAPE) < 0.5, np.inf, -np.inf).astype(np.float32))
    noise = f32((rng.uniform(low - 3, high + 3, SHAPE) - zero_point) * scale)
    pick = rng.integers(0, 3, SHAPE)
    pick[..., :4] = 0
    x = np.where(pick == 0, x, np.where(pick == 1, beside, noise)).astype(np.float32)
    x[..., :2] = (0.0, -0.0)
    return x


def scales(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """(scale, zero point): per-channel powers of two with zero point 0, and a random per-tensor
    scale with a non-zero zero point."""
    return [(f32(2.0 ** rng.integers(-6, 2, (1, SHAPE[1], 1))), f32(0.0)),
            (f32(rng.uniform(0.01, 0.3)), f32(3.0))]


@pytest.mark.parametrize(("signed", "narrow"), SIGNS, ids=SIGN_IDS)
@pytest.mark.parametrize("mode", MODES)
def test_quant_equals_qonnx(mode: str, signed: bool, narrow: bool) -> None:
    rng = np.random.default_rng(MODES.index(mode) * 4 + SIGNS.index((signed, narrow)))
    for bits in (1, 3, 8):
        low = -(2 ** (bits - 1)) + int(narrow) if signed else 0
        high = 2 ** (bits - 1) - 1 if signed else 2**bits - 1 - int(narrow)
        for scale, zero_point in scales(rng):
            x = grid_inputs(rng, scale, zero_point, low, high)
            expected = qonnx_quant(x, scale, zero_point, f32(bits), signed, narrow, mode).astype(np.float32)
            results = host_results("Quant", [scale, zero_point, f32(bits)], x, signed=int(signed),
                                   narrow=int(narrow), rounding_mode=mode)
            assert_bitwise(results, expected)
            grid = np.round(expected / scale + zero_point)  # random scales: the integers up to float rounding
            if not (signed and bits == 1):  # both ends of the range are reached
                assert (grid.min(), grid.max()) == (low, high)


def test_bipolar_quant_equals_qonnx() -> None:
    rng = np.random.default_rng(5)
    for scale in (f32(0.25), f32(rng.uniform(0.1, 2.0, (1, SHAPE[1], 1)))):
        x = grid_inputs(rng, f32(1.0), f32(0.0), -2, 2)
        assert_bitwise(host_results("BipolarQuant", [scale], x), binary_quant(x, scale))


def accumulators(rng: np.random.Generator, scale: np.ndarray, bits: int) -> np.ndarray:
    """Values on the input grid of a Trunc (integers of `bits` bits times the scale), zeros included."""
    x = f32(rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), SHAPE) * scale)
    x[..., :2] = (0.0, -0.0)
    return x


@pytest.mark.parametrize("mode", MODES)
def test_trunc_version_1_equals_qonnx(mode: str) -> None:
    rng = np.random.default_rng(40 + MODES.index(mode))
    scale, zero_point = f32(2.0 ** -4), f32(0.0)
    x = accumulators(rng, scale, 12)
    expected = trunc_v1(x, scale, zero_point, f32(12), f32(6), mode)
    results = host_results("Trunc", [scale, zero_point, f32(12), f32(6)], x, rounding_mode=mode)
    assert_bitwise(results, expected)


@pytest.mark.parametrize(("signed", "narrow"), SIGNS, ids=SIGN_IDS)
@pytest.mark.parametrize("mode", MODES)
def test_trunc_version_2_equals_qonnx(mode: str, signed: bool, narrow: bool) -> None:
    rng = np.random.default_rng(60 + MODES.index(mode) * 4 + SIGNS.index((signed, narrow)))
    scale = f32(2.0 ** rng.integers(-6, -2, (1, SHAPE[1], 1)))
    output_scale, zero_point = f32(scale * 8), f32(0.0)
    x = accumulators(rng, scale, 10)  # 10 bits shifted by 3 overflow the 5-bit output: the clamp works
    expected = trunc_v2(x, scale, zero_point, f32(10), int(narrow), int(signed), output_scale, f32(5), mode)
    results = host_results("Trunc", [scale, zero_point, f32(10), output_scale, f32(5)], x, version=2,
                           rounding_mode=mode, signed=int(signed), narrow=int(narrow))
    assert_bitwise(results, expected)


@pytest.mark.parametrize(("op", "params", "version", "attributes", "message"), [
    ("Quant", [f32(0.1), f32(0), f32(2.5)], 1, {}, r"its bit width \[2.5\] must be one whole number"),
    ("Quant", [np.float64(0.1), f32(0), f32(4)], 1, {}, "its scale is float64: the host computes QONNX"),
    ("Quant", [f32(0.1), f32(0), f32(4)], 1, {"rounding_mode": "STOCHASTIC"}, "rounding_mode 'STOCHASTIC' is none"),
    ("Quant", [f32(0.1), f32(0), f32(4)], 1, {"signed": 2}, "attribute signed=2 must be 0 or 1"),
    ("Trunc", [f32(0.1), f32(0), f32(8), f32(4)], 2, {}, r"has 5 input\(s\) and 1 output\(s\); version 2 of Trunc .* takes x, scale, zero point, input bit "
     "width, output scale"),
    ("Trunc", [f32(0.1), f32(0), np.int64(8), np.int64(4)], 1, {}, "its bit widths are int64: qonnx would compute its power-of-two scale, and then the output, in float64"),
], ids=["fractional-bits", "float64-scale", "rounding-mode", "signed", "trunc-inputs", "trunc-int-bits"])
def test_bad_parameters_are_refused_by_name(op: str, params: list, version: int, attributes: dict, message: str) -> None:
    model = quantizer_model(op, [np.asarray(p) for p in params], version=version, **attributes)
    with pytest.raises(UnsupportedModelError, match=rf"node 'q' \(op {op}\): {message}"):
        host_form(model)


def test_an_activation_quantizer_needs_the_opset_of_its_ops_a_folded_one_does_not() -> None:
    params = [f32(0.1), f32(0), f32(4)]
    with pytest.raises(UnsupportedModelError, match=r"node 'q' \(op Quant\): .* Round needs opset 11; the model "
                       "imports opset 10"):
        host_form(quantizer_model("Quant", params, opset=10))
    x = np.linspace(-1, 1, np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)
    folded = host_form(quantizer_model("Quant", params, x, opset=10))
    assert not folded.graph.node and [o.domain for o in folded.opset_import] == [""]


def test_a_quantizer_of_integers_is_refused_by_name() -> None:
    model = quantizer_model("Quant", [f32(0.1), f32(0), f32(4)], np.ones(SHAPE, np.int8))
    with pytest.raises(UnsupportedModelError, match=r"node 'q' \(op Quant\): its input 'x' is INT8: the host "
                       "computes QONNX quantizers in float32"):
        host_form(model)


def test_an_integer_zero_point_of_zero_equals_qonnx_to_float32() -> None:
    """QKeras's QONNX exports (the zoo's jet tagger) store a zero point of 0 and the bit width as
    int64. qonnx's numpy then computes in float64; the host's float32 form adds and subtracts the
    same 0, so the quantized integers are the same and the outputs agree to float32 rounding."""
    rng = np.random.default_rng(4)
    params = [f32(0.03125), np.asarray(0, np.int64), np.asarray(6, np.int64)]
    x = f32(rng.normal(0, 1, SHAPE))
    expected = qonnx_quant(x, *params, signed=1, narrow=0, rounding_mode="ROUND")
    assert expected.dtype == np.float64
    for where, result in host_results("Quant", params, x, signed=1, narrow=0, rounding_mode="ROUND").items():
        assert result.dtype == np.float32, where
        assert np.array_equal(result, expected.astype(np.float32)), where
