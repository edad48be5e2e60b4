"""A recording of an event camera: the one container the loaders, frame builders and generators share.

An event camera reports, per pixel and asynchronously, each time the log brightness changes by a
contrast threshold: an event is (x, y, t, p) with p = 1 (ON, brighter) or 0 (OFF, darker). The
stream is validated once, when built, so everything downstream (binary-search slicing, bincount
histograms) can rely on coordinates inside the sensor and timestamps in order without checking.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwcodesign.errors import HwcodesignError


class EventDataError(HwcodesignError, ValueError):
    """Event arrays that do not form a valid stream; names the field and, where one is at fault, the event.

    `field` and `index` let a loader translate the position into its own terms (a text file's
    line number) instead of the array index, which the user never sees.
    """

    def __init__(self, field: str, problem: str, index: int | None = None) -> None:
        self.field = field
        self.problem = problem
        self.index = index
        where = field if index is None else f"{field}[{index}]"
        super().__init__(f"{where}: {problem}")


def _read_only(values: np.ndarray) -> np.ndarray:
    """A read-only view: a frozen stream must not change under a caller holding the arrays.

    A view, not a copy, so wrapping a large recording costs no memory; the caller's own array
    stays writable.
    """
    view = values.view()
    view.flags.writeable = False
    return view


def _integer_array(name: str, values: object, allow_bool: bool = False) -> np.ndarray:
    array = np.asarray(values)
    kinds = "iub" if allow_bool else "iu"
    # An empty array is integer enough: np.array([]) is float64, the easiest empty recording to write.
    if array.dtype.kind not in kinds and not (array.size == 0 and array.dtype.kind == "f"):
        raise EventDataError(name, f"must hold integers, got dtype {array.dtype}")
    if array.ndim != 1:
        raise EventDataError(name, f"must be one-dimensional, got shape {array.shape}")
    return array


def positive_int(name: str, value: object) -> int:
    """`value` as an int, if it is a positive integer (not a bool, not a float that happens to be whole)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _sensor_size(name: str, value: object) -> int:
    try:
        return positive_int(f"the sensor {name}", value)
    except ValueError as error:
        raise EventDataError(name, str(error)) from None


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


@dataclass(frozen=True, eq=False, repr=False)
class EventStream:
    """Events of one sensor, sorted by time.

    `x`, `y` are pixel coordinates (0 <= x < width, 0 <= y < height), `t` the timestamps in
    integer microseconds (non-decreasing: sensors emit in order, and slicing relies on it), `p` the
    polarity (0 = OFF, 1 = ON). The arrays are stored as read-only int32, int32, int64 and uint8.
    Equality is identity: comparing recordings element by element is the caller's explicit choice.
    """

    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    p: np.ndarray
    width: int
    height: int

    def __post_init__(self) -> None:
        width = _sensor_size("width", self.width)
        height = _sensor_size("height", self.height)
        x = _integer_array("x", self.x)
        y = _integer_array("y", self.y)
        t = _integer_array("t", self.t)
        p = _integer_array("p", self.p, allow_bool=True)
        if t.dtype == np.uint64 and len(t) and t.max() > np.iinfo(np.int64).max:
            i = int(np.argmax(t))
            raise EventDataError("t", f"{t[i]} us does not fit a signed 64-bit timestamp", index=i)
        for name, array in (("y", y), ("t", t), ("p", p)):
            if len(array) != len(x):
                raise EventDataError(name, f"has {len(array)} events but x has {len(x)}")
        for name, array, size in (("x", x, width), ("y", y, height)):
            outside = (array < 0) | (array >= size)
            if outside.any():
                i = _first(outside)
                raise EventDataError(
                    name, f"{array[i]} is outside the sensor (0 <= {name} < {size})", index=i)
        if len(t) > 1:
            backwards = t[1:] < t[:-1]
            if backwards.any():
                i = _first(backwards) + 1
                raise EventDataError(
                    "t", f"{t[i]} us is before the previous event's {t[i - 1]} us; "
                    "events must be sorted by time", index=i)
        not_polarity = (p != 0) & (p != 1)
        if not_polarity.any():
            i = _first(not_polarity)
            raise EventDataError(
                "p", f"{p[i]} is not a polarity (0 = OFF, 1 = ON; convert -1/+1 with p > 0)", index=i)
        object.__setattr__(self, "width", width)
        object.__setattr__(self, "height", height)
        object.__setattr__(self, "x", _read_only(x.astype(np.int32, copy=False)))
        object.__setattr__(self, "y", _read_only(y.astype(np.int32, copy=False)))
        object.__setattr__(self, "t", _read_only(t.astype(np.int64, copy=False)))
        object.__setattr__(self, "p", _read_only(p.astype(np.uint8, copy=False)))

    def __len__(self) -> int:
        return len(self.t)

    def __repr__(self) -> str:
        span = f", t {self.t[0]}..{self.t[-1]} us" if len(self) else ""
        return f"EventStream({len(self)} events, {self.width}x{self.height}{span})"

    @property
    def duration_us(self) -> int:
        """Time from the first to the last event (0 for fewer than two events)."""
        return int(self.t[-1] - self.t[0]) if len(self) else 0

    def index_range(self, t0: int, t1: int) -> tuple[int, int]:
        """Indices [i0, i1) of the events with t0 <= t < t1, by binary search on the sorted times."""
        if t1 < t0:
            raise ValueError(f"time window ends before it starts: [{t0}, {t1}) us")
        return int(np.searchsorted(self.t, t0, side="left")), int(np.searchsorted(self.t, t1, side="left"))

    def slice(self, t0: int, t1: int) -> EventStream:
        """The events in the half-open window [t0, t1) us, as views of this stream's arrays.

        Half-open so that consecutive windows [a, b), [b, c) split a stream with no event counted
        twice or lost.
        """
        i0, i1 = self.index_range(t0, t1)
        return EventStream(self.x[i0:i1], self.y[i0:i1], self.t[i0:i1], self.p[i0:i1],
                           self.width, self.height)
