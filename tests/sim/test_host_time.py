"""Host-part time estimate: op counts against hand counts, and the estimate's dependence on the CPU."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwcodesign.boards import load_board
from hwcodesign.errors import HwcodesignError
from hwcodesign.sim.host_time import estimate_host_seconds, host_operations

FLOAT = TensorProto.FLOAT


def model(nodes: list[onnx.NodeProto], inputs: dict[str, list[int]], outputs: dict[str, list[int | str]],
          weights: dict[str, tuple[int, ...] | np.ndarray] | None = None) -> onnx.ModelProto:
    """A float ONNX model (opset 17) of `nodes`; weights given by shape are random fp32 initializers,
    given as arrays are stored as they are."""
    rng = np.random.default_rng(0)
    initializers = [
        numpy_helper.from_array(value if isinstance(value, np.ndarray) else rng.standard_normal(value).astype(np.float32),
                                name)
        for name, value in (weights or {}).items()
    ]
    graph = helper.make_graph(
        nodes, "host",
        [helper.make_tensor_value_info(name, FLOAT, shape) for name, shape in inputs.items()],
        [helper.make_tensor_value_info(name, FLOAT, shape) for name, shape in outputs.items()],
        initializers,
    )
    built = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(built)
    return built


def test_gemm_counts_two_per_mac_plus_bias() -> None:
    # (1, 256) x (10, 256)^T + C: 10 x 256 MACs, 10 bias adds.
    gemm = model([helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc", transB=1)],
                 {"x": [1, 256]}, {"y": [1, 10]}, {"w": (10, 256), "b": (10,)})
    [op] = host_operations(gemm)
    assert (op.op_type, op.name, op.flops) == ("Gemm", "fc", 2 * 10 * 256 + 10)
    assert op.bytes == 4 * (256 + 10 * 256 + 10 + 10)  # x, w, b, y in fp32


def test_conv_counts_macs_per_output() -> None:
    # 3 -> 8 channels, 3x3, pad 1 on 16x16: 8*16*16 outputs x 3*3*3 MACs, no bias.
    conv = model([helper.make_node("Conv", ["x", "w"], ["y"], name="c", pads=[1, 1, 1, 1])],
                 {"x": [1, 3, 16, 16]}, {"y": [1, 8, 16, 16]}, {"w": (8, 3, 3, 3)})
    [op] = host_operations(conv)
    assert op.flops == 2 * (8 * 16 * 16) * (3 * 3 * 3)
    grouped = model([helper.make_node("Conv", ["x", "w", "b"], ["y"], group=4, strides=[2, 2])],
                    {"x": [1, 8, 8, 8]}, {"y": [1, 8, 3, 3]}, {"w": (8, 2, 3, 3), "b": (8,)})
    # depth per group 2: 8*3*3 outputs x 2*3*3 MACs, plus one bias add per output
    assert host_operations(grouped)[0].flops == 2 * 72 * 18 + 72


@pytest.mark.parametrize("steps", [1, 5, 20])
def test_gru_per_onnx_definition(steps: int) -> None:
    hidden, inputs = 64, 32
    gru = model(
        [helper.make_node("GRU", ["x", "w", "r", "b", "", "h0"], ["y", "hn"], hidden_size=hidden)],
        {"x": [steps, 1, inputs], "h0": [1, 1, hidden]},
        {"y": [steps, 1, 1, hidden], "hn": [1, 1, hidden]},
        {"w": (1, 3 * hidden, inputs), "r": (1, 3 * hidden, hidden), "b": (1, 6 * hidden)},
    )
    [op] = host_operations(gru)
    # Per step: 3 gates x 64 rows of input (32) and recurrent (64) products at 2 per MAC;
    # per gate element one join + 2 bias adds + activation (sigmoid 3 for z and r, tanh 1 for h);
    # the update r*H, (1-z)*h + z*H: 5 per hidden element.
    products = 2 * 3 * 64 * (32 + 64)
    gates = 64 * (1 + 2 + 3) * 2 + 64 * (1 + 2 + 1)
    assert op.flops == steps * (products + gates + 5 * 64)
    assert op.rule.startswith("recurrent")


def test_lstm_has_four_gates_and_no_bias_when_b_omitted() -> None:
    hidden, inputs, steps = 16, 8, 3
    lstm = model([helper.make_node("LSTM", ["x", "w", "r"], ["y"], hidden_size=hidden)],
                 {"x": [steps, 1, inputs]}, {"y": [steps, 1, 1, hidden]},
                 {"w": (1, 4 * hidden, inputs), "r": (1, 4 * hidden, hidden)})
    products = 2 * 4 * hidden * (inputs + hidden)
    gates = hidden * ((1 + 3) * 3 + (1 + 1))
    assert host_operations(lstm)[0].flops == steps * (products + gates + 5 * hidden)


def test_softmax_and_normalisation_chain() -> None:
    # The usual host pre-part: (x - mean) / std, then a Reshape; the post-part's Softmax.
    chain = model(
        [helper.make_node("Sub", ["x", "mean"], ["centred"]),
         helper.make_node("Div", ["centred", "std"], ["normed"]),
         helper.make_node("Reshape", ["normed", "shape"], ["flat"]),
         helper.make_node("Softmax", ["flat"], ["p"], axis=1)],
        {"x": [1, 3, 4, 4]}, {"p": [1, 48]},
        {"mean": (1, 3, 1, 1), "std": (1, 3, 1, 1), "shape": np.array([1, 48], np.int64)},
    )
    ops = host_operations(chain)
    assert [(op.op_type, op.flops) for op in ops] == [("Sub", 48), ("Div", 48), ("Reshape", 0), ("Softmax", 5 * 48)]
    assert ops[2].rule == "data movement" and ops[2].bytes == 4 * 48 * 2 + 8 * 2


def test_layer_normalization_per_element() -> None:
    norm = model([helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1)],
                 {"x": [1, 10, 32]}, {"y": [1, 10, 32]}, {"g": (32,), "b": (32,)})
    assert host_operations(norm)[0].flops == 7 * 320


def test_unknown_op_is_counted_as_a_guess() -> None:
    topk = model([helper.make_node("Hardmax", ["x"], ["y"])], {"x": [1, 10]}, {"y": [1, 10]})
    [op] = host_operations(topk)
    assert op.flops == 10 and "guess" in op.rule


def test_dynamic_shape_is_refused_naming_the_node() -> None:
    dynamic = model([helper.make_node("Relu", ["x"], ["y"], name="act")], {"x": ["n", 4]}, {"y": ["n", 4]})
    with pytest.raises(HwcodesignError, match="node 'act'.*tensor 'x'.*static"):
        host_operations(dynamic)


def gemm_model(width: int) -> onnx.ModelProto:
    return model([helper.make_node("MatMul", ["x", "w"], ["y"])], {"x": [1, width]}, {"y": [1, width]},
                 {"w": (width, width)})


def test_estimate_is_the_formula_and_monotone_in_flops() -> None:
    cpu = load_board("ultra96v2").cpu
    small, large = (estimate_host_seconds(gemm_model(width), cpu) for width in (64, 512))
    assert small.flops == 2 * 64 * 64 and large.flops == 2 * 512 * 512
    rate = cpu.clock_mhz * 1e6 * cpu.fp32_flops_per_cycle * cpu.sustained_fraction
    assert small.seconds == pytest.approx(small.flops / rate + cpu.dispatch_us * 1e-6)
    assert large.seconds > small.seconds
    assert large.dispatch_seconds == small.dispatch_seconds  # one node each


def test_dispatch_charged_per_node() -> None:
    cpu = load_board("zcu104").cpu
    free = dataclasses.replace(cpu, dispatch_us=0.0)
    chain = model([helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Relu", ["a"], ["y"])],
                  {"x": [1, 8]}, {"y": [1, 8]})
    assert estimate_host_seconds(chain, cpu).seconds - estimate_host_seconds(chain, free).seconds == (
        pytest.approx(2 * cpu.dispatch_us * 1e-6))


def test_cortex_a9_is_slower_than_a53_and_says_it_is_an_estimate() -> None:
    a53, a9 = load_board("ultra96v2").cpu, load_board("pynqz2").cpu
    on_a53, on_a9 = (estimate_host_seconds(gemm_model(256), cpu) for cpu in (a53, a9))
    assert on_a9.seconds > on_a53.seconds
    assert on_a53.flops == on_a9.flops
    text = on_a9.describe()
    assert "estimate" in text and "Cortex-A9" in text and "650 MHz" in text
    assert "sustained_fraction" in text  # names what it assumes
    assert "Cortex-A53" in on_a53.describe()
