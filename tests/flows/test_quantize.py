"""`hwcodesign quantize` / `quantize_model`: what stays float and why, the sparse and deform
conventions, int4 weights, and the CLI's refusals; and the frontend reading a sparse model
quantized by plain `quantize_static` with its default settings."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from support.compare import compare_with_onnxruntime
from support.layerwise import isolated_differences, quantized_tensors
from support.sparse_models import SparseCase, SparseLayer, build, event_frames

from hwcodesign.cli.commands import main
from hwcodesign.errors import HwcodesignError, UnsupportedModelError
from hwcodesign.flows.quantize import exact_grid, quantize_float_model, quantize_model
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.quantize import FeedReader, calibration_feeds, quiet
from hwcodesign.reference import Reference

torch = pytest.importorskip("torch")
ort_quantization = pytest.importorskip("onnxruntime.quantization")

SPARSE = SparseCase((SparseLayer("subm", 4), SparseLayer("subm", 6, stride=2), SparseLayer("subm", 6),
                     SparseLayer("add", of=1), SparseLayer("gap"), SparseLayer("fc", 3)))


class NormalisedClassifier(torch.nn.Module):
    """(x - mean) / std, two convs, a linear layer and Softmax: a float pre and post around the core."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.4, 0.5, 0.6]).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.2, 0.25, 0.3]).reshape(1, 3, 1, 1))
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return torch.softmax(self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1)), dim=1)


def torch_export(net: torch.nn.Module, shape: tuple[int, ...]) -> onnx.ModelProto:
    torch.manual_seed(0)
    buffer = io.BytesIO()
    with quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), torch.rand(shape), buffer, input_names=["x"], output_names=["y"],
                          opset_version=17, dynamo=False)
    return onnx.load_from_string(buffer.getvalue())


@pytest.fixture(scope="module")
def classifier() -> onnx.ModelProto:
    torch.manual_seed(0)
    return torch_export(NormalisedClassifier(), (1, 3, 12, 12))


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return np.random.default_rng(0).random((8, 3, 12, 12), dtype=np.float32)


def producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {output: node for node in model.graph.node for output in node.output}


def test_pre_and_post_stay_float_and_the_core_is_quantized(classifier, frames) -> None:
    result = quantize_float_model(classifier, frames)
    reasons = {group.reason.split(" (")[0]: group for group in result.kept_float}
    pre = reasons["float pre-processing before the first layer"]
    post = reasons["float head and tail after the last layer"]
    ops = {node.name: node.op_type for node in classifier.graph.node}
    assert sorted(ops[n] for n in pre.nodes) == ["Div", "Sub"]
    assert [ops[n] for n in post.nodes] == ["Softmax"]
    model = result.model
    made = producers(model)
    for node in model.graph.node:
        if node.op_type in ("Sub", "Div"):  # float, reading the float input
            assert made.get(node.input[0]) is None or made[node.input[0]].op_type not in ("DequantizeLinear",)
        if node.op_type in ("Conv", "Gemm"):
            assert made[node.input[0]].op_type == "DequantizeLinear"
            weight = made[node.input[1]]
            assert weight.op_type == "DequantizeLinear"
            q = next(i for i in model.graph.initializer if i.name == weight.input[0])
            assert q.data_type == TensorProto.INT8 and q.dims[0] == len(numpy_helper.to_array(
                next(i for i in model.graph.initializer if i.name == weight.input[1])))  # per channel
        if node.op_type == "Softmax":  # reads the last dequantized layer, writes the float output
            assert made[node.input[0]].op_type == "DequantizeLinear"
            assert node.output[0] == "y"
    expected, got = Reference(classifier).first(frames[:1]), Reference(model).first(frames[:1])
    assert np.abs(expected - got).max() < 0.05 and np.isclose(got.sum(), 1, atol=1e-5)


def test_host_option_and_int4_weights(classifier, frames) -> None:
    result = quantize_float_model(classifier, frames, weight_bits=4, host=("Gemm",))
    model = result.model
    assert next(o.version for o in model.opset_import if o.domain == "") >= 21
    assert any(group.reason.startswith("assigned to the host") for group in result.kept_float)
    made = producers(model)
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    assert made.get(gemm.input[1]) is None  # float weights: the host runs it
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    q = next(i for i in model.graph.initializer if i.name == made[conv.input[1]].input[0])
    assert q.data_type == TensorProto.INT4
    with pytest.raises(HwcodesignError, match="no node or op type named 'GRU'"):
        quantize_model(classifier, frames, host=("GRU",))


def test_sparse_model_keeps_its_mask_float_and_counts_exact() -> None:
    float_model, _ = build(SPARSE)
    del float_model.graph.output[1:]
    calibration = event_frames(SPARSE, 0.1, 8, 0)
    result = quantize_float_model(float_model, calibration)
    model = result.model
    made = producers(model)
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] == "events":
            inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
            assert float(inits[node.input[1]]) == 1.0 and int(inits[node.input[2]]) == 0
        if node.op_type in ("Cast", "MaxPool", "Mul"):  # the mask and its Muls: no quantizer on them
            assert all(made.get(i) is None or made[i].op_type != "DequantizeLinear" for i in node.input)
    assert "3 conv output(s) quantized once" in " ".join(result.notes)
    agreement = compare_with_onnxruntime(model, list(event_frames(SPARSE, 0.1, 4, 1)[:, None]))
    assert agreement.max_lsb <= 1


def signed_eighths(frames: np.ndarray, seed: int) -> np.ndarray:
    """Event frames turned voxel-grid-like: each value a signed multiple of 1/8 (ESDA's input)."""
    rng = np.random.default_rng(seed)
    return (frames * rng.choice([-0.625, -0.125, 0.375, 1.25], frames.shape)).astype(np.float32)


def test_a_signed_sparse_input_on_a_grid_keeps_it_as_int8() -> None:
    """Voxel-grid-like input, multiples of 1/8 of both signs: int8, scale 1/8, zero point 0, so every
    value and every active site is exact (none rounds to the zero point)."""
    float_model, _ = build(SPARSE)
    del float_model.graph.output[1:]
    result = quantize_float_model(float_model, signed_eighths(event_frames(SPARSE, 0.1, 8, 0), 1))
    quantizer = next(n for n in result.model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "events")
    inits = {i.name: numpy_helper.to_array(i) for i in result.model.graph.initializer}
    assert float(inits[quantizer.input[1]]) == 0.125
    assert inits[quantizer.input[2]].dtype == np.int8 and int(inits[quantizer.input[2]]) == 0
    assert "input 'events' keeps its grid: scale 0.125, int8 zero point 0" in " ".join(result.notes)
    agreement = compare_with_onnxruntime(result.model, list(signed_eighths(event_frames(SPARSE, 0.1, 4, 1), 2)[:, None]))
    assert agreement.max_lsb <= 1


@pytest.mark.parametrize("values, grid", [
    ([0, 3, 255], (1.0, np.uint8)), ([0, 256], None), ([0.5, -1.25, 2], (0.25, np.int8)),
    ([-16, 15.875], (0.125, np.int8)), ([-16.125], None), ([0.1], None), ([], (1.0, np.uint8)),
])
def test_exact_grid_is_the_coarsest_that_holds_every_value(values: list[float], grid: tuple | None) -> None:
    assert exact_grid(np.array(values, np.float32)) == grid


def default_quantize_static(model: onnx.ModelProto, calibration: np.ndarray, tmp_path: Path) -> onnx.ModelProto:
    """onnxruntime's quantize_static with every setting left at its default."""

    class Reader(FeedReader, ort_quantization.CalibrationDataReader):
        pass

    onnx.save(model, tmp_path / "float.onnx")
    with quiet():
        ort_quantization.quantize_static(str(tmp_path / "float.onnx"), str(tmp_path / "qdq.onnx"),
                                         Reader(calibration_feeds(calibration, "events")))
    return onnx.load(tmp_path / "qdq.onnx")


def test_sparse_model_from_default_quantize_static_is_accepted(tmp_path: Path) -> None:
    """The mask's Cast and MaxPool get uint8 Q/DQ pairs and the Mul's output its own quantizer:
    read as a mask whose sites weigh 255 * (1/255), within 1 LSB of onnxruntime."""
    float_model, _ = build(SPARSE)
    del float_model.graph.output[1:]
    quantized = default_quantize_static(float_model, event_frames(SPARSE, 0.1, 8, 0), tmp_path)
    assert any(n.op_type == "QuantizeLinear" and n.input[0].startswith("cast") for n in quantized.graph.node)
    graph = optimize(load_onnx(quantized))
    assert graph.inputs[0].output.sparse
    agreement = compare_with_onnxruntime(quantized, list(event_frames(SPARSE, 0.1, 6, 5)[:, None]), graph)
    assert agreement.max_lsb <= 1


def test_a_quantized_mask_that_loses_active_sites_is_refused(tmp_path: Path) -> None:
    float_model, _ = build(SPARSE)
    del float_model.graph.output[1:]
    quantized = default_quantize_static(float_model, event_frames(SPARSE, 0.1, 8, 0), tmp_path)
    mask_q = next(n for n in quantized.graph.node if n.op_type == "QuantizeLinear" and n.input[0].startswith("cast"))
    zero = next(i for i in quantized.graph.initializer if i.name == mask_q.input[2])
    zero.CopyFrom(numpy_helper.from_array(np.uint8(255), zero.name))  # 1 rounds onto 255: the zero point
    with pytest.raises(UnsupportedModelError, match=f"{mask_q.name}.*mask is lost.*hwcodesign quantize"):
        load_onnx(quantized)


def deform_float_model(clip: bool) -> onnx.ModelProto:
    """x -> Conv (offsets) [-> Clip(-2, 2)] -> DeformConv(x, W, offsets, B) -> Relu -> Conv: opset 19."""
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in (
        ("w_off", rng.normal(0, 0.5, (18, 4, 3, 3))), ("b_off", np.zeros(18)),
        ("w_def", rng.normal(0, 0.3, (6, 4, 3, 3))), ("b_def", rng.normal(0, 0.1, 6)),
        ("w_out", rng.normal(0, 0.3, (3, 6, 1, 1))), ("b_out", np.zeros(3)),
        ("lo", np.array(-2.0)), ("hi", np.array(2.0)))]
    nodes = [helper.make_node("Conv", ["x", "w_off", "b_off"], ["off"], name="offset_conv", pads=[1, 1, 1, 1])]
    offsets = "off"
    if clip:
        nodes.append(helper.make_node("Clip", ["off", "lo", "hi"], ["off_clipped"], name="offset_clip"))
        offsets = "off_clipped"
    nodes += [helper.make_node("DeformConv", ["x", "w_def", offsets, "b_def"], ["d"], name="deform",
                               kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
              helper.make_node("Relu", ["d"], ["r"], name="relu"),
              helper.make_node("Conv", ["r", "w_out", "b_out"], ["y"], name="out_conv")]
    graph = helper.make_graph(nodes, "deform", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=10)


def test_deform_offsets_clipped_to_the_bound_and_on_the_grid() -> None:
    frames = np.random.default_rng(2).random((6, 4, 8, 8), dtype=np.float32)
    model = quantize_model(deform_float_model(clip=True), frames)
    made = producers(model)
    deform = next(n for n in model.graph.node if n.op_type == "DeformConv")
    offset_dq = made[deform.input[2]]
    offset_q = made[offset_dq.input[0]]
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    assert offset_q.op_type == "QuantizeLinear" and made[offset_q.input[0]].op_type == "Clip"
    assert float(inits[offset_q.input[1]]) == pytest.approx(2 / 127) and inits[offset_q.input[2]].dtype == np.int8
    assert made[made[offset_q.input[0]].input[0]].op_type == "Conv"  # the Clip reads the conv: quantized once
    reference = Reference(model, intermediates=[deform.input[2]])
    values = np.concatenate([reference.run({"x": f[None]}, [deform.input[2]])[deform.input[2]] for f in frames[:2]])
    values = values / (2 / 127)
    assert np.abs(values).max() <= 127 + 1e-3 and np.allclose(values, np.rint(values), atol=1e-3)
    graph = optimize(load_onnx(model))
    assert any(type(op).__name__ == "DeformConv" for op in graph)
    assert compare_with_onnxruntime(model, [f[None] for f in frames[:3]], graph).max_lsb <= 1


def test_deform_offsets_without_a_bound_are_refused() -> None:
    frames = np.random.default_rng(2).random((2, 4, 8, 8), dtype=np.float32)
    with pytest.raises(HwcodesignError, match="DeformConv 'deform'.*Clip"):
        quantize_model(deform_float_model(clip=False), frames)


def test_symmetric_activations_from_the_cli(tmp_path: Path) -> None:
    """`--symmetric-activations` (CoDeNet's 8-bit symmetric activations): every activation quantizer
    int8 with zero point 0, the DeformConv's output too (scale max|x| / 127, as onnxruntime's
    ActivationSymmetric); the lowered model within 1 LSB of onnxruntime."""
    model, calibration, out = tmp_path / "float.onnx", tmp_path / "frames.npy", tmp_path / "qdq.onnx"
    onnx.save(deform_float_model(clip=True), model)
    frames = np.random.default_rng(2).random((6, 4, 8, 8), dtype=np.float32)
    np.save(calibration, frames)
    assert main(["quantize", str(model), "--calibration", str(calibration), "-o", str(out),
                 "--symmetric-activations"]) == 0
    quantized = onnx.load(out)
    inits = {i.name: numpy_helper.to_array(i) for i in quantized.graph.initializer}
    quantizers = [n for n in quantized.graph.node if n.op_type == "QuantizeLinear"]
    assert quantizers and all(inits[q.input[2]].dtype == np.int8 and int(inits[q.input[2]]) == 0 for q in quantizers)
    deform = next(n for n in quantized.graph.node if n.op_type == "DeformConv")
    (relu,) = [n for n in quantized.graph.node if n.op_type == "Relu" and n.input[0] == deform.output[0]]
    (output_q,) = [n for n in quantizers if n.input[0] == relu.output[0]]  # int8 does not clamp at 0: the ReLU stays
    reference = Reference(deform_float_model(clip=True), intermediates=["r"])
    largest = max(float(np.abs(reference.run({"x": f[None]}, ["r"])["r"]).max()) for f in frames)
    assert float(inits[output_q.input[1]]) == pytest.approx(largest / 127, rel=1e-5)
    graph = optimize(load_onnx(quantized))
    assert {str(op.output.dtype) for op in graph} == {"int8"}
    reference = quantized_tensors(quantized, [{"x": f[None]} for f in frames[:3]])
    deform_output = next(d for d in isolated_differences(graph, reference) if d.kind == "DeformConv")
    assert deform_output.low == 0 and deform_output.max_lsb <= 1  # each layer within 1 LSB given ORT's inputs
    assert all(d.max_lsb <= 1 for d in isolated_differences(graph, reference))


def test_cli_quantizes_and_says_what_stays_float(classifier, frames, tmp_path: Path, capsys) -> None:
    model, calibration, out = tmp_path / "float.onnx", tmp_path / "frames.npy", tmp_path / "qdq.onnx"
    onnx.save(classifier, model)
    np.save(calibration, frames)
    assert main(["quantize", str(model), "--calibration", str(calibration), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "kept float: float pre-processing" in printed and "kept float: float head" in printed
    assert f"written to {out}" in printed and onnx.load(out).graph.node


@pytest.mark.parametrize("case, expected", [
    ("missing", "no such file"),
    ("shape", "must be (N, 3, 12, 12)"),
    ("same", "is an input of this command and will not be overwritten"),
])
def test_cli_refusals(classifier, frames, tmp_path: Path, capsys, case: str, expected: str) -> None:
    model, calibration, out = tmp_path / "float.onnx", tmp_path / "frames.npy", tmp_path / "qdq.onnx"
    onnx.save(classifier, model)
    before = model.read_bytes()
    if case != "missing":
        np.save(calibration, frames if case != "shape" else frames[:, :, :10])
    target = model if case == "same" else out
    assert main(["quantize", str(model), "--calibration", str(calibration), "-o", str(target)]) == 2
    error = capsys.readouterr().err
    assert expected in error and "Traceback" not in error
    assert model.read_bytes() == before and not out.exists()
