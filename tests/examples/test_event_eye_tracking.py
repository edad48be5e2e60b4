"""The event-camera eye tracker (examples/event_eye_tracking): the torch model is the masked-dense
reference of the sparse convention and exports as such (one GRU step, the hidden state an input
and an output), the QDQ model `hwcodesign.flows.quantize` makes of it keeps the GRU + FC head float
and its accelerator part lowers to a sparse graph whose golden model agrees with onnxruntime,
training beats the mean-centre baseline, and track.py runs event sequences through a compiled
project's driver, the GRU head on the host with its state carried frame to frame.

The module builds two networks once (the full build trains for ~40 s, too long here):

* `quick`: the 60x80 network, 3 epochs on the first three training sequences (1800 frames),
  tested on the first test sequence, the integer model's error on its first second (~20 s);
* `tiny`: the same architecture on a 24x32 sensor, 1 epoch on 1 s of events (~2 s), small
  enough to compile and C-simulate quickly for track.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from support.examples import load_script
from support.layerwise import quantized_tensors

from hwcodesign.flows.compile import compile_model
from hwcodesign.frontend.sparse import mask_nodes
from hwcodesign.ir.op import Input
from hwcodesign.ops import Add, GlobalAvgPool, Linear, SubmanifoldConv
from hwcodesign.partition import load_partitioned
from hwcodesign.passes import optimize
from hwcodesign.reference import Reference
from hwcodesign.sim.golden import run_golden, run_op
from hwcodesign.sim.sparsity import active_mask, root_masks

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "event_eye_tracking"
build = load_script(EXAMPLE / "build.py", "event_eye_tracking_build")
data, model = build.sibling("data"), build.sibling("model")
track = load_script(EXAMPLE / "track.py", "event_eye_tracking_track")

QUICK = build.BuildConfig(epochs=3, train=data.TRAIN[:3], test=data.TEST[:1], integer_seconds=1.0)
TINY_SIZE = (24, 32)
TINY = build.BuildConfig(epochs=1, train=(data.Sequence(1, 1_000_000, 0.5),), test=(data.Sequence(2, 500_000, 0.5),),
                         size=TINY_SIZE, calibration_frames=50, samples=8)


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory):
    return build.build_eye_tracking(tmp_path_factory.mktemp("eye_quick"), QUICK)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    return build.build_eye_tracking(tmp_path_factory.mktemp("eye_tiny"), TINY)


@pytest.fixture(scope="module")
def samples(quick) -> dict[str, np.ndarray]:
    with np.load(quick.paths["samples"]) as file:
        return dict(file)


@pytest.fixture(scope="module")
def graph(quick):
    """The optimized IR of the accelerator part (the GRU + FC head split off to the host)."""
    _, accelerator = load_partitioned(quick.paths["qdq"])
    return optimize(accelerator)


@pytest.fixture(scope="module")
def tiny_project(tiny, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 24x32 network compiled for ZCU102 (a dataflow pipeline and the host head beside its driver)."""
    out = tmp_path_factory.mktemp("eye_tiny_project") / "project"
    result = compile_model(tiny.paths["qdq"], "zcu102", out)
    assert result.mapping.architecture == "dataflow"
    return out


@pytest.fixture(scope="module")
def trained(quick):
    return build.load_trained(quick.paths["weights"])


# --------------------------------------------------------------------------- the float export


def test_float_export_has_the_mask_pattern(quick) -> None:
    """torch wrote one mask of the input, a MaxPool of it per strided layer (stem, two
    depthwise downsamplings, the whole-level conv) and Conv -> Relu -> Mul(mask) per layer; then
    the embedding (Gemm -> Relu) and one GRU step whose state is the graph's `hidden` input and
    `hidden_next` output, and the head's Gemm."""
    float_model = onnx.load(quick.paths["float"])
    assert build.convention_problems(float_model) == []
    counts = build.op_counts(float_model)
    assert {k: counts[k] for k in ("Abs", "ReduceMax", "Greater", "Cast")} == dict.fromkeys(
        ("Abs", "ReduceMax", "Greater", "Cast"), 1)
    assert counts["MaxPool"] == 4
    assert counts["Conv"] == counts["Mul"] == 15 and counts["Relu"] == 16
    assert counts["Add"] == 2 and counts["GlobalAveragePool"] == 1 and counts["Gemm"] == 2 and counts["GRU"] == 1
    (gru,) = [n for n in float_model.graph.node if n.op_type == "GRU"]
    assert gru.input[5] == model.STATE_INPUT_NAME and gru.output[1] == model.STATE_OUTPUT_NAME
    assert [v.name for v in float_model.graph.input] == [model.INPUT_NAME, model.STATE_INPUT_NAME]
    assert [v.name for v in float_model.graph.output] == [model.OUTPUT_NAME, model.STATE_OUTPUT_NAME]
    assert {o.domain: o.version for o in float_model.opset_import}[""] == 17
    assert not any(n.op_type == "BatchNormalization" for n in float_model.graph.node)  # folded


def test_torch_model_equals_the_float_onnx(quick, trained, samples) -> None:
    """The unfused, the folded and the exported step agree frame by frame with the hidden state
    fed back, and `predict` (the CNN batched, the GRU over the sequence) is the same computation."""
    frames = samples["frames"].astype(np.float32)
    fused = trained.fused_for_export()
    exported = Reference(quick.paths["float"])
    h_torch, h_fused = trained.initial_state(), fused.initial_state()
    h_onnx = np.zeros((1, 1, model.HIDDEN), np.float32)
    centres = []
    with torch.no_grad():
        for frame in frames:
            x = torch.from_numpy(frame[None])
            unfused, h_torch = trained(x, h_torch)
            folded, h_fused = fused(x, h_fused)
            run = exported.run({model.INPUT_NAME: frame[None], model.STATE_INPUT_NAME: h_onnx})
            h_onnx = run[model.STATE_OUTPUT_NAME]
            assert np.abs(folded.numpy() - unfused.numpy()).max() < 1e-5  # BatchNorm folding is exact up to rounding
            assert np.abs(run[model.OUTPUT_NAME] - unfused.numpy()).max() < 1e-5
            assert np.abs(h_onnx - h_torch.numpy()).max() < 1e-5
            centres.append(unfused.numpy()[0])
    as_one_sequence = data.Frames(frames, np.zeros((len(frames), 2)), np.arange(len(frames)), np.zeros(len(frames), np.int64))
    assert np.abs(build.predict(trained, as_one_sequence) - np.array(centres)).max() < 1e-5
    assert np.ptp(np.array(centres), axis=0).min() > 0.05  # the outputs depend on the frames


def test_masked_model_computes_nothing_at_inactive_sites(trained, graph, samples) -> None:
    """Every activation is exactly 0 where its level's mask is 0, and the torch masks are the
    compiler's active sets (hwcodesign.sim.sparsity) of the same layers."""
    frames = samples["frames"]
    with torch.no_grad():
        features = trained.features(torch.from_numpy(frames.astype(np.float32)))
    for activation, mask in features:
        inactive = (mask == 0).expand_as(activation)
        assert int(inactive.sum()) == 0 or float(activation[inactive].abs().max()) == 0.0
        assert float(activation.abs().max()) > 0
    roots = root_masks(graph, {graph.inputs[0].output.name: graph.inputs[0].output.quantize(frames)})
    sparse_shapes = {}
    for op in graph:
        if isinstance(op, SubmanifoldConv):
            sparse_shapes.setdefault(op.output.shape[2:], active_mask(op.output.active, roots))
    torch_masks = {tuple(mask.shape[2:]): mask[:, 0].numpy().astype(bool) for _, mask in features}
    assert set(torch_masks) == set(sparse_shapes) == {(30, 40), (15, 20), (8, 10), (1, 1)}
    for shape, mask in sparse_shapes.items():
        assert np.array_equal(torch_masks[shape], mask), shape


def test_model_size(quick, samples) -> None:
    """82,322 parameters (81,762 folded): 57k in the sparse CNN and the embedding, 25k in the
    GRU, 130 in the head; 3.23 M MACs for a dense frame on the accelerator, at the QUICK samples'
    0.86% active sites 0.25 M (the full build's samples, 0.64%: 0.32 M); 24.7 k MACs a frame on
    the host. The levels after each downsampling are denser than the input (0.86% -> 2.1% -> 5.7%
    -> 16% for the QUICK samples under ESDA's block rule; the conv-window rule with 2-channel
    count frames spread them to 0.9% -> 3.8% -> 14% -> 40%)."""
    metrics = quick.metrics
    assert 50_000 <= metrics["parameters_folded"] <= 150_000
    assert metrics["macs_dense"] == sum(row.dense_macs for row in model.layer_macs(model.EyeTracker()))
    assert metrics["macs_at_sample_density"] < 0.5 * metrics["macs_dense"]
    assert metrics["host_macs"] == 3 * model.HIDDEN * (model.EMBEDDING + model.HIDDEN) + 2 * model.HIDDEN
    levels = [row["density"] for row in metrics["level_densities_samples"]]
    assert levels == sorted(levels) and levels[-1] > levels[0]  # strided windows spread the active sites


# --------------------------------------------------------------------------- the QDQ model


def test_qdq_grids(quick) -> None:
    """int8 input with scale 1/8 (the voxel grid's own); uint8 zero point 0 after every ReLU up to the embedding (the
    accelerator's output); int8 per-channel weights and int32 biases; the mask stays float (no
    quantizer on a mask tensor); the GRU and the head after it stay float (their weights plain
    float initializers, no quantizer on their inputs or outputs but the embedding's)."""
    q = onnx.load(quick.paths["qdq"])
    values = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    grids = [(n.input[0], float(values[n.input[1]]), int(values[n.input[2]]),
              helper.np_dtype_to_tensor_dtype(values[n.input[2]].dtype))
             for n in q.graph.node if n.op_type == "QuantizeLinear"]
    assert ("events", data.STEP, 0, TensorProto.INT8) in grids
    assert all(elem == TensorProto.UINT8 and zero == 0 for name, _, zero, elem in grids if name != "events")
    inits = {i.name: i for i in q.graph.initializer}
    producers = {o: n for n in q.graph.node for o in n.output}
    quantized = [n for n in q.graph.node if n.op_type in ("Conv", "Gemm") and n.input[1] in producers]
    assert len(quantized) == 16  # 15 convs and the embedding
    for node in quantized:
        weight, bias = producers[node.input[1]], producers[node.input[2]]
        assert weight.op_type == bias.op_type == "DequantizeLinear"
        assert inits[weight.input[0]].data_type == TensorProto.INT8
        assert inits[bias.input[0]].data_type == TensorProto.INT32
        scales = numpy_helper.to_array(inits[weight.input[1]])
        assert scales.shape == (inits[weight.input[0]].dims[0],)  # one scale per output channel
    (gru,) = [n for n in q.graph.node if n.op_type == "GRU"]
    (head,) = [n for n in q.graph.node if n.op_type == "Gemm" and n.input[1] not in producers]
    for node in (gru, head):
        weights = [name for name in node.input[1:] if name]
        assert all(inits[name].data_type == TensorProto.FLOAT for name in weights if name in inits), node.name
    quantized_inputs = {name for name, *_ in grids}
    assert not ({gru.output[0], gru.output[1], head.output[0]} & quantized_inputs)
    computing, applying = mask_nodes(q)
    masks = {output for node in computing for output in node.output}
    assert len(masks) == 4 + 4  # Abs, ReduceMax, Greater, Cast and four MaxPools
    assert not any(n.op_type == "QuantizeLinear" and n.input[0] in masks for n in q.graph.node)
    assert len(applying) == 15


def test_qdq_lowers_to_a_sparse_graph(graph) -> None:
    """The accelerator part: an int8 sparse input on the voxel grid's grid, 15 SubmanifoldConvs
    on four strided levels (ESDA's block rule), two sparse residual adds, and a dense tail after
    the global average pool ending in the embedding (the GRU head is not in it)."""
    ops = list(graph)
    assert isinstance(ops[0], Input) and ops[0].output.sparse and ops[0].output.shape == (1, 3, 60, 80)
    assert ops[0].output.scale == data.STEP and ops[0].output.dtype.signed
    convs = [op for op in ops if isinstance(op, SubmanifoldConv)]
    assert len(convs) == 15
    strided = [op for op in convs if op.strided]
    assert [op.output.shape[2:] for op in strided] == [(30, 40), (15, 20), (8, 10), (1, 1)]
    assert [len(op.output.active.steps) for op in strided] == [1, 2, 3, 4]
    # ESDA's block rule from torch's MaxPool(mask, stride, stride, ceil_mode): 15 rows -> 8 blocks,
    # the last one partial (one row of padding)
    assert [op.mask_window for op in strided[:3]] == [(2, 2, 2, 2, 0, 0, 0, 0), (2, 2, 2, 2, 0, 0, 0, 0),
                                                      (2, 2, 2, 2, 0, 0, 1, 0)]
    assert strided[-1].kernel == strided[-1].stride == (8, 10)  # the whole-level "flatten" conv
    assert sum(op.depthwise for op in convs) == 4
    adds = [op for op in ops if isinstance(op, Add)]
    assert len(adds) == 2 and all(op.output.sparse for op in adds)
    (pool,) = [op for op in ops if isinstance(op, GlobalAvgPool)]
    assert not pool.output.sparse
    assert isinstance(ops[-1], Linear) and not ops[-1].output.sparse
    (output,) = graph.output_tensors()
    assert not output.sparse and output.shape[:2] == (1, model.EMBEDDING)


def test_golden_within_one_lsb_of_onnxruntime(quick, graph, samples) -> None:
    """Layer by layer (each golden layer fed onnxruntime's own quantized inputs, its inactive
    sites set to the zero point as `run_golden` does) and end to end, on the sample frames,
    against the QDQ graph as written (graph optimizations off)."""
    q = onnx.load(quick.paths["qdq"])
    frames = samples["frames"].astype(np.float32)
    hidden = np.zeros((1, 1, model.HIDDEN), np.float32)  # the float GRU's state changes no quantized tensor
    reference = quantized_tensors(q, [{"events": f[None], "hidden": hidden} for f in frames])
    codes = graph.inputs[0].output.quantize(frames)
    roots = root_masks(graph, {graph.inputs[0].output.name: codes})
    worst = {}
    for op in graph:
        if isinstance(op, Input):
            continue
        args = [reference[name].reshape((len(frames), *t.shape[1:]))
                for name, t in zip(op.inputs, graph.input_tensors(op))]
        golden = run_op(op, args, graph.input_tensors(op))
        if op.output.active is not None:
            golden = np.where(active_mask(op.output.active, roots)[:, None], golden, op.output.zero_point)
        expected = reference[op.output.name].reshape(golden.shape)
        worst[op.name] = int(np.abs(golden - expected).max())
    assert len(worst) == 19 and max(worst.values()) <= 1, worst
    (output,) = graph.output_tensors()
    golden = run_golden(graph, codes)[output.name]
    expected = reference[output.name].reshape(golden.shape)
    assert np.abs(golden - expected).max() <= 1
    assert np.ptp(expected) > 10  # not a constant output


# --------------------------------------------------------------------------- training


def test_training_beats_the_baseline(quick) -> None:
    """Measured with QUICK (3 epochs, 1800 frames, windows of 8 frames): test error 10.9 px for the
    float model against 18.8 px for always predicting the training mean centre (train: 7.1 vs
    10.7 px); on the test sequence's first second 13.1 px for the whole integer model (golden
    accelerator + host GRU), 13.1 px float. The full build (8 epochs, 3600 frames, two test
    sequences): 4.76 px float, 4.69 px integer against the baseline's 15.6 px (91% of frames
    within 10 px, 65% within 5)."""
    metrics = quick.metrics
    baseline, trained = metrics["baseline"]["test"]["mean"], metrics["float"]["test"]["mean"]
    assert trained < 0.85 * baseline
    assert metrics["float"]["train"]["mean"] < metrics["baseline"]["train"]["mean"]
    integer = metrics["integer"]
    float_same = integer["float_on_the_same_frames"]["mean"]
    assert abs(integer["test"]["mean"] - float_same) < 0.1 * float_same  # quantization costs little
    losses = metrics["loss_per_epoch"]
    assert losses[-1] < 0.5 * losses[0]


def test_training_windows_tile_each_sequence() -> None:
    """Windows never straddle two sequences, start at the offset and do not overlap."""
    frames = data.Frames(np.zeros((10, 2, 4, 4), np.float32), np.zeros((10, 2)), np.arange(10),
                         np.array([0] * 6 + [1] * 4))
    assert build.windows(frames, 3, np.array([0, 1])).tolist() == [[0, 1, 2], [3, 4, 5], [7, 8, 9]]
    assert build.windows(frames, 3, np.array([2, 0])).tolist() == [[2, 3, 4], [6, 7, 8]]


def test_samples_file(quick, samples) -> None:
    frames = samples["frames"]
    assert frames.dtype == np.float32 and frames.shape == (16, data.TIME_BINS, 60, 80)
    assert np.abs(frames).max() <= data.LIMIT and np.array_equal(frames, data.on_grid(frames))
    assert frames.min() < 0 < frames.max()  # signed polarities
    density = np.any(frames != 0, axis=1).mean(axis=(1, 2))
    assert np.allclose(samples["densities"], density) and 0.001 < density.mean() < 0.05
    centres = samples["centres"]
    assert centres.shape == (16, 2) and (centres > 0).all() and (centres < [79, 59]).all()
    assert np.array_equal(samples["times_us"] % data.WINDOW_US, np.zeros(16))


def test_data_is_deterministic_and_normalised() -> None:
    sequence = data.Sequence(7, 200_000, 1.0)
    first, second = data.sequence_frames(sequence), data.sequence_frames(sequence)
    assert np.array_equal(first.frames, second.frames) and np.array_equal(first.centres, second.centres)
    assert len(first) == 20 and first.frames.shape[1:] == (data.TIME_BINS, 60, 80)
    assert ((first.targets >= 0) & (first.targets <= 1)).all()
    assert np.allclose(data.to_pixels(first.targets), first.centres)
    assert np.abs(first.errors(first.targets)).max() < 1e-4  # float32 targets
    noisier = data.sequence_frames(data.Sequence(7, 200_000, 5.0))
    assert np.array_equal(noisier.centres, first.centres)  # the noise rate does not move the eye
    assert noisier.densities().mean() > first.densities().mean()


def test_tiny_build_is_deterministic(tiny, tmp_path: Path) -> None:
    again = build.build_eye_tracking(tmp_path, TINY)
    for key in ("float", "qdq"):
        assert again.paths[key].read_bytes() == tiny.paths[key].read_bytes(), key


# --------------------------------------------------------------------------- the accelerator


def test_smoothing() -> None:
    """The host filter holds through empty frames, follows dense ones, restarts per sequence."""
    frames = np.zeros((4, 2, 4, 4), np.float32)
    frames[1, 0, :, :] = 1  # 16 active sites
    sequence = np.array([0, 0, 0, 1])
    fake = data.Frames(frames, np.zeros((4, 2)), np.arange(4), sequence)
    predicted = np.array([[0.5, 0.5], [1.0, 1.0], [0.0, 0.0], [0.2, 0.3]])
    out = track.smooth(predicted, fake, sites=16)
    assert np.allclose(out, [[0.5, 0.5], [0.75, 0.75], [0.75, 0.75], [0.2, 0.3]])


def test_project_runs_the_gru_head_on_the_host(tiny_project: Path) -> None:
    """The compiled project ships the GRU + FC as its host part after the accelerator, with the
    hidden state as a state pair the driver carries."""
    spec = track.host_spec(tiny_project)
    assert spec["pre"] is None and spec["post"] is not None
    assert [s["input"] for s in spec["state"]] == [model.STATE_INPUT_NAME]
    assert [s["output"] for s in spec["state"]] == [model.STATE_OUTPUT_NAME]
    assert [o["name"] for o in spec["outputs"]] == [model.OUTPUT_NAME]  # the state is not an output of run()
    post = onnx.load(str(tiny_project / "driver" / spec["post"]["onnx"]))
    assert "GRU" in {n.op_type for n in post.graph.node}


def test_driver_carries_the_hidden_state(tiny_project: Path) -> None:
    """run() frame by frame equals run_batch() on the sequence; reset() starts over from zeros;
    the state matters (the same frame gives another centre after different histories)."""
    accelerator = track._driver_module(tiny_project).Accelerator(backend="emulate")
    frames = data.sequence_frames(data.Sequence(201, 60_000, 0.5), size=TINY_SIZE).frames
    batch = np.asarray(accelerator.run_batch(frames))
    accelerator.reset()
    stepped = np.array([np.asarray(accelerator.run(frame)).reshape(2) for frame in frames])
    assert np.allclose(stepped, batch.reshape(len(frames), 2), atol=1e-6)
    accelerator.reset()
    fresh = np.asarray(accelerator.run(frames[-1])).reshape(2)
    assert np.abs(fresh - stepped[-1]).max() > 1e-4


def test_track_runs_on_a_compiled_project(tiny_project: Path, tmp_path: Path) -> None:
    """The 24x32 network's frames through the project's PYNQ driver on the emulated board: the
    accelerator bit-exact with the golden model, the whole model equal to onnxruntime's with the
    state fed back, the C simulation and golden fallbacks the same, and the plot is written."""
    sequences = (data.Sequence(201, 300_000, 0.5), data.Sequence(202, 300_000, 1.0, 5.0))
    tracked = track.track(tiny_project, sequences)
    assert tracked.backend == "PYNQ driver on the emulated board", tracked.notes
    assert tracked.golden_mismatches == 0
    assert tracked.reference_px is not None and tracked.reference_px < 1e-3
    assert tracked.frames.size == TINY_SIZE and len(tracked.frames) == 60
    assert np.isfinite(tracked.errors).all() and np.isfinite(tracked.smoothed_errors).all()
    for run in (track.run_csim, track.run_golden_model):
        centres, _ = run(tiny_project, tracked.frames)
        assert np.abs(centres - tracked.predicted).max() < 1e-6, run.__name__
    png = track.plot(tracked, tmp_path / "track.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_full_accelerator_equals_golden(quick, graph, samples, tmp_path: Path) -> None:
    project = compile_model(quick.paths["qdq"], "zcu102", tmp_path / "project").project
    frames = graph.inputs[0].output.quantize(samples["frames"][:4])
    simulated = project.csim(frames)
    for name, expected in run_golden(graph, frames).items():
        assert np.array_equal(simulated[name], expected)
