"""Layout ops (Transpose, Reshape, Flatten, Unsqueeze, Squeeze, Identity) of quantized weights fold
into the weights, a per-channel scale moving with its axis: `Quant(W) -> Transpose -> MatMul` as
Brevitas writes x @ W.T (QONNX and QCDQ, TorchScript and dynamo), and DequantizeLinear(W) through
each op by hand; golden == onnxruntime (QONNX through its standard-op expansion)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from support.examples import build_models_module
from support.onnx_models import IR_VERSION

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.ir.graph import Graph
from hwcodesign.ops import Linear
from hwcodesign.passes import PassOptions, load_onnx, optimize
from hwcodesign.reference import Reference
from hwcodesign.sim import quantize_input, run_golden

OUT, IN = 5, 12


def max_lsb(graph: Graph, model: onnx.ModelProto, reference: onnx.ModelProto | None = None) -> int:
    """Largest golden - onnxruntime difference in output LSBs over 20 vectors (N, IN)."""
    session = Reference(reference or model)
    output = graph.output_tensors()[0]
    rng = np.random.default_rng(2)
    worst = 0
    for _ in range(20):
        x = rng.normal(0, 1.5, (1, IN)).astype(np.float32)
        golden = run_golden(graph, quantize_input(graph, x.reshape(graph.inputs[0].output.shape)))[output.name]
        expected = output.quantize(session.first(x).reshape(output.shape))
        worst = max(worst, int(np.abs(golden - expected).max()))
    return worst


@pytest.mark.parametrize("exporter", ["qonnx", "qonnx-dynamo", "qcdq", "qcdq-dynamo"])
def test_brevitas_transposed_weights_fold_with_their_per_channel_scales(exporter: str, tmp_path_factory:
                                                                         pytest.TempPathFactory) -> None:
    pytest.importorskip("brevitas")
    from support.brevitas_layers import Exports, transposed_linear

    model = Exports(tmp_path_factory.mktemp("layout"))("transposed", transposed_linear, (1, IN), exporter)
    assert "Transpose" in [node.op_type for node in model.graph.node]
    graph = optimize(load_onnx(model))
    linear = next(op for op in graph if isinstance(op, Linear))
    assert linear.weight.shape[:2] == (OUT, IN) and len(set(linear.requant.multiplier.tolist())) == OUT
    reference = build_models_module().expand_qonnx_quant(model) if exporter.startswith("qonnx") else None
    assert max_lsb(graph, model, reference) == 0


# DequantizeLinear(W stored as `stored`, per-axis along `axis`) -> layout nodes -> (IN, OUT) for MatMul
LAYOUTS: dict[str, tuple[tuple[int, ...], int, list[tuple[str, dict[str, object], list[np.ndarray]]]]] = {
    "Transpose": ((OUT, IN), 0, [("Transpose", {"perm": [1, 0]}, [])]),
    "Reshape": ((IN, OUT, 1), 1, [("Reshape", {}, [np.array([IN, OUT], np.int64)])]),
    "Flatten": ((IN, OUT, 1), 1, [("Flatten", {"axis": 1}, [])]),
    "Squeeze": ((IN, 1, OUT), 2, [("Squeeze", {}, [np.array([1], np.int64)])]),
    "Unsqueeze": ((OUT, IN), 0, [("Unsqueeze", {}, [np.array([0], np.int64)]), ("Transpose", {"perm": [0, 2, 1]}, []),
                                 ("Squeeze", {}, [np.array([0], np.int64)])]),
    "Identity": ((IN, OUT), 1, [("Identity", {}, [])]),
}


def layout_model(stored: tuple[int, ...], axis: int, chain: list[tuple[str, dict[str, object], list[np.ndarray]]],
                 seed: int = 0) -> onnx.ModelProto:
    """Q(x) -> DQ -> MatMul(chain(DQ(int8 W, per-channel scales))) -> Q -> DQ: each output channel has
    its own scale, so a scale left on the wrong axis shows in the outputs."""
    rng = np.random.default_rng(seed)
    weights = rng.integers(-127, 128, stored).astype(np.int8)
    scales = rng.uniform(0.002, 0.02, OUT).astype(np.float32)
    inits = [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(scales, "ws"),
             numpy_helper.from_array(np.zeros(OUT, np.int8), "wz"),
             numpy_helper.from_array(np.array(0.02, np.float32), "xs"), numpy_helper.from_array(np.array(0, np.int8), "xz"),
             numpy_helper.from_array(np.array(0.05, np.float32), "ys"), numpy_helper.from_array(np.array(0, np.int8), "yz")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], name="quant_x"),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xf"], name="dequant_x"),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["w0"], name="dequant_w", axis=axis)]
    for index, (op_type, attrs, operands) in enumerate(chain):
        names = [f"operand{index}_{k}" for k in range(len(operands))]
        inits += [numpy_helper.from_array(array, name) for array, name in zip(operands, names)]
        nodes.append(helper.make_node(op_type, [f"w{index}", *names], [f"w{index + 1}"], name=f"layout{index}", **attrs))
    nodes += [helper.make_node("MatMul", ["xf", f"w{len(chain)}"], ["m"], name="matmul"),
              helper.make_node("QuantizeLinear", ["m", "ys", "yz"], ["yq"], name="quant_y"),
              helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"], name="dequant_y")]
    graph = helper.make_graph(nodes, "layout", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, IN])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, OUT])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=IR_VERSION)
    onnx.checker.check_model(model, full_check=True)
    return model


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_each_layout_op_folds_into_quantized_weights(layout: str) -> None:
    model = layout_model(*LAYOUTS[layout])
    graph = optimize(load_onnx(model))
    assert [op.kind for op in graph] == ["Input", "Linear"]
    assert max_lsb(graph, model) == 0


def test_without_constant_folding_a_layout_op_of_weights_is_refused() -> None:
    with pytest.raises(UnsupportedModelError, match=r"node 'layout0' \(op Unsqueeze\): op not supported"):
        load_onnx(layout_model(*LAYOUTS["Unsqueeze"]), PassOptions(frozenset({"fold-constants"})))


def test_a_reshape_that_mixes_channels_is_refused_naming_the_layer() -> None:
    """Reshaping (OUT, IN) straight to (IN, OUT) moves elements across channels: each weight keeps
    its own scale, so the scales vary along the input axis and no output stage can apply them."""
    model = layout_model((OUT, IN), 0, [("Reshape", {}, [np.array([IN, OUT], np.int64)])])
    with pytest.raises(UnsupportedModelError, match=r"node 'matmul' \(op MatMul\): weight scale varies along a "
                                                    "non-output axis"):
        load_onnx(model)
