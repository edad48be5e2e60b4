"""Paths, errors and messages every part of writing an output shares."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from hwcodesign.errors import HwcodesignError

SYSTEM_TREES = (Path("/proc"), Path("/sys"), Path("/dev"))
SHOWN_OFFENDERS = 3
Warn = Callable[[str], None]
PathLike = str | os.PathLike[str]


class OutputError(HwcodesignError):
    """An output folder that cannot be written, or a manifest that cannot be read."""


def print_warning(message: str) -> None:
    print(f"hwcodesign: warning: {message}", file=sys.stderr)


def shown(paths: Sequence[str]) -> str:
    more = len(paths) - SHOWN_OFFENDERS
    return ", ".join(paths[:SHOWN_OFFENDERS]) + (f" and {more} more" if more > 0 else "")


def os_problem(error: OSError) -> str:
    return f"{error.strerror}: {error.filename}" if error.strerror and error.filename else str(error)


def system_tree(path: Path) -> Path | None:
    """The system tree (/proc, /sys, /dev) that `path` lies in, if any."""
    return next((tree for tree in SYSTEM_TREES if path == tree or tree in path.parents), None)


def resolved(path: Path) -> Path:
    """`path` made absolute with its links followed; a link loop (which `resolve` raises on)
    stays as written, absolute, so the rules still apply to it and reading it fails in one line."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        return Path(os.path.abspath(path))


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
