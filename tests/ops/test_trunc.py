"""QONNX `Trunc` after an average pool (Brevitas's TruncAvgPool2d and TruncAdaptiveAvgPool2d through
`export_qonnx`): the pool's output stage divides the window sum by 2**t and rounds as the Trunc's
`rounding_mode` says; golden == qonnx's `execute_onnx` on every element. Trunc anywhere else, or
in a form Brevitas does not write, is refused naming the node."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.flows.compile import compile_model
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.types import IntType
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.sim import quantize_input, run_golden

pytest.importorskip("brevitas")
pytest.importorskip("qonnx")
from support.brevitas_layers import Exports, run_qonnx, trunc_pool  # noqa: E402
from support.codegen import random_frames  # noqa: E402

SHAPE = (1, 3, 8, 8)


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Exports:
    return Exports(tmp_path_factory.mktemp("trunc"))


def pool_export(exports: Exports, bits: int, rounding: str, adaptive: bool, exporter: str = "qonnx") -> onnx.ModelProto:
    return exports(f"trunc{bits}-{rounding}-{'global' if adaptive else 'window'}",
                   trunc_pool(bits, rounding, adaptive), SHAPE, exporter)


def golden_and_qonnx(model: onnx.ModelProto, graph: Graph, count: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The golden integers and qonnx's outputs on the output's grid, for `count` seeded frames."""
    output = graph.output_tensors()[0]
    rng = np.random.default_rng(11)
    golden, reference = [], []
    for _ in range(count):
        x = rng.normal(0, 2, SHAPE).astype(np.float32)
        golden.append(run_golden(graph, quantize_input(graph, x))[output.name])
        reference.append(np.rint(run_qonnx(model, x) / output.scale).astype(np.int64) + output.zero_point)
    return np.stack(golden), np.stack(reference)


def trunc_node(model: onnx.ModelProto) -> onnx.NodeProto:
    return next(node for node in model.graph.node if node.op_type == "Trunc")


@pytest.mark.parametrize("adaptive", [False, True], ids=["window", "global"])
@pytest.mark.parametrize("rounding", ["floor", "round"])
@pytest.mark.parametrize("bits", [4, 6, 8])
def test_trunc_avg_pool_equals_qonnx(exports: Exports, bits: int, rounding: str, adaptive: bool) -> None:
    model = pool_export(exports, bits, rounding, adaptive)
    assert [node.op_type for node in model.graph.node if node.domain][-1] == "Trunc"
    graph = optimize(load_onnx(model))
    pool = list(graph)[-1]
    assert pool.kind == ("GlobalAvgPool" if adaptive else "Pool") and pool.output.dtype == IntType(8, False)
    golden, reference = golden_and_qonnx(model, graph)
    assert np.array_equal(golden, reference), f"{int(np.abs(golden - reference).max())} LSB apart"


def test_the_dynamo_export_is_the_same_layer(exports: Exports) -> None:
    model = pool_export(exports, 8, "floor", False, "qonnx-dynamo")
    graph = optimize(load_onnx(model))
    torchscript = optimize(load_onnx(pool_export(exports, 8, "floor", False)))
    assert [op.summary() for op in graph] == [op.summary() for op in torchscript]
    golden, reference = golden_and_qonnx(model, graph)
    assert np.array_equal(golden, reference)


def test_floor_and_round_truncate_differently(exports: Exports) -> None:
    """The test above is sensitive to the mode: the same 8-bit pool (the sum of four 8-bit values
    shifted by 2) floored and rounded gives different integers, each equal to qonnx's."""
    floored = pool_export(exports, 8, "floor", False)
    rounded = onnx.ModelProto()
    rounded.CopyFrom(floored)
    next(a for a in trunc_node(rounded).attribute if a.name == "rounding_mode").s = b"ROUND"
    results = []
    for model in (floored, rounded):
        graph = optimize(load_onnx(model))
        golden, reference = golden_and_qonnx(model, graph)
        assert np.array_equal(golden, reference)
        results.append(golden)
    assert np.count_nonzero(results[0] != results[1]) > results[0].size // 10


@pytest.mark.parametrize(("adaptive", "architecture"), [(False, "dataflow"), (True, "sequential")])
def test_the_generated_cpp_truncates_as_the_golden_model(exports: Exports, tmp_path: Path, adaptive: bool,
                                                         architecture: str) -> None:
    """The floor is the pool's output-stage offset, which both architectures' C++ apply: C
    simulation == golden on every element (a Trunc followed by a quantizer, so the pool is
    accelerator work for `compile`'s partition)."""
    model = exports(f"trunc8-floor-{adaptive}-requantized", trunc_pool(8, "floor", adaptive, requantized=True),
                    SHAPE, "qonnx")
    onnx.save(model, tmp_path / "trunc.onnx")
    result = compile_model(tmp_path / "trunc.onnx", "ultra96v2", tmp_path / "project", architecture=architecture)
    pool = next(op for op in result.graph if op.kind in ("Pool", "GlobalAvgPool"))
    assert pool.requant.offset is not None, "floor(acc / 4) needs the rounding offset"
    frames = random_frames(result.graph, 10, seed=3)
    golden = run_golden(result.graph, frames)
    simulated = result.project.csim(frames)
    assert all(np.array_equal(simulated[name], golden[name]) for name in golden)
    golden, reference = golden_and_qonnx(model, result.graph)
    assert np.array_equal(golden, reference)


def refused(model: onnx.ModelProto, reason: str) -> None:
    name = trunc_node(model).name
    with pytest.raises(UnsupportedModelError, match=rf"node '{re.escape(name)}' \(op Trunc\): {reason}"):
        load_onnx(model)


def test_a_trunc_of_anything_but_an_average_is_refused(exports: Exports) -> None:
    model = pool_export(exports, 8, "floor", False)
    pool = next(node for node in model.graph.node if node.op_type == "AveragePool")
    trunc_node(model).input[0] = pool.input[0]  # the quantized ReLU output itself
    refused(model, r"its input '.*' is a quantized tensor; a Trunc is supported only right after an AveragePool")


def test_trunc_v1_is_refused(exports: Exports) -> None:
    model = pool_export(exports, 8, "floor", False)
    next(entry for entry in model.opset_import if entry.domain == trunc_node(model).domain).version = 1
    refused(model, r"Trunc of opset 1 with 6 inputs: only Trunc v2")


def test_a_sign_dependent_rounding_mode_is_refused(exports: Exports) -> None:
    model = pool_export(exports, 8, "floor", False)
    next(a for a in trunc_node(model).attribute if a.name == "rounding_mode").s = b"HALF_UP"
    refused(model, r"rounding_mode HALF_UP: supported are ROUND, HALF_EVEN, FLOOR, CEIL")


def set_operand(model: onnx.ModelProto, index: int, value: np.ndarray) -> None:
    node = trunc_node(model)
    name = f"trunc_operand_{index}"
    model.graph.initializer.append(numpy_helper.from_array(value.astype(np.float32), name))
    node.input[index] = name


def test_a_trunc_zero_point_is_refused(exports: Exports) -> None:
    model = pool_export(exports, 8, "floor", False)
    set_operand(model, 2, np.array(1.0))
    refused(model, r"zero point 1: a Trunc's output zero point would be it / 2\*\*t")


def test_a_trunc_scale_other_than_the_pools_is_refused(exports: Exports) -> None:
    model = pool_export(exports, 8, "floor", False)
    scale = next(init for init in model.graph.initializer if init.name == trunc_node(model).input[1])
    set_operand(model, 1, numpy_helper.to_array(scale) * 3)
    refused(model, r"scale .* is not the pool's .* \(its input's scale / window size\)")
