"""Track the pupil through new synthetic event sequences with the compiled accelerator.

    hwcodesign compile build/examples/event_eye_tracking/eye_tracker_w8a8.onnx --board zcu102 \
        --inputs build/examples/event_eye_tracking/sample_frames.npy -o build/eye_tracker_zcu102
    python examples/event_eye_tracking/track.py build/eye_tracker_zcu102 [--png eye_track.png]

Each 10 ms event frame of the sequences in ``data.TRACK`` (seeds never trained or tested on,
at the project's input size) goes through the accelerator off the board, and the predicted
pupil centre is plotted against the true one over time (matplotlib, a PNG); the mean error in
frame pixels is printed.

How the accelerator runs, in order of preference:

1. the project's PYNQ driver (``driver/driver.py``) on the emulated board
   (``Accelerator(backend="emulate").run_batch(float frames)``): the same code a board runs,
   with the C simulation of the generated HLS in place of the bitstream;
2. ``hwcodesign.codegen.project.Project(DIR).csim(integer frames)``, the C simulation itself;
3. only with ``--golden-fallback``: the integer golden model of the project's QDQ model
   (``driver/model.onnx``), when the C simulation cannot be built. The result says so.

With ``--check`` (the default) the integer golden model also runs, and the accelerator's
outputs must equal it bit for bit.

The eye-tracking system this example follows runs the sparse CNN on the FPGA and a recurrent
stage on the host CPU. ``smooth`` is a much simpler host stage: an exponential filter whose
gain grows with the frame's active sites (a fixation window with a handful of events moves the
estimate little, a saccade's dense window much), so the track holds through sparse frames.
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
    predicted: np.ndarray  # (N, 2) normalised, from the accelerator
    smoothed: np.ndarray  # (N, 2) normalised, after the host filter
    backend: str  # which path ran the accelerator
    notes: tuple[str, ...]  # why preferred paths were not taken
    golden_mismatches: int | None  # output elements differing from the golden model (None: unchecked)

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


def _driver_module(project_dir: Path) -> ModuleType:
    path = (project_dir / "driver" / "driver.py").resolve()
    return load_script(path, f"eye_tracking_driver_{abs(hash(str(path)))}")


def run_driver(project_dir: Path, frames: np.ndarray) -> np.ndarray:
    """(N, 2) dequantized outputs of the project's driver on the emulated board."""
    accelerator = _driver_module(project_dir).Accelerator(backend="emulate")
    return np.asarray(accelerator.run_batch(frames.astype(np.float32))).reshape(len(frames), -1)


def run_csim(project_dir: Path, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(dequantized (N, 2), integer outputs) of the project's C simulation."""
    from hwcodesign.codegen.project import Project

    project = Project(project_dir)
    (port,) = project.outputs
    raw = project.csim(frames.astype(np.int64))[port.tensor.name]
    values = (raw.astype(np.float64) - port.tensor.zero_point) * port.tensor.scale
    return values.reshape(len(frames), -1), raw


def run_golden_model(project_dir: Path, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, int]:
    """(dequantized (N, 2), integer outputs, output scale, output zero point) of the golden
    model of the project's QDQ model."""
    from hwcodesign.passes.pipeline import load_onnx, optimize
    from hwcodesign.sim.golden import run_golden

    graph = optimize(load_onnx(project_dir / "driver" / "model.onnx"))
    (tensor,) = graph.output_tensors()
    raw = run_golden(graph, frames.astype(np.int64))[tensor.name]
    values = ((raw.astype(np.float64) - tensor.zero_point) * tensor.scale).reshape(len(frames), -1)
    return values, raw, tensor.scale, tensor.zero_point


def smooth(predicted: np.ndarray, frames: Any, sites: float = SMOOTHING_SITES) -> np.ndarray:
    """The host filter: estimate += gain * (prediction - estimate), gain = n / (n + sites) for
    a frame of n active sites; restarted at each sequence's first frame."""
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
    """Run the sequences' frames through the compiled accelerator (see the module docstring)."""
    data = sibling("data")
    project_dir = Path(project_dir)
    frames = data.make_frames(data.TRACK if sequences is None else sequences, input_size(project_dir))
    notes: list[str] = []
    predicted: np.ndarray | None = None
    raw: np.ndarray | None = None
    backend = ""
    try:
        predicted = run_driver(project_dir, frames.frames)
        backend = "PYNQ driver on the emulated board"
    except Exception as error:  # the generated driver: report why, then try the C simulation directly
        notes.append(f"driver: {type(error).__name__}: {first_error(str(error))}")
    if predicted is None:
        from hwcodesign.codegen.csim import CsimError

        try:
            predicted, raw = run_csim(project_dir, frames.frames)
            backend = "Project.csim"
        except CsimError as error:
            notes.append(f"Project.csim: {first_error(str(error))}")
            if not golden_fallback:
                raise
            predicted, raw, _, _ = run_golden_model(project_dir, frames.frames)
            backend = "golden model (the C simulation could not be built)"
            check = False
    mismatches = None
    if check:
        _, golden_raw, scale, zero_point = run_golden_model(project_dir, frames.frames)
        if raw is None:  # the driver dequantized: back to the output's integers
            raw = np.rint(predicted / scale + zero_point).astype(np.int64)
        mismatches = int(np.count_nonzero(raw.reshape(golden_raw.shape) != golden_raw))
    return Track(frames, predicted, smooth(predicted, frames), backend, tuple(notes), mismatches)


def plot(result: Track, path: Path | str) -> Path:
    """Predicted, smoothed and true (cx, cy) over time, one column per sequence, as a PNG."""
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
            ax.plot(seconds, raw[pick, axis], ".", markersize=2.5, color="tab:orange", alpha=0.6, label="per frame")
            ax.plot(seconds, smoothed[pick, axis], color="tab:blue", linewidth=1, label="host-smoothed")
            ax.set_ylabel(f"{label} (px)")
            if row == 0:
                ax.set_title(f"sequence {int(sequence)}: mean error {result.errors[pick].mean():.2f} px "
                             f"(smoothed {result.smoothed_errors[pick].mean():.2f})")
        ax = axes[2, column]
        ax.plot(seconds, result.errors[pick], color="tab:orange", linewidth=0.8, label="per frame")
        ax.plot(seconds, result.smoothed_errors[pick], color="tab:blue", linewidth=0.8, label="host-smoothed")
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
    print(f"{len(errors)} frames through the {result.backend}")
    if result.golden_mismatches is not None:
        print(f"accelerator vs golden model: {result.golden_mismatches} output elements differ")
    print(f"mean pupil error {errors.mean():.2f} px (p5 {np.mean(errors < 5):.0%}, p10 {np.mean(errors < 10):.0%}); "
          f"host-smoothed {smoothed.mean():.2f} px (p5 {np.mean(smoothed < 5):.0%}, p10 {np.mean(smoothed < 10):.0%})")
    print(f"plot: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
