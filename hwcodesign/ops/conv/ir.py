"""The IR ops of this family: what a hardware stage needs to know about one layer, nothing else.

Shapes and constant checks live on the op (`Graph.check()` calls them); every other facet of the
family (lowering, golden arithmetic, plans, costs, code) is registered in this package's __init__.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from hwcodesign.ir.op import Op, Shape, window_output_size
from hwcodesign.ir.requant import Requant
from hwcodesign.ir.types import Tensor, WeightType


@dataclass(frozen=True, eq=False)
class Conv(Op):
    """2-D convolution; `weight` is (O, I/groups, kh, kw) with the weight zero point removed.

    acc[o] = bias[o] + sum (x - x_zero_point) * weight[o]; zero padding in the real domain, i.e.
    the input's zero point in the integer domain.
    """

    weight: np.ndarray
    weight_type: WeightType
    bias: np.ndarray
    stride: tuple[int, int]
    pads: tuple[int, int, int, int]  # top, left, bottom, right
    dilation: tuple[int, int]
    groups: int
    requant: Requant

    kind: ClassVar[str] = "Conv"

    def summary(self) -> str:
        kh, kw = self.kernel
        return f"{self.kind} {kh}x{kw}/s{self.stride[0]}" + (f" g{self.groups}" if self.groups > 1 else "")

    def weights_summary(self) -> str:
        return str(self.weight_type)

    @property
    def kernel(self) -> tuple[int, int]:
        return int(self.weight.shape[2]), int(self.weight.shape[3])

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[0])

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        n, _, h, w = input_shapes[0]
        kh, kw = self.kernel
        top, left, bottom, right = self.pads
        return (
            n,
            self.out_channels,
            window_output_size(h, kh, self.stride[0], top + bottom, self.dilation[0]),
            window_output_size(w, kw, self.stride[1], left + right, self.dilation[1]),
        )

    def input_problems(self, input_tensors: list[Tensor]) -> list[str]:
        channels = input_tensors[0].channels
        problems = []
        if channels % self.groups or self.out_channels % self.groups:
            problems.append(f"channels {channels}->{self.out_channels} not divisible by groups")
        elif self.weight.shape[1] * self.groups != channels:
            problems.append(
                f"weight expects {self.weight.shape[1] * self.groups} input channels, "
                f"input has {channels}"
            )
        if not self.weight_type.contains(self.weight):
            problems.append(f"weights exceed their type {self.weight_type}")
        if self.bias.shape != (self.out_channels,):
            problems.append(f"bias shape {self.bias.shape} != ({self.out_channels},)")
        if self.requant.channels not in (1, self.out_channels):
            problems.append("requantization has the wrong number of channels")
        return problems

    def macs(self, input_shapes: list[Shape]) -> int:
        _, c, oh, ow = self.output_shape(input_shapes)
        return int(c * oh * ow * np.prod(self.weight.shape[1:]))

    def weight_bits(self) -> int:
        return int(self.weight.size * self.weight_type.bits + self.bias.size * 32)

    def requants(self) -> tuple[Requant, ...]:
        return (self.requant,)


@dataclass(frozen=True, eq=False)
class Linear(Op):
    """Fully connected layer over the whole input tensor; `weight` is (O, C, H, W).

    Keeping the weight 4-D makes Flatten a no-op: the stage reads the stream in whatever order
    the hardware produces and indexes the weight the same way.
    """

    weight: np.ndarray
    weight_type: WeightType
    bias: np.ndarray
    requant: Requant

    kind: ClassVar[str] = "Linear"

    def weights_summary(self) -> str:
        return str(self.weight_type)

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[0])

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        return (input_shapes[0][0], self.out_channels, 1, 1)

    def input_problems(self, input_tensors: list[Tensor]) -> list[str]:
        problems = []
        if tuple(self.weight.shape[1:]) != tuple(input_tensors[0].shape[1:]):
            problems.append(
                f"weight expects input {tuple(self.weight.shape[1:])}, "
                f"got {tuple(input_tensors[0].shape[1:])}"
            )
        if not self.weight_type.contains(self.weight):
            problems.append(f"weights exceed their type {self.weight_type}")
        return problems

    def macs(self, input_shapes: list[Shape]) -> int:
        return int(self.weight.size)

    def weight_bits(self) -> int:
        return int(self.weight.size * self.weight_type.bits + self.bias.size * 32)

    def requants(self) -> tuple[Requant, ...]:
        return (self.requant,)
