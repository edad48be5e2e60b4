"""Synthetic streams: deterministic, events where the brightness changes, density under control."""

import numpy as np
import pytest

from hwcodesign.events import (
    EyeModel,
    active_fraction,
    density_parameters,
    events_for_density,
    expected_density,
    frame_at_density,
    histogram,
    synthetic_blob,
    synthetic_eye,
)

SEMI_AXES = (6.0, 5.0)
WIDTH, HEIGHT = 80, 60


@pytest.fixture(scope="module")
def clean_eye():
    """One second of the eye without noise: every event comes from the pupil's boundary.

    Saccades twice as frequent as the default, so that this second holds several (this seed's four).
    """
    return synthetic_eye(1_000_000, WIDTH, HEIGHT, seed=1, noise_rate_hz=0.0,
                         model=EyeModel(pupil_semi_axes=SEMI_AXES, saccade_rate_hz=3.0))


def distance_to_ellipse(x, y, cx, cy, a, b, samples=720):
    """Distance of points to the ellipse boundary, against a finely sampled outline (independent of the generator)."""
    theta = np.linspace(0, 2 * np.pi, samples, endpoint=False)
    ox = cx[:, None] + a * np.cos(theta)[None, :]
    oy = cy[:, None] + b * np.sin(theta)[None, :]
    return np.hypot(x[:, None] - ox, y[:, None] - oy).min(axis=1)


def velocity(trajectory, t, dt=500):
    x0, y0 = trajectory.at(t - dt)
    x1, y1 = trajectory.at(t + dt)
    return (x1 - x0) / (2 * dt) * 1e6, (y1 - y0) / (2 * dt) * 1e6


def same_events(a, b):
    return all(np.array_equal(getattr(a, name), getattr(b, name)) for name in ("x", "y", "t", "p"))


def test_eye_is_deterministic_for_a_seed():
    a, ta = synthetic_eye(200_000, seed=11)
    b, tb = synthetic_eye(200_000, seed=11)
    c, tc = synthetic_eye(200_000, seed=12)
    assert same_events(a, b) and np.array_equal(ta.cx, tb.cx) and np.array_equal(ta.cy, tb.cy)
    assert not np.array_equal(ta.cx, tc.cx)


def test_eye_stream_shape_time_range_and_polarities(clean_eye):
    stream, trajectory = clean_eye
    # Coordinates inside the sensor are enforced by EventStream; the generator must ask for the right one.
    assert (stream.width, stream.height) == (WIDTH, HEIGHT)
    assert 0 <= stream.t[0] and stream.t[-1] < 1_000_000
    on = stream.p.mean()
    assert 0.35 < on < 0.65  # the pupil darkens as many pixels as it brightens
    assert trajectory.t[0] == 0 and trajectory.t[-1] == 1_000_000


def test_eye_events_lie_on_the_pupil_boundary(clean_eye):
    stream, trajectory = clean_eye
    cx, cy = trajectory.at(stream.t)
    distance = distance_to_ellipse(stream.x, stream.y, cx, cy, *SEMI_AXES)
    assert np.median(distance) < 1.0
    assert np.quantile(distance, 0.95) < 2.5
    # With the default background noise, most events still come from the boundary.
    noisy, noisy_trajectory = synthetic_eye(1_000_000, WIDTH, HEIGHT, seed=1,
                                            model=EyeModel(pupil_semi_axes=SEMI_AXES, saccade_rate_hz=3.0))
    assert len(noisy) > len(stream)
    ncx, ncy = noisy_trajectory.at(noisy.t)
    assert np.median(distance_to_ellipse(noisy.x, noisy.y, ncx, ncy, *SEMI_AXES)) < 2.0


def test_eye_fires_off_at_the_leading_edge_and_on_at_the_trailing_edge(clean_eye):
    stream, trajectory = clean_eye
    cx, cy = trajectory.at(stream.t)
    vx, vy = velocity(trajectory, stream.t)
    moving = np.hypot(vx, vy) > 20  # px/s: pursuit peaks and saccades
    ahead = ((stream.x - cx) * vx + (stream.y - cy) * vy)[moving] > 0
    polarity = stream.p[moving]
    assert moving.sum() > 500
    assert ahead[polarity == 0].mean() > 0.9  # OFF: the dark pupil arrives
    assert ahead[polarity == 1].mean() < 0.1  # ON: it leaves


def test_eye_trajectory_stays_inside_and_saccades(clean_eye):
    _, trajectory = clean_eye
    for seed in range(6):
        _, tr = synthetic_eye(500_000, seed=seed, noise_rate_hz=0.0, model=EyeModel(step_us=1000))
        a, b = EyeModel().pupil_semi_axes
        assert tr.cx.min() - a >= 0 and tr.cx.max() + a <= WIDTH - 1
        assert tr.cy.min() - b >= 0 and tr.cy.max() + b <= HEIGHT - 1
    step = np.hypot(np.diff(trajectory.cx), np.diff(trajectory.cy)) / np.diff(trajectory.t) * 1e6
    assert step.max() > 150  # px/s: a saccade happened in the fixture's second
    assert np.median(step) < 40  # but most of the time the pupil moves slowly
    # Smooth: speed never jumps between consecutive steps (no teleporting).
    assert np.abs(np.diff(step)).max() < 0.05 * step.max()


def test_trajectory_interpolates():
    _, trajectory = synthetic_eye(10_000, seed=1)
    middle = (trajectory.t[3] + trajectory.t[4]) / 2
    assert trajectory.at(trajectory.t[3]) == (trajectory.cx[3], trajectory.cy[3])
    assert trajectory.at(middle) == pytest.approx(((trajectory.cx[3] + trajectory.cx[4]) / 2,
                                                  (trajectory.cy[3] + trajectory.cy[4]) / 2))
    xs, ys = trajectory.at(trajectory.t[:5])
    assert np.array_equal(xs, trajectory.cx[:5]) and np.array_equal(ys, trajectory.cy[:5])


def test_more_noise_gives_denser_frames_and_leaves_the_pupil_events_alone():
    densities = []
    streams = []
    for rate in (0.0, 1.0, 5.0, 20.0, 80.0):
        stream, _ = synthetic_eye(200_000, seed=2, noise_rate_hz=rate)
        streams.append(stream)
        densities.append(np.mean([active_fraction(histogram(stream, t0, t0 + 10_000))
                                  for t0 in range(0, 200_000, 10_000)]))
    assert all(a < b for a, b in zip(densities, densities[1:])), densities
    # Noise draws from its own random stream: the noise-free events are all in the noisy stream.
    clean, noisy = streams[0], streams[2]
    keys = {tuple(e) for e in np.column_stack([noisy.t, noisy.x, noisy.y, noisy.p]).tolist()}
    assert all(tuple(e) in keys for e in np.column_stack([clean.t, clean.x, clean.y, clean.p]).tolist())


def test_eyelid_clutter_adds_events_away_from_the_pupil():
    plain, _ = synthetic_eye(200_000, seed=3, noise_rate_hz=0.0)
    cluttered, trajectory = synthetic_eye(200_000, seed=3, noise_rate_hz=0.0, clutter_rate_hz=50.0)
    assert len(cluttered) > len(plain) + 500
    cx, cy = trajectory.at(cluttered.t)
    far = distance_to_ellipse(cluttered.x, cluttered.y, cx, cy, *EyeModel().pupil_semi_axes) > 4
    assert far.sum() > 500
    # Clutter lies on two thin arcs: few distinct pixels, two per column or so.
    assert len(set(zip(cluttered.x[far].tolist(), cluttered.y[far].tolist()))) < 4 * WIDTH


@pytest.mark.parametrize("target", [0.01, 0.05, 0.20, 0.50])
def test_events_for_density_reaches_the_target(target):
    window, duration = 10_000, 300_000
    stream, _ = events_for_density(target, window, duration, seed=5)
    measured = np.mean([active_fraction(histogram(stream, t0, t0 + window))
                        for t0 in range(0, duration - window + 1, window)])
    assert measured == pytest.approx(target, rel=0.1)


def test_expected_density_predicts_the_measurement_and_downsampling():
    window, duration = 5_000, 300_000
    stream, _ = synthetic_eye(duration, seed=6, noise_rate_hz=3.0)
    for downsample in (1, 2):
        measured = np.mean([active_fraction(histogram(stream, t0, t0 + window, downsample=downsample))
                            for t0 in range(0, duration, window)])
        predicted = expected_density(window, duration, seed=6, noise_rate_hz=3.0, downsample=downsample)
        assert measured == pytest.approx(predicted, rel=0.1)
    # Pooling 2 x 2 pixels into a site makes frames denser.
    assert expected_density(window, duration, seed=6, downsample=2) > expected_density(window, duration, seed=6)


def test_density_below_the_pupils_own_lowers_events_per_edge():
    # Fast, dense edges: even without noise the frames are denser than the target.
    loud = {"events_per_edge": 40.0}
    own = expected_density(10_000, 300_000, seed=7, noise_rate_hz=0.0, **loud)
    target = own / 2
    rates = density_parameters(target, 10_000, 300_000, seed=7, **loud)
    assert rates["noise_rate_hz"] == 0.0 and rates["events_per_edge"] < 40.0
    assert expected_density(10_000, 300_000, seed=7, **rates) == pytest.approx(target, rel=1e-6)
    with pytest.raises(ValueError, match=r"target density must be in \(0, 1\)"):
        density_parameters(1.0, 10_000, 300_000)
    with pytest.raises(ValueError, match="holds no full 10000 us window"):
        density_parameters(0.1, 10_000, 5_000)


@pytest.mark.parametrize("density, sites", [(0.01, 48), (0.05, 240), (0.20, 960), (0.50, 2400)])
def test_frame_at_density_is_exact(density, sites):
    frame = frame_at_density(density, 60, 80, seed=1)
    assert frame.shape == (2, 60, 80) and frame.dtype.kind == "i"
    assert np.count_nonzero(frame.any(axis=0)) == sites
    assert active_fraction(frame) == sites / 4800
    counts = frame[frame > 0]
    assert counts.min() >= 1 and np.mean(counts <= 3) > 0.85  # mostly 1 to 3 events per pixel
    assert frame[0].any() and frame[1].any()
    assert np.array_equal(frame, frame_at_density(density, 60, 80, seed=1))
    assert not np.array_equal(frame, frame_at_density(density, 60, 80, seed=2))


def test_frame_at_density_rounds_to_whole_sites():
    assert np.count_nonzero(frame_at_density(0.0, 7, 9).any(axis=0)) == 0
    assert np.count_nonzero(frame_at_density(1.0, 7, 9).any(axis=0)) == 63
    assert np.count_nonzero(frame_at_density(0.5, 7, 9).any(axis=0)) == 32  # 31.5 rounds half up
    with pytest.raises(ValueError, match=r"density must be in \[0, 1\]"):
        frame_at_density(1.5, 7, 9)


def test_blob_events_surround_it_with_on_leading():
    stream, trajectory = synthetic_blob(200_000, seed=3, sigma_px=2.0)
    again, _ = synthetic_blob(200_000, seed=3, sigma_px=2.0)
    assert same_events(stream, again) and len(stream) > 500
    cx, cy = trajectory.at(stream.t)
    distance = np.hypot(stream.x - cx, stream.y - cy)
    # The brightness changes most on a ring around one sigma from the centre, not at the centre.
    assert np.median(distance) < 2 * 2.0
    assert np.mean(distance < 0.5 * 2.0) < 0.1
    vx, vy = velocity(trajectory, stream.t)
    ahead = (stream.x - cx) * vx + (stream.y - cy) * vy > 0
    assert ahead[stream.p == 1].mean() > 0.85 and ahead[stream.p == 0].mean() < 0.15
