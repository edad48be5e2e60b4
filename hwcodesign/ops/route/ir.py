"""The IR ops of this family: what a hardware stage needs to know about one layer, nothing else.

Shapes and constant checks live on the op (`Graph.check()` calls them); every other facet of the
family (lowering, golden arithmetic, plans, costs, code) is registered in this package's __init__.

Both ops re-route channels and compute nothing: each output channel is one input channel. Their
requantization is the identity when the output keeps the input's grid (what onnxruntime's
quantizer writes: the same scale and zero point on both sides); a QuantizeLinear onto another grid
makes it a real output stage, as for Resize.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hwcodesign.ir.op import Op, Shape
from hwcodesign.ir.requant import Requant
from hwcodesign.ir.types import Tensor


@dataclass(frozen=True, eq=False)
class ChannelSlice(Op):
    """Channels [start, start + output channels) of the input, step 1: one output of a Split or a
    channel Slice (a K-way Split is K of these reading one tensor, which the dataflow fans out)."""

    start: int
    requant: Requant

    kind: ClassVar[str] = "ChannelSlice"

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        n, _, h, w = input_shapes[0]
        return (n, self.output.channels, h, w)

    def input_problems(self, input_tensors: list[Tensor]) -> list[str]:
        source = input_tensors[0]
        if self.start < 0 or self.start + self.output.channels > source.channels:
            return [f"channels [{self.start}, {self.start + self.output.channels}) outside the input's "
                    f"{source.channels}"]
        return []

    def requants(self) -> tuple[Requant, ...]:
        return (self.requant,)

    def summary(self) -> str:
        return f"ChannelSlice [{self.start}:{self.start + self.output.channels}]"


@dataclass(frozen=True, eq=False)
class ChannelPermute(Op):
    """Output channel c is input channel `order[c]`, `order` a permutation (a channel shuffle)."""

    order: tuple[int, ...]
    requant: Requant

    kind: ClassVar[str] = "ChannelPermute"

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        return input_shapes[0]

    def input_problems(self, input_tensors: list[Tensor]) -> list[str]:
        if sorted(self.order) != list(range(input_tensors[0].channels)):
            return [f"order is not a permutation of the input's {input_tensors[0].channels} channels"]
        return []

    def requants(self) -> tuple[Requant, ...]:
        return (self.requant,)


def shuffle_order(channels: int, groups: int) -> tuple[int, ...]:
    """The channel shuffle Reshape (N, g, C/g, H, W) -> Transpose(0, 2, 1, 3, 4) -> Reshape (N, C, H, W):
    output channel k * g + j is input channel j * C/g + k."""
    per_group = channels // groups
    return tuple(j * per_group + k for k in range(per_group) for j in range(groups))
