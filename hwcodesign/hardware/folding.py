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


def thin(options: list[Folding], limit: int) -> list[Folding]:
    """At most about `limit` foldings: shapes (PE, SIMD) from the extremes (fully folded, fully
    parallel) spread evenly in MAC lanes, so a larger candidate set only refines the trade-off
    curve, and every implementation of a kept shape (LUT or DSP MACs, multiplier or threshold
    output stage) for the mapper to weigh; with k implementations per shape, limit / k shapes
    (at least four shapes), so the integer program stays about as small as one implementation's."""
    shapes = sorted({(f.pe, f.simd) for f in options}, key=lambda shape: (shape[0] * shape[1], shape[0]))
    implementations = max((sum(1 for f in options if (f.pe, f.simd) == shape) for shape in shapes), default=1)
    limit = max(min(limit, 4), limit // implementations)
    if len(shapes) > limit:
        step = (len(shapes) - 1) / (limit - 1)
        shapes = [shapes[round(i * step)] for i in range(limit)]
    kept = set(shapes)
    return sorted({f for f in options if (f.pe, f.simd) in kept}, key=lambda f: (f.pe * f.simd, f.pe, f.mac, f.output))
