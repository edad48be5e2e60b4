"""A stage's folding (how many lanes it runs in parallel) and what it costs: the two values every
family's cost model produces and the mapper chooses among."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from hwcodesign.hardware.memory import weight_memories


@dataclass(frozen=True)
class Folding:
    """Parallelism of one stage: PE output lanes, SIMD input lanes, and its implementation: how
    MACs are built, its output stage, and where its weights live (a stage without weights
    ignores `weights`)."""

    pe: int = 1
    simd: int = 1
    mac: str = "dsp"  # "dsp" | "lut"
    output: str = "multiply"  # the output stage: "multiply" (DSP multiplier and shift) | "thresholds" (comparators)
    weights: str = "bram"  # the weight ROMs: "bram" | "lutram" (`memory.WEIGHT_MEMORIES`; why not URAM: memory.py)

    def __str__(self) -> str:
        return f"PE{self.pe} SIMD{self.simd}" + (" lut" if self.mac == "lut" else "") + \
            (" thresholds" if self.output == "thresholds" else "") + (" lutram" if self.weights == "lutram" else "")


@dataclass(frozen=True)
class LayerCost:
    """Cycles per frame (the stage's initiation interval), fill latency and resources."""

    cycles: int
    depth: int
    dsp: int
    bram18k: int
    lut: int
    ff: int
    uram: int = 0  # UltraRAM288 blocks: only the engine's run-time-loaded buffers (memory.py says why)

    def resource(self, name: str) -> int:
        return int(getattr(self, name))


RESOURCES = ("dsp", "bram18k", "uram", "lut", "ff")


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def by_lanes(shape: tuple[int, int]) -> tuple[int, int]:
    """The order of (PE, SIMD) shapes along the trade-off curve: MAC lanes, then PE."""
    return shape[0] * shape[1], shape[0]


def with_weight_memories(options: list[Folding], rom: Callable[[Folding], tuple[int, int]]) -> list[Folding]:
    """Each folding in every weight memory worth offering (`memory.weight_memories`) for one PE's
    weight ROM under it, `rom(folding)` = (depth, width); the automatic memory first."""
    return [Folding(f.pe, f.simd, f.mac, f.output, memory) for f in options for memory in weight_memories(*rom(f))]


def spread(shapes: list[tuple[int, int]], count: int) -> list[tuple[int, int]]:
    """`count` of the ordered `shapes`, the first and the last among them, evenly spaced."""
    if len(shapes) <= count:
        return shapes
    step = (len(shapes) - 1) / (count - 1)
    return [shapes[round(i * step)] for i in range(count)]


def thin(options: list[Folding], limit: int) -> list[Folding]:
    """At most about `limit` foldings: shapes (PE, SIMD) from the extremes (fully folded, fully
    parallel) spread evenly in MAC lanes, so a larger candidate set only refines the trade-off
    curve, and every implementation of a kept shape (LUT or DSP MACs, multiplier or threshold
    output stage, weights in block RAM or LUTRAM) for the mapper to weigh. With k MAC and output
    stage implementations per shape, limit / k shapes (at least four shapes), so the integer
    program stays about as small as one implementation's. The weight memory does not count in
    k: only the shapes whose ROMs make it a real trade-off offer both (`memory.weight_memories`),
    so it adds their second memory (CNV-W2A2: 744 choices -> 988, mapped in about the same time)
    rather than halving every layer's shapes (which made worse designs)."""
    per_shape = Counter((f.pe, f.simd) for f in {(f.pe, f.simd, f.mac, f.output): f for f in options}.values())
    shapes = sorted(per_shape, key=by_lanes)
    kept = set(spread(shapes, max(min(limit, 4), limit // max(per_shape.values(), default=1))))
    # a stable sort of the family's order: a shape's weight memories stay automatic first
    return sorted(dict.fromkeys(f for f in options if (f.pe, f.simd) in kept),
                  key=lambda f: (*by_lanes((f.pe, f.simd)), f.mac, f.output))
