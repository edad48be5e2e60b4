"""The host parts' executor (hwcodesign/host/runtime.py) against onnxruntime, torch and the HOST spec.

Every numpy op runs on a small graph built with onnx.helper and is compared with onnxruntime under
the reference semantics (optimisations off): float ops to 1e-5, integer, index and shape ops exactly.
GRU and LSTM heads exported from torch are compared with onnxruntime and with torch itself. HostModel
runs a normalising pre part, a fake accelerator and a stateful GRU post part over a sequence of frames.
The module must also run where hwcodesign is not installed: the driver embeds its source.
"""

from __future__ import annotations

import ast
import io
import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from support.onnx_models import IR_VERSION

from hwcodesign.boards import load_board
from hwcodesign.codegen.driver import driver_source
from hwcodesign.errors import UnsupportedModelError
from hwcodesign.host.program import host_runtime_source, numpy_missing, program_bytes
from hwcodesign.host.runtime import HOST_OPS, HostError, HostModel, HostPart, load_program, run_program
from hwcodesign.reference import Reference

RNG = np.random.default_rng(18)


def normal(*shape: int) -> np.ndarray:
    return RNG.normal(size=shape).astype(np.float32)


def positive(*shape: int) -> np.ndarray:
    return RNG.uniform(0.5, 3.0, size=shape).astype(np.float32)


def ints(low: int, high: int, *shape: int, dtype: type = np.int64) -> np.ndarray:
    return RNG.integers(low, high, size=shape).astype(dtype)


def i64(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


def narrow(name: str, kind: int, dims: list[int], values: list[int]) -> TensorProto:
    """An INT4/UINT4 initializer (numpy has no 4-bit type; onnx packs it)."""
    return helper.make_tensor(name, kind, dims, values)


@dataclass
class Case:
    """One graph: its nodes, graph inputs fed at run time, initializers, opset and how to compare."""

    id: str
    nodes: list[onnx.NodeProto]
    feeds: dict[str, np.ndarray]
    constants: dict[str, np.ndarray | TensorProto] = field(default_factory=dict)
    opset: int = 17
    exact: bool = False


def node(op: str, inputs: list[str], outputs: list[str] | None = None, **attributes: object) -> onnx.NodeProto:
    return helper.make_node(op, inputs, outputs or ["y"], name=f"{op.lower()}_node", **attributes)


def one(op: str, feeds: dict[str, np.ndarray], constants: dict | None = None, opset: int = 17,
        exact: bool = False, outputs: list[str] | None = None, id: str | None = None, **attributes: object) -> Case:
    """A single-node case; the node's inputs are the feeds then the constants, in the order given."""
    constants = constants or {}
    names = [name if not name.startswith("_") else "" for name in [*feeds, *constants]]
    return Case(id or op, [node(op, names, outputs, **attributes)], feeds,
                {name: value for name, value in constants.items() if not name.startswith("_")}, opset, exact)


def model_of(case: Case) -> onnx.ModelProto:
    inputs = [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype), value.shape)
              for name, value in case.feeds.items()]
    initializers = [value if isinstance(value, TensorProto) else numpy_helper.from_array(value, name)
                    for name, value in case.constants.items()]
    outputs = [helper.make_empty_tensor_value_info(name) for name in case.nodes[-1].output if name]
    graph = helper.make_graph(case.nodes, case.id, inputs, outputs, initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", case.opset)], ir_version=IR_VERSION)


def numpy_run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return run_program(load_program(program_bytes(model)), feeds)


def assert_same(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray], exact: bool, rtol: float = 1e-5) -> None:
    assert sorted(actual) == sorted(expected)
    for name, want in expected.items():
        if want.dtype.name in ("int4", "uint4"):  # onnxruntime's 4-bit outputs; the executor stores them wide
            want = want.astype(np.int8 if want.dtype.name == "int4" else np.uint8)
        got = actual[name]
        assert (got.shape, got.dtype) == (want.shape, want.dtype), name
        if exact:
            np.testing.assert_array_equal(got, want, err_msg=name)
        else:
            np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-5, err_msg=name)


def elementwise_cases() -> list[Case]:
    a, b = normal(2, 3, 4), normal(3, 1)
    signed = ints(-20, 20, 3, 4)
    return [
        one("Add", {"a": a, "b": normal(4)}), one("Sub", {"a": a, "b": b}), one("Mul", {"a": a}, {"c": normal(1, 4)}),
        one("Div", {"a": a, "b": positive(3, 4)}),
        one("Div", {"a": signed, "b": np.where(signed == 0, 3, signed)[::-1].copy()}, exact=True, id="Div-int"),
        one("Pow", {"a": positive(2, 5), "b": normal(5)}),
        one("Min", {"a": a, "b": b, "c": normal(4)}), one("Max", {"a": a, "b": b, "c": normal(4)}),
        *[one(op, {"a": ints(0, 3, 3, 4), "b": ints(0, 3, 4)}, exact=True)
          for op in ("Greater", "Less", "Equal", "GreaterOrEqual", "LessOrEqual")],
        one("Where", {"c": RNG.random((3, 4)) > 0.5, "a": normal(3, 4), "b": normal(4)}, exact=True),
        *[one(op, {"x": normal(3, 5) * 4}) for op in ("Relu", "Sigmoid", "Tanh", "Erf", "Exp", "Neg", "Abs", "Identity")],
        one("Sigmoid", {"x": np.array([-100, -30, 0, 30, 100], np.float32)}, id="Sigmoid-saturated"),
        # rounding, with ties (half to even for Round) and signed zeros
        *[one(op, {"x": np.concatenate([normal(12) * 4, np.arange(-3.5, 4, 0.5, dtype=np.float32),
                                        np.array([-0.0, 0.0], np.float32)])}, exact=True)
          for op in ("Round", "Floor", "Ceil", "Sign")],
        one("Sign", {"x": ints(-3, 4, 3, 4)}, exact=True, id="Sign-int"),
        one("HardSigmoid", {"x": normal(3, 5) * 4}, alpha=0.3, beta=0.4), one("HardSwish", {"x": normal(3, 5) * 4}),
        one("Softplus", {"x": normal(3, 5) * 8}),
        one("Gelu", {"x": normal(3, 5) * 4}, opset=20), one("Gelu", {"x": normal(3, 5) * 4}, opset=20,
                                                           approximate="tanh", id="Gelu-tanh"),
        one("LeakyRelu", {"x": normal(3, 5)}, alpha=0.2),
        one("Sqrt", {"x": positive(4, 3)}), one("Log", {"x": positive(4, 3)}),
        one("Clip", {"x": normal(4, 5)}, {"lo": np.float32(-0.5), "hi": np.float32(0.7)}),
        one("Clip", {"x": normal(4, 5)}, {"_lo": None, "hi": np.float32(0.3)}, id="Clip-max-only"),
        one("Clip", {"x": normal(4, 5)}, opset=6, min=-0.2, max=0.4, id="Clip-attributes"),
        one("Cast", {"x": normal(3, 4) * 10}, exact=True, to=TensorProto.INT32),
        one("Cast", {"x": ints(-9, 9, 3, 4)}, exact=True, to=TensorProto.FLOAT, id="Cast-to-float"),
    ]


def reduction_cases() -> list[Case]:
    ties = ints(0, 3, 3, 4, 5).astype(np.float32)
    return [
        one("Softmax", {"x": normal(2, 3, 4)}, axis=1), one("Softmax", {"x": normal(2, 3, 4)}, opset=11, axis=1,
                                                           id="Softmax-opset11"),
        one("LogSoftmax", {"x": normal(2, 3, 4)}),
        one("ArgMax", {"x": ties}, exact=True, axis=1, keepdims=0, select_last_index=1),
        one("ArgMax", {"x": ties}, exact=True, id="ArgMax-defaults"),
        one("ArgMin", {"x": ties}, exact=True, axis=-1),
        one("ReduceMean", {"x": normal(2, 3, 4)}, opset=13, axes=[1, -1], keepdims=0),
        one("ReduceSum", {"x": normal(2, 3, 4), "axes": i64(0)}, opset=13),
        one("ReduceMax", {"x": normal(2, 3, 4), "axes": i64(-1)}, opset=18, keepdims=0),
        one("ReduceMin", {"x": normal(2, 3, 4)}, opset=18, id="ReduceMin-all"),
        one("ReduceMean", {"x": normal(2, 3)}, opset=18, noop_with_empty_axes=1, id="ReduceMean-noop"),
        one("GlobalAveragePool", {"x": normal(2, 3, 5, 4)}), one("GlobalMaxPool", {"x": normal(2, 3, 5, 4)}),
    ]


def linear_cases() -> list[Case]:
    return [
        one("Gemm", {"a": normal(4, 3), "b": normal(5, 4)}, {"c": normal(5)}, alpha=0.5, beta=2.0, transA=1, transB=1),
        one("Gemm", {"a": normal(2, 3)}, {"b": normal(3, 6)}, id="Gemm-no-C"),
        one("MatMul", {"a": normal(2, 3, 4), "b": normal(4, 5)}),
        one("BatchNormalization", {"x": normal(2, 3, 4, 4)},
            {"s": normal(3), "b": normal(3), "m": normal(3), "v": positive(3)}, epsilon=1e-3),
    ]


def shape_cases() -> list[Case]:
    x = normal(2, 3, 4)
    return [
        one("Reshape", {"x": x}, {"s": i64(0, -1, 2)}, exact=True),
        one("Reshape", {"x": x}, {"s": i64(4, 6)}, opset=14, allowzero=1, exact=True, id="Reshape-allowzero"),
        one("Flatten", {"x": x}, exact=True, axis=2), one("Flatten", {"x": x}, exact=True, axis=0, id="Flatten-0"),
        one("Squeeze", {"x": normal(1, 3, 1, 2)}, {"axes": i64(-2)}, exact=True, opset=13),
        one("Squeeze", {"x": normal(1, 3, 1, 2)}, exact=True, id="Squeeze-all"),
        one("Squeeze", {"x": normal(1, 3, 1, 2)}, exact=True, opset=11, axes=[0], id="Squeeze-attribute"),
        one("Unsqueeze", {"x": x}, {"axes": i64(0, -1)}, exact=True, opset=13),
        one("Unsqueeze", {"x": x}, exact=True, opset=11, axes=[1], id="Unsqueeze-attribute"),
        one("Transpose", {"x": x}, exact=True, perm=[1, 2, 0]), one("Transpose", {"x": x}, exact=True, id="Transpose-default"),
        one("Concat", {"a": normal(2, 3, 1), "b": x, "c": normal(2, 3, 2)}, exact=True, axis=-1),
        one("Shape", {"x": x}, exact=True, opset=15, start=1, end=-1),
        one("Gather", {"x": x, "i": i64(-1, 0, 2, -3).reshape(2, 2)}, exact=True, axis=1),
        one("Gather", {"x": x, "i": np.array(-1, np.int64)}, exact=True, id="Gather-scalar"),
        one("Slice", {"x": normal(6, 7)}, {"st": i64(-1, 1), "en": i64(-100, 100), "ax": i64(0, 1), "sp": i64(-2, 3)},
            exact=True),
        one("Slice", {"x": normal(6, 7)}, {"st": i64(1), "en": i64(-1)}, exact=True, id="Slice-no-axes"),
        one("Expand", {"x": normal(3, 1)}, {"s": i64(2, 1, 4)}, exact=True),
        one("ConstantOfShape", {"s": i64(2, 3)}, exact=True, value=numpy_helper.from_array(np.array([1.5], np.float32))),
        one("Constant", {}, exact=True, value=numpy_helper.from_array(normal(2, 2))),
        one("Constant", {}, exact=True, value_floats=[1.0, 2.5], id="Constant-floats"),
        one("Constant", {}, exact=True, value_int=7, id="Constant-int"),
        one("Pad", {"x": x}, {"p": i64(0, -1, 2, 1, 0, -1), "v": np.float32(2.5)}, exact=True),
        one("Pad", {"x": x}, {"p": i64(0, 1, 2, 0, 2, 1)}, exact=True, mode="reflect", id="Pad-reflect"),
        one("Pad", {"x": x}, {"p": i64(1, 2, 0, 3), "_v": None, "ax": i64(-1, 0)}, opset=18, exact=True, mode="edge",
            id="Pad-edge-axes"),
    ]


def four_bit_round_trip(id: str, x: np.ndarray, scale: np.ndarray, zero: TensorProto, axis: int = 1) -> Case:
    """QuantizeLinear to a 4-bit type and back: onnxruntime returns no 4-bit arrays to numpy, and the
    dequantization is exact, so the floats show the rounding and the 4-bit saturation."""
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="quantizelinear_node", axis=axis),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="dequantizelinear_node", axis=axis)]
    return Case(id, nodes, {"x": x}, {"s": scale, "z": zero}, opset=21, exact=True)


def quantization_cases() -> list[Case]:
    ties = (np.arange(-12, 12, dtype=np.float32) * 0.25).reshape(2, 3, 4)  # x / 0.5 hits every .5 tie
    return [
        one("QuantizeLinear", {"x": ties}, {"s": np.float32(0.5), "z": np.uint8(7)}, exact=True),
        one("QuantizeLinear", {"x": normal(2, 3, 4) * 300}, {"s": positive(3), "z": ints(-5, 5, 3, dtype=np.int8)},
            exact=True, axis=1, id="QuantizeLinear-per-axis-int8"),
        one("QuantizeLinear", {"x": normal(2, 3) * 4}, {"s": np.float32(0.1)}, exact=True, id="QuantizeLinear-no-zero"),
        four_bit_round_trip("QuantizeLinear-int4", ties, np.float32(0.5), narrow("z", TensorProto.INT4, [], [1])),
        four_bit_round_trip("QuantizeLinear-uint4-per-axis", normal(2, 3, 4) * 8, positive(4),
                            narrow("z", TensorProto.UINT4, [4], [0, 3, 8, 15]), axis=-1),
        one("QuantizeLinear", {"x": normal(2, 6) * 8}, {"s": positive(2, 3)}, exact=True, opset=21, axis=1,
            block_size=2, output_dtype=TensorProto.INT8, id="QuantizeLinear-blocked"),
        one("DequantizeLinear", {"x": ints(0, 256, 2, 3, dtype=np.uint8)}, {"s": np.float32(0.3), "z": np.uint8(128)},
            exact=True),
        one("DequantizeLinear", {"x": ints(-128, 128, 4, 3, dtype=np.int8)}, {"s": positive(4), "z": ints(-3, 3, 4, dtype=np.int8)},
            exact=True, axis=0, id="DequantizeLinear-per-axis"),
        one("DequantizeLinear", {}, {"x": narrow("x", TensorProto.INT4, [2, 3], [-8, -1, 0, 3, 7, 5]),
                                     "s": np.float32(0.25), "z": narrow("z", TensorProto.INT4, [], [-1])},
            exact=True, opset=21, id="DequantizeLinear-int4"),
        one("DequantizeLinear", {"x": ints(-2**20, 2**20, 5, dtype=np.int32)}, {"s": np.float32(1e-3)}, exact=True,
            id="DequantizeLinear-int32"),
    ]


def window_cases() -> list[Case]:
    x = normal(2, 4, 9, 8)
    return [
        one("Conv", {"x": x}, {"w": normal(6, 4, 3, 3)}, pads=[1, 1, 1, 1]),
        one("Conv", {"x": x}, {"w": normal(6, 2, 3, 2), "b": normal(6)}, group=2, strides=[2, 1], dilations=[2, 2],
            pads=[0, 1, 2, 0], id="Conv-grouped-dilated"),
        one("Conv", {"x": x}, {"w": normal(4, 1, 3, 3)}, group=4, strides=[2, 2], auto_pad="SAME_UPPER", id="Conv-depthwise-same"),
        one("MaxPool", {"x": x}, exact=True, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
        one("MaxPool", {"x": x}, exact=True, kernel_shape=[2, 2], dilations=[2, 1], id="MaxPool-dilated"),
        one("AveragePool", {"x": x}, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 1, 0], ceil_mode=1),
        one("AveragePool", {"x": x}, kernel_shape=[3, 2], strides=[2, 3], pads=[1, 1, 0, 1], ceil_mode=1,
            count_include_pad=1, id="AveragePool-count-pad"),
        one("AveragePool", {"x": x}, kernel_shape=[2, 3], strides=[2, 2], auto_pad="SAME_LOWER", id="AveragePool-same"),
        # ceil_mode's last window would start in the end padding: onnxruntime drops it
        one("AveragePool", {"x": normal(1, 2, 4, 6)}, kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1], ceil_mode=1,
            count_include_pad=1, id="AveragePool-ceil-drops-window"),
        one("MaxPool", {"x": normal(1, 2, 4, 5)}, exact=True, kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1],
            ceil_mode=1, id="MaxPool-ceil-drops-window"),
    ]


def recurrent_cases() -> list[Case]:
    """GRU and LSTM forms torch does not export: reverse, no linear_before_reset, clip, peepholes, coupling."""
    hidden, inputs, seq = 5, 3, 4

    def weights(gates: int, directions: int) -> dict[str, np.ndarray]:
        return {"w": normal(directions, gates * hidden, inputs), "r": normal(directions, gates * hidden, hidden),
                "b": normal(directions, 2 * gates * hidden)}

    return [
        one("GRU", {"x": normal(seq, 2, inputs)}, {**weights(3, 2), "_l": None, "h": normal(2, 2, hidden)},
            outputs=["y", "yh"], hidden_size=hidden, direction="bidirectional", id="GRU-bidirectional"),
        one("GRU", {"x": normal(seq, 1, inputs)}, weights(3, 1), outputs=["y", "yh"], hidden_size=hidden,
            direction="reverse", linear_before_reset=1, id="GRU-reverse"),
        one("GRU", {"x": normal(seq, 2, inputs) * 3}, {**weights(3, 1), "_l": None, "h": normal(1, 2, hidden)},
            outputs=["y", "yh"], hidden_size=hidden, clip=0.8, id="GRU-clip"),
        one("LSTM", {"x": normal(seq, 2, inputs)},
            {**weights(4, 2), "_l": None, "h": normal(2, 2, hidden), "c": normal(2, 2, hidden), "p": normal(2, 3 * hidden)},
            outputs=["y", "yh", "yc"], hidden_size=hidden, direction="bidirectional", id="LSTM-peepholes"),
        one("LSTM", {"x": normal(seq, 1, inputs)}, weights(4, 1), outputs=["y", "", "yc"], hidden_size=hidden,
            direction="reverse", input_forget=1, id="LSTM-reverse-coupled"),
    ]


CASES = [*elementwise_cases(), *reduction_cases(), *linear_cases(), *shape_cases(), *quantization_cases(),
         *window_cases(), *recurrent_cases()]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_the_numpy_executor_agrees_with_onnxruntime(case: Case) -> None:
    model = model_of(case)
    assert_same(numpy_run(model, case.feeds), Reference(model).run(case.feeds), case.exact)


def test_every_op_of_the_table_is_checked() -> None:
    assert sorted(HOST_OPS) == sorted({case.nodes[0].op_type for case in CASES})


class Head(torch.nn.Module):
    """A recurrent head as ESDA's tracker has: batch_first, forward(x, state) -> (y, state)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        make = torch.nn.GRU if kind == "gru" else torch.nn.LSTM
        self.rnn = make(6, 8, batch_first=True, bidirectional=kind == "lstm")

    def forward(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y, final = self.rnn(x, state[0] if len(state) == 1 else state)
        return (y, final) if isinstance(final, torch.Tensor) else (y, *final)


def exported(module: torch.nn.Module, args: tuple[torch.Tensor, ...], inputs: list[str],
             outputs: list[str]) -> onnx.ModelProto:
    buffer = io.BytesIO()
    torch.onnx.export(module.eval(), args, buffer, dynamo=False, input_names=inputs, output_names=outputs,
                      opset_version=17)
    return onnx.load_from_string(buffer.getvalue())


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_torch_recurrent_heads_agree_with_onnxruntime_and_torch(kind: str) -> None:
    torch.manual_seed(0)
    head = Head(kind)
    states = ["h0"] if kind == "gru" else ["h0", "c0"]
    feeds = {"x": normal(1, 7, 6), **{name: normal(2 if kind == "lstm" else 1, 1, 8) for name in states}}
    model = exported(head, tuple(torch.from_numpy(value) for value in feeds.values()), list(feeds),
                     ["y", "hn"] if kind == "gru" else ["y", "hn", "cn"])
    assert {node.op_type for node in model.graph.node} >= {kind.upper()}
    actual = numpy_run(model, feeds)
    assert_same(actual, Reference(model).run(feeds), exact=False)
    with torch.no_grad():
        expected = head(*(torch.from_numpy(value) for value in feeds.values()))
    for got, want in zip(actual.values(), expected):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-5)


# ---- programs -----------------------------------------------------------------------------------------------


def test_a_program_is_byte_identical_for_the_same_model() -> None:
    model = model_of(linear_cases()[-1])
    assert program_bytes(model) == program_bytes(onnx.load_from_string(model.SerializeToString()))


def test_an_op_without_numpy_implementation_is_listed_and_refused_by_node() -> None:
    case = Case("topk", [node("Relu", ["x"], ["r"]), node("TopK", ["r", "k"], ["y", "i"])], {"x": normal(5)},
                {"k": i64(2)})
    model = model_of(case)
    assert numpy_missing(model) == ["TopK"]
    with pytest.raises(HostError, match=r"node 'topk_node' \(op TopK\).*needs onnxruntime"):
        numpy_run(model, case.feeds)


def test_a_subgraph_attribute_is_refused_by_name() -> None:
    branch = helper.make_graph([node("Identity", ["x"], ["z"])], "branch", [], [helper.make_empty_tensor_value_info("z")])
    case = Case("if", [node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)], {"c": np.array(True)})
    with pytest.raises(UnsupportedModelError, match=r"node 'if_node' \(op If\): attribute 'else_branch' holds a subgraph"):
        program_bytes(model_of(case))


def test_an_unreadable_program_is_a_host_error(tmp_path: Path) -> None:
    (tmp_path / "p.npz").write_bytes(b"not a zip")
    with pytest.raises(HostError, match="not a readable host program"):
        load_program(tmp_path / "p.npz")


# ---- the whole model: pre, accelerator, stateful post ----------------------------------------------------------

MEAN, STD = np.array([0.5, -1.0, 2.0, 0.0], np.float32), np.array([2.0, 0.5, 1.0, 4.0], np.float32)
PROJECTION = RNG.normal(size=(4, 6)).astype(np.float32)


class PostHead(torch.nn.Module):
    """The post part: a GRU step over the accelerator's features, then class probabilities."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = torch.nn.GRU(6, 8, batch_first=True)
        self.fc = torch.nn.Linear(8, 3)

    def forward(self, features: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, hn = self.rnn(features, h0)
        return torch.softmax(self.fc(y[:, -1]), dim=-1), hn


def accelerator(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A stand-in for the board: float frames by port name in, float features by port name out."""
    return {"acc_out": np.tanh(batch["acc_in"] @ PROJECTION)[:, None, :]}


HOST_SPEC = {
    "inputs": [{"name": "x", "shape": [1, 4], "dtype": "float32"}],
    "outputs": [{"name": "probs", "shape": [1, 3], "dtype": "float32"}],
    "state": [{"input": "h0", "output": "hn", "shape": [1, 1, 8], "dtype": "float32"}],
    "pre": {"onnx": "host_pre.onnx", "program": "host_pre.npz", "inputs": ["x"], "outputs": ["x_norm"]},
    "post": {"onnx": "host_post.onnx", "program": "host_post.npz", "inputs": ["features", "h0"],
             "outputs": ["probs", "hn"]},
    "accelerator_inputs": {"x_norm": "acc_in"},
    "accelerator_outputs": {"acc_out": "features"},
}


@pytest.fixture(scope="module")
def host_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PostHead]:
    """A driver folder with both parts as ONNX and as programs, and the torch head for the expected values."""
    folder = tmp_path_factory.mktemp("driver")
    pre = model_of(Case("pre", [node("Sub", ["x", "mean"], ["centered"]), node("Div", ["centered", "std"], ["x_norm"])],
                        {"x": normal(1, 4)}, {"mean": MEAN, "std": STD}))
    torch.manual_seed(1)
    head = PostHead().eval()
    post = exported(head, (torch.zeros(1, 1, 6), torch.zeros(1, 1, 8)), ["features", "h0"], ["probs", "hn"])
    for name, model in (("host_pre", pre), ("host_post", post)):
        onnx.save(model, folder / f"{name}.onnx")
        (folder / f"{name}.npz").write_bytes(program_bytes(model))
    return folder, head


def expected_probs(head: PostHead, frames: np.ndarray) -> np.ndarray:
    """The whole model on a sequence: the GRU over all frames at once (what carrying state means)."""
    features = np.tanh((frames - MEAN) / STD @ PROJECTION)[None]
    with torch.no_grad():
        y, _ = head.rnn(torch.from_numpy(features), torch.zeros(1, 1, 8))
        return torch.softmax(head.fc(y[0]), dim=-1).numpy()


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("backend", ["numpy", "onnxruntime"])
def test_the_host_model_carries_state_across_frames_and_batches(host_folder: tuple[Path, PostHead], backend: str) -> None:
    folder, head = host_folder
    frames = RNG.normal(size=(6, 4)).astype(np.float32)
    model = HostModel(folder, HOST_SPEC, backend=backend)
    assert model.backend == backend
    whole = expected_probs(head, frames)
    first = model.run_batch({"x": frames[:4]}, accelerator)["probs"]
    second = model.run_batch({"x": frames[4:]}, accelerator)["probs"]
    np.testing.assert_allclose(np.concatenate([first, second]), whole, rtol=1e-5, atol=1e-6)
    assert np.abs(model.state["h0"]).max() > 0
    model.reset()
    assert not model.state["h0"].any()
    np.testing.assert_allclose(model.run_batch({"x": frames[4:]}, accelerator)["probs"],
                               expected_probs(head, frames[4:]), rtol=1e-5, atol=1e-6)
    assert model.seconds["pre"] > 0 and model.seconds["post"] > 0


def test_the_backends_agree_and_auto_prefers_onnxruntime(host_folder: tuple[Path, PostHead]) -> None:
    folder, _ = host_folder
    frames = RNG.normal(size=(5, 4)).astype(np.float32)
    results = {backend: HostModel(folder, HOST_SPEC, backend).run_batch({"x": frames}, accelerator)["probs"]
               for backend in ("numpy", "onnxruntime")}
    np.testing.assert_allclose(results["numpy"], results["onnxruntime"], rtol=1e-5, atol=1e-6)
    assert HostPart(folder, HOST_SPEC["pre"]).backend == "onnxruntime"


@pytest.mark.parametrize("inputs, message", [
    ({}, r"missing \['x'\]"),
    ({"x": np.zeros((2, 5), np.float32)}, r"one frame \(4,\) or a batch \(N, \*\(4,\)\)"),
    ({"x": np.array([[0, np.nan, 0, 0]], np.float32)}, "NaN or infinity"),
    ({"x": np.zeros(4, np.float32), "h0": np.zeros((1, 1, 8), np.float32)}, r"unknown \['h0'\].*reset"),
])
def test_bad_inputs_are_host_errors(host_folder: tuple[Path, PostHead], inputs: dict, message: str) -> None:
    model = HostModel(host_folder[0], HOST_SPEC, backend="numpy")
    with pytest.raises(HostError, match=message):
        model.run_batch(inputs, accelerator)
    assert not model.state["h0"].any()


def test_one_frame_may_drop_the_batch_axis(host_folder: tuple[Path, PostHead]) -> None:
    frame = RNG.normal(size=4).astype(np.float32)
    outputs = [HostModel(host_folder[0], HOST_SPEC, "numpy").run_batch({"x": given}, accelerator)["probs"]
               for given in (frame, frame[None])]
    assert outputs[0].shape == (1, 3)
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_a_part_missing_numpy_ops_needs_onnxruntime(tmp_path: Path) -> None:
    model = model_of(Case("topk", [node("TopK", ["x", "k"], ["y", "i"])], {"x": normal(5)}, {"k": i64(2)}))
    (tmp_path / "p.npz").write_bytes(program_bytes(model))
    spec = {"onnx": "p.onnx", "program": "p.npz", "inputs": ["x"], "outputs": ["y"]}
    with pytest.raises(HostError, match="TopK; the board needs onnxruntime"):
        HostPart(tmp_path, spec, backend="numpy")


# ---- standalone: what the driver embeds ---------------------------------------------------------------------


def test_the_runtime_runs_standalone_without_hwcodesign_or_onnx(tmp_path: Path) -> None:
    """The source, after a driver's own `from __future__` line, in a Python that cannot import hwcodesign."""
    case = linear_cases()[0]
    (tmp_path / "program.npz").write_bytes(program_bytes(model_of(case)))
    (tmp_path / "runtime.py").write_text("from __future__ import annotations\n" + host_runtime_source())
    np.savez(tmp_path / "feeds.npz", **case.feeds)
    script = textwrap.dedent("""
        import json, sys
        sys.modules["hwcodesign"] = None  # an import of it would now fail
        folder = sys.argv[1]
        namespace = {"__name__": "driver"}
        exec(compile(open(folder + "/runtime.py").read(), "driver.py", "exec"), namespace)
        import numpy as np
        feeds = dict(np.load(folder + "/feeds.npz"))
        program = namespace["load_program"](folder + "/program.npz")
        outputs = namespace["run_program"](program, feeds)
        print(json.dumps({"y": outputs["y"].tolist(), "modules": sorted(m for m in ("onnx", "onnxruntime", "torch") if m in sys.modules)}))
    """)
    done = subprocess.run([sys.executable, "-I", "-c", script, str(tmp_path)], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    assert result["modules"] == []
    np.testing.assert_allclose(result["y"], Reference(model_of(case)).run(case.feeds)["y"], rtol=1e-5, atol=1e-6)


def top_level_names(source: str) -> set[str]:
    names: set[str] = set()
    for statement in ast.parse(source).body:
        if isinstance(statement, ast.FunctionDef | ast.ClassDef):
            names.add(statement.name)
        elif isinstance(statement, ast.Assign | ast.AnnAssign):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            names |= {target.id for target in targets if isinstance(target, ast.Name)}
    return names


def test_the_runtime_defines_no_name_the_driver_defines() -> None:
    driver = driver_source("net", load_board("pynqz2"), [], [], 32)
    assert top_level_names(driver) & top_level_names(host_runtime_source()) == set()

