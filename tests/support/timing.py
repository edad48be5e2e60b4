"""Timing for the benchmarks: the best of several runs (the least disturbed by the rest of the machine)."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_of(function: Callable[[], object], repeats: int) -> float:
    """The shortest wall time, in seconds, of `repeats` calls of `function`."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best
