"""One frozen dataclass per layer kind: what a hardware stage needs to know, nothing else.

Every op names its input tensors, carries its output `Tensor` and its integer constants
(weights already quantized, bias in accumulator units, a `Requant` output stage). The arithmetic
each op stands for is written once, in `hwcodesign.sim.golden`; the shapes it implies are
written here so that the frontend and `Graph.check()` agree on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from hwcodesign.ir.requant import Requant
from hwcodesign.ir.types import ActiveSet, Tensor, WeightType

Shape = tuple[int, int, int, int]


def window_output_size(size: int, kernel: int, stride: int, pad_total: int, dilation: int) -> int:
    """Output length of a sliding window (ONNX Conv/Pool formula, floor mode)."""
    effective = (kernel - 1) * dilation + 1
    return (size + pad_total - effective) // stride + 1


@dataclass(frozen=True, eq=False)
class Op:
    """Base of all layers. `inputs` are tensor names; `output` is the tensor this op produces."""

    name: str
    inputs: tuple[str, ...]
    output: Tensor

    kind: ClassVar[str] = "op"

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        raise NotImplementedError

    def input_problems(self, input_tensors: list[Tensor]) -> list[str]:
        """Op-specific consistency problems between the inputs and this op's constants."""
        return []

    def macs(self, input_shapes: list[Shape]) -> int:
        """Multiply-accumulates per frame (batch 1); 0 for ops without multipliers."""
        return 0

    def weight_bits(self) -> int:
        """Bits of on-chip constant storage (weights and biases), the BRAM the layer needs."""
        return 0

    def requants(self) -> tuple[Requant, ...]:
        return ()


@dataclass(frozen=True, eq=False)
class Input(Op):
    """The accelerator's input stream: integers already quantized by the driver."""

    kind: ClassVar[str] = "Input"

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        return self.output.shape


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

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        n, c, _, _ = input_shapes[0]
        return (n, c, 1, 1)

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

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        return input_shapes[0]

    def input_problems(self, input_tensors: list[Tensor]) -> list[str]:
        a, b = input_tensors
        return [] if a.shape == b.shape else [f"input shapes differ: {a.shape} vs {b.shape}"]

    def requants(self) -> tuple[Requant, ...]:
        return (self.requant,)


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


@dataclass(frozen=True, eq=False)
class Act(Op):
    """A standalone activation or rescale: acc = x - x_zero_point, then `requant`.

    `function` is "identity", "relu", "clip" or "leaky_relu"; the requant's lo/hi and negative
    multiplier implement it, so the name is only for reports and code generation.
    """

    function: str
    requant: Requant

    kind: ClassVar[str] = "Act"

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        return input_shapes[0]

    def requants(self) -> tuple[Requant, ...]:
        return (self.requant,)


@dataclass(frozen=True, eq=False)
class DeformConv(Op):
    """Deformable convolution (DCN v1, or v2 with a mask) with offsets bounded by `offset_range`.

    Inputs: (x, offset) or (x, offset, mask), ONNX DeformConv layout: offset channels are
    (offset group, tap k = i*KW + j, (dy, dx)), mask channels (offset group, tap). As the hardware
    computes it (`sim/golden.py` is the definition):

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

    # the weight is laid out as a Conv's: the same kernel and output channels
    kernel = Conv.kernel
    out_channels = Conv.out_channels

    @property
    def taps(self) -> int:
        return self.kernel[0] * self.kernel[1]

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


OP_KINDS: tuple[type[Op], ...] = (
    Input, Conv, DepthwiseConv, DeformConv, SubmanifoldConv, Linear, Pool, GlobalAvgPool, Add, Concat, Resize, Act,
)
