"""Track the pupil through new synthetic event sequences with the compiled eye tracker.

    hwcodesign compile build/examples/event_eye_tracking/eye_tracker_w8a8.onnx --board zcu102 --clock 187.48 \
        --inputs build/examples/event_eye_tracking/sample_frames.npy -o build/eye_tracker_zcu102
    python examples/event_eye_tracking/track.py build/eye_tracker_zcu102 [--png eye_track.png]

The model is ESDA's split: the sparse CNN and its embedding on the accelerator, the GRU + FC head
on the host CPU. Each 10 ms event frame of the sequences in ``data.TRACK`` (seeds never trained
or tested on, at the project's input size) goes through the whole model off the board, the GRU's
hidden state carried from frame to frame within a sequence and reset between sequences, and the
predicted pupil centre is plotted against the true one over time (matplotlib, a PNG); the mean
error in frame pixels is printed.

How the model runs, in order of preference:

1. the project's PYNQ driver (``driver/driver.py``) on the emulated board:
   ``Accelerator(backend="emulate")``, ``reset()`` then ``run_batch(float frames)`` per sequence,
   the same code a board runs (host parts on this CPU, the C simulation of the generated HLS in
   place of the bitstream);
2. the host parts as the driver runs them (``flows.whole_model.run_with_host``) around
   ``hwcodesign.codegen.project.Project(DIR).csim``, the C simulation itself;
3. only with ``--golden-fallback``: the same host parts around the integer golden model of the
   accelerator part, when the C simulation cannot be built. The result says so.

With ``--check`` (the default) two comparisons run: the accelerator's integer outputs (the
embedding; through the driver, ``run_accelerator_batch(..., raw=True)``) must equal the golden
model's bit for bit, and the whole model's centres are compared with onnxruntime on the whole QDQ
model (``driver/model.onnx``, optimisations off) frame by frame with the hidden state fed back
(``flows.whole_model.reference_whole_model``).

``smooth`` is the host stage the example had before the GRU: an exponential filter whose gain
grows with the frame's active sites. It is kept to show what the GRU replaces: applied on top of
the GRU's output it is reported beside it, and the numbers say which is better.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # examples/script_loader.py
from script_loader import load_script  # noqa: E402

SMOOTHING_SITES = 100  # active sites at which a frame's prediction and the history weigh equally


def sibling(name: str) -> ModuleType:
    """A module of this folder (``build`` or one build.py loads), one instance per process."""
    return load_script(HERE / f"{name}.py", f"event_eye_tracking_{name}")


@dataclass(frozen=True, eq=False)
class Track:
    """Predictions of one run over frames of one or more sequences."""

    frames: Any  # data.Frames
    predicted: np.ndarray  # (N, 2) normalised: the whole model (accelerator + GRU head on the host)
    smoothed: np.ndarray  # (N, 2) normalised, `predicted` through the old exponential filter
    backend: str  # which path ran the accelerator
    notes: tuple[str, ...]  # why preferred paths were not taken
    golden_mismatches: int | None  # accelerator output elements differing from the golden model (None: unchecked)
    reference_px: float | None  # max distance (px) of `predicted` from onnxruntime's whole model (None: unchecked)

    @property
    def errors(self) -> np.ndarray:
        return self.frames.errors(self.predicted)

    @property
    def smoothed_errors(self) -> np.ndarray:
        return self.frames.errors(self.smoothed)


def input_size(project_dir: Path) -> tuple[int, int]:
    """(H, W) of the project's input tensor (project.json)."""
    meta = json.loads((project_dir / "project.json").read_text())
    (port,) = meta["inputs"]
    _, _, height, width = port["shape"]
    return int(height), int(width)


def host_spec(project_dir: Path) -> dict[str, Any]:
    """The project's host spec (driver/host.json): the model's inputs, outputs and state."""
    path = project_dir / "driver" / "host.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: compile the eye tracker with its GRU head (a project with host parts)")
    return json.loads(path.read_text())


def by_sequence(frames: Any) -> list[np.ndarray]:
    """Indices of each sequence's frames, in order: the unit the hidden state is carried over."""
    return [np.nonzero(frames.sequence == sequence)[0] for sequence in np.unique(frames.sequence)]


def _driver_module(project_dir: Path) -> ModuleType:
    path = (project_dir / "driver" / "driver.py").resolve()
    return load_script(path, f"eye_tracking_driver_{abs(hash(str(path)))}")


def run_driver(project_dir: Path, frames: Any, check: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """(centres (N, 2), the accelerator's integer outputs or None) through the project's driver on
    the emulated board: per sequence ``reset()`` and ``run_batch`` (state carried frame to frame);
    with `check`, the accelerator ports alone once more (``run_accelerator_batch(raw=True)``) for
    the bit-exact comparison."""
    accelerator = _driver_module(project_dir).Accelerator(backend="emulate")
    centres = np.empty((len(frames), 2), np.float64)
    for members in by_sequence(frames):
        accelerator.reset()
        centres[members] = np.asarray(accelerator.run_batch(frames.frames[members].astype(np.float32))).reshape(-1, 2)
    raw = None
    if check:  # the input's integer codes on its grid
        codes = accelerator_graph(project_dir).inputs[0].output.quantize(frames.frames)
        raw = np.asarray(accelerator.run_accelerator_batch(codes, raw=True))
    return centres, raw


def accelerator_graph(project_dir: Path) -> Any:
    """The optimized IR of the project's accelerator part, split from its QDQ model as compile did."""
    from hwcodesign.codegen.host_parts import host_options_of
    from hwcodesign.partition import load_partitioned
    from hwcodesign.passes.pipeline import optimize

    _, graph = load_partitioned(project_dir / "driver" / "model.onnx", host=host_options_of(host_spec(project_dir)))
    return optimize(graph)


def run_with_accelerator(project_dir: Path, frames: Any, accelerator: Any) -> tuple[np.ndarray, np.ndarray]:
    """(centres (N, 2), the accelerator's integer outputs) of the shipped host parts around
    `accelerator` (a ``flows.whole_model.IntegerAccelerator``), the state from zero per sequence."""
    from hwcodesign.flows.whole_model import run_with_host

    spec = host_spec(project_dir)
    name, output = spec["inputs"][0]["name"], spec["outputs"][0]["name"]
    centres = np.empty((len(frames), 2), np.float64)
    for members in by_sequence(frames):
        outputs = run_with_host(project_dir / "driver", spec, {name: frames.frames[members]}, accelerator)
        centres[members] = np.asarray(outputs[output]).reshape(-1, 2)
    (raw,) = accelerator.integers("outputs").values()
    return centres, raw


def run_csim(project_dir: Path, frames: Any) -> tuple[np.ndarray, np.ndarray]:
    """The host parts around the project's C simulation: (centres (N, 2), integer outputs)."""
    from hwcodesign.codegen.project import Project
    from hwcodesign.flows.whole_model import IntegerAccelerator

    project = Project(project_dir)
    accelerator = IntegerAccelerator([p.tensor for p in project.inputs], [p.tensor for p in project.outputs],
                                     project.csim)
    return run_with_accelerator(project_dir, frames, accelerator)


def run_golden_model(project_dir: Path, frames: Any) -> tuple[np.ndarray, np.ndarray]:
    """The host parts around the golden model of the accelerator part: (centres, integer outputs)."""
    from hwcodesign.flows.whole_model import golden_accelerator

    return run_with_accelerator(project_dir, frames, golden_accelerator(accelerator_graph(project_dir)))


def golden_outputs(project_dir: Path, frames: np.ndarray) -> np.ndarray:
    """The golden model's integer outputs of the accelerator part for float frames (on the
    input's grid, as `data.on_grid` makes them)."""
    from hwcodesign.sim.golden import run_golden

    graph = accelerator_graph(project_dir)
    (tensor,) = graph.output_tensors()
    return run_golden(graph, graph.inputs[0].output.quantize(frames))[tensor.name]


def reference_centres(project_dir: Path, frames: Any) -> np.ndarray:
    """(N, 2) centres of onnxruntime on the whole QDQ model the project was compiled from,
    frame by frame with the hidden state fed back, from zero at each sequence's start."""
    import onnx

    from hwcodesign.flows.whole_model import reference_whole_model

    spec = host_spec(project_dir)
    model = onnx.load(str(project_dir / "driver" / "model.onnx"))
    name, output = spec["inputs"][0]["name"], spec["outputs"][0]["name"]
    centres = np.empty((len(frames), 2), np.float64)
    for members in by_sequence(frames):
        centres[members] = reference_whole_model(model, spec, {name: frames.frames[members]})[output].reshape(-1, 2)
    return centres


def smooth(predicted: np.ndarray, frames: Any, sites: float = SMOOTHING_SITES) -> np.ndarray:
    """The old host filter: estimate += gain * (prediction - estimate), gain = n / (n + sites)
    for a frame of n active sites; restarted at each sequence's first frame."""
    active = np.any(frames.frames != 0, axis=1).sum(axis=(1, 2))
    out = np.empty_like(predicted, dtype=np.float64)
    for i, value in enumerate(predicted):
        if i == 0 or frames.sequence[i] != frames.sequence[i - 1]:
            out[i] = value
        else:
            gain = active[i] / (active[i] + sites)
            out[i] = out[i - 1] + gain * (value - out[i - 1])
    return out


def first_error(message: str) -> str:
    """The line of a (compiler) message that says what went wrong: its first `error:` line."""
    lines = message.strip().splitlines() or [""]
    return next((line.strip() for line in lines if "error:" in line), lines[0])


def track(project_dir: Path | str, sequences: tuple[Any, ...] | None = None, *, golden_fallback: bool = False,
          check: bool = True) -> Track:
    """Run the sequences' frames through the compiled model (see the module docstring)."""
    data = sibling("data")
    project_dir = Path(project_dir)
    frames = data.make_frames(data.TRACK if sequences is None else sequences, input_size(project_dir))
    notes: list[str] = []
    predicted: np.ndarray | None = None
    raw: np.ndarray | None = None
    backend = ""
    try:
        predicted, raw = run_driver(project_dir, frames, check)
        backend = "PYNQ driver on the emulated board"
    except Exception as error:  # the generated driver: report why, then try the C simulation directly
        notes.append(f"driver: {type(error).__name__}: {first_error(str(error))}")
    if predicted is None:
        from hwcodesign.codegen.csim import CsimError

        try:
            predicted, raw = run_csim(project_dir, frames)
            backend = "Project.csim with the driver's host parts"
        except CsimError as error:
            notes.append(f"Project.csim: {first_error(str(error))}")
            if not golden_fallback:
                raise
            predicted, raw = run_golden_model(project_dir, frames)
            backend = "golden model with the driver's host parts (the C simulation could not be built)"
            check = False
    mismatches = reference_px = None
    if check:
        golden = golden_outputs(project_dir, frames.frames)
        assert raw is not None
        mismatches = int(np.count_nonzero(raw.reshape(golden.shape) != golden))
        reference = reference_centres(project_dir, frames)
        reference_px = float(data.pixel_errors(predicted, data.to_pixels(reference, frames.size), frames.size).max())
    return Track(frames, predicted, smooth(predicted, frames), backend, tuple(notes), mismatches, reference_px)


def plot(result: Track, path: Path | str) -> Path:
    """The GRU head's, the filtered and the true (cx, cy) over time, one column per sequence, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = sibling("data")
    frames = result.frames
    size = frames.size
    true = frames.centres
    raw = data.to_pixels(result.predicted, size)
    smoothed = data.to_pixels(result.smoothed, size)
    sequences = np.unique(frames.sequence)
    figure, axes = plt.subplots(3, len(sequences), figsize=(6 * len(sequences), 7), squeeze=False, sharex="col")
    for column, sequence in enumerate(sequences):
        pick = frames.sequence == sequence
        seconds = frames.times[pick] / 1e6
        for row, (axis, label) in enumerate(((0, "cx"), (1, "cy"))):
            ax = axes[row, column]
            ax.plot(seconds, true[pick, axis], color="black", linewidth=1.5, label="true")
            ax.plot(seconds, raw[pick, axis], color="tab:orange", linewidth=1, label="GRU head")
            ax.plot(seconds, smoothed[pick, axis], color="tab:blue", linewidth=0.8, alpha=0.6,
                    label="GRU + old filter")
            ax.set_ylabel(f"{label} (px)")
            if row == 0:
                ax.set_title(f"sequence {int(sequence)}: mean error {result.errors[pick].mean():.2f} px "
                             f"(+ filter {result.smoothed_errors[pick].mean():.2f})")
        ax = axes[2, column]
        ax.plot(seconds, result.errors[pick], color="tab:orange", linewidth=0.8, label="GRU head")
        ax.plot(seconds, result.smoothed_errors[pick], color="tab:blue", linewidth=0.8, alpha=0.6,
                label="GRU + old filter")
        ax.set_ylabel("error (px)")
        ax.set_xlabel("time (s)")
    axes[0, 0].legend(loc="upper right", fontsize=8)
    figure.suptitle(f"pupil centre on {size[1]}x{size[0]} event frames, {result.backend}")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("project", type=Path, help="a compiled project folder (hwcodesign compile ... -o DIR)")
    parser.add_argument("--png", type=Path, default=None,
                        help="plot file (default DIR_track.png beside the project: `compile -o` replaces only "
                        "folders holding nothing but its own files, so nothing of ours goes inside)")
    parser.add_argument("--golden-fallback", action="store_true",
                        help="use the golden model if the C simulation cannot be built")
    parser.add_argument("--no-check", action="store_true", help="skip the bit-exact comparison with the golden model")
    args = parser.parse_args(argv)
    from hwcodesign.codegen.csim import CsimError

    try:
        result = track(args.project, golden_fallback=args.golden_fallback, check=not args.no_check)
    except CsimError as error:
        print(f"error: the C simulation of {args.project} cannot be built: {first_error(str(error))}\n"
              "(--golden-fallback tracks with the golden model instead)", file=sys.stderr)
        return 2
    for note in result.notes:
        print(f"note: {note}")
    png = plot(result, args.png or args.project.parent / f"{args.project.name}_track.png")
    errors, smoothed = result.errors, result.smoothed_errors
    print(f"{len(errors)} frames through the {result.backend} (GRU hidden state carried within each sequence, "
          "reset between sequences)")
    if result.golden_mismatches is not None:
        print(f"accelerator (embedding) vs golden model: {result.golden_mismatches} output elements differ")
    if result.reference_px is not None:
        print(f"whole model vs onnxruntime on the QDQ model (state fed back): max {result.reference_px:.3g} px apart")
    print(f"mean pupil error {errors.mean():.2f} px (p5 {np.mean(errors < 5):.0%}, p10 {np.mean(errors < 10):.0%}); "
          f"with the old filter on top {smoothed.mean():.2f} px (p5 {np.mean(smoothed < 5):.0%}, "
          f"p10 {np.mean(smoothed < 10):.0%})")
    print(f"plot: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
