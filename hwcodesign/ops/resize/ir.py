"""The IR ops of this family: what a hardware stage needs to know about one layer, nothing else.

Shapes and constant checks live on the op (`Graph.check()` calls them); every other facet of the
family (lowering, golden arithmetic, plans, costs, code) is registered in this package's __init__.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hwcodesign.ir.op import Op, Shape
from hwcodesign.ir.requant import Requant


@dataclass(frozen=True, eq=False)
class Resize(Op):
    """Nearest-neighbour upsampling by integer factors (each input pixel repeated)."""

    scale: tuple[int, int]
    requant: Requant

    kind: ClassVar[str] = "Resize"

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        n, c, h, w = input_shapes[0]
        return (n, c, h * self.scale[0], w * self.scale[1])

    def requants(self) -> tuple[Requant, ...]:
        return (self.requant,)
