"""EventStream: validation names the field and the event at fault; slicing is a half-open window."""

import numpy as np
import pytest

from hwcodesign.errors import HwcodesignError
from hwcodesign.events import EventDataError, EventStream


def make(x=(0, 1, 2, 3), y=(0, 1, 0, 1), t=(10, 20, 20, 30), p=(0, 1, 1, 0), width=4, height=2):
    return EventStream(np.array(x), np.array(y), np.array(t), np.array(p), width, height)


def test_stores_compact_read_only_arrays_without_touching_the_callers():
    x = np.array([0, 1, 2, 3], dtype=np.int64)
    stream = EventStream(x, np.zeros(4, np.uint16), np.array([1, 2, 3, 4]), np.array([True, False, True, True]), 4, 1)
    assert (stream.x.dtype, stream.y.dtype, stream.t.dtype, stream.p.dtype) == (np.int32, np.int32, np.int64, np.uint8)
    assert stream.p.tolist() == [1, 0, 1, 1]
    with pytest.raises(ValueError, match="read-only"):
        stream.t[0] = 0
    x[0] = 3  # the caller's own array stays writable
    assert x[0] == 3


def test_length_duration_and_repr():
    stream = make()
    assert len(stream) == 4
    assert stream.duration_us == 20
    assert repr(stream) == "EventStream(4 events, 4x2, t 10..30 us)"
    empty = make((), (), (), ())
    assert len(empty) == 0 and empty.duration_us == 0


@pytest.mark.parametrize("changes, field, message", [
    ({"y": (0, 1, 0)}, "y", r"^y: has 3 events but x has 4$"),
    ({"p": (0, 1, 1, 0, 1)}, "p", r"^p: has 5 events but x has 4$"),
    ({"x": (0, 1, 4, 3)}, "x", r"^x\[2\]: 4 is outside the sensor \(0 <= x < 4\)$"),
    ({"y": (0, -1, 0, 1)}, "y", r"^y\[1\]: -1 is outside the sensor \(0 <= y < 2\)$"),
    ({"t": (10, 20, 19, 30)}, "t",
     r"^t\[2\]: 19 us is before the previous event's 20 us; events must be sorted by time$"),
    ({"p": (0, 1, 2, 0)}, "p", r"^p\[2\]: 2 is not a polarity \(0 = OFF, 1 = ON"),
    ({"p": (0, 1, -1, 0)}, "p", r"^p\[2\]: -1 is not a polarity"),
    ({"x": (0.0, 1.0, 2.0, 3.0)}, "x", r"^x: must hold integers, got dtype float64$"),
    ({"t": ((10, 20), (20, 30))}, "t", r"^t: must be one-dimensional, got shape \(2, 2\)$"),
    ({"width": 0}, "width", r"^width: the sensor width must be a positive integer, got 0$"),
    ({"height": 2.0}, "height", r"^height: the sensor height must be a positive integer"),
])
def test_invalid_streams_name_the_field_and_event(changes, field, message):
    with pytest.raises(EventDataError, match=message) as caught:
        make(**changes)
    assert caught.value.field == field
    # Users catch it as a ValueError; the CLI prints any HwcodesignError as one line.
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, HwcodesignError)


def test_error_carries_the_index_for_loaders_to_translate():
    with pytest.raises(EventDataError) as caught:
        make(t=(10, 20, 19, 30))
    assert (caught.value.field, caught.value.index) == ("t", 2)


def test_slice_is_half_open_and_matches_a_mask():
    rng = np.random.default_rng(1)
    t = np.sort(rng.integers(0, 50, 300))  # many equal timestamps: windows start and end on events
    stream = EventStream(rng.integers(0, 8, 300), rng.integers(0, 4, 300), t, rng.integers(0, 2, 300), 8, 4)
    for t0, t1 in [(0, 50), (10, 20), (int(t[100]), int(t[200])), (20, 20), (-5, 3), (49, 100)]:
        part = stream.slice(t0, t1)
        inside = (t >= t0) & (t < t1)
        assert np.array_equal(part.t, t[inside]) and np.array_equal(part.x, stream.x[inside])
        assert np.array_equal(part.p, stream.p[inside]) and (part.width, part.height) == (8, 4)


def test_consecutive_slices_split_the_stream_exactly():
    stream = make()
    parts = [stream.slice(0, 20), stream.slice(20, 30), stream.slice(30, 31)]
    assert [p.t.tolist() for p in parts] == [[10], [20, 20], [30]]


def test_window_ending_before_it_starts_is_rejected():
    with pytest.raises(ValueError, match=r"ends before it starts: \[30, 20\)"):
        make().slice(30, 20)
