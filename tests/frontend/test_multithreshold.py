"""FINN's `MultiThreshold` as threshold output stages: exact against the real-valued comparison,
FINN-streamlined TFC networks (FINN's own output, tests/data/finn) equal to qonnx's executor on
every layer and through the whole model, no DSP in their output stages, bit-exact in C
simulation, and refused by name where they cannot run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from support.qonnx_by_hand import DOMAIN, quant
from support.qonnx_reference import qonnx_tensors, run_reference

from hwcodesign.backends.choose import emit_project
from hwcodesign.backends.dataflow import map_pipeline
from hwcodesign.boards import load_board
from hwcodesign.errors import UnsupportedModelError
from hwcodesign.flows.whole_model import golden_whole_model
from hwcodesign.hardware.engine.config import EngineUnsupported
from hwcodesign.ir.requant import threshold_requant
from hwcodesign.mapper.engine.program import instructions
from hwcodesign.partition import load_partitioned
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.sim import run_golden

FINN = Path(__file__).parent.parent / "data" / "finn"
# FINN's MergeONNXModels leaves the QONNX domain undeclared; the note saying so is tested elsewhere
pytestmark = pytest.mark.filterwarnings("ignore::hwcodesign.errors.ModelNote")
STREAMLINED = {"w1a1": FINN / "tfc_w1a1_streamlined.onnx", "w2a2": FINN / "tfc_w2a2_streamlined.onnx"}


def test_a_threshold_stage_counts_the_real_thresholds_met_for_every_accumulator() -> None:
    rng = np.random.default_rng(0)
    channels, steps = 12, 3
    gain = np.concatenate([rng.uniform(-2, 2, channels - 2), [0.0, 1e-3]])
    fraction = rng.uniform(-0.5, 0.5, channels)
    real = np.sort(rng.uniform(-40, 40, (channels, steps)), axis=1)
    real[:, 0] = np.where(np.arange(channels) % 3 == 0, np.rint(real[:, 0]), real[:, 0])  # ties on the grid
    stage = threshold_requant(real, gain, fraction, 0, -1, steps - 1)
    acc = np.arange(-500, 501)[:, None] * np.ones((1, channels), np.int64)
    value = gain * (acc + fraction)
    expected = -1 + np.count_nonzero(value[..., None] >= real, axis=-1)
    assert np.array_equal(stage.apply(acc), expected)


@pytest.fixture(scope="module", params=sorted(STREAMLINED))
def streamlined(request: pytest.FixtureRequest) -> tuple[str, Path]:
    return request.param, STREAMLINED[request.param]


def images(count: int) -> np.ndarray:
    return np.random.default_rng(5).integers(0, 256, (count, 1, 1, 28, 28)).astype(np.float32)


def test_every_layer_equals_qonnx(streamlined: tuple[str, Path]) -> None:
    """The thresholds FINN wrote, on the accumulators of integer weights: every element of every
    accelerator layer equals qonnx's execution of the file as FINN saved it."""
    precision, path = streamlined
    partition, graph = load_partitioned(path)
    graph = optimize(graph)
    thresholded = [op for op in graph if any(r.thresholds is not None or r.is_sign() for r in op.requants())]
    assert len(thresholded) == 4 and {str(t.dtype) for t in graph.output_tensors()} <= {"bipolar", "int2", "uint2"}
    frames = images(20)
    tensors = [op.output for op in graph if op.kind != "Input"]
    reference = qonnx_tensors(path, list(frames), [t.name for t in tensors] + [op.name for op in graph.inputs])
    feeds = {op.name: op.output.quantize(reference[op.name]).reshape(-1, *op.output.shape[1:]) for op in graph.inputs}
    golden = run_golden(graph, feeds, keep_intermediates=True)
    for tensor in tensors:
        expected = tensor.quantize(reference[tensor.name]).reshape(golden[tensor.name].shape)
        assert np.array_equal(golden[tensor.name], expected), f"{precision} {tensor.name}"
    model = onnx.load(str(path))
    outputs, _ = golden_whole_model(partition, graph, {model.graph.input[0].name: frames[:, 0]}, backend="numpy")
    whole = run_reference(path, frames[:, 0])
    got = next(iter(outputs.values())).reshape(whole.shape)
    assert np.abs(got - whole).max() <= 1e-5 * max(1.0, float(np.abs(whole).max()))


def test_thresholds_take_no_dsp_and_run_bit_exact(tmp_path: Path) -> None:
    _, graph = load_partitioned(STREAMLINED["w2a2"])
    graph = optimize(graph)
    mapping = map_pipeline(graph, load_board("pynqz2"))
    assert sum(mapping.costs[op.name].dsp for op in graph) == 0
    project = emit_project(graph, mapping, tmp_path / "tfc")
    params = "".join(path.read_text() for path in (project.root / "hls" / "params").glob("*.h"))
    assert "hwc_thresholds<2," in params
    frames = np.random.default_rng(2).integers(0, 256, (5, *graph.inputs[0].output.shape[1:]))
    simulated, expected = project.csim(frames), run_golden(graph, frames)
    for name, values in expected.items():
        assert np.array_equal(simulated[name], values), name


def test_the_engine_refuses_thresholds_by_name() -> None:
    _, graph = load_partitioned(STREAMLINED["w2a2"])
    with pytest.raises(EngineUnsupported, match="MultiThreshold_0.*threshold output stage"):
        instructions(optimize(graph))


def thresholds_model(source_quantized: bool, out_dtype: str = "UINT2") -> onnx.ModelProto:
    nodes: list = []
    inits = [numpy_helper.from_array(np.array([[0.25, 0.5, 0.75]], np.float32), "t")]
    x = quant(nodes, inits, "input", "x_q", np.array(1 / 255), 8, signed=False) if source_quantized else "input"
    nodes.append(helper.make_node("MultiThreshold", [x, "t"], ["y"], name="thresholds", domain=DOMAIN,
                                  out_dtype=out_dtype))
    graph = helper.make_graph(nodes, "thresholds", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 2, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(DOMAIN, 1)],
                             ir_version=10)


def test_thresholds_of_an_integer_activation_equal_qonnx() -> None:
    model = thresholds_model(source_quantized=True)
    graph = optimize(load_onnx(model))
    frames = [np.random.default_rng(i).uniform(0, 1, (1, 2, 4, 4)).astype(np.float32) for i in range(8)]
    reference = qonnx_tensors(model, frames, ["x_q", "y"])
    out = graph.output_tensors()[0]
    golden = run_golden(graph, graph.inputs[0].output.quantize(reference["x_q"]))
    assert np.array_equal(golden[out.name], out.quantize(reference["y"]))


@pytest.mark.parametrize(("quantized", "dtype", "message"), [
    (False, "UINT2", "thresholds 'input'.*integer datatype"),
    (True, "FLOAT32", "out_dtype 'FLOAT32' is not an integer datatype"),
])
def test_thresholds_it_cannot_build_are_refused_naming_the_node(quantized: bool, dtype: str, message: str) -> None:
    with pytest.raises(UnsupportedModelError, match=f"thresholds.*{message}"):
        load_onnx(thresholds_model(quantized, dtype))
