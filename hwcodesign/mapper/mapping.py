"""`Mapping`: what the dataflow mapper chose (every layer's folding and cost) and what it met.

Its own module, below the mapper's integer programs and the simulator, so that the simulator,
the report and the code generator read a mapping without importing the mapper that makes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hwcodesign.boards import Board
from hwcodesign.mapper.cost import Folding, LayerCost


@dataclass(frozen=True)
class Mapping:
    board: Board
    goal: str
    foldings: dict[str, Folding]
    costs: dict[str, LayerCost]
    objective: float
    solve_seconds: float
    limits: dict[str, int] = field(default_factory=dict)
    reserved: dict[str, int] = field(default_factory=dict)
    fifo_rows: dict[tuple[str, str], int] = field(default_factory=dict)
    densities: dict[str, float] = field(default_factory=dict)  # design densities of sparse tensors
    note: str = ""  # set when the solver's time limit ran out (`solver.Deadline.note`)

    architecture = "dataflow"

    @property
    def bottleneck_cycles(self) -> int:
        return max((c.cycles for c in self.costs.values()), default=0)

    @property
    def fps(self) -> float:
        return self.board.clock_mhz * 1e6 / max(self.bottleneck_cycles, 1)

    def total(self, resource: str) -> int:
        """The design's use of `resource`: the layers, each with the FIFOs it writes into, and
        the width converters between them (`reserved`, which the mapper kept free for them)."""
        return sum(c.resource(resource) for c in self.costs.values()) + self.reserved.get(resource, 0)
