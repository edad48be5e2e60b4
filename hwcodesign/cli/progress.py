"""Progress on stderr: one line per pipeline step, with a live elapsed-time spinner on a terminal.

Long ILP solves run inside CBC (a subprocess) and report nothing until they finish; a ticking
clock tells the user the tool is alive. Off a terminal (CI logs, pipes) only the final lines
are written, so logs stay readable.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

SPINNER = "|/-\\"


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
