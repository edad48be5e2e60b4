"""Synthetic event streams with known ground truth, for tests and examples: a moving eye and a blob.

An event camera fires where the log brightness changes. Each generator renders a brightness image
(in units of the scene's full contrast) every `step_us`, and within each step every pixel fires a
Poisson number of events with mean `events_per_edge * |change|`, at uniform times: ON (p = 1)
where it became brighter, OFF (p = 0) where darker. So a pixel that a moving edge sweeps
completely fires `events_per_edge` events on average whatever the speed, as a real pixel fires
(log contrast) / (contrast threshold) events: about 4 for a pupil three times darker than the
iris and a 0.25 threshold. Background noise adds events at `noise_rate_hz` per pixel (either
polarity), uniform in time and over the sensor. Pixel (x, y) has its centre at coordinates
(x, y); the ground truth uses the same coordinates.

The eye (`synthetic_eye`): a dark pupil ellipse on a brighter iris, its boundary blurred over
`edge_blur_px` (optics), moving by smooth pursuit (two sinusoids per axis) and occasional
saccades (minimum-jerk moves to a new fixation point). The leading edge of a moving pupil darkens
pixels (OFF), the trailing edge brightens them (ON). Optional eyelid clutter fires sparse events
of random polarity along two eyelid arcs at `clutter_rate_hz` per arc pixel.

Density (the active fraction of a histogram frame over a window of T us): a site is active with
probability 1 - exp(-m), m its expected number of events in the window, so
    m = events_per_edge * (brightness change the pupil boundary sweeps over the site in T)
        + noise_rate_hz * T * 1e-6  (+ clutter_rate_hz * T * 1e-6 on eyelid pixels).
Noise sets a uniform floor, 1 - exp(-noise_rate_hz * T * 1e-6): 1% in 10 ms windows needs about
1 Hz, 50% about 69 Hz. The pupil adds a band along its boundary, about its perimeter (~35 px for
6 x 5) times the distance it moves in T: little during pursuit, much more during saccades, so the
motion (`EyeModel`) and `events_per_edge` set it. `expected_density` computes the exact
expectation for a seed, `density_parameters` solves it for a target density and
`events_for_density` generates a stream at that density. `frame_at_density` makes a single
count frame with an exact number of active sites, for hardware tests.

Every generator is deterministic for a seed; the motion, the edge events, the noise and the
clutter draw from separate random streams, so changing one rate leaves the other events as they
were (a test can raise the noise and see only the noise change).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from hwcodesign.events.stream import EventStream, positive_int

NOISE_RATE_HZ = 0.2
EVENTS_PER_EDGE = 4.0
# Pixel-steps of brightness rendered at once: bounds memory (2 MiB of float64) whatever the sensor,
# and keeps the box the pupil sweeps in one block small.
_CHUNK_PIXELS = 1 << 18


@dataclass(frozen=True, eq=False)
class Trajectory:
    """Ground truth: the object's centre (cx, cy) in sensor pixels at sample times t (int64 us)."""

    t: np.ndarray
    cx: np.ndarray
    cy: np.ndarray

    def at(self, t: float | np.ndarray) -> tuple[float, float] | tuple[np.ndarray, np.ndarray]:
        """The centre at time(s) t, linearly interpolated between samples (held beyond the ends)."""
        cx = np.interp(t, self.t, self.cx)
        cy = np.interp(t, self.t, self.cy)
        if np.ndim(t) == 0:
            return float(cx), float(cy)
        return cx, cy


@dataclass(frozen=True)
class EyeModel:
    """How the synthetic eye looks and moves: everything but the event rates.

    `pupil_semi_axes` (x, y) and `edge_blur_px` (the boundary's logistic scale) shape the pupil;
    pursuit sweeps it by up to `pursuit_amplitude_px` around the fixation point at 0.4 to 2.5 Hz
    (about 15 px/s); saccades come at `saccade_rate_hz` on average and last, as the main sequence
    of human saccades has it, a base time plus a time per pixel of amplitude (21 ms + 2.2 ms per
    degree, at about 0.7 px per degree in an 80-px-wide view of the eye); fixation points are
    uniform over the central `eye_region` fraction of the positions keeping the whole pupil one
    pixel inside the sensor. Brightness is rendered every `step_us`.
    """

    pupil_semi_axes: tuple[float, float] = (6.0, 5.0)
    edge_blur_px: float = 0.5
    pursuit_amplitude_px: float = 3.0
    saccade_rate_hz: float = 1.5
    saccade_base_us: int = 21_000
    saccade_us_per_px: int = 3_000
    eye_region: float = 0.8
    step_us: int = 500

    def __post_init__(self) -> None:
        a, b = self.pupil_semi_axes
        if not (a > 0 and b > 0):
            raise ValueError(f"pupil_semi_axes must be positive, got {self.pupil_semi_axes}")
        positive_int("step_us", self.step_us)
        for name in ("edge_blur_px", "saccade_base_us"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        for name in ("pursuit_amplitude_px", "saccade_rate_hz", "saccade_us_per_px"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)!r}")
        if not 0 < self.eye_region <= 1:
            raise ValueError(f"eye_region must be in (0, 1], got {self.eye_region}")


@dataclass(frozen=True, eq=False)
class _Scene:
    """A rendered-on-demand brightness movie: `brightness(k)` is the image at times[k] (k an index array)."""

    width: int
    height: int
    times: np.ndarray
    trajectory: Trajectory
    brightness: Callable[[np.ndarray], np.ndarray]
    clutter: np.ndarray  # (H, W) bool: eyelid pixels firing clutter events


def _check_rate(name: str, value: float) -> float:
    if not value >= 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")
    return float(value)


def _step_times(duration_us: int, step_us: int) -> np.ndarray:
    """Step boundaries 0, step, 2 step, ..., duration: the last step may be shorter."""
    return np.append(np.arange(0, duration_us, step_us, dtype=np.int64), np.int64(duration_us))


def _rngs(seed: int) -> tuple[np.random.Generator, ...]:
    """Independent streams for motion, edges, noise and clutter (see the module docstring)."""
    return tuple(np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4))


def _minimum_jerk(tau: np.ndarray) -> np.ndarray:
    """0 -> 1 over tau in [0, 1] with zero velocity and acceleration at both ends, as saccades move."""
    tau = np.clip(tau, 0.0, 1.0)
    return tau**3 * (10 - 15 * tau + 6 * tau**2)


def _eye_trajectory(times: np.ndarray, width: int, height: int, model: EyeModel,
                    rng: np.random.Generator) -> Trajectory:
    a, b = model.pupil_semi_axes
    low = np.array([a + 1, b + 1])
    high = np.array([width - 2 - a, height - 2 - b])
    span = high - low
    if np.any(span <= 0):
        raise ValueError(f"a pupil of semi-axes {model.pupil_semi_axes} does not fit a {width}x{height} sensor")
    amplitude = min(model.pursuit_amplitude_px, float(span.min()) / 4)
    margin = (1 - model.eye_region) / 2 * span
    target_low = low + margin + amplitude
    target_high = high - margin - amplitude
    target_low, target_high = np.minimum(target_low, target_high), np.maximum(target_low, target_high)
    seconds = times / 1e6
    duration = int(times[-1])

    fixation = np.empty((2, len(times)))
    fixation[:] = rng.uniform(target_low, target_high)[:, None]
    onset = 0.0
    while model.saccade_rate_hz > 0:
        onset += rng.exponential(1e6 / model.saccade_rate_hz)
        if onset >= duration:
            break
        move = rng.uniform(target_low, target_high) - fixation[:, -1]
        length = model.saccade_base_us + model.saccade_us_per_px * float(np.hypot(*move))
        fixation += move[:, None] * _minimum_jerk((times - onset) / length)
        onset += length

    pursuit = np.zeros((2, len(times)))
    for axis in range(2):
        slow, fast = rng.uniform(0.4, 1.0), rng.uniform(1.0, 2.5)
        phase_slow, phase_fast = rng.uniform(0, 2 * np.pi, size=2)
        pursuit[axis] = amplitude * (0.7 * np.sin(2 * np.pi * slow * seconds + phase_slow)
                                     + 0.3 * np.sin(2 * np.pi * fast * seconds + phase_fast))
    centre = fixation + pursuit
    return Trajectory(times.copy(), centre[0], centre[1])


# Beyond this many blur scales from the boundary the pupil's coverage is within exp(-20) of 0 or 1:
# its change there would fire about one event in a billion steps, so it is not rendered.
_BLUR_REACH = 20.0


def _pupil_darkness(cx: np.ndarray, cy: np.ndarray, semi_axes: tuple[float, float], blur: float,
                    width: int, height: int) -> np.ndarray:
    """(n, H, W) pupil coverage in [0, 1]: a logistic of the signed distance to the ellipse boundary.

    The distance is the first-order one, (r - 1) / |grad r| for the ellipse's normalized radius r:
    exact on the boundary, where the events are; the logistic saturates before its error matters.
    Only the box the n pupils can reach is computed (the rest of the sensor sees iris, 0), which
    makes rendering several times faster on a sensor much larger than the pupil.
    """
    a, b = semi_axes
    reach = _BLUR_REACH * blur + 1
    x0, x1 = max(0, int(np.floor(cx.min() - a - reach))), min(width, int(np.ceil(cx.max() + a + reach)) + 1)
    y0, y1 = max(0, int(np.floor(cy.min() - b - reach))), min(height, int(np.ceil(cy.max() + b + reach)) + 1)
    coverage = np.zeros((len(cx), height, width))
    if x0 >= x1 or y0 >= y1:
        return coverage
    u = (np.arange(x0, x1)[None, None, :] - cx[:, None, None]) / a
    v = (np.arange(y0, y1)[None, :, None] - cy[:, None, None]) / b
    r = np.hypot(u, v)
    slope = np.hypot(u / a, v / b)
    with np.errstate(divide="ignore", invalid="ignore"):
        distance = np.where(slope > 1e-9, (r - 1) * r / slope, -min(a, b))
    coverage[:, y0:y1, x0:x1] = 0.5 * (1 - np.tanh(distance / (2 * blur)))
    return coverage


def _eyelid_pixels(width: int, height: int) -> np.ndarray:
    """(H, W) bool: pixels on an upper and a lower eyelid arc (parabolas across the sensor)."""
    x = (2 * np.arange(width) / max(width - 1, 1) - 1)[None, :]
    y = np.arange(height)[:, None]
    mask = np.zeros((height, width), dtype=bool)
    for apex, bend in ((0.1 * height, 0.25 * height), (0.92 * height, -0.15 * height)):
        arc = apex + bend * x**2
        steepness = np.abs(2 * bend * x) * 2 / max(width - 1, 1)
        mask |= np.abs(y - arc) <= 0.5 + steepness / 2
    return mask


def _eye_scene(duration_us: int, width: int, height: int, model: EyeModel,
               rng: np.random.Generator) -> _Scene:
    times = _step_times(duration_us, model.step_us)
    trajectory = _eye_trajectory(times, width, height, model, rng)

    def brightness(k: np.ndarray) -> np.ndarray:
        return -_pupil_darkness(trajectory.cx[k], trajectory.cy[k], model.pupil_semi_axes,
                                model.edge_blur_px, width, height)

    return _Scene(width, height, times, trajectory, brightness, _eyelid_pixels(width, height))


def _changes(scene: _Scene) -> Iterator[tuple[int, np.ndarray]]:
    """(k0, delta): brightness change over steps k0, k0 + 1, ... as an (n, H, W) block."""
    steps = len(scene.times) - 1
    per_block = max(1, _CHUNK_PIXELS // (scene.width * scene.height))
    previous = scene.brightness(np.array([0]))
    for k0 in range(0, steps, per_block):
        k1 = min(k0 + per_block, steps)
        frames = scene.brightness(np.arange(k0 + 1, k1 + 1))
        yield k0, np.diff(np.concatenate([previous, frames]), axis=0)
        previous = frames[-1:]


_Events = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _edge_events(scene: _Scene, events_per_edge: float, rng: np.random.Generator) -> _Events:
    parts = []
    for k0, delta in _changes(scene):
        mean = events_per_edge * np.abs(delta)
        changed = mean > 0  # most of the sensor sees no change: draw only where it does
        counts = np.zeros(delta.shape, dtype=np.int64)
        counts[changed] = rng.poisson(mean[changed])
        k, y, x = np.nonzero(counts)
        repeat = counts[k, y, x]
        brighter = delta[k, y, x] > 0
        k = np.repeat(k + k0, repeat)
        start = scene.times[k]
        length = scene.times[k + 1] - start
        t = start + (rng.random(len(k)) * length).astype(np.int64)
        parts.append((np.repeat(x, repeat), np.repeat(y, repeat), t, np.repeat(brighter, repeat).astype(np.uint8)))
    return tuple(np.concatenate([part[i] for part in parts]) for i in range(4))  # type: ignore[return-value]


def _uniform_events(pixels: np.ndarray, rate_hz: float, duration_us: int,
                    rng: np.random.Generator) -> _Events:
    """Poisson events at `rate_hz` per pixel of the (H, W) mask, uniform in time and random polarity."""
    ys, xs = np.nonzero(pixels)
    n = rng.poisson(rate_hz * len(xs) * duration_us * 1e-6) if len(xs) else 0
    which = rng.integers(0, len(xs), n) if n else np.zeros(0, dtype=np.int64)
    t = rng.integers(0, duration_us, n, dtype=np.int64)
    p = rng.integers(0, 2, n).astype(np.uint8)
    return xs[which], ys[which], t, p


def _stream(width: int, height: int, *parts: _Events) -> EventStream:
    x, y, t, p = (np.concatenate([part[i] for part in parts]) for i in range(4))
    order = np.argsort(t, kind="stable")
    return EventStream(x[order], y[order], t[order], p[order], width, height)


def synthetic_eye(duration_us: int, width: int = 80, height: int = 60, seed: int = 0, *,
                  noise_rate_hz: float = NOISE_RATE_HZ, events_per_edge: float = EVENTS_PER_EDGE,
                  clutter_rate_hz: float = 0.0,
                  model: EyeModel | None = None) -> tuple[EventStream, Trajectory]:
    """A near-eye event camera's view of a moving pupil over [0, duration_us), and the true pupil centre.

    See the module docstring for the model and for which parameters set the density.
    """
    duration_us = positive_int("duration_us", duration_us)
    model = EyeModel() if model is None else model
    motion, edges, noise, clutter = _rngs(seed)
    scene = _eye_scene(duration_us, width, height, model, motion)
    stream = _stream(width, height,
                     _edge_events(scene, _check_rate("events_per_edge", events_per_edge), edges),
                     _uniform_events(scene.clutter, _check_rate("clutter_rate_hz", clutter_rate_hz),
                                     duration_us, clutter),
                     _uniform_events(np.ones((height, width), dtype=bool),
                                     _check_rate("noise_rate_hz", noise_rate_hz), duration_us, noise))
    return stream, scene.trajectory


def synthetic_blob(duration_us: int, width: int = 32, height: int = 24, seed: int = 0, *,
                   sigma_px: float = 2.0, speed_px_s: float = 300.0, events_per_edge: float = 4.0,
                   noise_rate_hz: float = 0.0, step_us: int = 500) -> tuple[EventStream, Trajectory]:
    """A bright Gaussian blob (std `sigma_px`) moving in a straight line, bouncing off the sensor's edges.

    ON events lead (pixels ahead get brighter), OFF events trail. Simpler than the eye: one
    speed, no saccades, so tests can reason about where events must be.
    """
    duration_us = positive_int("duration_us", duration_us)
    if not sigma_px > 0 or not speed_px_s >= 0:
        raise ValueError(f"sigma_px must be positive and speed_px_s not negative, got {sigma_px}, {speed_px_s}")
    motion, edges, noise, _ = _rngs(seed)
    times = _step_times(duration_us, positive_int("step_us", step_us))
    low = np.array([0.0, 0.0])
    high = np.array([width - 1.0, height - 1.0])
    start = motion.uniform(low, high)
    angle = motion.uniform(0, 2 * np.pi)
    velocity = speed_px_s * np.array([np.cos(angle), np.sin(angle)])
    # Bouncing is a straight line folded back into the sensor: a triangle wave per axis.
    travelled = (start - low)[:, None] + velocity[:, None] * (times / 1e6)[None, :]
    period = 2 * (high - low)[:, None]
    folded = np.mod(travelled, period)
    centre = low[:, None] + np.where(folded <= period / 2, folded, period - folded)
    trajectory = Trajectory(times.copy(), centre[0], centre[1])
    xs = np.arange(width)[None, None, :]
    ys = np.arange(height)[None, :, None]

    def brightness(k: np.ndarray) -> np.ndarray:
        dx = xs - trajectory.cx[k][:, None, None]
        dy = ys - trajectory.cy[k][:, None, None]
        return np.exp(-(dx**2 + dy**2) / (2 * sigma_px**2))

    scene = _Scene(width, height, times, trajectory, brightness, np.zeros((height, width), dtype=bool))
    stream = _stream(width, height,
                     _edge_events(scene, _check_rate("events_per_edge", events_per_edge), edges),
                     _uniform_events(np.ones((height, width), dtype=bool),
                                     _check_rate("noise_rate_hz", noise_rate_hz), duration_us, noise))
    return stream, trajectory


def _block_sum(maps: np.ndarray, downsample: int, frame_h: int, frame_w: int) -> np.ndarray:
    """(n, H, W) per pixel -> (n, frame_h * frame_w) per site: d x d blocks summed, then cropped or padded."""
    n, height, width = maps.shape
    padded_h, padded_w = -(-height // downsample) * downsample, -(-width // downsample) * downsample
    padded = np.zeros((n, padded_h, padded_w))
    padded[:, :height, :width] = maps
    blocks = padded.reshape(n, padded_h // downsample, downsample, padded_w // downsample, downsample).sum(axis=(2, 4))
    sites = np.zeros((n, frame_h, frame_w))
    h, w = min(frame_h, blocks.shape[1]), min(frame_w, blocks.shape[2])
    sites[:, :h, :w] = blocks[:, :h, :w]
    return sites.reshape(n, -1)


@dataclass(frozen=True, eq=False)
class _DensityModel:
    """Expected events per site and full window, split by source, so any rates' density is one formula."""

    edge: np.ndarray  # (windows, sites): brightness change swept over the site in each window
    pixels: np.ndarray  # (sites,): sensor pixels of the site (noise)
    eyelid: np.ndarray  # (sites,): eyelid pixels of the site (clutter)
    window_s: float

    def density(self, events_per_edge: float, noise_rate_hz: float, clutter_rate_hz: float) -> float:
        mean = (events_per_edge * self.edge
                + (noise_rate_hz * self.pixels + clutter_rate_hz * self.eyelid) * self.window_s)
        return float(np.mean(-np.expm1(-mean)))


def _density_model(window_us: int, duration_us: int, width: int, height: int, seed: int,
                   model: EyeModel | None, downsample: int) -> _DensityModel:
    duration_us = positive_int("duration_us", duration_us)
    window_us = positive_int("window_us", window_us)
    full_windows = duration_us // window_us
    if full_windows == 0:
        raise ValueError(f"a {duration_us} us stream holds no full {window_us} us window")
    model = EyeModel() if model is None else model
    scene = _eye_scene(duration_us, width, height, model, _rngs(seed)[0])
    swept = np.zeros((full_windows, height, width))
    for k0, delta in _changes(scene):
        window = scene.times[k0:k0 + len(delta)] // window_us
        keep = window < full_windows
        window, change = window[keep], np.abs(delta[keep])
        if len(window):  # steps are in time order: sum each window's run of steps
            starts = np.flatnonzero(np.r_[True, window[1:] != window[:-1]])
            swept[window[starts]] += np.add.reduceat(change, starts, axis=0)
    downsample = positive_int("downsample", downsample)
    frame_h, frame_w = -(-height // downsample), -(-width // downsample)  # as `frame_size`
    return _DensityModel(
        edge=_block_sum(swept, downsample, frame_h, frame_w),
        pixels=_block_sum(np.ones((1, height, width)), downsample, frame_h, frame_w)[0],
        eyelid=_block_sum(scene.clutter[None].astype(float), downsample, frame_h, frame_w)[0],
        window_s=window_us * 1e-6)


def expected_density(window_us: int, duration_us: int, width: int = 80, height: int = 60, seed: int = 0, *,
                     noise_rate_hz: float = NOISE_RATE_HZ, events_per_edge: float = EVENTS_PER_EDGE,
                     clutter_rate_hz: float = 0.0, model: EyeModel | None = None,
                     downsample: int = 1) -> float:
    """The mean active fraction of `histogram` frames of `synthetic_eye` with the same arguments.

    Averaged over the full windows [i * window_us, (i + 1) * window_us) from t = 0, exactly (in
    expectation over the events, for this seed's motion) when window_us is a multiple of the model's
    step_us, else to within one step's events per window.
    """
    density = _density_model(window_us, duration_us, width, height, seed, model, downsample)
    return density.density(events_per_edge, noise_rate_hz, clutter_rate_hz)


def _bisect(function: Callable[[float], float], target: float, low: float, high: float) -> float:
    """The x in [low, high] where the increasing `function` reaches `target`."""
    for _ in range(60):
        middle = (low + high) / 2
        if function(middle) < target:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def density_parameters(target: float, window_us: int, duration_us: int, width: int = 80, height: int = 60,
                       seed: int = 0, *, events_per_edge: float = EVENTS_PER_EDGE,
                       clutter_rate_hz: float = 0.0, model: EyeModel | None = None,
                       downsample: int = 1) -> dict[str, float]:
    """`noise_rate_hz` and `events_per_edge` for `synthetic_eye` whose mean density is `target`.

    Noise is added when the pupil's edges alone are too sparse (noise is what fills a frame
    uniformly); when they are too dense even without noise, `events_per_edge` is lowered instead.
    """
    if not 0 < target < 1:
        raise ValueError(f"target density must be in (0, 1), got {target!r}")
    density = _density_model(window_us, duration_us, width, height, seed, model, downsample)
    floor = density.density(0.0, 0.0, clutter_rate_hz)
    if target <= floor:
        raise ValueError(f"eyelid clutter alone gives density {floor:.4f} >= target {target}; "
                         "lower clutter_rate_hz")
    if density.density(events_per_edge, 0.0, clutter_rate_hz) <= target:
        high = 1.0
        while density.density(events_per_edge, high, clutter_rate_hz) < target:
            high *= 2
        noise = _bisect(lambda rate: density.density(events_per_edge, rate, clutter_rate_hz), target, 0.0, high)
        return {"noise_rate_hz": noise, "events_per_edge": float(events_per_edge)}
    gain = _bisect(lambda gain: density.density(gain, 0.0, clutter_rate_hz), target, 0.0, events_per_edge)
    return {"noise_rate_hz": 0.0, "events_per_edge": gain}


def events_for_density(target: float, window_us: int, duration_us: int, width: int = 80, height: int = 60,
                       seed: int = 0, *, events_per_edge: float = EVENTS_PER_EDGE,
                       clutter_rate_hz: float = 0.0, model: EyeModel | None = None,
                       downsample: int = 1) -> tuple[EventStream, Trajectory]:
    """`synthetic_eye` whose `histogram` frames over full windows from t = 0 average `target` active sites.

    Individual frames scatter around the mean (saccades are denser than fixations); see
    `density_parameters` for how the rates are chosen.
    """
    rates = density_parameters(target, window_us, duration_us, width, height, seed,
                               events_per_edge=events_per_edge, clutter_rate_hz=clutter_rate_hz,
                               model=model, downsample=downsample)
    return synthetic_eye(duration_us, width, height, seed, clutter_rate_hz=clutter_rate_hz, model=model, **rates)


def frame_at_density(density: float, height: int, width: int, seed: int = 0) -> np.ndarray:
    """(2, H, W) int32 event counts with exactly floor(density * H * W + 0.5) active sites.

    Active sites are uniform over the frame; each holds OFF events only, ON events only (45% each)
    or both (10%), with counts 1, 2, 3, ... of probability 0.6, 0.24, 0.096, ... (geometric), as
    short windows of a real sensor mostly record one to three events per pixel.
    """
    if not 0 <= density <= 1:
        raise ValueError(f"density must be in [0, 1], got {density!r}")
    sites = positive_int("height", height) * positive_int("width", width)
    active = int(np.floor(density * sites + 0.5))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(sites, size=active, replace=False)
    kind = rng.choice(3, size=active, p=[0.45, 0.45, 0.10])  # 0: OFF only, 1: ON only, 2: both
    counts = np.zeros((2, sites), dtype=np.int32)
    for channel, present in ((0, kind != 1), (1, kind != 0)):
        counts[channel, chosen[present]] = rng.geometric(0.6, size=int(present.sum()))
    return counts.reshape(2, height, width)
