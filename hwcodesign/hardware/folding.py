"""A stage's folding (how many lanes it runs in parallel) and what it costs: the two values every
family's cost model produces and the mapper chooses among."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class Folding:
    """Parallelism of one stage: PE output lanes, SIMD input lanes, and how MACs are built."""

    pe: int = 1
    simd: int = 1
    mac: str = "dsp"  # "dsp" | "lut"
    output: str = "multiply"  # the output stage: "multiply" (DSP multiplier and shift) | "thresholds" (comparators)

    def __str__(self) -> str:
        return f"PE{self.pe} SIMD{self.simd}" + (" lut" if self.mac == "lut" else "") + \
            (" thresholds" if self.output == "thresholds" else "")


@dataclass(frozen=True)
class LayerCost:
    """Cycles per frame (the stage's initiation interval), fill latency and resources."""

    cycles: int
    depth: int
    dsp: int
    bram18k: int
    lut: int
    ff: int

    def resource(self, name: str) -> int:
        return int(getattr(self, name))


RESOURCES = ("dsp", "bram18k", "lut", "ff")


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def by_lanes(shape: tuple[int, int]) -> tuple[int, int]:
    """The order of (PE, SIMD) shapes along the trade-off curve: MAC lanes, then PE."""
    return shape[0] * shape[1], shape[0]


def thin(options: list[Folding], limit: int) -> list[Folding]:
    """At most about `limit` foldings: shapes (PE, SIMD) from the extremes (fully folded, fully
    parallel) spread evenly in MAC lanes, so a larger candidate set only refines the trade-off
    curve, and every implementation of a kept shape (LUT or DSP MACs, multiplier or threshold
    output stage) for the mapper to weigh; with k implementations per shape, limit / k shapes
    (at least four shapes), so the integer program stays about as small as one implementation's."""
    per_shape = Counter((f.pe, f.simd) for f in set(options))
    shapes = sorted(per_shape, key=by_lanes)
    limit = max(min(limit, 4), limit // max(per_shape.values(), default=1))
    if len(shapes) > limit:
        step = (len(shapes) - 1) / (limit - 1)
        shapes = [shapes[round(i * step)] for i in range(limit)]
    kept = set(shapes)
    return sorted({f for f in options if (f.pe, f.simd) in kept}, key=lambda f: (*by_lanes((f.pe, f.simd)), f.mac, f.output))
