"""The IR ops of this family: what a hardware stage needs to know about one layer, nothing else.

Shapes and constant checks live on the op (`Graph.check()` calls them); every other facet of the
family (lowering, golden arithmetic, plans, costs, code) is registered in this package's __init__.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hwcodesign.ir.op import Op, Shape
from hwcodesign.ir.requant import Requant
from hwcodesign.ir.types import Tensor


@dataclass(frozen=True, eq=False)
class Concat(Op):
    """Channel concatenation; each input is requantized to the output's scale on the way in."""

    input_requants: tuple[Requant, ...]

    kind: ClassVar[str] = "Concat"

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        n, _, h, w = input_shapes[0]
        return (n, sum(s[1] for s in input_shapes), h, w)

    def input_problems(self, input_tensors: list[Tensor]) -> list[str]:
        spatial = {(t.shape[0], t.shape[2], t.shape[3]) for t in input_tensors}
        problems = [] if len(spatial) == 1 else ["inputs differ in batch or spatial size"]
        if len(self.input_requants) != len(input_tensors):
            problems.append("one requantization per input is required")
        return problems

    def requants(self) -> tuple[Requant, ...]:
        return self.input_requants
