"""Frames from events, each checked against a plain loop over the events."""

import math

import numpy as np
import pytest

from hwcodesign.events import EventStream, active_fraction, histogram, time_surface, voxel_grid, windows


def random_stream(n=2000, width=37, height=23, seed=0, t_max=1000):
    """Odd sensor sizes (partial blocks when downsampling) and few distinct times (ties at window edges)."""
    rng = np.random.default_rng(seed)
    return EventStream(rng.integers(0, width, n), rng.integers(0, height, n),
                       np.sort(rng.integers(0, t_max, n)), rng.integers(0, 2, n), width, height)


def loop_histogram(stream, t0, t1, frame_h, frame_w, downsample):
    counts = np.zeros((2, frame_h, frame_w))
    for x, y, t, p in zip(stream.x.tolist(), stream.y.tolist(), stream.t.tolist(), stream.p.tolist()):
        if t0 <= t < t1 and y // downsample < frame_h and x // downsample < frame_w:
            counts[p, y // downsample, x // downsample] += 1
    return counts


@pytest.mark.parametrize("downsample", [1, 2, 3])
def test_histogram_counts_equal_a_loop(downsample):
    stream = random_stream(seed=downsample)
    frame_h, frame_w = math.ceil(23 / downsample), math.ceil(37 / downsample)
    for t0, t1 in [(0, 1000), (int(stream.t[500]), int(stream.t[1500])), (250, 251), (-10, 5)]:
        frame = histogram(stream, t0, t1, downsample=downsample)
        assert frame.dtype == np.float32 and frame.shape == (2, frame_h, frame_w)
        assert np.array_equal(frame, loop_histogram(stream, t0, t1, frame_h, frame_w, downsample))


def test_histogram_window_is_half_open():
    stream = EventStream(np.array([0, 1, 2]), np.array([0, 0, 0]), np.array([10, 20, 30]), np.array([1, 0, 1]), 3, 1)
    frame = histogram(stream, 10, 30)
    assert frame[:, 0].tolist() == [[0, 1, 0], [1, 0, 0]]  # t0 = 10 counted (ON at x=0), t1 = 30 not


def test_histogram_clip_and_explicit_size():
    stream = random_stream(n=4000, width=8, height=6)  # ~40 events per pixel and polarity
    clipped = histogram(stream, 0, 1000, clip=3)
    assert clipped.max() == 3
    assert np.array_equal(clipped, np.minimum(loop_histogram(stream, 0, 1000, 6, 8, 1), 3))
    # A network input larger than the downsampled sensor is zero-padded, a smaller one cropped.
    padded = histogram(stream, 0, 1000, height=5, width=5, downsample=2)
    assert np.array_equal(padded, loop_histogram(stream, 0, 1000, 5, 5, 2))
    assert padded[:, 3:].sum() == 0 and padded[:, :, 4:].sum() == 0
    cropped = histogram(stream, 0, 1000, height=2, width=3)
    assert np.array_equal(cropped, loop_histogram(stream, 0, 1000, 2, 3, 1))


@pytest.mark.parametrize("kwargs, message", [
    ({"downsample": 0}, "downsample must be a positive integer"),
    ({"downsample": 1.5}, "downsample must be a positive integer"),
    ({"clip": 0}, "clip must be positive"),
    ({"height": -1}, "height must be a positive integer"),
])
def test_histogram_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        histogram(random_stream(n=10), 0, 10, **kwargs)


def test_time_surface_equals_a_loop():
    stream = random_stream(n=600, seed=5)
    tau = 150.0
    for downsample in (1, 2):
        for t in (int(stream.t[300]), 999, int(stream.t[0]) - 1):
            frame_h, frame_w = math.ceil(23 / downsample), math.ceil(37 / downsample)
            latest = {}
            for x, y, te, p in zip(stream.x.tolist(), stream.y.tolist(), stream.t.tolist(), stream.p.tolist()):
                if te <= t:  # at or before t: an event at exactly t counts, with value 1
                    key = (p, y // downsample, x // downsample)
                    latest[key] = max(latest.get(key, te), te)
            expected = np.zeros((2, frame_h, frame_w), dtype=np.float32)
            for key, te in latest.items():
                expected[key] = math.exp(-(t - te) / tau)
            surface = time_surface(stream, t, tau, downsample=downsample)
            assert surface.dtype == np.float32 and surface.shape == expected.shape
            np.testing.assert_allclose(surface, expected, rtol=1e-6, atol=0)
            if t == stream.t[300]:
                assert surface.max() == 1.0
    with pytest.raises(ValueError, match="tau_us must be positive"):
        time_surface(stream, 10, 0)


def test_default_windows_tile_the_stream():
    stream = random_stream(seed=7, t_max=10_000)
    tiles = list(windows(stream, 700))
    assert tiles[0][0] == stream.t[0]
    assert all(t1 - t0 == 700 for t0, t1 in tiles)
    assert all(a[1] == b[0] for a, b in zip(tiles, tiles[1:]))  # contiguous, no gaps or overlaps
    assert tiles[-1][0] <= stream.t[-1] < tiles[-1][1]
    # Each event lies in exactly one window.
    per_window = [len(stream.slice(t0, t1)) for t0, t1 in tiles]
    assert sum(per_window) == len(stream)


def test_sliding_windows_cover_every_event():
    stream = random_stream(seed=8, t_max=10_000)
    slides = list(windows(stream, 1000, step_us=250))
    assert all(b[0] - a[0] == 250 for a, b in zip(slides, slides[1:]))
    covered = np.zeros(len(stream), dtype=int)
    for t0, t1 in slides:
        covered += (stream.t >= t0) & (stream.t < t1)
    assert covered.min() >= 1
    assert slides[-1][0] <= stream.t[-1] < slides[-1][0] + 250  # no window starts after the last event


def test_windows_of_an_empty_stream_and_bad_arguments():
    empty = EventStream(np.array([]), np.array([]), np.array([]), np.array([]), 4, 4)
    assert list(windows(empty, 100)) == []
    with pytest.raises(ValueError, match="window_us must be a positive integer"):
        windows(empty, 0)  # raised at the call, not when iteration starts
    with pytest.raises(ValueError, match="step_us must be a positive integer"):
        windows(empty, 10, step_us=-1)


def test_active_fraction_counts_sites_with_any_channel():
    frame = np.zeros((2, 4, 5))
    frame[0, 0, 0] = 1
    frame[1, 0, 0] = 2  # the same site in both channels counts once
    frame[1, 3, 4] = 0.5
    frame[0, 2, 1] = -1  # any nonzero value is activity
    assert active_fraction(frame) == 3 / 20
    assert active_fraction(frame[1]) == 2 / 20
    assert active_fraction(histogram(random_stream(n=1), 0, 1000)) == 1 / (23 * 37)
    with pytest.raises(ValueError, match=r"expected a non-empty \(C, H, W\) frame"):
        active_fraction(np.zeros(5))


def loop_voxel_grid(stream, t0, t1, bins, frame_h, frame_w, downsample):
    """tonic's to_voxel_grid_numpy, event by event: times over the window's own first and last."""
    events = [(x, y, t, p) for x, y, t, p in zip(stream.x.tolist(), stream.y.tolist(), stream.t.tolist(),
                                                 stream.p.tolist()) if t0 <= t < t1]
    grid = np.zeros((bins, frame_h, frame_w))
    if not events:
        return grid
    first, last = events[0][2], events[-1][2]
    for x, y, t, p in events:
        if y // downsample >= frame_h or x // downsample >= frame_w:
            continue
        ts = bins * (t - first) / (last - first) if last > first else 0.0
        left = int(ts)
        for b, weight in ((left, 1 - (ts - left)), (left + 1, ts - left)):
            if b < bins:
                grid[b, y // downsample, x // downsample] += (1 if p == 1 else -1) * weight
    return grid


@pytest.mark.parametrize("downsample", [1, 3])
def test_voxel_grid_equals_a_loop(downsample):
    stream = random_stream(seed=10 + downsample)
    frame_h, frame_w = math.ceil(23 / downsample), math.ceil(37 / downsample)
    for bins, (t0, t1) in [(3, (0, 1000)), (5, (int(stream.t[300]), int(stream.t[900]))), (3, (250, 251)), (2, (-10, -5))]:
        grid = voxel_grid(stream, t0, t1, bins, downsample=downsample)
        assert grid.dtype == np.float32 and grid.shape == (bins, frame_h, frame_w)
        assert np.allclose(grid, loop_voxel_grid(stream, t0, t1, bins, frame_h, frame_w, downsample), atol=1e-5)


def test_voxel_grid_spreads_an_event_over_two_bins():
    """Three events at 0, 50, 100 us over 2 bins: times 0, 1, 2 -> the ON event at x=0 all in bin
    0, the OFF event at x=1 all in bin 1, the last (at 2: bins 2 and 3) dropped."""
    stream = EventStream(np.array([0, 1, 2]), np.array([0, 0, 0]), np.array([0, 50, 100]), np.array([1, 0, 1]), 3, 1)
    grid = voxel_grid(stream, 0, 200, 2)
    assert grid[:, 0].tolist() == [[1, 0, 0], [0, -1, 0]]
    stream = EventStream(np.array([0]), np.array([0]), np.array([0, ]), np.array([0]), 1, 1)
    assert voxel_grid(stream, 0, 10, 3)[:, 0, 0].tolist() == [-1, 0, 0]  # one event: bin 0
