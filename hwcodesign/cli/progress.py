"""Progress on stderr: one line per pipeline step, with a live elapsed-time spinner on a terminal.

Long ILP solves run inside CBC (a subprocess) and report nothing until they finish; a ticking
clock tells the user the tool is alive. Off a terminal (CI logs, pipes) only the final lines
are written, so logs stay readable.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

SPINNER = "|/-\\"
BAR = 30  # characters of a progress bar


@contextmanager
def step(message: str, stream: TextIO | None = None, interval: float = 0.2) -> Iterator[None]:
    """Show `message` while the body runs; finish with its duration (or 'failed')."""
    out = stream or sys.stderr
    live = out.isatty()
    start = time.perf_counter()
    stop = threading.Event()

    def tick() -> None:
        frame = 0
        while not stop.wait(interval):
            out.write(f"\r{message} {SPINNER[frame % len(SPINNER)]} {time.perf_counter() - start:5.1f} s")
            out.flush()
            frame += 1

    ticker = threading.Thread(target=tick, daemon=True) if live else None
    if ticker:
        ticker.start()
    outcome = "failed"
    try:
        yield
        outcome = "done"
    finally:
        stop.set()
        if ticker:
            ticker.join()
        prefix = "\r" if live else ""
        out.write(f"{prefix}{message} {outcome} ({time.perf_counter() - start:.1f} s)\n")
        out.flush()


@contextmanager
def counted(message: str, total: int, stream: TextIO | None = None) -> Iterator[Callable[[int], None]]:
    """A progress bar for `total` items: the body calls the yielded function with how many more
    are done. On a terminal the line is redrawn (done/total, a bar, elapsed time); off one, only
    the final line is written."""
    out = stream or sys.stderr
    live = out.isatty()
    start = time.perf_counter()
    done = 0

    def line(outcome: str = "") -> str:
        filled = int(BAR * done / total) if total else BAR
        return (f"{message} [{'#' * filled}{'.' * (BAR - filled)}] {done}/{total} "
                f"{time.perf_counter() - start:5.1f} s{outcome}")

    def advance(count: int) -> None:
        nonlocal done
        done = min(total, done + count)
        if live:
            out.write("\r" + line())
            out.flush()

    outcome = " failed"
    try:
        yield advance
        outcome = " done"
    finally:
        out.write(("\r" if live else "") + line(outcome) + "\n")
        out.flush()
