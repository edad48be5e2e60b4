"""Train the ESDA-style eye tracker on synthetic events and export it as float and QDQ ONNX.

``build_eye_tracking(out_dir)`` writes into ``out_dir`` (default
``build/examples/event_eye_tracking``):

* ``eye_tracker_float.onnx`` -- the trained network, BatchNorm folded, exported by the
  TorchScript exporter (opset 17) in the frontend's masked-dense sparse convention (input
  ``events`` (1, 2, 60, 80) event counts, output ``centre`` (1, 2): (cx, cy) in [0, 1]);
* ``eye_tracker_w8a8.onnx`` -- the same graph quantized by ``hwcodesign.flows.quantize`` (what
  ``hwcodesign quantize`` runs): uint8 input with scale 1 (the counts themselves), int8
  per-channel weights, int32 biases, uint8 activations with zero point 0 after every ReLU, the
  active-site mask and its Muls float; compile it with
  ``hwcodesign compile eye_tracker_w8a8.onnx --board zcu102 -o DIR``;
* ``eye_tracker.pt`` -- the torch state dict (unfused, for the tests and for retraining);
* ``samples.npz`` -- sample test frames (uint8 counts), their true centres (pixels), window
  end times, sequence indices and densities;
* ``sample_frames.npy`` -- the same frames alone (float32 counts), for ``--inputs``: the
  compiler sizes the sparse layers for the 95th percentile of their densities;
* ``metrics.json`` -- the errors below, parameters, MACs and densities.

Training (``train``): Adam with a one-cycle learning rate, batches of 64, random horizontal
and vertical flips (the centre flips with the frame), a loss equal to the mean Euclidean error
in pixels, on ~3600 frames of six synthetic sequences (``data.TRAIN``), one CPU thread (two
threads on two busy cores are slower than one). The report compares the mean pupil error with
a baseline that always predicts the training set's mean centre, on the training frames and on
two sequences never trained on (``data.TEST``), for the float model and for the integer model
the accelerator runs (``hwcodesign.sim.golden``).

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
    integer_every: int = 1  # the integer model's error on every k-th test frame (it runs ~10 ms a frame)
    seed: int = 0


# --------------------------------------------------------------------------- training


def train(net: Any, frames: Any, config: BuildConfig) -> list[float]:
    """Train `net` in place on `frames` (data.Frames); returns the mean loss (pixels) per epoch."""
    import torch

    height, width = frames.size
    scale = torch.tensor([width - 1, height - 1], dtype=torch.float32)
    x_all = torch.from_numpy(frames.frames)
    y_all = torch.from_numpy(frames.targets)
    batches = -(-len(x_all) // config.batch)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.learning_rate,
                                                   total_steps=config.epochs * batches, pct_start=0.15)
    generator = torch.Generator().manual_seed(config.seed)
    history = []
    net.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(x_all), generator=generator)
        total = 0.0
        for start in range(0, len(x_all), config.batch):
            index = order[start:start + config.batch]
            x, y = x_all[index], y_all[index]
            flip_x, flip_y = (torch.rand(2, generator=generator) < 0.5).tolist()
            if flip_x:  # mirror the frame and the centre with it: the eye has no handedness
                x, y = x.flip(3), torch.stack([1 - y[:, 0], y[:, 1]], dim=1)
            if flip_y:
                x, y = x.flip(2), torch.stack([y[:, 0], 1 - y[:, 1]], dim=1)
            distance = torch.sqrt((((net(x) - y) * scale) ** 2).sum(dim=1) + 1e-3)
            loss = distance.mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(index)
        history.append(total / len(x_all))
    net.eval()
    return history


def predict(net: Any, frames: np.ndarray, batch: int = 256) -> np.ndarray:
    """(N, 2) normalised centres the float torch model predicts."""
    import torch

    with torch.no_grad():
        return np.concatenate([net(torch.from_numpy(frames[i:i + batch])).numpy() for i in range(0, len(frames), batch)])


def summary(errors: np.ndarray) -> dict[str, float]:
    """Mean and median pixel error and the fraction within 5 and 10 pixels (the p5/p10
    accuracies the AIS 2024 challenge reports, here in 80x60 frame pixels)."""
    return {"mean": float(errors.mean()), "median": float(np.median(errors)),
            "p5": float(np.mean(errors < 5)), "p10": float(np.mean(errors < 10))}


# --------------------------------------------------------------------------- ONNX


def export_float(net: Any, path: Path) -> onnx.ModelProto:
    """The BatchNorm-folded network as float ONNX (TorchScript exporter, opset 17)."""
    import torch

    model = sibling("model")
    fused = net.fused_for_export()
    height, width = net.size
    dummy = torch.zeros(1, model.CHANNELS, height, width)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        target = Path(tmp) / "float.onnx"
        # dynamo=False: the dynamo exporter needs onnxscript, which the project does not install
        torch.onnx.export(fused, (dummy,), str(target), dynamo=False, opset_version=OPSET, do_constant_folding=True,
                          input_names=[model.INPUT_NAME], output_names=[model.OUTPUT_NAME])
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


def golden_centres(qdq_path: Path, frames: np.ndarray) -> np.ndarray:
    """(N, 2) normalised centres of the integer model the accelerator runs (the golden model)."""
    from hwcodesign.passes.pipeline import load_onnx, optimize
    from hwcodesign.sim.golden import dequantize_outputs, run_golden

    graph = optimize(load_onnx(qdq_path))
    counts = frames.astype(np.int64)  # the input grid is the count itself (scale 1)
    outputs = dequantize_outputs(graph, run_golden(graph, counts))
    return np.asarray(next(iter(outputs.values()))).reshape(len(frames), 2)


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
        predicted = {"train": predict(net, train_set.frames), "test": predict(net, test_set.frames)}
        samples = test_set.subset(sample_indices(len(test_set), config.samples))
        sample_macs = model.sparse_macs(net, torch.from_numpy(samples.frames))
        sample_levels = model.level_densities(net, torch.from_numpy(samples.frames))
    finally:
        torch.set_num_threads(threads)
    problems = convention_problems(float_model)
    if problems:
        raise AssertionError("the float export departs from the sparse convention:\n" + "\n".join(problems))

    calibration = train_set.frames[sample_indices(len(train_set), config.calibration_frames)]
    quantized = quantize_model(float_model, calibration)
    quantized.ir_version = min(quantized.ir_version, IR_VERSION)
    onnx.save(quantized, str(paths["qdq"]))
    integer_set = test_set.subset(slice(None, None, config.integer_every))
    integer_test = golden_centres(paths["qdq"], integer_set.frames)

    np.savez_compressed(paths["samples"], frames=samples.frames.astype(np.uint8), centres=samples.centres,
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
                    "float_on_the_same_frames": summary(integer_set.errors(
                        predicted["test"][:: config.integer_every]))},
        "loss_per_epoch": history,
        "parameters": model.parameter_count(net),
        "parameters_folded": sum(int(p.numel()) for p in net.fused_for_export().parameters()),
        "macs_dense": sum(row.dense_macs for row in model.layer_macs(net)),
        "macs_at_sample_density": sample_macs,
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
          f"MACs per frame: {m['macs_dense'] / 1e6:.2f} M dense, "
          f"{m['macs_at_sample_density'] / 1e6:.3f} M at the samples' active sites")
    print("samples' active fraction per level: " + ", ".join(f"{r['size'][0]}x{r['size'][1]} {r['density']:.1%}"
                                                         for r in m["level_densities_samples"]))
    print("mean pupil error in 80x60 frame pixels (p5 / p10 accuracy):")
    rows = [("baseline (mean centre)", m["baseline"]), ("float model", m["float"]),
            ("integer model", {"test": m["integer"]["test"]})]
    for label, values in rows:
        print(f"  {label:<24}" + "  ".join(f"{split} {v['mean']:5.2f} px ({v['p5']:.0%} / {v['p10']:.0%})"
                                           for split, v in values.items()))
    print(f"trained {m['config']['epochs']} epochs in {m['seconds']['train']:.1f} s "
          f"(loss {m['loss_per_epoch'][0]:.1f} -> {m['loss_per_epoch'][-1]:.1f} px); built in "
          f"{time.perf_counter() - start:.1f} s")
    print(f"compile: hwcodesign compile {result.paths['qdq']} --board zcu102 --inputs {result.paths['frames']} "
          "-o build/eye_tracker_zcu102")
    return 0


if __name__ == "__main__":
    sys.exit(main())
