"""Train the ESDA-style eye tracker on synthetic event sequences and export it as float and QDQ ONNX.

``build_eye_tracking(out_dir)`` writes into ``out_dir`` (default
``build/examples/event_eye_tracking``):

* ``eye_tracker_float.onnx`` -- one step of the trained network, BatchNorm folded, exported by
  the TorchScript exporter (opset 17) in the frontend's masked-dense sparse convention: inputs
  ``events`` (1, 3, 60, 80) voxel grids and ``hidden`` (1, 1, 64), the GRU's state; outputs
  ``centre`` (1, 2): (cx, cy) in [0, 1], and ``hidden_next`` (1, 1, 64). The compiler pairs
  ``hidden`` with ``hidden_next`` (a GRU's initial_h and Y_h as graph input and output) and the
  driver carries it from frame to frame;
* ``eye_tracker_w8a8.onnx`` -- the same graph quantized by ``hwcodesign.flows.quantize`` (what
  ``hwcodesign quantize`` runs): int8 input with scale 1/8 (the voxel grid's own grid), int8
  per-channel weights, int32 biases, uint8 activations with zero point 0 after every ReLU up to
  the embedding, the active-site mask and its Muls float, and the GRU + FC head float (the
  quantizer keeps a recurrent head and what follows it float: it runs on the host CPU); compile
  it with ``hwcodesign compile eye_tracker_w8a8.onnx --board zcu102 --clock 187.48 -o DIR``;
* ``eye_tracker.pt`` -- the torch state dict (unfused, for the tests and for retraining);
* ``samples.npz`` -- sample test frames (float32, on the input grid), their true centres (pixels), window
  end times, sequence indices and densities;
* ``sample_frames.npy`` -- the same frames alone, for ``--inputs``: the
  compiler sizes the sparse layers for the 95th percentile of their densities;
* ``metrics.json`` -- the errors below, parameters, MACs and densities.

Training (``train``): truncated back-propagation through time over windows of 8 consecutive
frames (80 ms) of six synthetic sequences (``data.TRAIN``, ~3600 frames), the hidden state from
zero in each window, 8 windows a step (64 frames, as many as the per-frame training before the
GRU had, so an epoch costs the same); Adam with a one-cycle learning rate, random horizontal and
vertical flips of a whole window (the centres flip with the frames), a loss equal to the mean
Euclidean error in pixels over every frame, one CPU thread (two threads on two busy cores are
slower than one). The report compares the mean pupil error with a baseline that always predicts
the training set's mean centre, on the training frames and on two sequences never trained on
(``data.TEST``), each run through from its first frame with the state carried, for the float
model and for the whole quantized model as the board runs it (the accelerator part by
``hwcodesign.sim.golden``, the GRU head by the driver's host runtime).

Everything is seeded: the same arguments give the same files.

CLI::

    python examples/event_eye_tracking/build.py --out build/examples/event_eye_tracking
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnx

from hwcodesign.flows.quantize import quantize_model
from hwcodesign.frontend.sparse import mask_nodes

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # examples/script_loader.py
from script_loader import load_script  # noqa: E402

DEFAULT_OUT = Path("build/examples/event_eye_tracking")
FLOAT_FILE = "eye_tracker_float.onnx"
QDQ_FILE = "eye_tracker_w8a8.onnx"
WEIGHTS_FILE = "eye_tracker.pt"
SAMPLES_FILE = "samples.npz"
FRAMES_FILE = "sample_frames.npy"
METRICS_FILE = "metrics.json"
OPSET = 17
IR_VERSION = 10  # onnxruntime 1.31 reads IR <= 10


def sibling(name: str) -> ModuleType:
    """``examples/event_eye_tracking/<name>.py`` imported as ``event_eye_tracking_<name>`` (the
    folder is not a package; one instance however many callers ask)."""
    return load_script(HERE / f"{name}.py", f"event_eye_tracking_{name}")


@dataclass(frozen=True)
class BuildConfig:
    """What to train on and for how long. `size` is the sensor (H, W); the default is the
    example's 60x80, smaller sizes make quick networks for tests."""

    epochs: int = 8
    train: tuple[Any, ...] = field(default_factory=lambda: sibling("data").TRAIN)
    test: tuple[Any, ...] = field(default_factory=lambda: sibling("data").TEST)
    size: tuple[int, int] = (60, 80)
    batch: int = 64
    learning_rate: float = 3e-3
    calibration_frames: int = 200
    samples: int = 16
    window: int = 8  # frames per truncated-BPTT window (80 ms)
    integer_seconds: float | None = None  # the integer model's error on each test sequence's first
    # so many seconds (None: all; the golden model runs ~10 ms a frame, and the GRU needs consecutive frames)
    seed: int = 0


# --------------------------------------------------------------------------- training


def windows(frames: Any, length: int, offset: np.ndarray) -> np.ndarray:
    """(K, length) frame indices of the consecutive windows of every sequence: sequence i's
    windows start `offset[i]` frames in and tile it without overlap (a remainder shorter than
    `length` is left out this time; the next epoch's offsets cover it)."""
    starts = []
    for index, sequence in enumerate(np.unique(frames.sequence)):
        (members,) = np.nonzero(frames.sequence == sequence)
        first, count = int(members[0]), len(members)
        starts.extend(range(first + int(offset[index]), first + count - length + 1, length))
    return np.asarray(starts, np.int64)[:, None] + np.arange(length)


def train(net: Any, frames: Any, config: BuildConfig) -> list[float]:
    """Train `net` in place on `frames` (data.Frames) by truncated back-propagation through time:
    each step takes `batch // window` windows of `window` consecutive frames (the same number of
    frames, so the CNN's cost, as a per-frame step), the hidden state starting at zero in each
    window (as after the driver's reset()), and averages the Euclidean error in pixels over
    every frame of every window. The windows shift by a random offset per sequence each epoch.
    Returns the mean loss (pixels) per epoch."""
    import torch

    height, width = frames.size
    scale = torch.tensor([width - 1, height - 1], dtype=torch.float32)
    x_all = torch.from_numpy(frames.frames)
    y_all = torch.from_numpy(frames.targets)
    per_batch = max(1, config.batch // config.window)
    sequences = len(np.unique(frames.sequence))
    batches = -(-len(windows(frames, config.window, np.zeros(sequences, np.int64))) // per_batch)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.learning_rate,
                                                   total_steps=config.epochs * batches, pct_start=0.15)
    generator = torch.Generator().manual_seed(config.seed)
    history = []
    net.train()
    for _ in range(config.epochs):
        offset = torch.randint(config.window, (sequences,), generator=generator).numpy()
        epoch = torch.from_numpy(windows(frames, config.window, offset))
        epoch = epoch[torch.randperm(len(epoch), generator=generator)][:batches * per_batch]
        total, seen = 0.0, 0
        for start in range(0, len(epoch), per_batch):
            index = epoch[start:start + per_batch]  # (B, T)
            x, y = x_all[index], y_all[index]  # (B, T, 2, H, W), (B, T, 2)
            flip_x, flip_y = (torch.rand(2, generator=generator) < 0.5).tolist()
            if flip_x:  # mirror the frames and the centres with them: the eye has no handedness
                x, y = x.flip(4), torch.stack([1 - y[..., 0], y[..., 1]], dim=-1)
            if flip_y:
                x, y = x.flip(3), torch.stack([y[..., 0], 1 - y[..., 1]], dim=-1)
            predicted, _ = net.forward_sequence(x)
            distance = torch.sqrt((((predicted - y) * scale) ** 2).sum(dim=-1) + 1e-3)
            loss = distance.mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * index.numel()
            seen += index.numel()
        history.append(total / seen)
    net.eval()
    return history


def embed(net: Any, frames: np.ndarray, batch: int = 256) -> np.ndarray:
    """(N, EMBEDDING) embeddings of the float torch model: what the accelerator computes."""
    import torch

    with torch.no_grad():
        return np.concatenate([net.embedding(torch.from_numpy(frames[i:i + batch])).numpy()
                               for i in range(0, len(frames), batch)])


def predict(net: Any, frames: Any, batch: int = 256) -> np.ndarray:
    """(N, 2) normalised centres the float torch model predicts over `frames` (data.Frames) as
    the tracker runs them: frame by frame, the hidden state carried along each sequence and
    zero at its first frame. The CNN runs in batches (frames are independent there), then the
    GRU steps through each sequence."""
    import torch

    embedded = torch.from_numpy(embed(net, frames.frames, batch))
    out = np.empty((len(frames), 2), np.float32)
    with torch.no_grad():
        for sequence in np.unique(frames.sequence):
            (members,) = np.nonzero(frames.sequence == sequence)
            y, _ = net.gru(embedded[members][None], net.initial_state())
            out[members] = net.head(y[0]).numpy()
    return out


def summary(errors: np.ndarray) -> dict[str, float]:
    """Mean and median pixel error and the fraction within 5 and 10 pixels (the p5/p10
    accuracies the AIS 2024 challenge reports, here in 80x60 frame pixels)."""
    return {"mean": float(errors.mean()), "median": float(np.median(errors)),
            "p5": float(np.mean(errors < 5)), "p10": float(np.mean(errors < 10))}


# --------------------------------------------------------------------------- ONNX


def export_float(net: Any, path: Path) -> onnx.ModelProto:
    """The BatchNorm-folded network as float ONNX (TorchScript exporter, opset 17): one step
    (events, hidden) -> (centre, hidden_next), the GRU's state an input and an output."""
    import torch

    model = sibling("model")
    fused = net.fused_for_export()
    height, width = net.size
    dummy = (torch.zeros(1, model.CHANNELS, height, width), fused.initial_state())
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice and GRU batch warning
        target = Path(tmp) / "float.onnx"
        # dynamo=False: the dynamo exporter needs onnxscript, which the project does not install
        torch.onnx.export(fused, dummy, str(target), dynamo=False, opset_version=OPSET, do_constant_folding=True,
                          input_names=[model.INPUT_NAME, model.STATE_INPUT_NAME],
                          output_names=[model.OUTPUT_NAME, model.STATE_OUTPUT_NAME])
        exported = onnx.load(str(target))
    exported.ir_version = min(exported.ir_version, IR_VERSION)
    exported.graph.name = "eye_tracker"
    exported = onnx.shape_inference.infer_shapes(exported, strict_mode=True)
    onnx.checker.check_model(exported, full_check=True)
    onnx.save(exported, str(path))
    return exported


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    return dict(sorted(collections.Counter(n.op_type for n in model.graph.node).items()))


def convention_problems(model: onnx.ModelProto) -> list[str]:
    """What in a float export departs from the sparse convention: one mask
    Abs -> ReduceMax(axes=[1], keepdims=1) -> Greater(0) -> Cast of the input, every MaxPool a
    mask's, and every Conv followed by Relu -> Mul with a mask (empty when all is well)."""
    from onnx import helper, numpy_helper

    computing, _ = mask_nodes(model)
    masks = {output for node in computing for output in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = collections.defaultdict(list)
    for node in model.graph.node:
        for name in node.input:
            consumers[name].append(node)
    problems = []
    chain = [n.op_type for n in model.graph.node if n.op_type in ("Abs", "ReduceMax", "Greater", "Cast")]
    if chain != ["Abs", "ReduceMax", "Greater", "Cast"]:
        problems.append(f"mask chain is {chain}, not Abs, ReduceMax, Greater, Cast")
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "ReduceMax" and (list(attrs.get("axes", [])) != [1] or attrs.get("keepdims", 1) != 1):
            problems.append(f"{node.name}: ReduceMax attributes {attrs}")
        if node.op_type == "Greater":
            constants = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in model.graph.node
                         if n.op_type == "Constant"}
            constants |= {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
            if node.input[1] not in constants or np.any(constants[node.input[1]] != 0):
                problems.append(f"{node.name}: Greater does not compare with a constant 0")
        if node.op_type == "MaxPool" and node.output[0] not in masks:
            problems.append(f"{node.name}: MaxPool of an activation, not of a mask")
        if node.op_type == "Conv":
            after = consumers[node.output[0]]
            if len(after) != 1 or after[0].op_type != "Relu":
                problems.append(f"{node.name}: Conv not followed by one Relu")
                continue
            muls = consumers[after[0].output[0]]
            if len(muls) != 1 or muls[0].op_type != "Mul" or not set(muls[0].input) & masks:
                problems.append(f"{node.name}: Relu not followed by Mul with a mask")
    return problems


def golden_centres(qdq_path: Path, frames: Any) -> np.ndarray:
    """(N, 2) normalised centres of the whole quantized model as the board runs it: the integer
    core by the golden model (bit-exact with the accelerator), the GRU + FC by the driver's host
    runtime, the hidden state carried along each sequence of `frames` (data.Frames) from zero."""
    from hwcodesign.flows.whole_model import golden_whole_model
    from hwcodesign.partition import load_partitioned
    from hwcodesign.passes.pipeline import optimize

    partition, graph = load_partitioned(qdq_path)
    graph = optimize(graph)
    name = sibling("model").INPUT_NAME
    out = np.empty((len(frames), 2), np.float64)
    for sequence in np.unique(frames.sequence):
        (members,) = np.nonzero(frames.sequence == sequence)
        outputs, _ = golden_whole_model(partition, graph, {name: frames.frames[members]})
        out[members] = np.asarray(outputs[sibling("model").OUTPUT_NAME]).reshape(len(members), 2)
    return out


# --------------------------------------------------------------------------- build


@dataclass(frozen=True)
class BuildResult:
    paths: dict[str, Path]
    metrics: dict[str, Any]


def sample_indices(count: int, samples: int) -> np.ndarray:
    """Evenly spaced frames over a set (fixations and saccades of every sequence alike)."""
    return np.unique(np.linspace(0, count - 1, min(samples, count)).round().astype(np.int64))


def build_eye_tracking(out_dir: Path | str = DEFAULT_OUT, config: BuildConfig | None = None) -> BuildResult:
    """Train, export and quantize; write the files listed in the module docstring."""
    import torch

    config = BuildConfig() if config is None else config
    data, model = sibling("data"), sibling("model")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"float": out / FLOAT_FILE, "qdq": out / QDQ_FILE, "weights": out / WEIGHTS_FILE,
             "samples": out / SAMPLES_FILE, "frames": out / FRAMES_FILE, "metrics": out / METRICS_FILE}
    clock = time.perf_counter()
    train_set = data.make_frames(config.train, config.size)
    test_set = data.make_frames(config.test, config.size)
    data_seconds = time.perf_counter() - clock

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(config.seed)
        net = model.EyeTracker(*config.size)
        clock = time.perf_counter()
        history = train(net, train_set, config)
        train_seconds = time.perf_counter() - clock
        torch.save(net.state_dict(), paths["weights"])
        float_model = export_float(net, paths["float"])
        predicted = {"train": predict(net, train_set), "test": predict(net, test_set)}
        samples = test_set.subset(sample_indices(len(test_set), config.samples))
        sample_macs = model.sparse_macs(net, torch.from_numpy(samples.frames))
        sample_levels = model.level_densities(net, torch.from_numpy(samples.frames))
    finally:
        torch.set_num_threads(threads)
    problems = convention_problems(float_model)
    if problems:
        raise AssertionError("the float export departs from the sparse convention:\n" + "\n".join(problems))

    # the hidden state is the float GRU's (kept on the host): zeros calibrate nothing it uses
    calibration_frames = train_set.frames[sample_indices(len(train_set), config.calibration_frames)]
    calibration = {model.INPUT_NAME: calibration_frames,
                   model.STATE_INPUT_NAME: np.zeros((len(calibration_frames), 1, model.HIDDEN), np.float32)}
    quantized = quantize_model(float_model, calibration)
    quantized.ir_version = min(quantized.ir_version, IR_VERSION)
    onnx.save(quantized, str(paths["qdq"]))
    integer_set = test_set if config.integer_seconds is None else test_set.subset(
        test_set.times <= config.integer_seconds * 1e6)
    integer_test = golden_centres(paths["qdq"], integer_set)

    np.savez_compressed(paths["samples"], frames=samples.frames, centres=samples.centres,
                        times_us=samples.times, sequence=samples.sequence, densities=samples.densities())
    np.save(paths["frames"], samples.frames.astype(np.float32))
    mean_centre = train_set.targets.mean(axis=0)
    baseline = {name: summary(frames.errors(np.broadcast_to(mean_centre, frames.targets.shape)))
                for name, frames in (("train", train_set), ("test", test_set))}
    densities = {name: frames.densities() for name, frames in (("train", train_set), ("test", test_set),
                                                               ("samples", samples))}
    metrics = {
        "config": {**asdict(config), "train": [asdict(s) for s in config.train], "test": [asdict(s) for s in config.test]},
        "frames": {"train": len(train_set), "test": len(test_set), "samples": len(samples)},
        "densities": {name: {"mean": float(d.mean()), "min": float(d.min()), "max": float(d.max()),
                             "median": float(np.median(d))} for name, d in densities.items()},
        "level_densities_samples": [{"size": list(size), "density": d} for size, d in sample_levels],
        "baseline": baseline,
        "float": {name: summary((train_set if name == "train" else test_set).errors(p)) for name, p in predicted.items()},
        "integer": {"test": summary(integer_set.errors(integer_test)),
                    "float_on_the_same_frames": summary(integer_set.errors(predict(net, integer_set)))},
        "loss_per_epoch": history,
        "parameters": model.parameter_count(net),
        "parameters_folded": sum(int(p.numel()) for p in net.fused_for_export().parameters()),
        "macs_dense": sum(row.dense_macs for row in model.layer_macs(net)),
        "macs_at_sample_density": sample_macs,
        "host_macs": model.host_macs(net),
        "ops_float": op_counts(float_model),
        "ops_qdq": op_counts(quantized),
        "seconds": {"data": data_seconds, "train": train_seconds},
    }
    paths["metrics"].write_text(json.dumps(metrics, indent=1, default=float) + "\n")
    return BuildResult(paths, metrics)


def load_trained(weights: Path | str, size: tuple[int, int] = (60, 80)) -> Any:
    """The trained (unfused) torch model from ``eye_tracker.pt``, in eval mode."""
    import torch

    net = sibling("model").EyeTracker(*size)
    net.load_state_dict(torch.load(str(weights), weights_only=True))
    return net.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--epochs", type=int, default=BuildConfig.epochs)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = build_eye_tracking(args.out, BuildConfig(epochs=args.epochs))
    m = result.metrics
    for key in ("float", "qdq", "samples"):
        print(f"{key:>8}: {result.paths[key]}")
    print(f"frames: {m['frames']['train']} train, {m['frames']['test']} test; densities (active sites): "
          + ", ".join(f"{k} mean {v['mean']:.2%} (median {v['median']:.2%}, max {v['max']:.2%})"
                      for k, v in m["densities"].items()))
    print(f"parameters: {m['parameters']:,} ({m['parameters_folded']:,} after folding BatchNorm); "
          f"MACs per frame on the accelerator: {m['macs_dense'] / 1e6:.2f} M dense, "
          f"{m['macs_at_sample_density'] / 1e6:.3f} M at the samples' active sites; "
          f"on the host (GRU + FC): {m['host_macs'] / 1e3:.1f} k")
    print("samples' active fraction per level: " + ", ".join(f"{r['size'][0]}x{r['size'][1]} {r['density']:.1%}"
                                                         for r in m["level_densities_samples"]))
    print("mean pupil error in 80x60 frame pixels (p5 / p10 accuracy):")
    rows = [("baseline (mean centre)", m["baseline"]), ("float model", m["float"]),
            ("integer model + host GRU", {"test": m["integer"]["test"]})]
    for label, values in rows:
        print(f"  {label:<26}" + "  ".join(f"{split} {v['mean']:5.2f} px ({v['p5']:.0%} / {v['p10']:.0%})"
                                           for split, v in values.items()))
    print(f"trained {m['config']['epochs']} epochs in {m['seconds']['train']:.1f} s "
          f"(loss {m['loss_per_epoch'][0]:.1f} -> {m['loss_per_epoch'][-1]:.1f} px); built in "
          f"{time.perf_counter() - start:.1f} s")
    print(f"compile: hwcodesign compile {result.paths['qdq']} --board zcu102 --clock 187.48 --inputs {result.paths['frames']} "
          "-o build/eye_tracker_zcu102")
    return 0


if __name__ == "__main__":
    sys.exit(main())
