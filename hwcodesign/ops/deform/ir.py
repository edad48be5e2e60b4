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
from hwcodesign.ir.types import Tensor, WeightType
from hwcodesign.ops.conv.ir import Conv


@dataclass(frozen=True, eq=False)
class DeformConv(Op):
    """Deformable convolution (DCN v1, or v2 with a mask) with offsets bounded by `offset_range`.

    Inputs: (x, offset) or (x, offset, mask), ONNX DeformConv layout: offset channels are
    (offset group, tap k = i*KW + j, (dy, dx)), mask channels (offset group, tap). As the hardware
    computes it (`hwcodesign/ops/deform/golden.py` is the definition):

    - each offset becomes fixed point with `frac_bits` F fractional bits through `offset_requant`,
      whose clamp is [-R * 2**F, R * 2**F]: bounded offsets keep every sample inside a line buffer
      of (KH-1)*dilation + 2R + 1 rows;
    - a sample is the bilinear blend of the four neighbouring centred inputs (zero outside the
      image) with integer weights (2**F - f)(2**F - g) ..., rounded half to even by `sample_shift`
      bits; with a mask it is multiplied by the centred mask value;
    - samples are multiply-accumulated with the weights as in a grouped conv, then `requant`.

    `fixed_shape` (CoDeNet, Huang et al. FPGA'21): the taps keep a square pattern whose size is
    learned, one scale per output pixel and offset group instead of 2*K*K free offsets, so the
    offset branch and its conversion shrink by 2*K*K. The offset input then has `offset_groups`
    channels holding d (the pattern's dilation delta, s - 1). Tap k = (i, j) sits at
    p_k = ((i - (KH-1)/2) * dil_h, (j - (KW-1)/2) * dil_w) from the kernel centre and samples at
    centre + (1 + d) * p_k, i.e. its offsets are d * p_k. In fixed point d_fp = offset_requant(d)
    (F fractional bits) and offsets_fp[k] = d_fp * p_k, exact integer products (`expand_offsets`);
    sampling is then as above. Kernels must be odd (the pattern has a centre tap) and larger than
    1x1. R still bounds every sample's displacement (the line buffer is unchanged), so the clamp
    on d_fp is +-floor(R * 2**F / max|p_k|) (`offset_limit`): |d_fp * p_k| <= R * 2**F.

    Integer offsets (`integer_offsets`, F = 0, no sample shift): offsets already on the integers
    (their tensor's scale is 1), as CoDeNet rounds them ("we round the dynamically-generated
    offsets to integers"; with the fixed shape, s in [0, N] from Clip(0, N) -> Round). Every
    sample is then one centred input read, no interpolation: the bilinear weights are 1 and 0
    (the same definition, nothing special-cased in the arithmetic), the hardware reads one
    neighbour and needs no blend multipliers, and the line buffer holds (K-1)*dil + 2N + 1 rows.
    """

    weight: np.ndarray
    weight_type: WeightType
    bias: np.ndarray
    stride: tuple[int, int]
    pads: tuple[int, int, int, int]
    dilation: tuple[int, int]
    groups: int
    offset_groups: int
    offset_range: int
    frac_bits: int
    offset_requant: Requant
    sample_shift: int
    requant: Requant
    fixed_shape: bool = False

    kind: ClassVar[str] = "DeformConv"

    def summary(self) -> str:
        kh, kw = self.kernel
        return (f"{self.kind} {kh}x{kw}/s{self.stride[0]} R{self.offset_range}" + (" dw" if self.depthwise else "")
                + (" mask" if self.has_mask else "") + (" fixed" if self.fixed_shape else ""))

    def weights_summary(self) -> str:
        return str(self.weight_type)

    # the weight is laid out as a Conv's: the same kernel and output channels
    kernel = Conv.kernel
    out_channels = Conv.out_channels

    @property
    def taps(self) -> int:
        return self.kernel[0] * self.kernel[1]

    @property
    def integer_offsets(self) -> bool:
        """Offsets in whole pixels (F = 0): samples are single reads, no bilinear blend."""
        return self.frac_bits == 0

    @property
    def has_mask(self) -> bool:
        return len(self.inputs) == 3

    @property
    def depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.out_channels == self.weight.shape[0] and self.weight.shape[1] == 1

    @staticmethod
    def square_pattern(kernel: tuple[int, int], dilation: tuple[int, int]) -> np.ndarray:
        """(taps, 2) integer (y, x) of each tap k = i*KW + j from the centre of an odd kernel."""
        kh, kw = kernel
        i, j = np.divmod(np.arange(kh * kw, dtype=np.int64), kw)
        return np.stack([(i - (kh - 1) // 2) * dilation[0], (j - (kw - 1) // 2) * dilation[1]], axis=1)

    @property
    def pattern(self) -> np.ndarray:
        """The fixed shape's tap positions p_k, (taps, 2) in pixels (see `square_pattern`)."""
        return self.square_pattern(self.kernel, self.dilation)

    @property
    def pattern_reach(self) -> int:
        """max |p_k| over taps and both axes: pixels one unit of d moves the outermost tap."""
        return int(np.abs(self.pattern).max(initial=0))

    @property
    def offset_channels(self) -> int:
        """Channels of the offset input: d per offset group, or (dy, dx) per group and tap."""
        return self.offset_groups if self.fixed_shape else 2 * self.offset_groups * self.taps

    @property
    def offset_limit(self) -> int:
        """Bound of a converted offset input value in 1/2**F pixels; keeps samples within +-R."""
        if self.fixed_shape:
            return (self.offset_range << self.frac_bits) // max(1, self.pattern_reach)
        return self.offset_range << self.frac_bits

    def expand_offsets(self, converted: np.ndarray) -> np.ndarray:
        """Per-tap fixed-point offsets (N, 2*G*taps, OH, OW) from the converted offset input.

        Free offsets already are that; a fixed shape's d_fp (N, G, OH, OW) becomes d_fp * p_k,
        in the ONNX order (group, tap, (y, x)).
        """
        if not self.fixed_shape:
            return converted
        n, groups, out_h, out_w = converted.shape
        expanded = converted[:, :, None, None] * self.pattern[None, None, :, :, None, None]
        return expanded.reshape(n, groups * self.taps * 2, out_h, out_w)

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        return Conv.output_shape(self, input_shapes)  # type: ignore[arg-type]

    def input_problems(self, input_tensors: list[Tensor]) -> list[str]:
        x, offset = input_tensors[0], input_tensors[1]
        out = self.output_shape([t.shape for t in input_tensors])
        problems = []
        if x.channels % self.groups or self.out_channels % self.groups or self.weight.shape[1] * self.groups != x.channels:
            problems.append(f"channels {x.channels}->{self.out_channels} do not match groups {self.groups}")
        if x.channels % self.offset_groups:
            problems.append(f"{x.channels} channels are not divisible by {self.offset_groups} offset groups")
        expected = (out[0], self.offset_channels, out[2], out[3])
        if offset.shape != expected:
            problems.append(f"offset shape {offset.shape} != {expected}")
        if self.has_mask and input_tensors[2].shape != (out[0], self.offset_groups * self.taps, out[2], out[3]):
            problems.append(f"mask shape {input_tensors[2].shape} does not match the taps and output")
        if not self.weight_type.contains(self.weight):
            problems.append(f"weights exceed their type {self.weight_type}")
        if self.fixed_shape:
            problems += self.fixed_shape_problems()
        if self.offset_requant.lo < -self.offset_limit or self.offset_requant.hi > self.offset_limit:
            problems.append(f"offset clamp exceeds the declared offset range (+-{self.offset_limit} / 2**{self.frac_bits})")
        return problems

    def fixed_shape_problems(self) -> list[str]:
        """A fixed shape scales the taps about the centre tap: the kernel needs one, and some reach."""
        kh, kw = self.kernel
        if kh % 2 == 0 or kw % 2 == 0:
            return [f"a fixed-shape pattern needs an odd kernel (a centre tap), not {kh}x{kw}"]
        if self.pattern_reach == 0:
            return ["a fixed-shape pattern of a 1x1 kernel has nothing to scale"]
        return []

    # the conv's own counting: the same MACs per output and weight storage; the offset
    # conversion is internal (checked in `input_problems`), so the output stage is the only one
    macs = Conv.macs
    weight_bits = Conv.weight_bits
    requants = Conv.requants
