"""Tests for the CoDeNet-like example detector (examples/codenet): the torch deformable
convolution against onnxruntime's DeformConv, the float and QDQ ONNX models, the DeformConv
QDQ convention and the CenterNet decode."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from support.layerwise import built_codenet, codenet_build

from hwcodesign.flows.deform_grid import calibrate_ranges
from hwcodesign.flows.quantize import with_int4_opset
from hwcodesign.reference import Reference, run_reference

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

build = codenet_build()
cmodel = build.sibling("model")
decode = build.sibling("decode")

R = cmodel.OFFSET_RANGE


# --------------------------------------------------------------------------- DeformConv op


def _ort_deform(x, w, offset, b, stride, pad, dilation, groups, offset_groups):
    node = helper.make_node(
        "DeformConv",
        ["x", "w", "offset", "b"],
        ["y"],
        kernel_shape=list(w.shape[2:]),
        pads=[pad] * 4,
        strides=[stride] * 2,
        dilations=[dilation] * 2,
        group=groups,
        offset_group=offset_groups,
    )
    values = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("x", "w", "offset", "b")]
    graph = helper.make_graph(
        [node], "deform", values, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=10)
    return run_reference(model, {"x": x, "w": w, "offset": offset, "b": b})["y"]


DEFORM_CASES = [
    # (channels, out_channels, groups, offset_groups, size, kernel, stride, pad, dilation, R)
    pytest.param(4, 6, 1, 1, 9, 3, 1, 1, 1, 2, id="full-R2"),
    pytest.param(8, 8, 8, 1, 7, 3, 1, 1, 1, 2, id="depthwise-R2"),
    pytest.param(6, 6, 6, 1, 5, 3, 1, 1, 1, 1, id="depthwise-R1"),
    pytest.param(4, 4, 4, 1, 6, 3, 1, 1, 1, 4, id="depthwise-R4-small-image"),
    pytest.param(4, 8, 1, 1, 8, 3, 1, 1, 1, 4, id="full-R4"),
    pytest.param(6, 4, 2, 2, 10, 3, 2, 1, 1, 1, id="grouped-offset-groups-stride2"),
    pytest.param(4, 4, 4, 1, 9, 3, 1, 2, 2, 2, id="depthwise-dilation2"),
]


@pytest.mark.parametrize("c,m,groups,og,size,k,stride,pad,dil,r", DEFORM_CASES)
def test_torch_deform_matches_onnxruntime(c, m, groups, og, size, k, stride, pad, dil, r):
    rng = np.random.default_rng(c * 100 + size * 10 + r)
    x = rng.normal(size=(2, c, size, size)).astype(np.float32)
    w = rng.normal(size=(m, c // groups, k, k)).astype(np.float32)
    b = rng.normal(size=m).astype(np.float32)
    out = (size + 2 * pad - dil * (k - 1) - 1) // stride + 1
    # offsets within [-R, R] (as after the model's Clip), with exact integers, exact +-R and
    # half-way points mixed in
    offset = rng.uniform(-r, r, size=(2, og * k * k * 2, out, out)).astype(np.float32)
    special = rng.choice(np.array([0.0, 0.5, -0.5, r, -r, 1.0, -1.0], np.float32), size=offset.shape)
    offset = np.where(rng.random(offset.shape) < 0.25, special, offset).astype(np.float32)
    # sampling positions that fall outside the image (zero contributions) are exercised
    tap = np.arange(k * k)
    ys = (
        (np.arange(out) * stride - pad)[None, :, None]
        + (tap // k * dil)[:, None, None]
        + offset[0, 0 : 2 * k * k : 2]
    )
    assert (ys < 0).mean() > 0.02 and (ys > size - 1).mean() > 0.02
    ref = _ort_deform(x, w, offset, b, stride, pad, dil, groups, og)
    got = cmodel.deform_conv2d(
        *(torch.from_numpy(a) for a in (x, w, offset, b)), stride, pad, dil, groups, og
    ).numpy()
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() < 1e-4


def test_deform_offsets_beyond_the_image_give_zero():
    x = torch.ones(1, 1, 4, 4)
    w = torch.ones(1, 1, 3, 3)
    offset = torch.full((1, 18, 4, 4), 10.0)  # every sample 10 pixels away: outside
    assert cmodel.deform_conv2d(x, w, offset, None, 1, 1, 1, 1, 1).abs().max() == 0


def test_deform_gradients():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(2, 1, 3, 3, dtype=torch.float64, generator=g, requires_grad=True)
    # keep offsets away from integers, where bilinear sampling is not differentiable
    offset = (torch.rand(1, 18, 5, 5, dtype=torch.float64, generator=g) * 0.8 + 0.1) * torch.tensor(
        [1.0, -1.0], dtype=torch.float64
    ).repeat(9).view(1, 18, 1, 1)
    offset.requires_grad_()
    b = torch.randn(2, dtype=torch.float64, generator=g, requires_grad=True)
    fn = cmodel.DeformConv2dFunction.apply
    assert torch.autograd.gradcheck(lambda *a: fn(*a, 1, 1, 1, 2, 1), (x, w, offset, b))


class _OneStage(torch.nn.Module):
    """offset conv -> Clip(-r, r) -> depthwise DeformConv, as in a CoDeNet upsampling stage."""

    def __init__(self, channels: int, r: float):
        super().__init__()
        self.offset = torch.nn.Conv2d(channels, 18, 3, 1, 1)
        self.deform = cmodel.DeformConv2d(channels, channels, 3, 1, 1, groups=channels)
        self.r = r

    def forward(self, x):
        return self.deform(x, torch.clamp(self.offset(x), -self.r, self.r))


@pytest.mark.parametrize("r", [1, 2, 4])
def test_exported_stage_matches_torch(r):
    torch.manual_seed(r)
    stage = _OneStage(8, float(r)).eval()
    with torch.no_grad():
        stage.offset.weight.mul_(20.0)  # offsets well beyond R, so the Clip matters
    x = torch.randn(1, 8, 10, 10)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(stage, (x,), buffer, dynamo=False, opset_version=19, input_names=["x"])
    model = onnx.load_from_string(buffer.getvalue())
    model.ir_version = min(model.ir_version, 10)
    (node,) = [n for n in model.graph.node if n.op_type == "DeformConv"]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    assert attrs == {
        "kernel_shape": [3, 3],
        "pads": [1, 1, 1, 1],
        "strides": [1, 1],
        "dilations": [1, 1],
        "group": 8,
        "offset_group": 1,
    }
    assert len(node.input) == 4
    with torch.no_grad():
        raw = stage.offset(x)
        expected = stage(x).numpy()
    assert (raw.abs() > r).float().mean() > 0.2
    got = Reference(model).first(x.numpy())
    assert np.abs(got - expected).max() < 1e-4


# --------------------------------------------------------------------------- built models


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """Built once per session, shared with test_codenet_layers.py."""
    return built_codenet(tmp_path_factory, seed=0)


@pytest.fixture(scope="module")
def models(built) -> dict[str, onnx.ModelProto]:
    return {key: onnx.load(str(path)) for key, path in built.items()}


@pytest.fixture(scope="module")
def scenes() -> np.ndarray:
    return build.synthetic_scenes(4, seed=0, stream=7)[0]


@pytest.fixture(scope="module")
def float_outputs(built, scenes) -> list[np.ndarray]:
    return build.run(Reference(built["float"]), scenes)


def _shape(value) -> list[int]:
    return [d.dim_value for d in value.type.tensor_type.shape.dim]


def test_files_and_io(built, models):
    assert built["float"].name == "codenet_float.onnx" and built["w4a8"].name == "codenet_w4a8.onnx"
    for model in models.values():
        onnx.checker.check_model(model, full_check=True)
        assert model.ir_version <= 10
        assert [(v.name, _shape(v)) for v in model.graph.input] == [("input", [1, 3, 256, 256])]
        assert [(v.name, _shape(v)) for v in model.graph.output] == [
            ("heatmap", [1, 20, 64, 64]),
            ("size", [1, 2, 64, 64]),
            ("offset", [1, 2, 64, 64]),
        ]
    opsets = {key: {o.domain: o.version for o in m.opset_import} for key, m in models.items()}
    assert opsets == {"float": {"": 19}, "w4a8": {"": 21}}


def test_op_counts(models):
    assert build.op_counts(models["float"]) == {
        "Add": 13,
        "Clip": 3,
        "Conv": 62,
        "DeformConv": 3,
        "MaxPool": 1,
        "Relu": 43,
        "Resize": 3,
    }
    counts = build.op_counts(models["w4a8"])
    # onnxruntime absorbs every Relu into the quantizer after it; the DeformConv ReLUs too
    assert {k: v for k, v in counts.items() if k not in ("QuantizeLinear", "DequantizeLinear")} == {
        "Add": 13,
        "Clip": 3,
        "Conv": 62,
        "DeformConv": 3,
        "MaxPool": 1,
        "Resize": 3,
    }
    assert counts["DequantizeLinear"] > counts["QuantizeLinear"] > 0


def test_float_model_matches_torch(models, scenes, float_outputs):
    torch_model = build.make_model(seed=0)
    x = torch.from_numpy(scenes)
    fused = torch_model.fused_for_export()
    with torch.no_grad():
        unfused_out = torch_model(x)
        fused_out = fused(x)
        for a, b in zip(unfused_out, fused_out):  # BatchNorm folding is exact up to rounding
            assert (a - b).abs().max() <= 1e-4 * max(1.0, float(a.abs().max()))
        build.snap_to_weight_grid(fused)
        exported = [t.numpy() for t in fused(x)]
    for a, b in zip(exported, float_outputs):
        assert a.shape == b.shape
        assert np.abs(a - b).max() <= 1e-4 * max(1.0, np.abs(a).max())


def test_qdq_model_on_grid(models):
    assert build.check_qdq(models["w4a8"]) == []
    q = models["w4a8"]
    inits = {i.name: i for i in q.graph.initializer}
    producers = {o: n for n in q.graph.node for o in n.output}
    for node in q.graph.node:
        if node.op_type in ("Conv", "DeformConv"):
            assert inits[producers[node.input[1]].input[0]].data_type == TensorProto.INT4
    # every activation quantizer is uint8, except the int8 offset quantizers
    types = [inits[n.input[2]].data_type for n in q.graph.node if n.op_type == "QuantizeLinear"]
    assert types.count(TensorProto.INT8) == 3 and types.count(TensorProto.UINT8) == len(types) - 3


def test_qdq_model_close_to_float(built, scenes, float_outputs):
    """Tolerances are loose on purpose: int4 weights and uint8 activations through ~65 layers of a
    random (untrained) network. Measured at seed 0: rms error 4-6% of each output's range,
    max error 20-28% of the range, correlation 0.91-0.95."""
    for optimized in (True, False):  # onnxruntime's fused kernels and the QDQ graph as written
        quantized = build.run(Reference(built["w4a8"], optimized=optimized), scenes)
        for name, a, b in zip(build.OUTPUT_NAMES, float_outputs, quantized):
            span = float(a.max() - a.min())
            assert np.isfinite(b).all()
            assert np.sqrt(np.mean((a - b) ** 2)) < 0.1 * span, name
            assert np.abs(a - b).max() < 0.4 * span, name
            assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.85, name


def test_deformconv_convention(models):
    rows = build.deform_convention(models["w4a8"])
    assert [r["weight_shape"] for r in rows] == [[512, 1, 3, 3], [128, 1, 3, 3], [64, 1, 3, 3]]
    float_rows = build.deform_convention(models["float"])
    assert [r["name"] for r in float_rows] == [r["name"] for r in rows]
    for row in rows:
        channels = row["weight_shape"][0]
        assert row["group"] == channels and row["offset_group"] == 1
        assert row["kernel_shape"] == [3, 3] and row["pads"] == [1, 1, 1, 1]
        assert row["strides"] == [1, 1] and row["dilations"] == [1, 1]
        assert row["offset_range"] == R == 2
        assert row["weight_type"] == "INT4"
        assert row["x"][1:] == (0, "UINT8")
        assert row["offset"] == (pytest.approx(R / 127), 0, "INT8")
        assert row["output"][1:] == (0, "UINT8")  # ReLU absorbed: zero point 0
    for row in float_rows:
        assert row["offset_range"] == 2 and row["x"] is None and row["weight_type"] == "FLOAT"


def test_deform_inputs_in_float_model(models):
    """X has as many channels as the DeformConv's group; offsets are Clip(-2, 2) of an 18-channel conv."""
    model = onnx.shape_inference.infer_shapes(models["float"])
    shapes = {v.name: _shape(v) for v in list(model.graph.value_info) + list(model.graph.input)}
    producers = {o: n for n in model.graph.node for o in n.output}
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in (n for n in model.graph.node if n.op_type == "DeformConv"):
        group = next(helper.get_attribute_value(a) for a in node.attribute if a.name == "group")
        n, c, h, w = shapes[node.input[0]]
        assert c == group
        assert shapes[node.input[2]] == [n, 18, h, w]
        clip = producers[node.input[2]]
        assert (
            clip.op_type == "Clip"
            and float(inits[clip.input[1]]) == -2.0
            and float(inits[clip.input[2]]) == 2.0
        )
        conv = producers[clip.input[0]]
        assert conv.op_type == "Conv" and inits[conv.input[1]].shape == (18, c, 3, 3)


def test_quantized_offsets_bounded(built, models, scenes):
    """The offsets the QDQ DeformConvs see stay within [-R, R] and reach the bounds."""
    names = [n.input[2] for n in models["w4a8"].graph.node if n.op_type == "DeformConv"]
    reference = Reference(models["w4a8"], intermediates=names)
    runs = [reference.run({"input": scenes[i : i + 1]}, names) for i in range(2)]
    for v in (np.concatenate([run[name] for run in runs]) for name in names):
        assert v.min() >= -R and v.max() <= R
        assert np.isclose(v.max(), R) and np.isclose(v.min(), -R)
        assert np.allclose(v / (R / 127), np.round(v / (R / 127)), atol=1e-3)


def test_deform_output_scale_calibrated(models):
    """Each DeformConv output quantizer covers the float DeformConv(+ReLU) output range over
    the calibration scenes."""
    model21 = with_int4_opset(models["float"])
    relus = []
    for node in (n for n in model21.graph.node if n.op_type == "DeformConv"):
        (relu,) = [n for n in model21.graph.node if node.output[0] in n.input]
        assert relu.op_type == "Relu"
        relus.append(relu.output[0])
    calibration, _ = build.synthetic_scenes(build.CALIBRATION_IMAGES, seed=0, stream=3)
    ranges = calibrate_ranges(model21, relus, [{"input": image[None]} for image in calibration])
    for name, row in zip(relus, build.deform_convention(models["w4a8"])):
        lo, hi = ranges[name]
        assert lo == 0.0 and hi > 0
        assert row["output"][0] == pytest.approx(hi / 255, rel=0.01)


def _mutated(model: onnx.ModelProto, edit) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    edit(copy)
    return copy


def test_check_qdq_reports_problems(models):
    q = models["w4a8"]
    first = next(n.name for n in q.graph.node if n.op_type == "DeformConv")

    def deform(m):
        return next(n for n in m.graph.node if n.name == first)

    def producer(m, tensor):
        return next(n for n in m.graph.node if tensor in n.output)

    def float_weight(m):
        node = deform(m)
        dq = producer(m, node.input[1])
        inits = {i.name: i for i in m.graph.initializer}
        w = numpy_helper.to_array(inits[dq.input[0]]).astype(np.float32)
        m.graph.initializer.append(numpy_helper.from_array(w, "float_w"))
        node.input[1] = "float_w"

    def bypass_offset_quantizer(m):
        node = deform(m)
        node.input[2] = producer(m, producer(m, node.input[2]).input[0]).input[0]  # the Clip output

    def unquantized_output(m):
        node = deform(m)
        q_node = next(n for n in m.graph.node if node.output[0] in n.input)
        dq_node = next(n for n in m.graph.node if q_node.output[0] in n.input)
        for n in m.graph.node:
            for k, name in enumerate(n.input):
                if name == dq_node.output[0]:
                    n.input[k] = node.output[0]

    def unbounded_offsets(m):
        node = deform(m)
        clip = producer(m, producer(m, producer(m, node.input[2]).input[0]).input[0])
        del clip.input[1:]

    expected = {
        float_weight: "weight is not DequantizeLinear",
        bypass_offset_quantizer: "offset",
        unquantized_output: "not only QuantizeLinear",
        unbounded_offsets: "Clip with constant min and max",
    }
    for edit, message in expected.items():
        problems = build.check_qdq(_mutated(q, edit))
        assert any(first in p and message in p for p in problems), (edit.__name__, problems)
    assert build.check_qdq(models["float"])  # nothing is quantized there


def test_model_stats(built):
    stats = build.model_stats(built)
    assert stats["torch_parameters"] == cmodel.parameter_count(cmodel.CoDeNet())
    assert 0.3 < stats["size_mb_4bit_all_params"] < 0.8  # CoDeNet's small variant: 0.76 MB
    assert stats["ops_float"]["DeformConv"] == 3


# --------------------------------------------------------------------------- decode


def test_decode_self_test():
    found = decode.self_test()
    assert len(found) == 6


def test_decode_planted_peaks():
    objects = np.array(
        [(0, 10.0, 20.0, 50.0, 90.0), (7, 120.0, 128.0, 200.0, 160.0), (19, 230.0, 230.0, 256.0, 256.0)]
    )
    heat, size, offset = decode.encode(objects)
    found = decode.decode(heat, size, offset, k=100, threshold=0.3, stride=4)
    assert sorted(d[0] for d in found) == [0, 7, 19]
    for cls, *box in objects:
        (det,) = [d for d in found if d[0] == cls]
        assert det[1] == pytest.approx(0.95)
        assert np.allclose(det[2:], box, atol=1e-3)
    # k and threshold
    assert len(decode.decode(heat, size, offset, k=2)) == 2
    assert decode.decode(heat, size, offset, threshold=0.96) == []
    # a same-class neighbour of a peak is suppressed by the 3x3 max pool
    heat2 = heat.copy()
    iy, ix = int((20 + 90) / 8), int((10 + 50) / 8)
    heat2[0, 0, iy, ix + 1] = heat2[0, 0, iy, ix] - 0.1
    assert len(decode.decode(heat2, size, offset)) == 3


def test_decode_on_model_outputs(float_outputs):
    heat, size, offset = (o[:1] for o in float_outputs)
    found = decode.decode(heat, size, offset, k=20, threshold=0.0)
    assert len(found) == 20
    scores = [d[1] for d in found]
    assert scores == sorted(scores, reverse=True)
    assert all(0 <= d[0] < 20 and 0 < d[1] < 1 and np.isfinite(d[2:]).all() for d in found)
    # box centres are peak cells plus the predicted sub-cell offsets (untrained: a few cells)
    assert all(-16 < (d[2] + d[4]) / 2 < 272 and -16 < (d[3] + d[5]) / 2 < 272 for d in found)
