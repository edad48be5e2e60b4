"""Golden semantics of deformable convolution: integer bilinear sampling, then a grouped conv's sum.

This is the definition `DeformConv`'s docstring describes: offsets become fixed point through
`offset_requant`, samples are blended with integer weights and rounded by `sample_shift`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwcodesign.ir.requant import round_shift
from hwcodesign.ir.types import Tensor
from hwcodesign.ops.deform.ir import DeformConv
from hwcodesign.ops.facets.golden import GoldenRules, centred, exact_matmul, exact_type


@dataclass(frozen=True)
class SamplingGrid:
    """Where each tap of each output pixel samples, in integers: the top-left neighbour (`y0`,
    `x0`, (N, G, taps, OH, OW)) and the fraction beyond it (`fy`, `fx`, in 1/2**F pixels), over the
    centred input padded by `margin` (zeros: outside the image counts as zero)."""

    padded: np.ndarray
    y0: np.ndarray
    x0: np.ndarray
    fy: np.ndarray
    fx: np.ndarray
    frac_bits: int
    margin: int
    batch: np.ndarray
    channel: np.ndarray

    def corner(self, dy: int, dx: int) -> np.ndarray:
        """The neighbour (dy, dx) of every sample: (N, G, C/G, taps, OH, OW)."""
        rows = (self.y0 + dy + self.margin)[:, :, None]  # (N, G, 1, taps, OH, OW)
        cols = (self.x0 + dx + self.margin)[:, :, None]
        return self.padded[self.batch, self.channel, rows, cols]


def sampling_grid(op: DeformConv, x: np.ndarray, offset: np.ndarray, tensors: list[Tensor]) -> SamplingGrid:
    n, channels, height, width = x.shape
    _, _, out_h, out_w = op.output_shape([t.shape for t in tensors])
    kh, kw = op.kernel
    frac = op.frac_bits
    one = np.int64(1) << frac
    groups = op.offset_groups
    # offsets in 1/2**F pixels, clamped to +-R (a fixed shape's d_fp expanded to d_fp * p_k first):
    # (N, G, taps, 2, OH, OW)
    converted = op.offset_requant.apply(centred(offset, tensors[1]))
    fixed = op.expand_offsets(converted).reshape(n, groups, op.taps, 2, out_h, out_w)
    tap_y = np.repeat(np.arange(kh) * op.dilation[0], kw)  # per tap k = i*KW + j
    tap_x = np.tile(np.arange(kw) * op.dilation[1], kh)
    base_y = (np.arange(out_h) * op.stride[0] - op.pads[0])[None, :, None] + tap_y[:, None, None]
    base_x = (np.arange(out_w) * op.stride[1] - op.pads[1])[None, None, :] + tap_x[:, None, None]
    pos_y = (base_y[None, None] << frac) + fixed[:, :, :, 0]
    pos_x = (base_x[None, None] << frac) + fixed[:, :, :, 1]
    margin = max(op.pads) + op.offset_range + 2
    padded = np.pad(centred(x, tensors[0]), ((0, 0), (0, 0), (margin, margin), (margin, margin)))
    per_group = channels // groups
    batch = np.arange(n)[:, None, None, None, None, None]
    channel = (np.arange(groups)[:, None] * per_group + np.arange(per_group)[None, :])  # (G, C/G)
    return SamplingGrid(padded, pos_y >> frac, pos_x >> frac, pos_y & (one - 1), pos_x & (one - 1), frac, margin,
                        batch, channel[None, :, :, None, None, None])


def bilinear(grid: SamplingGrid) -> np.ndarray:
    """The four neighbours blended with integer weights (1/2**F each way), before the sample shift."""
    one = np.int64(1) << grid.frac_bits
    wy0, wx0 = (one - grid.fy)[:, :, None], (one - grid.fx)[:, :, None]
    wy1, wx1 = grid.fy[:, :, None], grid.fx[:, :, None]
    return (grid.corner(0, 0) * wy0 * wx0 + grid.corner(0, 1) * wy0 * wx1
            + grid.corner(1, 0) * wy1 * wx0 + grid.corner(1, 1) * wy1 * wx1)


def masked(op: DeformConv, samples: np.ndarray, mask: np.ndarray | None, tensors: list[Tensor]) -> np.ndarray:
    """The samples times a modulation mask (v2), as (N, C, taps, OH, OW)."""
    n, groups = samples.shape[:2]
    out_h, out_w = samples.shape[-2:]
    if mask is not None:
        weights = centred(mask, tensors[2]).reshape(n, groups, 1, op.taps, out_h, out_w)
        samples = samples * weights
    return samples.reshape(n, -1, op.taps, out_h, out_w)


def deform_samples(op: DeformConv, x: np.ndarray, offset: np.ndarray, mask: np.ndarray | None,
                   tensors: list[Tensor]) -> np.ndarray:
    """Bilinear samples (N, C, taps, OH, OW) in integers, exactly as the hardware interpolates;
    at integer offsets (CoDeNet's, F = 0) the one pixel, with weight 1 of 1."""
    grid = sampling_grid(op, x, offset, tensors)
    blend = grid.corner(0, 0) if grid.frac_bits == 0 else bilinear(grid)
    return masked(op, round_shift(blend, np.int64(op.sample_shift)), mask, tensors)


def run_deform_conv(op: DeformConv, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    mask = args[2] if op.has_mask else None
    samples = deform_samples(op, args[0], args[1], mask, tensors)
    n, channels, taps, out_h, out_w = samples.shape
    groups = op.groups
    # (N, G, C/G * taps, OH*OW) against weights (G, O/G, C/G * taps): the im2col of a grouped conv
    weight = op.weight.reshape(groups, op.out_channels // groups, -1)
    # the samples' own largest magnitude bounds every partial sum of this product
    bound = float(np.abs(samples).max(initial=0)) * float(np.abs(op.weight).max(initial=0)) * weight.shape[2]
    if groups == channels and op.out_channels == channels:  # depthwise: a weighted sum of the taps
        kind = exact_type(bound)
        acc = np.einsum("nctp,ct->ncp", samples.reshape(n, channels, taps, -1).astype(kind),
                        weight.reshape(channels, taps).astype(kind)).astype(np.int64)
    else:
        cols = samples.reshape(n, groups, (channels // groups) * taps, out_h * out_w)
        acc = exact_matmul(weight[None], cols, bound)
    acc = acc.reshape(n, op.out_channels, out_h, out_w)
    return op.requant.apply(acc + op.bias.reshape(1, -1, 1, 1))


GOLDEN = GoldenRules({DeformConv: run_deform_conv})
