"""Golden semantics of deformable convolution: integer bilinear sampling, then a grouped conv's sum.

This is the definition `DeformConv`'s docstring describes: offsets become fixed point through
`offset_requant`, samples are blended with integer weights and rounded by `sample_shift`.
"""

from __future__ import annotations

import numpy as np

from hwcodesign.ir.requant import round_shift
from hwcodesign.ir.types import Tensor
from hwcodesign.ops.deform.ir import DeformConv
from hwcodesign.ops.facets.golden import GoldenRules, centred


def deform_samples(op: DeformConv, x: np.ndarray, offset: np.ndarray, mask: np.ndarray | None,
                   tensors: list[Tensor]) -> np.ndarray:
    """Bilinear samples (N, C, taps, OH, OW) in integers, exactly as the hardware interpolates."""
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
    y0, fy = pos_y >> frac, pos_y & (one - 1)
    x0, fx = pos_x >> frac, pos_x & (one - 1)
    margin = max(op.pads) + op.offset_range + 2
    padded = np.pad(centred(x, tensors[0]), ((0, 0), (0, 0), (margin, margin), (margin, margin)))
    per_group = channels // groups
    batch = np.arange(n)[:, None, None, None, None, None]
    channel = (np.arange(groups)[:, None] * per_group + np.arange(per_group)[None, :])  # (G, C/G)
    channel = channel[None, :, :, None, None, None]

    def corner(dy: int, dx: int) -> np.ndarray:
        rows = (y0 + dy + margin)[:, :, None]  # (N, G, 1, taps, OH, OW)
        cols = (x0 + dx + margin)[:, :, None]
        return padded[batch, channel, rows, cols]  # (N, G, C/G, taps, OH, OW)

    wy0, wx0 = (one - fy)[:, :, None], (one - fx)[:, :, None]
    wy1, wx1 = fy[:, :, None], fx[:, :, None]
    blend = (corner(0, 0) * wy0 * wx0 + corner(0, 1) * wy0 * wx1
             + corner(1, 0) * wy1 * wx0 + corner(1, 1) * wy1 * wx1)
    samples = round_shift(blend, np.int64(op.sample_shift))
    if mask is not None:
        weights = centred(mask, tensors[2]).reshape(n, groups, 1, op.taps, out_h, out_w)
        samples = samples * weights
    return samples.reshape(n, channels, op.taps, out_h, out_w)


def run_deform_conv(op: DeformConv, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    mask = args[2] if op.has_mask else None
    samples = deform_samples(op, args[0], args[1], mask, tensors)
    n, channels, taps, out_h, out_w = samples.shape
    groups = op.groups
    # (N, G, C/G * taps, OH*OW) against weights (G, O/G, C/G * taps): the im2col of a grouped conv
    cols = samples.reshape(n, groups, (channels // groups) * taps, out_h * out_w)
    weight = op.weight.reshape(groups, op.out_channels // groups, -1)
    acc = np.matmul(weight[None].astype(np.int64), cols).reshape(n, op.out_channels, out_h, out_w)
    return op.requant.apply(acc + op.bias.reshape(1, -1, 1, 1))


GOLDEN = GoldenRules({DeformConv: run_deform_conv})
