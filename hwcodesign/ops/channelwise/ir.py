"""The IR ops of this family: what a hardware stage needs to know about one layer, nothing else.

Shapes and constant checks live on the op (`Graph.check()` calls them); every other facet of the
family (lowering, golden arithmetic, plans, costs, code) is registered in this package's __init__.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hwcodesign.ir.op import Op, Shape, window_output_size
from hwcodesign.ir.requant import Requant
from hwcodesign.ir.types import Tensor
from hwcodesign.ops.conv.ir import Conv


@dataclass(frozen=True, eq=False)
class DepthwiseConv(Conv):
    """A Conv with groups == input channels == output channels: one filter per channel.

    Kept as its own kind because its hardware (no cross-channel reduction) and cost differ.
    """

    kind: ClassVar[str] = "DepthwiseConv"

    def input_problems(self, input_tensors: list[Tensor]) -> list[str]:
        problems = super().input_problems(input_tensors)
        if not self.groups == self.out_channels == input_tensors[0].channels:
            problems.append("depthwise conv needs groups == input channels == output channels")
        return problems


@dataclass(frozen=True, eq=False)
class Pool(Op):
    """Max or average pooling over a sliding window.

    Max: max over the window of (x - x_zero_point), padding never wins. Average: the window sum
    of (x - x_zero_point) with padded positions counting as zero and a constant divisor
    kh*kw folded into the requantization ratio (ONNX count_include_pad=1 semantics).
    """

    mode: str  # "max" | "avg"
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads: tuple[int, int, int, int]
    requant: Requant

    kind: ClassVar[str] = "Pool"

    def summary(self) -> str:
        return f"{self.mode.capitalize()}Pool {self.kernel[0]}x{self.kernel[1]}/s{self.stride[0]}"

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        n, c, h, w = input_shapes[0]
        top, left, bottom, right = self.pads
        return (
            n,
            c,
            window_output_size(h, self.kernel[0], self.stride[0], top + bottom, 1),
            window_output_size(w, self.kernel[1], self.stride[1], left + right, 1),
        )

    def requants(self) -> tuple[Requant, ...]:
        return (self.requant,)


@dataclass(frozen=True, eq=False)
class GlobalAvgPool(Op):
    """Sum of (x - x_zero_point) over H x W per channel; the 1/(H*W) is in the requant ratio."""

    requant: Requant

    kind: ClassVar[str] = "GlobalAvgPool"
    reads_sparse: ClassVar[bool] = True

    def output_sparsity_problems(self, tensors: list[Tensor]) -> list[str]:
        return ["a global pool's output is dense"] if self.output.sparse else []

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        n, c, _, _ = input_shapes[0]
        return (n, c, 1, 1)

    def requants(self) -> tuple[Requant, ...]:
        return (self.requant,)
