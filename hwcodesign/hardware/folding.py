"""A stage's folding (how many lanes it runs in parallel) and what it costs: the two values every
family's cost model produces and the mapper chooses among."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Folding:
    """Parallelism of one stage: PE output lanes, SIMD input lanes, and how MACs are built."""

    pe: int = 1
    simd: int = 1
    mac: str = "dsp"  # "dsp" | "lut"

    def __str__(self) -> str:
        return f"PE{self.pe} SIMD{self.simd}" + (" lut" if self.mac == "lut" else "")


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


def thin(options: list[Folding], limit: int) -> list[Folding]:
    """At most `limit` foldings: the extremes (fully folded, fully parallel) and the rest spread
    evenly in MAC lanes, so a larger candidate set only refines the trade-off curve."""
    by_lanes = sorted(set(options), key=lambda f: (f.pe * f.simd, f.pe, f.mac))
    if len(by_lanes) <= limit:
        return by_lanes
    step = (len(by_lanes) - 1) / (limit - 1)
    return sorted({by_lanes[round(i * step)] for i in range(limit)}, key=lambda f: (f.pe * f.simd, f.pe, f.mac))
