"""The IR ops of this family: what a hardware stage needs to know about one layer, nothing else.

Shapes and constant checks live on the op (`Graph.check()` calls them); every other facet of the
family (lowering, golden arithmetic, plans, costs, code) is registered in this package's __init__.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from hwcodesign.ir.op import Op, Shape
from hwcodesign.ir.requant import Requant
from hwcodesign.ir.types import ActiveSet, Tensor, WeightType
from hwcodesign.ops.conv.ir import Conv


@dataclass(frozen=True, eq=False)
class SubmanifoldConv(Op):
    """A sparse convolution: computed only at the active sites of its output (ESDA, SCN).

    The numbers are a Conv's (same weight layout, bias, requantization; inactive neighbours are
    zero, i.e. the input's zero point) and every inactive output site holds the output's zero
    point. With stride 1 the output's active set is the input's (submanifold: sparsity does not
    spread); with a larger stride it is the input's downsampled by this window
    (`ActiveSet.downsampled`): an output site is active when any input site it covers is.
    In ONNX this is Conv -> Mul(active mask) (or the custom node hwcodesign.SubmConv).
    """

    weight: np.ndarray
    weight_type: WeightType
    bias: np.ndarray
    stride: tuple[int, int]
    pads: tuple[int, int, int, int]
    dilation: tuple[int, int]
    groups: int
    requant: Requant

    kind: ClassVar[str] = "SubmanifoldConv"
    reads_sparse: ClassVar[bool] = True

    def weights_summary(self) -> str:
        return str(self.weight_type)

    def sparse_problems(self, tensors: list[Tensor]) -> list[str]:
        return []  # its own input_problems check the active sets it makes

    kernel = Conv.kernel
    out_channels = Conv.out_channels

    @property
    def depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.out_channels == self.weight.shape[0] and self.weight.shape[1] == 1

    @property
    def strided(self) -> bool:
        return self.stride != (1, 1)

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        return Conv.output_shape(self, input_shapes)  # type: ignore[arg-type]

    def expected_active(self, source: Tensor) -> ActiveSet | None:
        """The output's active set implied by the input's (None if the input is dense)."""
        if source.active is None:
            return None
        if not self.strided:
            return source.active
        return source.active.downsampled(self.kernel, self.stride, self.pads)

    def input_problems(self, input_tensors: list[Tensor]) -> list[str]:
        problems = Conv.input_problems(self, input_tensors)  # type: ignore[arg-type]
        source = input_tensors[0]
        if source.active is None:
            problems.append(f"input '{source.name}' is not sparse (a sparse conv reads the active sites of a sparse tensor)")
        elif self.output.active != self.expected_active(source):
            problems.append(f"output active set {self.output.active} != {self.expected_active(source)} implied by the input")
        if self.dilation != (1, 1) and self.strided:
            problems.append("a strided sparse conv with dilation is not supported")
        return problems

    macs = Conv.macs
    weight_bits = Conv.weight_bits
    requants = Conv.requants
