"""DeformConv on the integer grid after onnxruntime's `quantize_static`, which does not know the op
and leaves it float.

The deform family lowers a DeformConv whose input, offsets and output are quantized, whose
weights are integer per output channel and whose offsets are bounded: their quantized range is
the line buffer the hardware needs (`hwcodesign/ops/deform/lowering.py`). The model declares the
bound as `Clip(-R, R)` on the offset branch (the quantizer keeps those Clips float); this module
then writes, per DeformConv:

* weight: `DequantizeLinear(int per-output-channel initializer, axis=0)`, symmetric, as
  onnxruntime quantizes Conv weights (`weight_bits` 8 or 4);
* bias: `DequantizeLinear(int32, scale = x_scale * w_scale, axis=0)`, as onnxruntime does;
* offsets: the Clip fed directly by the offset conv (onnxruntime's uint8 pair between them is
  dropped) and followed by `QuantizeLinear(int8, scale R/127, zero point 0) -> DequantizeLinear`:
  the offsets are clipped to the model's bound and rounded onto a grid spanning exactly [-R, R];
  CoDeNet's integer square offsets, Mul(Round(Clip(s, 0, N)), P), stay as they are (float, the
  lowering's Round puts them on the integers);
* output: a uint8 pair calibrated (MinMax) on the float model (int8 with zero point 0 and scale
  max|x| / 127 when the activations are symmetric, as onnxruntime's ActivationSymmetric), absorbing a following ReLU as
  onnxruntime does for Conv -> Relu; when that tensor only feeds a nearest Resize or MaxPool
  onnxruntime already quantized (the same values, hence the same range), that grid is reused.

This was the CoDeNet example's graph editor; it lives here so every DeformConv model gets it.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper

from hwcodesign.errors import HwcodesignError
from hwcodesign.onnx_edit import GraphEdit
from hwcodesign.reference import Reference

OFFSET_BITS = 8


def offset_clip(edit: GraphEdit, node: onnx.NodeProto) -> onnx.NodeProto | None:
    """The Clip(-R, R) that declares a DeformConv's offset bound, if its offsets come from one."""
    clip = edit.producer(node.input[2])
    return clip if clip is not None and clip.op_type == "Clip" and len(clip.input) >= 3 else None


def integer_offset_chain(producer: Callable[[str], onnx.NodeProto | None], node: onnx.NodeProto,
                         constants: Container[str]) -> list[onnx.NodeProto]:
    """[Clip, Round, Mul] when a DeformConv's offsets are CoDeNet's integer square offsets,
    Mul(Round(Clip(s, 0, N)), P) (P a constant: the square pattern the lowering checks), else [].

    They stay float through onnxruntime's quantizer, whose calibrated grids would make the
    integers fractional: the lowering puts a Round's output on the integers itself (scale 1)."""
    mul = producer(node.input[2]) if len(node.input) > 2 else None
    if mul is None or mul.op_type != "Mul" or not any(name in constants for name in mul.input):
        return []
    data = [name for name in mul.input if name not in constants]
    rounding = producer(data[0]) if len(data) == 1 else None
    if rounding is None or rounding.op_type != "Round":
        return []
    clip = producer(rounding.input[0])
    return ([clip] if clip is not None and clip.op_type == "Clip" else []) + [rounding, mul]


def clip_bound(edit: GraphEdit, clip: onnx.NodeProto, where: str) -> float:
    """R of a constant, symmetric Clip(-R, R); anything else is refused naming the DeformConv."""
    if clip.input[1] not in edit.inits or clip.input[2] not in edit.inits:
        raise HwcodesignError(f"{where}: the offset Clip '{clip.name}' needs constant bounds (the offset range R)")
    lo, hi = float(edit.const(clip.input[1])), float(edit.const(clip.input[2]))
    if not (hi > 0 and lo == -hi):
        raise HwcodesignError(f"{where}: the offset Clip '{clip.name}' is [{lo:g}, {hi:g}], not a symmetric "
                              "range [-R, R]")
    return hi


def int_weights_per_channel(w: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-output-channel integer weights: scale = 2 max|w| / (2**bits - 1) over the full
    signed range, zero point 0, q = clip(round_half_even(w / scale)). Returns (q int64, scale)."""
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    absmax = np.abs(w.reshape(len(w), -1)).max(axis=1).astype(np.float64)
    scale = np.where(absmax > 0, 2 * absmax / (qmax - qmin), 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale.reshape(-1, *([1] * (w.ndim - 1)))), qmin, qmax).astype(np.int64)
    return q, scale


def uint8_params(lo: float, hi: float) -> tuple[np.float32, np.uint8]:
    """Asymmetric uint8 scale and zero point for [lo, hi], as onnxruntime's MinMax calibration."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = np.float32((hi - lo) / 255.0) if hi > lo else np.float32(1.0)
    return scale, np.uint8(np.clip(np.rint(-lo / scale), 0, 255))


def int8_symmetric_params(lo: float, hi: float) -> tuple[np.float32, np.int8]:
    """Symmetric int8 scale (max|x| / 127) and zero point 0 for [lo, hi], as onnxruntime's MinMax
    calibration with ActivationSymmetric (the range [-127, 127])."""
    absmax = max(abs(lo), abs(hi))
    return (np.float32(absmax / 127.0) if absmax > 0 else np.float32(1.0)), np.int8(0)


def calibrate_ranges(model: onnx.ModelProto, names: list[str],
                     feeds: Sequence[dict[str, np.ndarray]]) -> dict[str, tuple[float, float]]:
    """(min, max) of the float model's tensors `names` over `feeds` (onnxruntime with its default
    graph optimisations and two threads, as when the CoDeNet example's scales were first made)."""
    reference = Reference(model, intermediates=names, optimized=True, threads=2)
    lo = {n: np.inf for n in names}
    hi = {n: -np.inf for n in names}
    for feed in feeds:
        values = reference.run(feed, names)
        for n in names:
            lo[n] = min(lo[n], float(values[n].min()))
            hi[n] = max(hi[n], float(values[n].max()))
    return {n: (lo[n], hi[n]) for n in names}


def qdq_pair(edit: GraphEdit, tensor: str, scale: str, zero_point: str, base: str) -> str:
    """Append QuantizeLinear -> DequantizeLinear on `tensor`; return the dequantized name."""
    q = edit.add_node("QuantizeLinear", [tensor, scale, zero_point], f"{tensor}_QuantizeLinear_Output",
                      f"{base}_QuantizeLinear")
    return edit.add_node("DequantizeLinear", [q, scale, zero_point], f"{tensor}_DequantizeLinear_Output",
                         f"{base}_DequantizeLinear")


def grid_preserving_quantizer(edit: GraphEdit, tensor: str) -> tuple[str, str] | None:
    """(scale, zero point) names of the quantizer onnxruntime put after the value-preserving
    op (nearest Resize, MaxPool) that is `tensor`'s only consumer, if there is one."""
    users = edit.consumers(tensor)
    if len(users) != 1 or users[0].op_type not in ("Resize", "MaxPool"):
        return None
    mode = next((helper.get_attribute_value(a) for a in users[0].attribute if a.name == "mode"), b"nearest")
    if users[0].op_type == "Resize" and mode not in (b"nearest", "nearest"):
        return None
    quantizers = edit.consumers(users[0].output[0])
    if not quantizers or any(q.op_type != "QuantizeLinear" for q in quantizers):
        return None
    params = {(q.input[1], q.input[2]) for q in quantizers}
    return params.pop() if len(params) == 1 else None


def quantize_weight_and_bias(edit: GraphEdit, node: onnx.NodeProto, base: str, x_scale: float, bits: int) -> None:
    w = edit.const(node.input[1]).astype(np.float32)
    q, w_scale = int_weights_per_channel(w, bits)
    packed = TensorProto.INT4 if bits == 4 else None  # 4-bit values are packed; int8 ones are numpy int8
    storage = np.int64 if bits == 4 else np.int8
    w_names = [edit.add_init(f"{node.input[1]}_quantized", q.astype(storage), packed),
               edit.add_init(f"{node.input[1]}_scale", w_scale),
               edit.add_init(f"{node.input[1]}_zero_point", np.zeros(len(w), storage), packed)]
    node.input[1] = edit.add_node("DequantizeLinear", w_names, f"{node.input[1]}_DequantizeLinear_Output",
                                  f"{base}_weight_DequantizeLinear", axis=0)
    if len(node.input) > 3 and node.input[3]:
        b = edit.const(node.input[3]).astype(np.float64)
        b_scale = (x_scale * w_scale.astype(np.float64)).astype(np.float32)
        qb = np.rint(b / b_scale).astype(np.int32)
        b_names = [edit.add_init(f"{node.input[3]}_quantized", qb),
                   edit.add_init(f"{node.input[3]}_quantized_scale", b_scale),
                   edit.add_init(f"{node.input[3]}_quantized_zero_point", np.zeros(len(qb), np.int32))]
        node.input[3] = edit.add_node("DequantizeLinear", b_names, f"{node.input[3]}_DequantizeLinear_Output",
                                      f"{base}_bias_DequantizeLinear", axis=0)


def quantize_offsets(edit: GraphEdit, node: onnx.NodeProto, base: str) -> None:
    """Conv -> Clip(-R, R) -> Q(int8, R/127) -> DQ: clipped to the model's bound, on the grid.
    Integer square offsets (`integer_offset_chain`) are left as they are: already integers."""
    if integer_offset_chain(edit.producer, node, edit.inits):
        return
    clip = offset_clip(edit, node)
    if clip is None:
        raise HwcodesignError(f"DeformConv '{base}': its offsets do not come from a Clip(-R, R), the bound the "
                              "hardware's line buffer is sized for")
    bound = clip_bound(edit, clip, f"DeformConv '{base}'")
    feed_dq = edit.producer(clip.input[0])
    if feed_dq is not None and feed_dq.op_type == "DequantizeLinear":
        feed_q = edit.producer(feed_dq.input[0])
        if feed_q is not None and feed_q.op_type == "QuantizeLinear" and len(edit.consumers(feed_dq.output[0])) == 1 \
                and len(edit.consumers(feed_q.output[0])) == 1:
            clip.input[0] = feed_q.input[0]  # the offsets are quantized once, after the Clip
            edit.remove(feed_q, feed_dq)
    off_scale = edit.add_init(f"{clip.output[0]}_scale", np.float32(bound / (2 ** (OFFSET_BITS - 1) - 1)))
    off_zp = edit.add_init(f"{clip.output[0]}_zero_point", np.int8(0))
    node.input[2] = qdq_pair(edit, clip.output[0], off_scale, off_zp, f"{base}_offset")


def quantize_output(edit: GraphEdit, node: onnx.NodeProto, base: str, lo: float, hi: float,
                    symmetric: bool = False) -> None:
    """DeformConv -> Q(u8) -> DQ, absorbing a following ReLU (zero point 0: the quantizer's clamp at
    0 is the ReLU); with symmetric activations, DeformConv -> ReLU -> Q(int8) -> DQ (an int8
    quantizer does not clamp at 0, so the ReLU stays, for the lowering to fuse)."""
    out = node.output[0]
    users = edit.consumers(out)
    relu = users[0] if len(users) == 1 and users[0].op_type == "Relu" else None
    replaced = relu.output[0] if relu is not None else out
    scale, zp = int8_symmetric_params(lo, hi) if symmetric else uint8_params(lo, hi)
    if relu is not None and zp != 0:
        raise HwcodesignError(f"DeformConv '{base}': a ReLU can only be absorbed with zero point 0, got {zp}")
    quantized = replaced if symmetric else out  # what the quantizer reads
    shared = grid_preserving_quantizer(edit, replaced)
    if shared is not None:
        o_scale, o_zp = shared
        theirs = float(edit.const(o_scale))
        if abs(theirs - scale) > 0.01 * scale or int(edit.const(o_zp)) != int(zp):
            raise HwcodesignError(f"DeformConv '{base}': calibrated output scale {scale} disagrees with "
                                  f"onnxruntime's {theirs} for the same values")
    else:
        o_scale = edit.add_init(f"{replaced}_scale", scale)
        o_zp = edit.add_init(f"{replaced}_zero_point", zp)
    if relu is not None and not symmetric:
        edit.remove(relu)
    if quantized in {value.name for value in edit.graph.output}:  # the ReLU's output is renamed: the graph's is the DQ's
        quantized = relu.output[0] = f"{replaced}_before_quantizer"
    dq_out = qdq_pair(edit, quantized, o_scale, o_zp, base)
    dequantizer = edit.producer(dq_out)
    assert dequantizer is not None
    if replaced in {value.name for value in edit.graph.output}:  # a graph output keeps its name
        dequantizer.output[0] = replaced
        return
    edit.rewire(replaced, dq_out, skip=[dequantizer, edit.producer(dequantizer.input[0])])  # type: ignore[list-item]


def put_deformconv_on_grid(quantized: onnx.ModelProto, float_model: onnx.ModelProto,
                           feeds: Sequence[dict[str, np.ndarray]], weight_bits: int,
                           symmetric_activations: bool = False) -> onnx.ModelProto:
    """Every DeformConv of an onnxruntime QDQ model (which leaves them float) quantized as the
    module docstring says; `float_model` and `feeds` calibrate the outputs."""
    model = onnx.ModelProto()
    model.CopyFrom(quantized)
    edit = GraphEdit(model)
    deforms = [n for n in model.graph.node if n.op_type == "DeformConv"]
    if not deforms:
        return model
    float_edit = GraphEdit(float_model)
    calibrated_on = {}  # which float tensor each output quantizer is calibrated on (after an absorbed ReLU)
    for fnode in (n for n in float_model.graph.node if n.op_type == "DeformConv"):
        users = float_edit.consumers(fnode.output[0])
        relu = users[0] if len(users) == 1 and users[0].op_type == "Relu" else None
        calibrated_on[fnode.output[0]] = relu.output[0] if relu else fnode.output[0]
    ranges = calibrate_ranges(float_model, sorted(set(calibrated_on.values())), feeds)
    for node in deforms:
        base = node.name or node.output[0]
        x_dq = edit.producer(node.input[0])
        if x_dq is None or x_dq.op_type != "DequantizeLinear":
            raise HwcodesignError(f"DeformConv '{base}': its input X is not quantized (a float part before it?); "
                                  "it runs on the accelerator only with a quantized input")
        quantize_weight_and_bias(edit, node, base, float(edit.const(x_dq.input[1])), weight_bits)
        quantize_offsets(edit, node, base)
        quantize_output(edit, node, base, *ranges[calibrated_on[node.output[0]]], symmetric=symmetric_activations)
    edit.finish()
    return model
