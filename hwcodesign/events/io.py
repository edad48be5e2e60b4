"""Reading and writing event recordings, in the three layouts event-camera tools commonly export.

The suffix picks the format (case-insensitive):

`.npz`
    A numpy archive with 1-D integer arrays `x`, `y`, `t`, `p` (one entry per event) and integer
    scalars `width`, `height` (the sensor size). Lossless and compact; what `save_events` writes
    when the sensor size matters.
`.npy`
    One 1-D numpy structured array with integer fields `x`, `y`, `t`, `p` (other fields are
    ignored, so richer exports load too). It has no place for the sensor size: pass `width` and
    `height`, or each is taken as the largest coordinate + 1. Written as fields x int32, y int32,
    t int64, p uint8.
`.txt`, `.csv`
    Text, one event per line as `t x y p` (t in integer microseconds, p 0 = OFF or 1 = ON),
    fields separated by whitespace and/or commas. Blank lines are skipped; lines starting with
    `#` are comments, except that a `#` line holding exactly two integers before the first event
    is the sensor-size header `# width height`. A first non-comment line `t x y p` (column names,
    as many CSV exports begin) is skipped. Written with the header, a column comment and spaces
    (`.txt`) or commas (`.csv`).

In every format timestamps must be non-decreasing, coordinates inside the sensor and polarities
0/1 (see `EventStream`). The sensor size comes from the file when it stores one, else from the
caller's `width`/`height`, else from the largest coordinate + 1; a file and a caller that
disagree are an error, since one of them describes a different sensor.

Every error names the file and where in it the problem is: the line and field for text, the
field (and event index) for numpy files.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from hwcodesign.errors import HwcodesignError
from hwcodesign.events.stream import EventDataError, EventStream
from hwcodesign.outputs import write_file_atomically

FIELDS = ("x", "y", "t", "p")
TEXT_COLUMNS = ("t", "x", "y", "p")
SUFFIXES = (".npz", ".npy", ".txt", ".csv")

_SEPARATOR = re.compile(r"[,\s]+")
_INTEGER = re.compile(r"[+-]?\d+")


class EventFileError(HwcodesignError, ValueError):
    """An event file that cannot be read as a recording; the message names the file and the place."""


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise EventFileError(f"{path}: unknown event file suffix {path.suffix!r}; "
                             f"supported: {', '.join(SUFFIXES)}")
    return suffix


def load_events(path: str | os.PathLike[str], width: int | None = None,
                height: int | None = None) -> EventStream:
    """Read a recording, the format chosen by the suffix (see the module docstring).

    `width`/`height` give the sensor size for files that do not store it, and are checked against
    files that do.
    """
    path = Path(path)
    suffix = _suffix(path)
    if not path.is_file():
        raise EventFileError(f"{path}: no such file")
    if suffix == ".npz":
        return _load_npz(path, width, height)
    if suffix == ".npy":
        return _load_npy(path, width, height)
    return _load_text(path, width, height)


def save_events(stream: EventStream, path: str | os.PathLike[str]) -> None:
    """Write a recording, the format chosen by the suffix (see the module docstring).

    The file is written beside its destination and renamed into place (`outputs.write_file_atomically`,
    as every single-file output), so an interrupted save never leaves a truncated file that would
    load as a shorter recording. `.npy` does not keep the sensor size.
    """
    path = Path(path)
    suffix = _suffix(path)

    def write(handle: BinaryIO) -> None:
        if suffix == ".npz":
            np.savez(handle, x=stream.x, y=stream.y, t=stream.t, p=stream.p,
                     width=np.int64(stream.width), height=np.int64(stream.height))
        elif suffix == ".npy":
            records = np.empty(len(stream), dtype=[("x", "<i4"), ("y", "<i4"), ("t", "<i8"), ("p", "u1")])
            for name in FIELDS:
                records[name] = getattr(stream, name)
            np.save(handle, records, allow_pickle=False)
        else:
            _save_text(stream, handle, "," if suffix == ".csv" else " ")

    write_file_atomically(path, write)


def _save_text(stream: EventStream, handle: BinaryIO, separator: str) -> None:
    text = io.TextIOWrapper(handle, encoding="utf-8", newline="\n")
    text.write(f"# {stream.width} {stream.height}\n")
    text.write(f"# {separator.join(TEXT_COLUMNS)}  (t in microseconds; p: 1 = ON, 0 = OFF)\n")
    columns = np.column_stack([stream.t, stream.x.astype(np.int64), stream.y.astype(np.int64),
                               stream.p.astype(np.int64)])
    np.savetxt(text, columns, fmt="%d", delimiter=separator)
    text.flush()
    text.detach()  # the handle stays open for write_file_atomically to close


def _sensor_size(path: Path, name: str, stored: int | None, given: int | None,
                 coordinates: np.ndarray) -> int:
    """The file's size, else the caller's, else the largest coordinate + 1 (see the module docstring)."""
    if stored is not None and given is not None and stored != given:
        raise EventFileError(f"{path}: the file gives sensor {name} {stored}, the caller {given}")
    if stored is not None:
        return stored
    if given is not None:
        return given
    if len(coordinates) == 0:
        raise EventFileError(f"{path}: no events and no sensor {name}; pass {name}=")
    return int(coordinates.max()) + 1


def _stream(path: Path, arrays: dict[str, np.ndarray], width: int, height: int) -> EventStream:
    """Build the stream, with a validation error naming the file and the field."""
    try:
        return EventStream(arrays["x"], arrays["y"], arrays["t"], arrays["p"], width, height)
    except EventDataError as error:
        raise EventFileError(f"{path}, field {error}") from None


def _open_numpy(path: Path, kind: str) -> object:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise EventFileError(f"{path}: not a readable {kind} file ({error})") from None


def _stored_scalar(path: Path, data: np.lib.npyio.NpzFile, name: str) -> int | None:
    if name not in data.files:
        return None
    value = data[name]
    if value.shape != () or value.dtype.kind not in "iu":
        raise EventFileError(f"{path}, field {name}: must be an integer scalar, "
                             f"got dtype {value.dtype} shape {value.shape}")
    return int(value)


def _load_npz(path: Path, width: int | None, height: int | None) -> EventStream:
    data = _open_numpy(path, ".npz")
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise EventFileError(f"{path}: holds a single array, not an .npz archive of x, y, t, p")
    with data:
        missing = [name for name in FIELDS if name not in data.files]
        if missing:
            raise EventFileError(f"{path}: missing array(s) {', '.join(missing)} "
                                 f"(has {', '.join(data.files) or 'none'})")
        arrays = {name: data[name] for name in FIELDS}
        stored_width = _stored_scalar(path, data, "width")
        stored_height = _stored_scalar(path, data, "height")
    for name in FIELDS:
        if arrays[name].ndim != 1:
            raise EventFileError(f"{path}, field {name}: must be one-dimensional, got shape {arrays[name].shape}")
    return _stream(path, arrays,
                   _sensor_size(path, "width", stored_width, width, arrays["x"]),
                   _sensor_size(path, "height", stored_height, height, arrays["y"]))


def _load_npy(path: Path, width: int | None, height: int | None) -> EventStream:
    records = _open_numpy(path, ".npy")
    if isinstance(records, np.lib.npyio.NpzFile):
        records.close()
        raise EventFileError(f"{path}: is an .npz archive; name it .npz to load it as one")
    if not isinstance(records, np.ndarray) or records.dtype.names is None:
        raise EventFileError(f"{path}: not a structured array with fields x, y, t, p")
    missing = [name for name in FIELDS if name not in records.dtype.names]
    if missing:
        raise EventFileError(f"{path}: missing field(s) {', '.join(missing)} "
                             f"(has {', '.join(records.dtype.names)})")
    if records.ndim != 1:
        raise EventFileError(f"{path}: must be one-dimensional, got shape {records.shape}")
    arrays = {name: np.ascontiguousarray(records[name]) for name in FIELDS}
    return _stream(path, arrays,
                   _sensor_size(path, "width", None, width, arrays["x"]),
                   _sensor_size(path, "height", None, height, arrays["y"]))


def _load_text(path: Path, width: int | None, height: int | None) -> EventStream:
    header: tuple[int, int] | None = None
    header_line = 0
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise EventFileError(f"{path}: not a UTF-8 text file ({error.reason} at byte {error.start})") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            fields = _SEPARATOR.split(line[1:].strip())
            if not rows and len(fields) == 2 and all(_INTEGER.fullmatch(f) for f in fields):
                if header is not None:
                    raise EventFileError(f"{path}, line {number}: a second sensor-size header "
                                         f"(the first is on line {header_line})")
                header = (int(fields[0]), int(fields[1]))
                header_line = number
            continue
        fields = _SEPARATOR.split(line)
        if not rows and tuple(f.lower() for f in fields) == TEXT_COLUMNS:
            continue
        if len(fields) != len(TEXT_COLUMNS):
            raise EventFileError(f"{path}, line {number}: expected 4 fields 't x y p', "
                                 f"got {len(fields)}: {line!r}")
        rows.append(fields)
        lines.append(number)
    columns = np.array(rows, dtype=str).reshape(-1, len(TEXT_COLUMNS))
    arrays = {name: _parse_column(path, name, columns[:, i], lines) for i, name in enumerate(TEXT_COLUMNS)}
    stored_width, stored_height = header if header is not None else (None, None)
    if header is not None and min(header) <= 0:
        raise EventFileError(f"{path}, line {header_line}: sensor size must be positive, got {header}")
    size_w = _sensor_size(path, "width", stored_width, width, arrays["x"])
    size_h = _sensor_size(path, "height", stored_height, height, arrays["y"])
    try:
        return EventStream(arrays["x"], arrays["y"], arrays["t"], arrays["p"], size_w, size_h)
    except EventDataError as error:
        if error.index is None:
            raise EventFileError(f"{path}: {error}") from None
        raise EventFileError(f"{path}, line {lines[error.index]}, field {error.field}: {error.problem}") from None


def _parse_column(path: Path, name: str, texts: np.ndarray, lines: list[int]) -> np.ndarray:
    """Integers of one column, converted at once; on failure, the first bad line is located."""
    try:
        return texts.astype(np.int64)
    except (ValueError, OverflowError):
        pass
    for text, number in zip(texts.tolist(), lines):
        if not _INTEGER.fullmatch(text) or not -(2**63) <= int(text) < 2**63:
            hint = " (timestamps are integer microseconds)" if name == "t" else ""
            raise EventFileError(f"{path}, line {number}, field {name}: {text!r} is not an integer{hint}") from None
    raise AssertionError(f"{path}: column {name} failed to convert but every value parses")  # pragma: no cover
