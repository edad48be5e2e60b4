"""Brevitas QONNX exports whose host parts hold QONNX quantizers, run as qonnx runs them.

A small TFC-style MLP (`support/brevitas_models.py`), exported by Brevitas's TorchScript and dynamo
exporters, ends in a layer with quantized weights and a float output: the host runs it, and its
weights' `Quant` (with the TorchScript export's Transpose after it) is folded into a float
initializer. With its first layer assigned to the host too, the host also runs the input's
activation `Quant`, as standard ONNX ops. The whole model (`golden_whole_model`, host parts on
the numpy executor and on onnxruntime) is compared with qonnx's `execute_onnx` after
`cleanup_model`:

- the folded weights and the accelerator's outputs (the last layer's input) equal qonnx's exactly:
  the integer core is exact, and so is the host part before it up to where it feeds the core;
- the model's outputs differ from qonnx's only by float32 rounding in the last layer's dot
  products: |ours - qonnx| <= 2 * gamma_n * (|A| @ |W|) elementwise, gamma_n = n*u / (1 - n*u),
  u = 2^-24, n the fan-in (each side's sum is within gamma_n * (|A| @ |W|) of the exact one).

A QONNX quantizer on the host whose scale or bit width is computed at run time is refused by
name, and the command line says so in one line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from support.brevitas_mlp import EXPORTERS, INPUTS, mlp
from support.qonnx_by_hand import DOMAIN, qonnx_two_convs
from support.qonnx_reference import qonnx_run

from hwcodesign.cli import main
from hwcodesign.errors import UnsupportedModelError
from hwcodesign.flows.whole_model import golden_whole_model
from hwcodesign.partition import HostOptions, load_partitioned

FRAMES = 8
UNIT_ROUNDOFF = 2.0**-24
FIRST_LAYER = {"torchscript": "/fc0/Gemm", "dynamo": "node_linear"}
QUANT_OPS = ["Div", "Add", "Greater", "Where", "Less", "Where", "Round", "Sub", "Mul"]


@pytest.fixture(scope="module")
def exported() -> dict[str, tuple[onnx.ModelProto, np.ndarray, onnx.ModelProto, list[dict[str, np.ndarray]]]]:
    """Each exporter's model, the frames, and qonnx's cleaned-up model with every tensor it computes."""
    frames = np.random.default_rng(3).normal(0, 1, (FRAMES, INPUTS)).astype(np.float32)
    found = {}
    for exporter in EXPORTERS:
        model = mlp(exporter)
        cleaned, runs = qonnx_run(model, frames)
        found[exporter] = (model, frames, cleaned.model, runs)
    return found


def oriented_weights(node: onnx.NodeProto, weights: np.ndarray) -> np.ndarray:
    """The last layer's weights as its input is multiplied by them (Gemm's transB)."""
    transposed = any(a.name == "transB" and a.i for a in node.attribute)
    return weights.T if transposed else weights


@pytest.mark.parametrize("first_on_host", [False, True], ids=["last-layer-on-host", "first-layer-on-host-too"])
@pytest.mark.parametrize("exporter", EXPORTERS)
def test_brevitas_mlp_whole_model_equals_qonnx(exporter: str, first_on_host: bool, exported: dict) -> None:
    model, frames, cleaned, runs = exported[exporter]
    host = HostOptions(host=(FIRST_LAYER[exporter],) if first_on_host else ())
    partition, graph = load_partitioned(model, host=host)
    assert [t.name for t in partition.inputs] == [model.graph.input[0].name]  # not the initializers listed as inputs
    last = cleaned.graph.node[-1]  # the float layer: MatMul (TorchScript) or Gemm (dynamo)
    assert [node.op_type for node in partition.post.graph.node] == [last.op_type]
    if first_on_host:
        assert [node.op_type for node in partition.pre.graph.node] == [*QUANT_OPS, "Gemm"]
    else:
        assert partition.pre is None
    post_weights = {init.name: numpy_helper.to_array(init) for init in partition.post.graph.initializer}
    np.testing.assert_array_equal(post_weights[partition.post.graph.node[0].input[1]], runs[0][last.input[1]])

    boundary = np.concatenate([run[last.input[0]] for run in runs])
    expected = np.concatenate([run[last.output[0]] for run in runs])
    weights = oriented_weights(last, runs[0][last.input[1]])
    fan_in = weights.shape[0]
    gamma = fan_in * UNIT_ROUNDOFF / (1 - fan_in * UNIT_ROUNDOFF)
    bound = 2 * gamma * (np.abs(boundary).astype(np.float64) @ np.abs(weights).astype(np.float64))
    for backend in ("numpy", "onnxruntime"):
        outputs, accelerator = golden_whole_model(partition, graph, {partition.inputs[0].name: frames}, backend)
        (tensor,) = accelerator.out_tensors
        core = tensor.dequantize(accelerator.integers("outputs")[tensor.name]).astype(np.float32)
        np.testing.assert_array_equal(core.reshape(boundary.shape), boundary, err_msg=backend)
        (output,) = outputs.values()
        difference = np.abs(output.astype(np.float64) - expected)
        assert np.all(difference <= bound), (backend, difference.max(), bound.min())


def runtime_parameter_model(role: str) -> onnx.ModelProto:
    """A QONNX CNN with a Softmax and a `Quant` after it (the host's), whose `role` is a graph input."""
    model = qonnx_two_convs(4)
    (output,) = model.graph.output
    shape = [d.dim_value for d in output.type.tensor_type.shape.dim]
    params = {"scale": np.array(1 / 255, np.float32), "zero point": np.array(0, np.float32),
              "bit width": np.array(8, np.float32)}
    names = {key: f"host_{key.replace(' ', '_')}" for key in params}
    for key, value in params.items():
        if key == role:
            model.graph.input.append(helper.make_tensor_value_info(names[key], TensorProto.FLOAT, []))
        else:
            model.graph.initializer.append(numpy_helper.from_array(value, names[key]))
    model.graph.node.extend([
        helper.make_node("Softmax", [output.name], ["probs"], name="softmax", axis=1),
        helper.make_node("Quant", ["probs", *names.values()], ["probs_q"], name="host_quant", domain=DOMAIN,
                         signed=0, narrow=0, rounding_mode="ROUND"),
    ])
    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info("probs_q", TensorProto.FLOAT, shape))
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("role", ["scale", "bit width"])
def test_a_run_time_parameter_of_a_host_quantizer_is_refused_by_name(
        role: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = runtime_parameter_model(role)
    message = rf"node 'host_quant' \(op Quant\): its {role} 'host_{role.replace(' ', '_')}' is computed at run time"
    with pytest.raises(UnsupportedModelError, match=message):
        load_partitioned(model)
    path = tmp_path / "model.onnx"
    onnx.save(model, path)
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "node 'host_quant' (op Quant)" in err and len(err.strip().splitlines()) == 1
