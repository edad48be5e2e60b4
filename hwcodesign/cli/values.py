"""Option values checked where argparse reads them (`type=`), so a bad value ends as argparse's own
one-line "argument --fps: ..." with exit 2, before any model is read or any work is done.

Each function takes the option's text and returns the parsed value or raises
`argparse.ArgumentTypeError` with a message that says what is accepted.
"""

from __future__ import annotations

import argparse
import math

from hwcodesign.hardware.engine.config import MAX_BATCH
from hwcodesign.hardware.folding import RESOURCES
from hwcodesign.mapper.table import MIN_FPS
from hwcodesign.quant.formats import WeightFormat


def finite_number(text: str) -> float:
    """A finite float ('nan', 'inf' and words refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"'{text}' is not a finite number")
    return value


def frame_rate(text: str) -> float:
    """--fps: a frame rate of at least `MIN_FPS` (below that no design is slow enough to be bound)."""
    value = finite_number(text)
    if value < MIN_FPS:
        raise argparse.ArgumentTypeError(f"'{text}': the frame rate must be at least {MIN_FPS:g} frames per second")
    return value


def clock_mhz(text: str) -> float:
    """--clock: a positive frequency in MHz (the board says how fast it may be: `boards.with_clock`)."""
    value = finite_number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"'{text}': the clock must be a positive number of MHz")
    return value


def batch_size(text: str) -> int:
    """--max-batch: whole frames a run of the engine may hold, 1 to `MAX_BATCH`."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}': the batch must be a whole number of frames") from None
    if not 1 <= value <= MAX_BATCH:
        raise argparse.ArgumentTypeError(f"'{text}': an engine run holds 1 to {MAX_BATCH} frames")
    return value


def frame_count(text: str) -> int:
    """A positive whole number of frames (`evaluate --batch`)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}': give a whole number of frames") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}': at least one frame")
    return value


def fraction(text: str) -> float:
    """--density: a fraction in (0, 1]."""
    value = finite_number(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"'{text}': the fraction must be in (0, 1]")
    return value


def percentile(text: str) -> float:
    """--percentile: in [0, 100]."""
    value = finite_number(text)
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"'{text}': the percentile must be in [0, 100]")
    return value


def non_negative(text: str) -> float:
    """--max-sensitivity: a finite number >= 0."""
    value = finite_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"'{text}': must be >= 0")
    return value


def seconds(text: str) -> float:
    """--time-limit: a finite number of seconds > 0."""
    value = finite_number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"'{text}': the time limit must be a positive number of seconds")
    return value


def resource_cap(text: str) -> tuple[str, float]:
    """--cap RESOURCE=FRACTION -> (resource, fraction of the board) with the fraction in (0, 1]."""
    name, _, value = text.partition("=")
    if name not in RESOURCES or not value:
        raise argparse.ArgumentTypeError(f"'{text}': expected RESOURCE=FRACTION with RESOURCE one of "
                                         f"{', '.join(RESOURCES)}")
    try:
        return name, fraction(value)
    except argparse.ArgumentTypeError as error:
        raise argparse.ArgumentTypeError(f"'{text}': {error}") from None


def weight_formats(text: str) -> list[WeightFormat]:
    """--formats int8,int4,dybit4: at least one, each known and named once."""
    formats: list[WeightFormat] = []
    for part in (part.strip() for part in text.split(",")):
        if not part:
            continue
        try:
            fmt = WeightFormat.parse(part)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        if fmt in formats:
            raise argparse.ArgumentTypeError(f"'{text}' names {fmt} twice")
        formats.append(fmt)
    if not formats:
        raise argparse.ArgumentTypeError(f"'{text}' names no weight format (e.g. int8,int4,dybit4)")
    return formats


def output_path(text: str) -> str:
    """-o: a path; an empty one is refused rather than read as 'not given' (which would write to
    the default place the user did not name)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; name a folder or file, or leave -o out for the default")
    return text
