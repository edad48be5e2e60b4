"""Submanifold sparse networks from ONNX (frontend/sparse.py): the masked-dense form and the
hwcodesign.SubmConv node lower to the same SubmanifoldConv graph, and the golden model, which
computes only at active sites, agrees with onnxruntime's run of the masked-dense QDQ model within
1 LSB, for kernels 1/3/5, strides 1 and 2 under both downsampling rules (ESDA's stride block,
spconv's conv window), depthwise, residual adds, densities 1% to 50%."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper
from support.sparse_models import SparseCase, SparseLayer, event_frames, sparse_models

from hwcodesign.errors import GraphError, UnsupportedModelError
from hwcodesign.ops import SubmanifoldConv
from hwcodesign.ops.sparse.ir import ConvGeometry, downsampling_step
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.reference import Reference
from hwcodesign.sim.golden import run_golden
from hwcodesign.sim.sparsity import active_mask, downsample_mask, root_mask, tensor_densities

S, A, G, F = SparseLayer, SparseLayer("add", of=1), SparseLayer("gap"), SparseLayer("fc", 4)
CASES = [
    SparseCase((S("subm", 6, 1), S("subm", 6, 3), A, G, F)),
    SparseCase((S("subm", 6, 3), S("subm", 8, 3, 2), G, F)),
    SparseCase((S("subm", 6, 5), S("subm", 6, 5, 2), S("subm", 6, 3), A, G, F), height=14, width=16,
               downsampling="window"),
    # a 1x1 stride-2 conv under the block rule; 13 columns: a partial last block (ceil_mode)
    SparseCase((S("subm", 8, 3), S("subm", 8, 3, depthwise=True), S("subm", 8, 1, 2), G, F), width=13),
]
DENSITIES = (0.01, 0.05, 0.2, 0.5)


def lowered(model: onnx.ModelProto, tmp_path: Path, name: str):
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, path)
    return optimize(load_onnx(path))


def onnxruntime_outputs(model: onnx.ModelProto, frames: np.ndarray) -> np.ndarray:
    return Reference(model).frames(frames)


@pytest.fixture(scope="module", params=CASES, ids=lambda c: c.label)
def case_models(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    case = request.param
    masked, custom = sparse_models(case, event_frames(case, 0.3, 8, seed=1))
    root = tmp_path_factory.mktemp("sparse")
    return case, masked, lowered(masked, root, "masked"), lowered(custom, root, "custom")


def test_both_forms_lower_to_the_same_sparse_graph(case_models) -> None:
    case, _, masked, custom = case_models
    assert [op.kind for op in masked] == [op.kind for op in custom]
    sparse = [op for op in masked if isinstance(op, SubmanifoldConv)]
    assert len(sparse) == sum(layer.kind == "subm" for layer in case.layers)
    strided = [op for op in sparse if op.strided]
    assert all(op.output.active.steps for op in strided)
    assert masked.inputs[0].output.sparse and not masked.output_tensors()[0].sparse
    frames = masked.inputs[0].output.quantize(event_frames(case, 0.1, 3, seed=2))
    for (_, a), (_, b) in zip(run_golden(masked, frames).items(), run_golden(custom, frames).items()):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("density", DENSITIES)
def test_golden_is_within_one_lsb_of_onnxruntime(case_models, density: float) -> None:
    case, model, graph, _ = case_models
    floats = event_frames(case, density, 4, seed=int(density * 1000))
    frames = graph.inputs[0].output.quantize(floats)
    golden = next(iter(run_golden(graph, frames).values()))
    reference = graph.output_tensors()[0].quantize(onnxruntime_outputs(model, floats)).reshape(golden.shape)
    assert int(np.abs(golden - reference).max()) <= 1


def test_golden_computes_nothing_at_inactive_sites(case_models) -> None:
    """Every sparse tensor holds its zero point exactly where its active set says inactive."""
    case, _, graph, _ = case_models
    frames = graph.inputs[0].output.quantize(event_frames(case, 0.05, 2, seed=3))
    values = run_golden(graph, frames, keep_intermediates=True)
    densities = tensor_densities(graph, {graph.inputs[0].output.name: frames})
    for op in graph:
        if op.output.sparse and not isinstance(op, type(graph.inputs[0])):
            active = np.any(values[op.output.name] != op.output.zero_point, axis=1).mean(axis=(1, 2))
            assert np.all(active <= densities[op.output.name] + 1e-12)
    root = {graph.inputs[0].output.name: root_mask(frames, graph.inputs[0].output)}
    for op in graph:
        if isinstance(op, SubmanifoldConv) and op.strided:  # the rule is the active set's last step
            source = graph.producer(op.inputs[0]).output
            rule = next(rule for rule, active in op.allowed_actives(source).items() if active == op.output.active)
            assert rule == ("block" if case.downsampling == "block" else "window")
            assert op.mask_window == op.output.active.steps[-1]
            if rule == "window":  # a window wider than its stride spreads the active set past the block rule's
                block = op.allowed_actives(source)["block"]
                spread, kept = active_mask(op.output.active, root), active_mask(block, root)
                assert np.all(spread >= kept) and spread.sum() > kept.sum()


def test_esda_block_rule_is_the_stride_block() -> None:
    """ESDA's rule, directly: an output site is active iff any of the input sites (2y..2y+1,
    2x..2x+1) is (its line buffer keyed by y >> 1, x >> 1), the last block partial on an odd size."""
    rng = np.random.default_rng(5)
    mask = rng.random((3, 7, 9)) < 0.1
    geometry = ConvGeometry((3, 3), (2, 2), (1, 1, 1, 1), (7, 9), (4, 5))
    step = downsampling_step("block", geometry)
    expected = np.zeros((3, 4, 5), bool)
    for n, y, x in zip(*np.nonzero(mask)):
        expected[n, y >> 1, x >> 1] = True
    assert np.array_equal(downsample_mask(mask, step), expected)
    assert downsampling_step("window", geometry) == (3, 3, 2, 2, 1, 1, 1, 1)


def test_a_mask_of_the_wrong_level_is_refused(tmp_path: Path) -> None:
    case = SparseCase((S("subm", 6, 3, 2), G, F))
    masked, _ = sparse_models(case, event_frames(case, 0.3, 4, seed=1))
    pool = next(n for n in masked.graph.node if n.op_type == "MaxPool")
    mul = next(n for n in masked.graph.node if n.op_type == "Mul")
    mul.input[1] = pool.input[0]  # the full-resolution mask on the strided conv's output
    masked.graph.node.remove(pool)
    with pytest.raises(UnsupportedModelError, match=r"applies the mask active\(.*\) to 'conv.*', whose active sites are "
                                                     r"active\(.*1 downsamplings\)"):
        lowered(masked, tmp_path, "wrong_level")


def test_a_mask_of_neither_rule_is_refused_naming_both(tmp_path: Path) -> None:
    """MaxPool(mask) with a 3x3 window and no padding is neither ESDA's block nor the conv's own
    (pad 1) window: refused with both rules and how to write them."""
    case = SparseCase((S("subm", 6, 3, 2), G, F), height=13, width=15)
    masked, _ = sparse_models(case, event_frames(case, 0.3, 4, seed=1))
    pool = next(n for n in masked.graph.node if n.op_type == "MaxPool")
    pool.ClearField("attribute")
    pool.attribute.extend([helper.make_attribute("kernel_shape", [3, 3]), helper.make_attribute("strides", [2, 2]),
                           helper.make_attribute("pads", [1, 1, 1, 1])])
    pool.attribute[-1].ints[:] = [0, 0, 2, 2]  # a 7x8 level, the conv's, under the wrong window
    with pytest.raises(UnsupportedModelError, match=r"whose active sites are .*\(block\) or .*\(window\).*"
                                                     r"ESDA's block rule.*spconv's window rule"):
        lowered(masked, tmp_path, "neither")


def test_a_subm_conv_names_its_unknown_downsampling(tmp_path: Path) -> None:
    case = SparseCase((S("subm", 6, 3, 2), G, F))
    _, custom = sparse_models(case, event_frames(case, 0.3, 4, seed=1))
    node = next(n for n in custom.graph.node if n.op_type == "SubmConv")
    node.attribute.append(helper.make_attribute("downsampling", "diagonal"))
    with pytest.raises(UnsupportedModelError, match=r"downsampling 'diagonal' is none of block, window"):
        lowered(custom, tmp_path, "diagonal")


def test_a_dense_conv_on_a_sparse_tensor_is_refused(tmp_path: Path) -> None:
    case = SparseCase((S("subm", 6, 3), S("subm", 6, 3), G, F))
    masked, _ = sparse_models(case, event_frames(case, 0.3, 4, seed=1))
    second = [n for n in masked.graph.node if n.op_type == "Mul"][1]
    for node in masked.graph.node:  # drop the second layer's mask: a dense conv of a sparse input
        node.input[:] = [second.input[0] if i == second.output[0] else i for i in node.input]
    masked.graph.node.remove(second)
    with pytest.raises(GraphError, match=r"reads the sparse tensor .*only SubmanifoldConv, Act, Add and GlobalAvgPool"):
        lowered(masked, tmp_path, "dense_after_sparse")


@pytest.mark.parametrize("edit, message", [
    ("axes", r"reduces over the channels only \(axes=\[1\], keepdims=1\)"),
    ("threshold", r"compares with 0"),
])
def test_a_malformed_mask_names_the_node(tmp_path: Path, edit: str, message: str) -> None:
    case = SparseCase((S("subm", 6, 3), G, F))
    masked, _ = sparse_models(case, event_frames(case, 0.3, 4, seed=1))
    if edit == "axes":
        reduce = next(n for n in masked.graph.node if n.op_type == "ReduceMax")
        masked.graph.initializer.append(onnx.numpy_helper.from_array(np.array([2], np.int64), "axes2"))
        reduce.input[1] = "axes2"
    else:
        greater = next(n for n in masked.graph.node if n.op_type == "Greater")
        masked.graph.initializer.append(onnx.numpy_helper.from_array(np.float32(0.5), "half"))
        greater.input[1] = "half"
    with pytest.raises(UnsupportedModelError, match=message):
        lowered(masked, tmp_path, edit)


def test_abs_outside_a_mask_is_an_activation_not_a_mask_step(tmp_path: Path) -> None:
    """An Abs of a feature map is the elementwise family's activation (|x|), so after a fused Relu
    it is refused as a second activation, named; only an Abs of the network input starts a mask."""
    case = SparseCase((S("subm", 6, 3), G, F))
    model, _ = sparse_models(case, event_frames(case, 0.3, 4, seed=1))
    graph = model.graph
    relu = next(n for n in graph.node if n.op_type == "Relu")
    graph.node.append(helper.make_node("Abs", [relu.output[0]], ["stray"], name="stray_abs"))
    graph.output.append(helper.make_tensor_value_info("stray", onnx.TensorProto.FLOAT,
                                                      [1, 6, case.height, case.width]))
    with pytest.raises(UnsupportedModelError, match=r"stray_abs.*second activation after .* cannot be fused"):
        lowered(model, tmp_path, "stray")


def pool_mask_quantized(zero_point: int) -> tuple[SparseCase, onnx.ModelProto]:
    """A sparse model whose mask MaxPool gets a uint8 Q/DQ pair (scale 1/255), as onnxruntime's
    quantize_static writes it by default."""
    case = SparseCase((S("subm", 6, 3, 2), G, F))
    masked, _ = sparse_models(case, event_frames(case, 0.3, 4, seed=1))
    pool = next(n for n in masked.graph.node if n.op_type == "MaxPool")
    masked.graph.initializer.extend([onnx.numpy_helper.from_array(np.float32(1 / 255), "mask_scale"),
                                     onnx.numpy_helper.from_array(np.uint8(zero_point), "mask_zero")])
    for node in masked.graph.node:
        node.input[:] = ["mask_dq" if i == pool.output[0] else i for i in node.input]
    at = list(masked.graph.node).index(pool) + 1
    masked.graph.node.insert(at, helper.make_node("QuantizeLinear", [pool.output[0], "mask_scale", "mask_zero"],
                                                  ["mask_q"], name="mask_quantizer"))
    masked.graph.node.insert(at + 1, helper.make_node("DequantizeLinear", ["mask_q", "mask_scale", "mask_zero"],
                                                      ["mask_dq"], name="mask_dequantizer"))
    return case, masked


def test_a_quantized_mask_that_keeps_zero_and_one_apart_is_a_mask(tmp_path: Path) -> None:
    """Active sites weigh 255 * (1/255) after the pair: still the mask, the golden model within
    1 LSB of onnxruntime."""
    case, masked = pool_mask_quantized(0)
    graph = lowered(masked, tmp_path, "quantized_mask")
    assert any(isinstance(op, SubmanifoldConv) and op.strided for op in graph)
    frames = event_frames(case, 0.3, 4, seed=2)
    expected = graph.output_tensors()[0].quantize(onnxruntime_outputs(masked, frames))
    golden = run_golden(graph, frames.astype(np.int64))[graph.output_tensors()[0].name]
    assert np.abs(golden - expected.reshape(golden.shape)).max() <= 1


def test_a_quantized_mask_that_loses_the_sites_is_refused_with_the_way_out(tmp_path: Path) -> None:
    """Zero point 255: an active site rounds onto the zero point, the mask is gone: named, with what to do."""
    _, masked = pool_mask_quantized(255)
    with pytest.raises(UnsupportedModelError, match=r"mask_quantizer.*mask is lost.*hwcodesign quantize"):
        lowered(masked, tmp_path, "quantized_mask")
