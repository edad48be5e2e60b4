"""Training and evaluation data for the eye tracker: synthetic near-eye event streams cut into
10 ms voxel grids of 3 time bins (ESDA's input), each labelled with the true pupil centre at the
window's end.

``hwcodesign.events.synthetic_eye`` renders a dark pupil moving by smooth pursuit and saccades
on an 80x60 sensor: one of its pixels stands for an 8x8 block of the 640x480 AIS 2024 sensor
(the network's 60x80 input), so the frames are built without further downsampling. Sequences
differ in seed (the motion, hence where the pupil goes), background noise rate, events per
swept edge and eyelid clutter, so the network sees sparse fixations and dense saccades, clean
and noisy sensors. Every frame is a deterministic function of its sequence's parameters.

A frame is ``hwcodesign.events.voxel_grid`` with ``TIME_BINS`` = 3 (ESDA's eye tracker sets
``n_time_bins`` 3 in its configs and builds the grid with tonic's ``to_voxel_grid_numpy``):
signed polarities spread linearly over the bins, so the frame carries the motion's direction
within the window. It is rounded to multiples of ``STEP`` (1/8 of an event) within int8 codes
(``on_grid``): the QDQ model's input is that grid exactly (int8, scale 1/8, zero point 0, which
``hwcodesign quantize`` keeps), the accelerator's input is the code, and a site whose value
rounds to 0 is inactive in the float model too.

The centre is normalised as ``(cx / (W - 1), cy / (H - 1))``: pixel centres are at integer
coordinates 0..W-1 (``hwcodesign.events.synthetic``), so [0, 1] spans the sensor exactly and
an error converts back to pixels by the same factors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from hwcodesign.events import active_fraction, synthetic_eye, voxel_grid

HEIGHT, WIDTH = 60, 80
WINDOW_US = 10_000
TIME_BINS = 3  # ESDA's n_time_bins
STEP = 1 / 8  # the input grid: int8 codes of an eighth of an event
LIMIT = 127 * STEP


@dataclass(frozen=True)
class Sequence:
    """One synthetic recording: its seed and event rates (see ``synthetic_eye``)."""

    seed: int
    duration_us: int
    noise_rate_hz: float = 0.2
    events_per_edge: float = 4.0
    clutter_rate_hz: float = 0.0


# Different seeds (motions), noise floors, edge gains and eyelid clutter.
TRAIN = (
    Sequence(1, 6_000_000, 0.2, 4.0),
    Sequence(2, 6_000_000, 0.5, 4.0),
    Sequence(3, 6_000_000, 1.0, 5.0, 2.0),
    Sequence(4, 6_000_000, 0.1, 6.0),
    Sequence(5, 6_000_000, 0.5, 3.0, 1.0),
    Sequence(6, 6_000_000, 0.3, 4.0),
)
TEST = (
    Sequence(101, 4_000_000, 0.2, 4.0),
    Sequence(102, 4_000_000, 0.5, 5.0, 1.0),
)
# For track.py: new seeds again, never seen in training or testing.
TRACK = (
    Sequence(201, 3_000_000, 0.3, 4.0),
    Sequence(202, 3_000_000, 0.5, 5.0, 1.0),
)


@dataclass(frozen=True, eq=False)
class Frames:
    """Event frames with their ground truth, from one or more sequences."""

    frames: np.ndarray  # (N, TIME_BINS, H, W) float32 voxel grids, multiples of STEP within +-LIMIT
    centres: np.ndarray  # (N, 2) float64 true (cx, cy) in frame pixels at each window's end
    times: np.ndarray  # (N,) int64 window end, us from the start of its sequence
    sequence: np.ndarray  # (N,) int64 index of the frame's sequence in the list given

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the frames."""
        return int(self.frames.shape[2]), int(self.frames.shape[3])

    @property
    def targets(self) -> np.ndarray:
        """(N, 2) float32 normalised centres, what the network regresses."""
        return normalise(self.centres, self.size).astype(np.float32)

    def errors(self, predicted: np.ndarray) -> np.ndarray:
        """(N,) pixel distance of normalised predictions (N, 2) from the true centres."""
        return pixel_errors(predicted, self.centres, self.size)

    def densities(self) -> np.ndarray:
        """(N,) active fraction of each frame (sites where any polarity fired)."""
        return np.array([active_fraction(frame) for frame in self.frames])

    def subset(self, index: np.ndarray | slice) -> Frames:
        return Frames(self.frames[index], self.centres[index], self.times[index], self.sequence[index])


def _scale(size: tuple[int, int]) -> np.ndarray:
    height, width = size
    return np.array([width - 1, height - 1], np.float64)


def normalise(centres: np.ndarray, size: tuple[int, int] = (HEIGHT, WIDTH)) -> np.ndarray:
    """(cx, cy) in pixels of an (H, W) frame -> [0, 1] over the pixel centres."""
    return np.asarray(centres, np.float64) / _scale(size)


def to_pixels(normalised: np.ndarray, size: tuple[int, int] = (HEIGHT, WIDTH)) -> np.ndarray:
    return np.asarray(normalised, np.float64) * _scale(size)


def pixel_errors(predicted: np.ndarray, centres: np.ndarray, size: tuple[int, int] = (HEIGHT, WIDTH)) -> np.ndarray:
    """(N,) Euclidean distance in frame pixels between normalised predictions and true centres."""
    return np.hypot(*(to_pixels(predicted, size) - np.asarray(centres, np.float64)).T)


def sequence_frames(sequence: Sequence, index: int = 0, size: tuple[int, int] = (HEIGHT, WIDTH)) -> Frames:
    """The full windows [k T, (k + 1) T) of one sequence, from t = 0, on an (H, W) sensor."""
    height, width = size
    stream, trajectory = synthetic_eye(sequence.duration_us, width, height, sequence.seed,
                                       noise_rate_hz=sequence.noise_rate_hz,
                                       events_per_edge=sequence.events_per_edge,
                                       clutter_rate_hz=sequence.clutter_rate_hz)
    ends = np.arange(WINDOW_US, sequence.duration_us + 1, WINDOW_US, dtype=np.int64)
    frames = np.stack([on_grid(voxel_grid(stream, int(end) - WINDOW_US, int(end), TIME_BINS, height, width))
                       for end in ends])
    cx, cy = trajectory.at(ends)
    return Frames(frames.astype(np.float32), np.stack([cx, cy], axis=1), ends, np.full(len(ends), index, np.int64))


def on_grid(frame: np.ndarray) -> np.ndarray:
    """The voxel grid rounded to multiples of `STEP` and clipped to int8 codes: the accelerator's
    int8 input exactly (a value under half a step is 0: an inactive site)."""
    return (np.clip(np.rint(frame / STEP), -127, 127) * STEP).astype(np.float32)


def make_frames(sequences: Iterable[Sequence], size: tuple[int, int] = (HEIGHT, WIDTH)) -> Frames:
    """All frames of `sequences`, in order; `Frames.sequence` indexes into them."""
    parts = [sequence_frames(sequence, index, size) for index, sequence in enumerate(sequences)]
    return Frames(np.concatenate([p.frames for p in parts]), np.concatenate([p.centres for p in parts]),
                  np.concatenate([p.times for p in parts]), np.concatenate([p.sequence for p in parts]))
