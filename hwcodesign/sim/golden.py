"""The golden model: the lowered graph executed in exact integer arithmetic.

This is the single definition of what the hardware computes. Every layer subtracts its input
zero point, accumulates integer products exactly, and applies its `Requant` output stage. The
C simulation of generated HLS code must match it bit for bit; onnxruntime on the source model
must match it to within one LSB (the only differences being the fixed-point requantization
multiplier and round-half-up versus round-half-to-even on exact ties).

Products are accumulated with float64 BLAS when the operand ranges guarantee every partial sum
stays below 2**53 (exact in float64), otherwise with int64 matmul.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from hwcodesign.ir.graph import Graph
from hwcodesign.ir.op import Input, Op
from hwcodesign.ir.requant import round_shift
from hwcodesign.ir.types import Tensor
from hwcodesign.ops import (
    Act,
    Add,
    Concat,
    Conv,
    DeformConv,
    GlobalAvgPool,
    Linear,
    Pool,
    Resize,
    SubmanifoldConv,
)
from hwcodesign.sim.sparsity import active_mask, root_mask

FLOAT64_EXACT = 2.0**53


def exact_matmul(a: np.ndarray, b: np.ndarray, bound: float) -> np.ndarray:
    """a @ b on integer arrays, exactly; `bound` is an upper bound on any |partial sum|."""
    if bound < FLOAT64_EXACT:
        return np.rint(np.matmul(a.astype(np.float64), b.astype(np.float64))).astype(np.int64)
    return np.matmul(a.astype(np.int64), b.astype(np.int64))


def centred(x: np.ndarray, tensor: Tensor) -> np.ndarray:
    return x.astype(np.int64) - tensor.zero_point


def magnitude(tensor: Tensor) -> int:
    """Largest |x - zero_point| the tensor can hold."""
    return max(tensor.zero_point - tensor.dtype.min, tensor.dtype.max - tensor.zero_point)


def windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
            pads: tuple[int, int, int, int], dilation: tuple[int, int], pad_value: int) -> np.ndarray:
    """Sliding windows of NCHW `x` as (N, C, OH, OW, kh, kw), ONNX padding and dilation."""
    top, left, bottom, right = pads
    padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=pad_value)
    span = ((kernel[0] - 1) * dilation[0] + 1, (kernel[1] - 1) * dilation[1] + 1)
    view = sliding_window_view(padded, span, axis=(2, 3))
    return view[:, :, :: stride[0], :: stride[1], :: dilation[0], :: dilation[1]]


def run_conv(op: Conv, x: np.ndarray, tensor: Tensor) -> np.ndarray:
    n, channels = x.shape[:2]
    groups = op.groups
    cols = windows(centred(x, tensor), op.kernel, op.stride, op.pads, op.dilation, 0)
    _, _, oh, ow, kh, kw = cols.shape
    # (N, G, C/G, OH, OW, kh, kw) -> (N, G, C/G*kh*kw, OH*OW)
    cols = cols.reshape(n, groups, channels // groups, oh, ow, kh, kw)
    cols = cols.transpose(0, 1, 2, 5, 6, 3, 4).reshape(n, groups, -1, oh * ow)
    weight = op.weight.reshape(groups, op.out_channels // groups, -1)
    bound = magnitude(tensor) * float(np.abs(op.weight).max(initial=0)) * weight.shape[2]
    acc = exact_matmul(weight[None], cols, bound).reshape(n, op.out_channels, oh, ow)
    acc = acc + op.bias.reshape(1, -1, 1, 1)
    return op.requant.apply(acc)


def run_linear(op: Linear, x: np.ndarray, tensor: Tensor) -> np.ndarray:
    flat = centred(x, tensor).reshape(x.shape[0], -1)
    weight = op.weight.reshape(op.out_channels, -1)
    bound = magnitude(tensor) * float(np.abs(weight).max(initial=0)) * weight.shape[1]
    acc = exact_matmul(flat, weight.T, bound) + op.bias[None, :]
    return op.requant.apply(acc).reshape(x.shape[0], -1, 1, 1)


def run_pool(op: Pool, x: np.ndarray, tensor: Tensor) -> np.ndarray:
    values = centred(x, tensor)
    if op.mode == "max":
        lowest = tensor.dtype.min - tensor.zero_point - 1
        acc = windows(values, op.kernel, op.stride, op.pads, (1, 1), lowest).max(axis=(4, 5))
    else:
        acc = windows(values, op.kernel, op.stride, op.pads, (1, 1), 0).sum(axis=(4, 5))
    return op.requant.apply(acc)


def run_global_avg_pool(op: GlobalAvgPool, x: np.ndarray, tensor: Tensor) -> np.ndarray:
    return op.requant.apply(centred(x, tensor).sum(axis=(2, 3), keepdims=True))


def run_resize(op: Resize, x: np.ndarray, tensor: Tensor) -> np.ndarray:
    values = centred(x, tensor).repeat(op.scale[0], axis=2).repeat(op.scale[1], axis=3)
    return op.requant.apply(values)


def run_act(op: Act, x: np.ndarray, tensor: Tensor) -> np.ndarray:
    return op.requant.apply(centred(x, tensor))


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


SINGLE_INPUT: dict[type[Op], Callable[..., np.ndarray]] = {
    Conv: run_conv,
    SubmanifoldConv: run_conv,  # then masked to its active sites (run_golden)
    Linear: run_linear,
    Pool: run_pool,
    GlobalAvgPool: run_global_avg_pool,
    Resize: run_resize,
    Act: run_act,
}


def run_op(op: Op, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    """Execute one layer on integer inputs; the result is int64 in the output type's range."""
    if isinstance(op, Add):
        (a, b), (ta, tb) = args, tensors
        acc = centred(a, ta) * op.input_multipliers[0] + centred(b, tb) * op.input_multipliers[1]
        return op.requant.apply(acc)
    if isinstance(op, Concat):
        parts = [rq.apply(centred(x, t)) for rq, x, t in zip(op.input_requants, args, tensors)]
        return np.concatenate(parts, axis=1)
    if isinstance(op, DeformConv):
        return run_deform_conv(op, args, tensors)
    for kind, runner in SINGLE_INPUT.items():
        if isinstance(op, kind):
            return runner(op, args[0], tensors[0])
    raise TypeError(f"golden model has no rule for {type(op).__name__}")


def run_golden(graph: Graph, inputs: np.ndarray | Mapping[str, np.ndarray],
               keep_intermediates: bool = False) -> dict[str, np.ndarray]:
    """Run the graph on integer inputs (one array for single-input graphs, else by Input name).

    Returns the graph outputs by tensor name (every tensor with `keep_intermediates`).
    """
    graph_inputs = graph.inputs
    if not isinstance(inputs, Mapping):
        if len(graph_inputs) != 1:
            raise ValueError(f"graph has {len(graph_inputs)} inputs; pass a dict by input name")
        inputs = {graph_inputs[0].name: inputs}
    values: dict[str, np.ndarray] = {}
    roots: dict[str, np.ndarray] = {}  # active sites of each sparse input
    for op in graph:
        if isinstance(op, Input):
            if op.name not in inputs:
                raise ValueError(f"missing input '{op.name}'")
            values[op.output.name] = check_input(op.output, np.asarray(inputs[op.name]))
            if op.output.sparse:
                roots[op.output.name] = root_mask(values[op.output.name], op.output)
            continue
        args = [values[name] for name in op.inputs]
        result = run_op(op, args, graph.input_tensors(op))
        if op.output.active is not None:  # a sparse layer computes only its active sites
            mask = active_mask(op.output.active, roots)[:, None]
            result = np.where(mask, result, op.output.zero_point)
        values[op.output.name] = result
    if keep_intermediates:
        return values
    return {name: values[name] for name in graph.outputs}


def check_input(tensor: Tensor, x: np.ndarray) -> np.ndarray:
    """Inputs must already be integers of the input type and the declared shape."""
    expected = tensor.shape[1:]
    if x.ndim == 3:
        x = x[None]
    if tuple(x.shape[1:]) != expected:
        raise ValueError(f"input '{tensor.name}' must be (N, {', '.join(map(str, expected))}), got {x.shape}")
    if not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"input '{tensor.name}' must be integers; quantize it with quantize_input()")
    if not tensor.dtype.contains(x):
        raise ValueError(f"input '{tensor.name}' has values outside {tensor.dtype}")
    return x.astype(np.int64)


def quantize_input(graph: Graph, x: np.ndarray, input_name: str | None = None) -> np.ndarray:
    """Float input -> the integers the accelerator takes (QuantizeLinear semantics)."""
    inputs = graph.inputs
    op = inputs[0] if input_name is None else next(i for i in inputs if i.name == input_name)
    return op.output.quantize(x)


def dequantize_outputs(graph: Graph, outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: graph.tensor(name).dequantize(q) for name, q in outputs.items()}
