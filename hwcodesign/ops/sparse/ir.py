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

Step = tuple[int, int, int, int, int, int, int, int]  # an ActiveSet step: kh, kw, sh, sw, top, left, bottom, right

# How a strided sparse conv's output sites become active, each from the sites of its input:
# "block": any active input in its stride x stride block (ESDA's line buffer keyed by x>>1, y>>1;
#          MinkowskiEngine's coordinate downsampling; SparseConvNet's strided conv of size 2) --
#          in masked-dense ONNX MaxPool(mask, kernel=stride, strides=stride), ceil_mode (or pads at
#          the bottom and right) when the conv's output covers a partial block;
# "window": any active input under the conv's own window (spconv's SparseConv2d, a regular sparse
#          conv: its output sites are those its kernel reaches) -- MaxPool(mask) with the conv's
#          kernel, strides and pads.
DOWNSAMPLINGS = ("block", "window")


@dataclass(frozen=True)
class ConvGeometry:
    """A strided conv's window and the input and output sizes (H, W) a downsampling rule needs."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads: tuple[int, int, int, int]
    in_size: tuple[int, int]
    out_size: tuple[int, int]


def downsampling_step(rule: str, conv: ConvGeometry) -> Step:
    """The ActiveSet step of `rule` (one of `DOWNSAMPLINGS`) for this conv. A block rule's
    partial last block is padded at the bottom and right (inactive), as ceil_mode pads it."""
    if rule == "window":
        return (*conv.kernel, *conv.stride, *conv.pads)  # type: ignore[return-value]
    assert rule == "block", rule
    (sh, sw), (oh, ow), (ih, iw) = conv.stride, conv.out_size, conv.in_size
    return (sh, sw, sh, sw, 0, 0, max(0, oh * sh - ih), max(0, ow * sw - iw))


def allowed_actives(source: ActiveSet | None, conv: ConvGeometry) -> dict[str, ActiveSet]:
    """The active sets a sparse conv's output may have, by rule, given its input's (none for a
    dense input): the input's at stride 1 (submanifold), else one per `DOWNSAMPLINGS` rule."""
    if source is None:
        return {}
    if conv.stride == (1, 1):
        return {"submanifold": source}
    return {rule: source.downsampled(downsampling_step(rule, conv)) for rule in DOWNSAMPLINGS}


@dataclass(frozen=True, eq=False)
class SubmanifoldConv(Op):
    """A sparse convolution: computed only at the active sites of its output (ESDA, SCN).

    The numbers are a Conv's (same weight layout, bias, requantization; inactive neighbours are
    zero, i.e. the input's zero point) and every inactive output site holds the output's zero
    point. With stride 1 the output's active set is the input's (submanifold: sparsity does not
    spread). With a larger stride it is the input's downsampled (`ActiveSet.downsampled`) by
    one of the `DOWNSAMPLINGS` rules, which the output's active set records as its last step
    (`mask_window`). In ONNX this is Conv -> Mul(active mask) (or the custom node
    hwcodesign.SubmConv).
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

    @property
    def mask_window(self) -> Step:
        """The window whose any-active rule gives each output site's activity from the input's:
        the site itself at stride 1, else the output active set's last downsampling."""
        if not self.strided:
            return (1, 1, 1, 1, 0, 0, 0, 0)
        assert self.output.active is not None and self.output.active.steps
        return self.output.active.steps[-1]

    def allowed_actives(self, source: Tensor) -> dict[str, ActiveSet]:
        """The output active sets the input's allows, by rule."""
        geometry = ConvGeometry(self.kernel, self.stride, self.pads, source.shape[2:], self.output.shape[2:])  # type: ignore[arg-type]
        return allowed_actives(source.active, geometry)

    def input_problems(self, input_tensors: list[Tensor]) -> list[str]:
        problems = Conv.input_problems(self, input_tensors)  # type: ignore[arg-type]
        source = input_tensors[0]
        allowed = self.allowed_actives(source)
        if source.active is None:
            problems.append(f"input '{source.name}' is not sparse (a sparse conv reads the active sites of a sparse tensor)")
        elif self.output.active not in allowed.values():
            implied = " or ".join(f"{active} ({rule})" for rule, active in allowed.items())
            problems.append(f"output active set {self.output.active} is not {implied} implied by the input")
        if self.dilation != (1, 1) and self.strided:
            problems.append("a strided sparse conv with dilation is not supported")
        return problems

    macs = Conv.macs
    weight_bits = Conv.weight_bits
    requants = Conv.requants
