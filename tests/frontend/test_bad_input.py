"""Bad input gets one clear error naming the node, the op and why; the CLI exits 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from support.onnx_models import IR_VERSION
from support.qdq_by_hand import conv_bn_relu_qdq

from hwcodesign.cli import main
from hwcodesign.errors import ModelFormatError, UnsupportedModelError
from hwcodesign.passes import load_onnx


def save(model: onnx.ModelProto, tmp_path: Path, name: str = "model.onnx") -> Path:
    path = tmp_path / name
    onnx.save(model, path)
    return path


def run_cli(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["inspect", str(path)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err


def qdq_input_then(node: onnx.NodeProto, extra_inits: list[onnx.TensorProto], output: str,
                   input_shape: list[object] | None = None) -> onnx.ModelProto:
    """x -> Q -> DQ -> `node` with output `output`."""
    inits = [numpy_helper.from_array(np.array(np.float32(0.02)), "xs"),
             numpy_helper.from_array(np.array(np.uint8(128)), "xz")] + extra_inits
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], name="quant_in"),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xf"], name="dequant_in"), node]
    graph = helper.make_graph(
        nodes, "bad", [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape or [1, 4, 8, 8])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, [])], inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=IR_VERSION)


def test_unsupported_op_names_node_op_and_supported_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lstm = helper.make_node("LSTM", ["xf", "W", "R"], ["y"], name="my_lstm", hidden_size=4)
    inits = [numpy_helper.from_array(np.zeros((1, 16, 8), np.float32), "W"),
             numpy_helper.from_array(np.zeros((1, 16, 4), np.float32), "R")]
    model = qdq_input_then(lstm, inits, "y", [8, 1, 8])
    with pytest.raises(UnsupportedModelError) as error:
        load_onnx(model)
    assert (error.value.node, error.value.op_type) == ("my_lstm", "LSTM")
    code, err = run_cli(save(model, tmp_path), capsys)
    assert code == 2 and "my_lstm" in err and "LSTM" in err


def test_unsupported_op_in_a_4d_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    node = helper.make_node("Softmax", ["xf"], ["y"], name="the_softmax", axis=1)
    model = qdq_input_then(node, [], "y")
    with pytest.raises(UnsupportedModelError) as error:
        load_onnx(model)
    assert (error.value.node, error.value.op_type) == ("the_softmax", "Softmax")
    assert "supported ops" in str(error.value) and "Conv" in str(error.value)
    code, err = run_cli(save(model, tmp_path), capsys)
    assert code == 2 and "the_softmax" in err and "Softmax" in err


def test_malformed_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"\x08\x07 this is not a protobuf \xff\xfe" * 10)
    with pytest.raises(ModelFormatError):
        load_onnx(path)
    code, err = run_cli(path, capsys)
    assert code == 2 and "garbage.onnx" in err


def test_truncated_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = conv_bn_relu_qdq().SerializeToString()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError) as error:
        load_onnx(path)
    assert "truncated.onnx" in str(error.value)
    code, err = run_cli(path, capsys)
    assert code == 2 and "truncated.onnx" in err


def test_missing_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError, match="no such file"):
        load_onnx(tmp_path / "absent.onnx")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelFormatError, match="empty"):
        load_onnx(empty)


def test_dynamic_spatial_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = conv_bn_relu_qdq()
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param = "height"
    dims[3].dim_param = "width"
    with pytest.raises(UnsupportedModelError) as error:
        load_onnx(model)
    assert error.value.node == "x" and "height" in str(error.value) and "dynamic" in str(error.value)
    code, err = run_cli(save(model, tmp_path), capsys)
    assert code == 2 and "height" in err


def test_dynamic_batch_is_accepted() -> None:
    model = conv_bn_relu_qdq()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    assert len(load_onnx(model)) == 2


def test_non_constant_scale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = conv_bn_relu_qdq()
    graph = model.graph
    # the input's scale now comes from a second graph input instead of an initializer
    kept = [init for init in graph.initializer if init.name != "xs"]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    graph.input.append(helper.make_tensor_value_info("xs", TensorProto.FLOAT, []))
    with pytest.raises(UnsupportedModelError) as error:
        load_onnx(model)
    assert error.value.node == "quant_in" and error.value.op_type == "QuantizeLinear"
    assert "'xs'" in str(error.value) and "constant" in str(error.value)
    code, err = run_cli(save(model, tmp_path), capsys)
    assert code == 2 and "quant_in" in err


def test_unquantized_weights_are_named() -> None:
    model = conv_bn_relu_qdq()
    for node in model.graph.node:
        if node.name == "conv":
            node.input[1] = "w_float"
    model.graph.initializer.append(numpy_helper.from_array(np.ones((6, 3, 3, 3), np.float32), "w_float"))
    with pytest.raises(UnsupportedModelError) as error:
        load_onnx(model)
    assert error.value.node == "conv" and "not quantized" in str(error.value)


def test_debug_flag_shows_traceback(tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError):
        main(["--debug", "inspect", str(tmp_path / "absent.onnx")])
