"""Dense tensors a CNN takes from an event stream: per-polarity count histograms and time
surfaces, and voxel grids (signed events in time bins, ESDA's eye-tracking input).

Every representation is float32 (C, H, W). Histograms and time surfaces have C = 2 polarity
channels, channel 0 = OFF (p = 0) and channel 1 = ON (p = 1); a voxel grid has one channel per
time bin. A site (one of H x W) is
*active* where any channel is nonzero; the active fraction is the density that sets a sparse
accelerator's work (`hwcodesign.sim.sparsity` uses the same definition).

Downsampling by an integer factor d maps pixel (x, y) to site (x // d, y // d): the sensor's
blocks of d x d pixels pool into one site, and the frame is ceil(width / d) x ceil(height / d)
unless `height`/`width` ask for another size, in which case the frame is cropped or zero-padded at
its bottom and right (events beyond it are dropped), to match a network's input size.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from hwcodesign.events.stream import EventStream, positive_int

CHANNELS = 2
OFF, ON = 0, 1


def frame_size(stream: EventStream, height: int | None = None, width: int | None = None,
               downsample: int = 1) -> tuple[int, int]:
    """(H, W) of the frames built from `stream`: the given sizes, else the downsampled sensor's."""
    downsample = positive_int("downsample", downsample)
    frame_h = -(-stream.height // downsample) if height is None else positive_int("height", height)
    frame_w = -(-stream.width // downsample) if width is None else positive_int("width", width)
    return frame_h, frame_w


def _site_indices(stream: EventStream, i0: int, i1: int, frame_h: int, frame_w: int,
                  downsample: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat (channel, row, column) index of events i0..i1 in a frame, and which events fall inside it."""
    xs = stream.x[i0:i1] // downsample
    ys = stream.y[i0:i1] // downsample
    inside = (xs < frame_w) & (ys < frame_h)
    flat = (stream.p[i0:i1].astype(np.int64) * frame_h + ys) * frame_w + xs
    return flat[inside], inside


def histogram(stream: EventStream, t0: int, t1: int, height: int | None = None, width: int | None = None,
              downsample: int = 1, clip: float | None = None) -> np.ndarray:
    """Event counts per polarity and site over the half-open window [t0, t1) us.

    `clip` caps each count: a few hot pixels or a fast edge would otherwise dominate the
    quantized input's range.
    """
    frame_h, frame_w = frame_size(stream, height, width, downsample)
    if clip is not None and not clip > 0:
        raise ValueError(f"clip must be positive, got {clip!r}")
    i0, i1 = stream.index_range(t0, t1)
    flat, _ = _site_indices(stream, i0, i1, frame_h, frame_w, downsample)
    counts = np.bincount(flat, minlength=CHANNELS * frame_h * frame_w).astype(np.float32)
    if clip is not None:
        np.minimum(counts, clip, out=counts)
    return counts.reshape(CHANNELS, frame_h, frame_w)


def time_surface(stream: EventStream, t: int, tau_us: float, height: int | None = None,
                 width: int | None = None, downsample: int = 1) -> np.ndarray:
    """Per polarity and site, exp(-(t - t_last) / tau) of the latest event at or before `t`; 0 where none.

    Recent activity is near 1 and fades with time constant `tau_us`, so the frame encodes motion
    direction (the decay gradient) that a count histogram loses.
    """
    frame_h, frame_w = frame_size(stream, height, width, downsample)
    if not tau_us > 0:
        raise ValueError(f"tau_us must be positive, got {tau_us!r}")
    i1 = int(np.searchsorted(stream.t, t, side="right"))
    flat, inside = _site_indices(stream, 0, i1, frame_h, frame_w, downsample)
    never = np.iinfo(np.int64).min
    latest = np.full(CHANNELS * frame_h * frame_w, never, dtype=np.int64)
    np.maximum.at(latest, flat, stream.t[:i1][inside])
    seen = latest != never
    surface = np.zeros(latest.shape, dtype=np.float64)
    surface[seen] = np.exp(-(t - latest[seen]) / float(tau_us))
    return surface.astype(np.float32).reshape(CHANNELS, frame_h, frame_w)


def voxel_grid(stream: EventStream, t0: int, t1: int, bins: int, height: int | None = None,
               width: int | None = None, downsample: int = 1) -> np.ndarray:
    """(bins, H, W): the events of [t0, t1) as signed polarities (OFF -1, ON +1) spread over
    `bins` time bins by linear interpolation: the event volume of Zhu et al. (2019) as tonic's
    `to_voxel_grid_numpy` builds it, which ESDA's eye tracker takes with 3 bins.

    As there, times are normalised over the window's own events, ts = bins (t - t_first) /
    (t_last - t_first), and an event adds (1 - f) to bin floor(ts) and f to the next, f the
    fraction, a bin past the last dropped (so the last event adds nothing). A window whose events
    share one time puts them all in bin 0. Opposite events at a site can cancel: such a site is
    inactive.
    """
    bins = positive_int("bins", bins)
    frame_h, frame_w = frame_size(stream, height, width, downsample)
    i0, i1 = stream.index_range(t0, t1)
    xs, ys = stream.x[i0:i1] // downsample, stream.y[i0:i1] // downsample
    inside = (xs < frame_w) & (ys < frame_h)
    times = stream.t[i0:i1].astype(np.float64)
    span = times[-1] - times[0] if len(times) else 0.0
    position = bins * (times - times[0]) / span if span > 0 else np.zeros_like(times)
    left = position.astype(np.int64)
    fraction = position - left
    polarity = np.where(stream.p[i0:i1] == ON, 1.0, -1.0)
    grid = np.zeros(bins * frame_h * frame_w, np.float64)
    site = ys * frame_w + xs
    for bin_index, weight in ((left, 1.0 - fraction), (left + 1, fraction)):
        valid = inside & (bin_index < bins)
        np.add.at(grid, bin_index[valid] * frame_h * frame_w + site[valid], (polarity * weight)[valid])
    return grid.astype(np.float32).reshape(bins, frame_h, frame_w)


def windows(stream: EventStream, window_us: int, step_us: int | None = None) -> Iterator[tuple[int, int]]:
    """Half-open windows (t0, t0 + window_us), t0 from the first event's time every `step_us`.

    Windows start at every step up to the last event's time; none for an empty stream. With the
    default step (`window_us`) they tile the stream, each event in exactly one window; a smaller
    step overlaps them (a sliding window); a larger one samples the stream, skipping the events
    between windows.
    """
    window_us = positive_int("window_us", window_us)
    step_us = window_us if step_us is None else positive_int("step_us", step_us)
    if len(stream) == 0:
        return iter(())
    first, last = int(stream.t[0]), int(stream.t[-1])
    return ((t0, t0 + window_us) for t0 in range(first, last + 1, step_us))


def active_fraction(frame: np.ndarray) -> float:
    """Fraction of the H x W sites of a (C, H, W) frame (or an (H, W) map) where any channel is nonzero."""
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = frame[np.newaxis]
    if frame.ndim != 3 or frame.shape[1] * frame.shape[2] == 0:
        raise ValueError(f"expected a non-empty (C, H, W) frame, got shape {frame.shape}")
    return float(np.any(frame != 0, axis=0).mean())
