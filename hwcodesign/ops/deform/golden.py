"""Golden semantics of deformable convolution: integer bilinear sampling, then a grouped conv's sum.

This is the definition `DeformConv`'s docstring describes: offsets become fixed point through
`offset_requant`, samples are blended with integer weights and rounded by `sample_shift`.

It runs a tap at a time over channel-last pixels: each sample of a tap is one row of the padded
input (all its channels at one place), gathered for every output pixel of every frame, blended,
rounded, masked, and multiplied into the accumulator. At integer offsets (CoDeNet's, F = 0) a
sample is a single read.
"""

from __future__ import annotations

import numpy as np

from hwcodesign.ir.requant import round_shift
from hwcodesign.ir.types import Tensor
from hwcodesign.ops.deform.ir import DeformConv
from hwcodesign.ops.facets.golden import GoldenRules, centred, exact_type, magnitude


def sample_positions(op: DeformConv, offset: np.ndarray, tensors: list[Tensor]) -> tuple[np.ndarray, np.ndarray]:
    """Where every tap of every output pixel samples, (y, x) in 1/2**F pixels of the unpadded input
    (N, G, taps, OH, OW): the tap's place plus its offset, converted to fixed point and clamped to
    +-R (a fixed shape's d_fp expanded to d_fp * p_k first)."""
    n = offset.shape[0]
    _, _, out_h, out_w = op.output_shape([t.shape for t in tensors])
    kh, kw = op.kernel
    frac = op.frac_bits
    converted = op.offset_requant.apply(centred(offset, tensors[1]))
    fixed = op.expand_offsets(converted).reshape(n, op.offset_groups, op.taps, 2, out_h, out_w)
    tap_y = np.repeat(np.arange(kh) * op.dilation[0], kw)  # per tap k = i*KW + j
    tap_x = np.tile(np.arange(kw) * op.dilation[1], kh)
    base_y = (np.arange(out_h) * op.stride[0] - op.pads[0])[None, :, None] + tap_y[:, None, None]
    base_x = (np.arange(out_w) * op.stride[1] - op.pads[1])[None, None, :] + tap_x[:, None, None]
    return (base_y[None, None] << frac) + fixed[:, :, :, 0], (base_x[None, None] << frac) + fixed[:, :, :, 1]


def sampling_margin(op: DeformConv) -> int:
    """Zero rows and columns around the input beyond which no sample (nor its far corner) reaches."""
    return max(op.pads) + op.offset_range + 2


def sample_bound(op: DeformConv, tensors: list[Tensor]) -> int:
    """Largest |sample| after the blend, the rounding and the mask: the blend's weights sum to
    2**(2F), the rounding divides by 2**sample_shift."""
    blended = magnitude(tensors[0]) << (2 * op.frac_bits)
    rounded = -(-blended >> op.sample_shift)
    return rounded * (magnitude(tensors[2]) if op.has_mask else 1)


class ChannelRows:
    """The centred input, padded by `margin` zeros, as one row of channels per pixel of every frame
    (a sample is a row), in the narrowest integer type that holds it."""

    def __init__(self, x: np.ndarray, tensor: Tensor, margin: int) -> None:
        n, channels, height, width = x.shape
        kind = np.int16 if magnitude(tensor) < 2**15 else np.int64
        padded = np.zeros((n, height + 2 * margin, width + 2 * margin, channels), kind)
        padded[:, margin:margin + height, margin:margin + width] = centred(x, tensor).transpose(0, 2, 3, 1)
        self.rows = padded.reshape(-1, channels)
        self.margin, self.height, self.width = margin, height + 2 * margin, width + 2 * margin
        self.frame_base = (np.arange(n) * self.height * self.width)[:, None]

    def read(self, y: np.ndarray, x: np.ndarray, channels: slice) -> np.ndarray:
        """The rows at unpadded (y, x), (N, P) each: (N, P, channels)."""
        index = self.frame_base + (y + self.margin) * self.width + (x + self.margin)
        return self.rows[index, channels]


def tap_samples(op: DeformConv, rows: ChannelRows, y: np.ndarray, x: np.ndarray, channels: slice) -> np.ndarray:
    """One tap's samples (N, P, channels of the offset group) before the mask, as integers: the
    four neighbours of each position blended with integer weights (1/2**F each way) and rounded
    half to even by sample_shift; at integer offsets the one pixel."""
    frac = op.frac_bits
    y0, x0 = y >> frac, x >> frac
    if frac == 0:
        return round_shift(rows.read(y0, x0, channels).astype(np.int64), np.int64(op.sample_shift))
    one = np.int64(1) << frac
    fy, fx = (y & (one - 1))[:, :, None], (x & (one - 1))[:, :, None]
    blend = (rows.read(y0, x0, channels) * ((one - fy) * (one - fx)) + rows.read(y0, x0 + 1, channels) * ((one - fy) * fx)
             + rows.read(y0 + 1, x0, channels) * (fy * (one - fx)) + rows.read(y0 + 1, x0 + 1, channels) * (fy * fx))
    return round_shift(blend, np.int64(op.sample_shift))


def run_deform_conv(op: DeformConv, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    """Per tap: its samples of every offset group, times the mask, into the accumulator (N, P, O)
    of a grouped conv (a depthwise conv: one product per channel). The accumulator's type is the
    cheapest exact one for the bound sample x weight x row length (`exact_type`)."""
    x, offset = args[0], args[1]
    mask = centred(args[2], tensors[2]) if op.has_mask else None
    n, channels = x.shape[:2]
    _, _, out_h, out_w = op.output_shape([t.shape for t in tensors])
    pixels, taps, out_channels = out_h * out_w, op.taps, op.out_channels
    pos_y, pos_x = sample_positions(op, offset, tensors)
    rows = ChannelRows(x, tensors[0], sampling_margin(op))
    groups, per_offset_group = op.groups, channels // op.offset_groups
    depthwise = groups == channels and out_channels == channels
    # weights (G, O/G, C/G, taps); the bound covers every partial sum of a row
    weight = op.weight.reshape(groups, out_channels // groups, channels // groups, taps)
    bound = sample_bound(op, tensors) * int(np.abs(op.weight).max(initial=0)) * (channels // groups) * taps
    kind = exact_type(bound)
    acc = np.zeros((n, pixels, out_channels), kind)
    for t in range(taps):
        samples = np.empty((n, pixels, channels), kind)
        for g in range(op.offset_groups):
            part = slice(g * per_offset_group, (g + 1) * per_offset_group)
            values = tap_samples(op, rows, pos_y[:, g, t].reshape(n, pixels), pos_x[:, g, t].reshape(n, pixels), part)
            if mask is not None:
                values = values * mask[:, g * taps + t].reshape(n, pixels, 1)
            samples[:, :, part] = values
        if depthwise:
            acc += samples * weight[:, 0, 0, t].astype(kind)
            continue
        per_in, per_out = channels // groups, out_channels // groups
        for g in range(groups):
            acc[:, :, g * per_out:(g + 1) * per_out] += (
                samples[:, :, g * per_in:(g + 1) * per_in] @ weight[g, :, :, t].T.astype(kind))
    result = acc.astype(np.int64).transpose(0, 2, 1).reshape(n, out_channels, out_h, out_w)
    return op.requant.apply(result + op.bias.reshape(1, -1, 1, 1))


GOLDEN = GoldenRules({DeformConv: run_deform_conv})
