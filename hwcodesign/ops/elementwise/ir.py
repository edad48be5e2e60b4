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
class Act(Op):
    """A standalone activation or rescale: acc = x - x_zero_point, then `requant`.

    `function` is "identity", "relu", "clip" or "leaky_relu"; the requant's lo/hi and negative
    multiplier implement it, so the name is only for reports and code generation.
    """

    function: str
    requant: Requant

    kind: ClassVar[str] = "Act"
    reads_sparse: ClassVar[bool] = True

    def summary(self) -> str:
        return f"{self.kind} {self.function}"

    def output_sparsity_problems(self, tensors: list[Tensor]) -> list[str]:
        return keeps_active_set(self.output, tensors)

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        return input_shapes[0]

    def requants(self) -> tuple[Requant, ...]:
        return (self.requant,)


@dataclass(frozen=True, eq=False)
class Add(Op):
    """Elementwise sum of two differently scaled inputs.

    acc = (a - a_zp) * M_a + (b - b_zp) * M_b with one shared shift in `requant` (multiplier 1).
    """

    input_multipliers: tuple[int, int]
    requant: Requant

    kind: ClassVar[str] = "Add"
    reads_sparse: ClassVar[bool] = True

    def output_sparsity_problems(self, tensors: list[Tensor]) -> list[str]:
        return keeps_active_set(self.output, tensors)

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        return input_shapes[0]

    def input_problems(self, input_tensors: list[Tensor]) -> list[str]:
        a, b = input_tensors
        return [] if a.shape == b.shape else [f"input shapes differ: {a.shape} vs {b.shape}"]

    def requants(self) -> tuple[Requant, ...]:
        return (self.requant,)


@dataclass(frozen=True, eq=False)
class Mul(Op):
    """Elementwise product of two activations (a squeeze-excitation gate times its feature map):
    acc = (a - a_zp) * (b - b_zp), then `requant` (ratio a_scale * b_scale / out_scale).

    Input 0 is the map (N, C, H, W). With `broadcast`, input 1 is a per-channel gate (N, C, 1, 1)
    applied at every pixel (read once per frame); without it, input 1 has the map's shape. The
    lowering puts the map first whatever the ONNX order.
    """

    requant: Requant
    broadcast: bool

    kind: ClassVar[str] = "Mul"

    def summary(self) -> str:
        return f"{self.kind} {'by channel gate' if self.broadcast else 'elementwise'}"

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        return input_shapes[0]

    def input_problems(self, input_tensors: list[Tensor]) -> list[str]:
        a, b = input_tensors
        expected = (*a.shape[:2], 1, 1) if self.broadcast else a.shape
        if tuple(b.shape) != tuple(expected):
            return [f"second input {b.shape} should be {expected} ({'gate' if self.broadcast else 'same shape'})"]
        return []

    def requants(self) -> tuple[Requant, ...]:
        return (self.requant,)


def keeps_active_set(output: Tensor, tensors: list[Tensor]) -> list[str]:
    """An elementwise layer keeps its inputs' one active set: zero stays zero at inactive sites."""
    actives = {t.active for t in tensors}
    if len(actives) > 1:
        return [f"adds tensors with different active sets ({', '.join(str(a) for a in actives)})"]
    if output.active != tensors[0].active:
        return [f"output active set {output.active} != its input's {tensors[0].active}"]
    return []
