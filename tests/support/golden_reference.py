"""The golden model's arithmetic as it was before it was made fast, kept as the reference the fast
one must equal on every op case and example (issue 24: the old implementation stays as the
reference in tests until the new one has matched it everywhere): the convolution (one float64
product per frame and group), the rounding shift (nine array operations), the deformable conv
(four bilinear corners always, an int64 product), the pools (a reduction over the windows' axes)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

from hwcodesign.ir import requant
from hwcodesign.ir.types import Tensor
from hwcodesign.ops.channelwise import golden as channelwise_golden
from hwcodesign.ops.channelwise.ir import Pool
from hwcodesign.ops.conv import golden as conv_golden
from hwcodesign.ops.deform import golden as deform_golden
from hwcodesign.ops.deform.golden import sample_positions, sampling_margin
from hwcodesign.ops.deform.ir import DeformConv
from hwcodesign.ops.facets.golden import FLOAT64_EXACT, WindowConv, centred, magnitude, windows
from hwcodesign.ops.sparse import golden as sparse_golden


def reference_matmul(a: np.ndarray, b: np.ndarray, bound: float) -> np.ndarray:
    if bound < FLOAT64_EXACT:
        return np.rint(np.matmul(a.astype(np.float64), b.astype(np.float64))).astype(np.int64)
    return np.matmul(a.astype(np.int64), b.astype(np.int64))


def reference_convolve(op: WindowConv, x: np.ndarray, tensor: Tensor) -> np.ndarray:
    n, channels = x.shape[:2]
    groups = op.groups
    cols = windows(centred(x, tensor), op.kernel, op.stride, op.pads, op.dilation, 0)
    _, _, oh, ow, kh, kw = cols.shape
    cols = cols.reshape(n, groups, channels // groups, oh, ow, kh, kw)
    cols = cols.transpose(0, 1, 2, 5, 6, 3, 4).reshape(n, groups, -1, oh * ow)
    weight = op.weight.reshape(groups, op.out_channels // groups, -1)
    bound = magnitude(tensor) * float(np.abs(op.weight).max(initial=0)) * weight.shape[2]
    acc = reference_matmul(weight[None], cols, bound).reshape(n, op.out_channels, oh, ow)
    acc = acc + op.bias.reshape(1, -1, 1, 1)
    return op.requant.apply(acc)


def reference_round_shift(product: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """product / 2**shift rounded half to even, in int64 arithmetic only."""
    floor = product >> shift
    remainder = product - (floor << shift)
    half = (np.int64(1) << shift) >> 1
    round_up = (shift > 0) & ((remainder > half) | ((remainder == half) & ((floor & 1) == 1)))
    return floor + round_up.astype(np.int64)


def reference_deform_samples(op: DeformConv, x: np.ndarray, offset: np.ndarray, mask: np.ndarray | None,
                             tensors: list[Tensor]) -> np.ndarray:
    """Samples (N, C, taps, OH, OW), channel first: four bilinear corners always (their weights at
    integer offsets 1, 0, 0, 0), each gathered with an index array per axis, in int64."""
    pos_y, pos_x = sample_positions(op, offset, tensors)
    n, channels = x.shape[:2]
    frac, groups = op.frac_bits, op.offset_groups
    one = np.int64(1) << frac
    y0, x0, fy, fx = pos_y >> frac, pos_x >> frac, pos_y & (one - 1), pos_x & (one - 1)
    margin = sampling_margin(op)
    padded = np.pad(centred(x, tensors[0]), ((0, 0), (0, 0), (margin, margin), (margin, margin)))
    per_group = channels // groups
    batch = np.arange(n)[:, None, None, None, None, None]
    channel = (np.arange(groups)[:, None] * per_group + np.arange(per_group)[None, :])[None, :, :, None, None, None]

    def corner(dy: int, dx: int) -> np.ndarray:  # (N, G, C/G, taps, OH, OW)
        return padded[batch, channel, (y0 + dy + margin)[:, :, None], (x0 + dx + margin)[:, :, None]]

    wy0, wx0, wy1, wx1 = (one - fy)[:, :, None], (one - fx)[:, :, None], fy[:, :, None], fx[:, :, None]
    blend = (corner(0, 0) * wy0 * wx0 + corner(0, 1) * wy0 * wx1 + corner(1, 0) * wy1 * wx0
             + corner(1, 1) * wy1 * wx1)
    samples = reference_round_shift(blend, np.int64(op.sample_shift))
    out_h, out_w = samples.shape[-2:]
    if mask is not None:
        samples = samples * centred(mask, tensors[2]).reshape(n, groups, 1, op.taps, out_h, out_w)
    return samples.reshape(n, -1, op.taps, out_h, out_w)


def reference_deform_conv(op: DeformConv, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    mask = args[2] if op.has_mask else None
    samples = reference_deform_samples(op, args[0], args[1], mask, tensors)
    n, channels, taps, out_h, out_w = samples.shape
    groups = op.groups
    # (N, G, C/G * taps, OH*OW) against weights (G, O/G, C/G * taps): the im2col of a grouped conv
    cols = samples.reshape(n, groups, (channels // groups) * taps, out_h * out_w)
    weight = op.weight.reshape(groups, op.out_channels // groups, -1)
    acc = np.matmul(weight[None].astype(np.int64), cols).reshape(n, op.out_channels, out_h, out_w)
    return op.requant.apply(acc + op.bias.reshape(1, -1, 1, 1))


def reference_pool(op: Pool, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    """A reduction over the windows' last two axes."""
    tensor = tensors[0]
    values = centred(args[0], tensor)
    if op.mode == "max":
        lowest = tensor.dtype.min - tensor.zero_point - 1
        acc = windows(values, op.kernel, op.stride, op.pads, (1, 1), lowest).max(axis=(4, 5))
    else:
        acc = windows(values, op.kernel, op.stride, op.pads, (1, 1), 0).sum(axis=(4, 5))
    return op.requant.apply(acc)


@contextlib.contextmanager
def reference_golden() -> Iterator[None]:
    """The golden model (`run_golden`) computing with the reference arithmetic above."""
    patches = [(conv_golden, "convolve", reference_convolve), (channelwise_golden, "convolve", reference_convolve),
               (sparse_golden, "convolve", reference_convolve), (conv_golden, "exact_matmul", reference_matmul),
               (requant, "round_shift", reference_round_shift)]
    saved = [(module, name, getattr(module, name)) for module, name, _ in patches]
    rules = [(deform_golden.GOLDEN.rules, DeformConv, reference_deform_conv),
             (channelwise_golden.GOLDEN.rules, Pool, reference_pool)]
    saved_rules = [(table, kind, table[kind]) for table, kind, _ in rules]
    try:
        for module, name, value in patches:
            setattr(module, name, value)
        for table, kind, rule in rules:
            table[kind] = rule  # type: ignore[index]
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)
        for table, kind, rule in saved_rules:
            table[kind] = rule  # type: ignore[index]
