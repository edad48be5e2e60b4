"""Build the CoDeNet-like example detector as float and 4-bit-weight/8-bit-activation QDQ ONNX.

``build_codenet(out_dir)`` writes

* ``codenet_float.onnx`` -- the float detector (opset 19): input ``input`` (1, 3, 256, 256);
  outputs ``heatmap`` (1, 20, 64, 64, logits), ``size`` (1, 2, 64, 64) and ``offset``
  (1, 2, 64, 64); three standard ``DeformConv`` nodes; every BatchNorm folded into the
  convolution before it (``CoDeNet.fused_for_export``);
* ``codenet_w4a8.onnx`` -- the same detector in QDQ form (opset 21): per-output-channel
  symmetric int4 weights, int32 biases, asymmetric uint8 activations, int8 offsets.

Weights are random (fixed seed), not trained (no data set is downloaded): the detector is
structurally faithful but detects nothing in particular. Three things make it behave like a
trained, quantization-aware network rather than a random one (see ``make_model``):
BatchNorm statistics from synthetic scenes (bright class-coloured rectangles on noise) that
rescale without centring, offsets = a static deformation in [-R, R] plus an input-dependent
part (5-10% of them hit the Clip), head outputs rescaled to detector-like statistics, and
folded weights snapped to the int4 grid (``snap_to_weight_grid``, emulating CoDeNet's
quantization-aware training).

QDQ convention of each deformable stage (``check_qdq`` verifies it, ``deform_convention``
lists it)::

    x_dq = DequantizeLinear(x_u8, s_x, 0)                  # shared by both branches
    off  = Conv(x_dq, DQ(int4 W, axis 0), DQ(int32 B, axis 0))
    off  = Clip(off, -R, R)                                # R = 2: declares the offset range
    o_dq = DequantizeLinear(QuantizeLinear(off, R/127, int8 0), R/127, int8 0)
    y    = DeformConv(x_dq, DQ(int4 W, axis 0), o_dq, DQ(int32 B, axis 0),
                      kernel_shape=[3,3], pads=[1,1,1,1], strides=[1,1], dilations=[1,1],
                      group=C, offset_group=1)
    y_dq = DequantizeLinear(QuantizeLinear(y, s_y, u8 0), s_y, u8 0)   # ReLU absorbed (zp 0)
    up   = Resize(y_dq, scales=[1,1,2,2], nearest, asymmetric, floor)
    up_dq = DequantizeLinear(QuantizeLinear(up, s_y, u8 0), s_y, u8 0) # same grid
    -> 1x1 Conv -> Q/DQ (ReLU absorbed) -> next stage

``hwcodesign.flows.quantize.quantize_model`` makes it (``hwcodesign quantize --weight-bits 4``):
onnxruntime's ``quantize_static`` does everything except the DeformConvs, which it does not
know; the offset Clips are kept float so they survive, and ``hwcodesign.flows.deform_grid`` then
adds per DeformConv the int4 weights and int32 bias, the int8 offset quantizer after the Clip
(removing the uint8 one onnxruntime put between the offset Conv and the Clip) and the uint8
output quantizer, absorbing the following ReLU as onnxruntime does for Conv -> Relu.

CLI::

    python examples/codenet/build.py --out build/examples/codenet
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
from onnx import TensorProto, helper

from hwcodesign.flows.quantize import quantize_model
from hwcodesign.onnx_edit import GraphEdit, inline_constants
from hwcodesign.quantize import quiet
from hwcodesign.reference import Reference

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # examples/script_loader.py
from script_loader import load_script  # noqa: E402

FLOAT_FILE = "codenet_float.onnx"
QDQ_FILE = "codenet_w4a8.onnx"
INPUT_NAME = "input"
OUTPUT_NAMES = ("heatmap", "size", "offset")
IR_VERSION = 10  # onnxruntime 1.31 reads IR <= 10
CALIBRATION_IMAGES = 16
WEIGHT_BITS = 4
DEFAULT_OUT = Path("build/examples/codenet")


def sibling(name: str) -> ModuleType:
    """``examples/codenet/<name>.py`` imported as ``codenet_<name>`` (the folder is not a package)."""
    return load_script(HERE / f"{name}.py", f"codenet_{name}")


# ---------------------------------------------------------------------------
# Synthetic scenes
# ---------------------------------------------------------------------------


def class_colours(num_classes: int = 20, seed: int = 0) -> np.ndarray:
    """A fixed bright RGB colour per class, (num_classes, 3) in [0.45, 1]."""
    rng = np.random.default_rng([seed, 500])
    return rng.uniform(0.45, 1.0, size=(num_classes, 3)).astype(np.float32)


def synthetic_scenes(
    n: int, seed: int = 0, stream: int = 0, size: int = 256, num_classes: int = 20, max_objects: int = 4
) -> tuple[np.ndarray, list[np.ndarray]]:
    """``n`` images of bright class-coloured rectangles on dark noise, and their boxes.

    Returns images (n, 3, size, size) float32 in [0, 1] and per image an array (k, 5) of
    ``(class, x0, y0, x1, y1)`` in pixels (x1, y1 exclusive).
    """
    colours = class_colours(num_classes, seed)
    rng = np.random.default_rng([seed, 600, stream])
    images = rng.uniform(0.0, 0.35, size=(n, 3, size, size)).astype(np.float32)
    boxes = []
    for i in range(n):
        objects = []
        for _ in range(rng.integers(1, max_objects + 1)):
            cls = int(rng.integers(num_classes))
            w, h = rng.integers(size // 16, size // 3, size=2)
            x0, y0 = rng.integers(0, size - w), rng.integers(0, size - h)
            images[i, :, y0 : y0 + h, x0 : x0 + w] = colours[cls][:, None, None] * rng.uniform(0.85, 1.0)
            objects.append((cls, x0, y0, x0 + w, y0 + h))
        boxes.append(np.array(objects, dtype=np.float32).reshape(-1, 5))
    return images, boxes


# ---------------------------------------------------------------------------
# Torch model with data-dependent initialisation
# ---------------------------------------------------------------------------


def _calibrate_batchnorm(model, images: np.ndarray, batch: int = 8, center: bool = True) -> None:
    """Set every BatchNorm's running statistics from ``images``.

    ``center=True``: the exact mean/variance. ``center=False``: mean 0 and variance = the mean
    square, so BatchNorm only rescales each channel to unit RMS (see ``make_model``).
    """
    import torch
    from torch import nn

    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the batches below
    model.train()
    with torch.no_grad():
        for start in range(0, len(images), batch):
            model(torch.from_numpy(images[start : start + batch]))
    for bn in bns:
        bn.momentum = 0.1
        if not center:
            bn.running_var += bn.running_mean**2
            bn.running_mean.zero_()
    model.eval()


def _set_offsets(model, images: np.ndarray, dynamic_std: float, seed: int) -> None:
    """Give each offset conv a static part and an input-dependent part.

    The bias becomes a fixed per-channel shift drawn from U(-R, R) (a deformation of the
    sampling grid, as training would learn) and the weights are rescaled so that the
    input-dependent part has standard deviation ``dynamic_std`` pixels.
    """
    import torch

    stages = model.deform_stages()
    seen: dict[int, torch.Tensor] = {}
    hooks = [
        stage.offset.register_forward_hook(lambda _m, _i, out, k=k: seen.__setitem__(k, out.detach()))
        for k, stage in enumerate(stages)
    ]
    with torch.no_grad():
        model(torch.from_numpy(images))
    for hook in hooks:
        hook.remove()
    g = torch.Generator().manual_seed(seed + 2)
    with torch.no_grad():
        for k, stage in enumerate(stages):
            dynamic = seen[k] - stage.offset.bias.view(1, -1, 1, 1)
            stage.offset.weight.mul_(dynamic_std / float(dynamic.std()))
            r = stage.offset_range
            stage.offset.bias.copy_((torch.rand(stage.offset.bias.shape, generator=g) * 2 - 1) * r)


#: (mean, std) per output channel of each head after ``_calibrate_heads``: heatmap logits
#: around -3 (sigmoid 0.05, so few cells pass a 0.3 threshold), box sizes in output cells
#: (~24 +- 8 pixels), sub-cell centre offsets around 0.5.
HEAD_TARGETS = {"heatmap": (-3.0, 0.7), "size": (6.0, 2.0), "center_offset": (0.5, 0.15)}


def _calibrate_heads(model, images: np.ndarray) -> None:
    """Affinely rescale each head's last 1x1 conv so every output channel has the
    ``HEAD_TARGETS`` mean and standard deviation over ``images`` (a data-dependent init that
    makes the random detector's outputs look like a detector's: a few heatmap peaks, plausible
    box sizes and offsets)."""
    import torch

    heads = {name: getattr(model, name) for name in HEAD_TARGETS}
    outs: dict[str, torch.Tensor] = {}
    hooks = [
        head.out.register_forward_hook(lambda _m, _i, o, k=name: outs.__setitem__(k, o.detach()))
        for name, head in heads.items()
    ]
    with torch.no_grad():
        model(torch.from_numpy(images))
        for hook in hooks:
            hook.remove()
        for name, head in heads.items():
            mean, std = outs[name].mean(dim=(0, 2, 3)), outs[name].std(dim=(0, 2, 3))
            target_mean, target_std = HEAD_TARGETS[name]
            gain = target_std / std
            head.out.weight.mul_(gain.view(-1, 1, 1, 1))
            head.out.bias.copy_((head.out.bias - mean) * gain + target_mean)


def make_model(seed: int = 0, offset_dynamic_std: float = 0.5, center_bn: bool = False):
    """The CoDeNet-like detector with random weights and data-dependent BatchNorm statistics.

    BatchNorm gains and shifts are random (U(0.6, 1.4), N(0, 0.2)); the running statistics come
    from 8 synthetic scenes. By default (``center_bn=False``) they are mean 0 and the mean
    square, so each BatchNorm rescales its channels to unit RMS without centring them: a random
    network whose BatchNorms centre every channel is chaotic (perturbations grow by ~1.2x per
    layer, Yang et al., "A Mean Field Theory of Batch Normalization", ICLR 2019), so 8-bit
    activation noise alone would decorrelate the outputs after ~60 layers -- a trained network
    is not like that. Offsets get a static part and an input-dependent part (``_set_offsets``),
    and the heads' output layers are rescaled to detector-like statistics (``_calibrate_heads``).
    """
    import torch
    from torch import nn

    model_mod = sibling("model")
    torch.manual_seed(seed)
    model = model_mod.CoDeNet()
    g = torch.Generator().manual_seed(seed + 1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = torch.rand(c, generator=g) * 0.8 + 0.6
            m.bias.data = 0.2 * torch.randn(c, generator=g)
    images, _ = synthetic_scenes(8, seed=seed, stream=1)
    _calibrate_batchnorm(model, images, center=center_bn)
    _set_offsets(model, images, offset_dynamic_std, seed)
    _calibrate_batchnorm(model, images, center=center_bn)  # the deform outputs changed with the offsets
    _calibrate_heads(model, images)
    return model.eval()


def snap_to_weight_grid(model, bits: int = 4) -> None:
    """Put every (folded) conv weight on onnxruntime's per-channel symmetric ``bits`` grid.

    Emulates quantization-aware training, which CoDeNet used for its 4-bit weights: each
    output channel's weights become k * s with s = 2 max|w| / (2**bits - 1) and
    |k| <= 2**(bits-1) - 1, except the channel's largest-magnitude weight, which keeps
    max|w| so that onnxruntime recomputes the same s (its rounding then costs half a step on
    that one weight only).
    """
    import torch
    from torch import nn

    model_mod = sibling("model")
    qmax = 2 ** (bits - 1) - 1
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, model_mod.DeformConv2d)):
                w = m.weight
                flat = w.reshape(len(w), -1)
                absmax = flat.abs().amax(dim=1, keepdim=True)
                step = (2 * absmax.double() / (2 * qmax + 1)).float()
                snapped = torch.clamp(torch.round(flat / step), -qmax, qmax) * step
                extreme = flat.abs() == absmax
                w.copy_(torch.where(extreme, flat, snapped).reshape(w.shape))


# ---------------------------------------------------------------------------
# ONNX helpers
# ---------------------------------------------------------------------------


def op_counts(model: onnx.ModelProto | str | Path) -> dict[str, int]:
    """Op type counts of a model's main graph."""
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    return dict(sorted(collections.Counter(n.op_type for n in model.graph.node).items()))


def run(reference: Reference, images: np.ndarray) -> list[np.ndarray]:
    """Run a (N, 3, 256, 256) batch through a batch-1 model; the outputs stacked along N."""
    outs = [reference.run({INPUT_NAME: images[i : i + 1]}) for i in range(len(images))]
    return [np.concatenate([out[name] for out in outs]) for name in reference.output_names]


def export_float(model, path: Path, snap: bool = True) -> onnx.ModelProto:
    """Export the detector with the TorchScript exporter at opset 19 and write ``path``.

    BatchNorms are folded first and, with ``snap``, the folded weights put on the int4 grid.
    """
    import torch

    fused = model.fused_for_export()
    if snap:
        snap_to_weight_grid(fused, WEIGHT_BITS)
    dummy = torch.from_numpy(synthetic_scenes(1, stream=2)[0])
    # quiet: TorchScript exporter deprecation, tracer warnings
    with tempfile.TemporaryDirectory() as td, quiet():
        tmp = Path(td) / "float.onnx"
        # dynamo=False: the TorchScript exporter honours autograd.Function.symbolic (-> DeformConv).
        torch.onnx.export(
            fused,
            (dummy,),
            str(tmp),
            dynamo=False,
            opset_version=19,
            do_constant_folding=True,
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
        )
        exported = onnx.load(str(tmp))
    inline_constants(exported)
    exported.ir_version = min(exported.ir_version, IR_VERSION)
    exported.graph.name = "codenet"
    exported = onnx.shape_inference.infer_shapes(exported, strict_mode=True)
    onnx.checker.check_model(exported, full_check=True)
    onnx.save(exported, str(path))
    return exported


# ---------------------------------------------------------------------------
# Quantization
# ---------------------------------------------------------------------------


def quantize_w4a8(float_model: onnx.ModelProto, calibration: np.ndarray) -> onnx.ModelProto:
    """The detector quantized by ``hwcodesign.flows.quantize`` (what ``hwcodesign quantize
    --weight-bits 4`` runs): onnxruntime ``quantize_static`` at opset 21 with int4 per-channel
    weights and uint8 activations, the offset Clips kept, then the DeformConvs put on the grid;
    the result passes ``check_qdq``."""
    return quantize_model(float_model, calibration, weight_bits=WEIGHT_BITS)


# ---------------------------------------------------------------------------
# Checking the QDQ grid
# ---------------------------------------------------------------------------

ACTIVATION_TYPES = (TensorProto.UINT8, TensorProto.INT8)
FUSABLE_ACTIVATIONS = ("Relu", "Clip")


def _attr(node: onnx.NodeProto, name: str, default=None):
    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def check_qdq(model: onnx.ModelProto, weight_types: tuple[int, ...] = (TensorProto.INT4,)) -> list[str]:
    """Problems that keep a Conv or DeformConv off the QDQ integer grid; empty when all is well.

    For each Conv and DeformConv:

    * X (and a DeformConv's offset and mask) is ``DequantizeLinear`` of a uint8/int8 activation;
    * W is ``DequantizeLinear`` (axis 0) of an initializer of a type in ``weight_types``, one
      scale per output channel, zero points 0;
    * B is absent or ``DequantizeLinear`` of an int32 initializer with zero point 0 and scale
      x_scale * w_scale (a DeformConv may also have a plain float initializer bias);
    * the output feeds only ``QuantizeLinear`` (uint8/int8), directly or through one fused
      Relu/Clip, and is not a graph output;
    * a DeformConv's offsets are quantized after a ``Clip(-R, R)`` with constant bounds, and the
      quantizer's reachable values dequantize within [-R, R].
    """
    edit = GraphEdit(model)
    producers = {o: n for n in model.graph.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = collections.defaultdict(list)
    for n in model.graph.node:
        for i in n.input:
            consumers[i].append(n)
    graph_outputs = {o.name for o in model.graph.output}
    problems: list[str] = []

    def const(name: str) -> np.ndarray | None:
        return edit.const(name) if name in edit.inits else None

    def dq_of_activation(node_name: str, tensor: str, what: str) -> onnx.NodeProto | None:
        dq = producers.get(tensor)
        if dq is None or dq.op_type != "DequantizeLinear":
            problems.append(f"{node_name}: {what} '{tensor}' is not produced by DequantizeLinear")
            return None
        if dq.input[0] in edit.inits:
            problems.append(f"{node_name}: {what} is a dequantized constant, not an activation")
            return None
        zp_name = dq.input[2] if len(dq.input) > 2 else ""
        zp_type = edit.inits[zp_name].data_type if zp_name in edit.inits else TensorProto.UINT8
        if zp_type not in ACTIVATION_TYPES:
            problems.append(
                f"{node_name}: {what} is dequantized from {TensorProto.DataType.Name(zp_type)}, not uint8/int8"
            )
        if const(dq.input[1]) is None or const(dq.input[1]).size != 1:
            problems.append(f"{node_name}: {what} scale is not a constant scalar")
        return dq

    for node in model.graph.node:
        if node.op_type not in ("Conv", "DeformConv"):
            continue
        name = node.name or node.output[0]
        x_dq = dq_of_activation(name, node.input[0], "input X")

        # weights
        w_scale = None
        w_dq = producers.get(node.input[1])
        if w_dq is None or w_dq.op_type != "DequantizeLinear" or w_dq.input[0] not in edit.inits:
            problems.append(f"{name}: weight is not DequantizeLinear of an initializer")
        else:
            w_init = edit.inits[w_dq.input[0]]
            if w_init.data_type not in weight_types:
                problems.append(
                    f"{name}: weight type {TensorProto.DataType.Name(w_init.data_type)} not in the expected types"
                )
            out_channels = w_init.dims[0]
            w_scale = const(w_dq.input[1])
            zp = const(w_dq.input[2]) if len(w_dq.input) > 2 else np.zeros(1)
            if w_scale is None or w_scale.shape != (out_channels,) or _attr(w_dq, "axis", 1) != 0:
                problems.append(
                    f"{name}: weight scale is not per output channel (axis 0, {out_channels} scales)"
                )
            if zp is None or np.any(zp.astype(np.int64) != 0):
                problems.append(f"{name}: weight zero points are not all 0")

        # bias
        b_index = 2 if node.op_type == "Conv" else 3
        if len(node.input) > b_index and node.input[b_index]:
            b_name = node.input[b_index]
            b_dq = producers.get(b_name)
            if b_dq is None and b_name in edit.inits and node.op_type == "DeformConv":
                pass  # float bias initializer: acceptable for DeformConv
            elif b_dq is None or b_dq.op_type != "DequantizeLinear" or b_dq.input[0] not in edit.inits:
                problems.append(
                    f"{name}: bias is neither DequantizeLinear of an initializer nor (DeformConv) a float initializer"
                )
            elif edit.inits[b_dq.input[0]].data_type != TensorProto.INT32:
                problems.append(f"{name}: bias is not int32")
            else:
                b_scale = const(b_dq.input[1])
                b_zp = const(b_dq.input[2]) if len(b_dq.input) > 2 else np.zeros(1)
                if b_zp is None or np.any(b_zp != 0):
                    problems.append(f"{name}: bias zero points are not all 0")
                if x_dq is not None and w_scale is not None and b_scale is not None:
                    expected = float(const(x_dq.input[1])) * w_scale.astype(np.float64)
                    if b_scale.shape != expected.shape or not np.allclose(
                        b_scale, expected, rtol=1e-5, atol=0
                    ):
                        problems.append(f"{name}: bias scale is not x_scale * w_scale")

        # DeformConv: offsets (and mask) on the grid, offsets bounded by a Clip
        if node.op_type == "DeformConv":
            off_dq = dq_of_activation(name, node.input[2], "offset")
            if len(node.input) > 4 and node.input[4]:
                dq_of_activation(name, node.input[4], "mask")
            if off_dq is not None:
                off_q = producers.get(off_dq.input[0])
                clip = (
                    producers.get(off_q.input[0])
                    if off_q is not None and off_q.op_type == "QuantizeLinear"
                    else None
                )
                bounds = (
                    [const(i) for i in clip.input[1:3]] if clip is not None and clip.op_type == "Clip" else []
                )
                if len(bounds) != 2 or any(b is None for b in bounds):
                    problems.append(
                        f"{name}: offsets are not quantized right after a Clip with constant min and max"
                    )
                else:
                    lo, hi = (float(b) for b in bounds)
                    if not (hi > 0 and lo == -hi):
                        problems.append(f"{name}: offset Clip [{lo}, {hi}] is not [-R, R]")
                    scale = float(const(off_dq.input[1]))
                    zp = int(const(off_dq.input[2])) if len(off_dq.input) > 2 else 0
                    if any(
                        float(const(off_q.input[i])) != float(const(off_dq.input[i]))
                        for i in (1, 2)
                        if i < len(off_q.input)
                    ):
                        problems.append(
                            f"{name}: offset QuantizeLinear and DequantizeLinear parameters differ"
                        )
                    zp_type = (
                        edit.inits[off_dq.input[2]].data_type if len(off_dq.input) > 2 else TensorProto.UINT8
                    )
                    qmin, qmax = (-128, 127) if zp_type == TensorProto.INT8 else (0, 255)
                    reach = [(np.clip(np.rint(v / scale) + zp, qmin, qmax) - zp) * scale for v in (lo, hi)]
                    if reach[0] < lo * (1 + 1e-6) or reach[1] > hi * (1 + 1e-6):
                        problems.append(
                            f"{name}: quantized offsets reach {reach}, beyond the Clip's [{lo}, {hi}]"
                        )

        # output
        out = node.output[0]
        users = consumers.get(out, [])
        if len(users) == 1 and users[0].op_type in FUSABLE_ACTIVATIONS:
            out = users[0].output[0]
            users = consumers.get(out, [])
        if out in graph_outputs or node.output[0] in graph_outputs:
            problems.append(f"{name}: output is a graph output without quantization")
        if not users or any(u.op_type != "QuantizeLinear" for u in users):
            problems.append(
                f"{name}: output feeds {sorted({u.op_type for u in users})}, not only QuantizeLinear"
            )
        else:
            for u in users:
                zp_type = (
                    edit.inits[u.input[2]].data_type
                    if len(u.input) > 2 and u.input[2] in edit.inits
                    else TensorProto.UINT8
                )
                if zp_type not in ACTIVATION_TYPES:
                    problems.append(
                        f"{name}: output is quantized to {TensorProto.DataType.Name(zp_type)}, not uint8/int8"
                    )
    return problems


def deform_convention(model: onnx.ModelProto) -> list[dict]:
    """Per DeformConv of a (float or QDQ) model: attributes, channels, the offset range R and,
    in a QDQ model, the input/offset/output quantization parameters."""
    edit = GraphEdit(model)
    producers = {o: n for n in model.graph.node for o in n.output}
    consumers = collections.defaultdict(list)
    for n in model.graph.node:
        for i in n.input:
            consumers[i].append(n)
    rows = []

    def through(tensor: str, *ops: str) -> onnx.NodeProto | None:
        node = producers.get(tensor)
        while node is not None and node.op_type in ops:
            node = producers.get(node.input[0])
        return node

    def qparams(dq: onnx.NodeProto | None) -> tuple[float, int, str] | None:
        if dq is None or dq.op_type != "DequantizeLinear":
            return None
        zp = edit.inits[dq.input[2]]
        return (
            float(edit.const(dq.input[1])),
            int(edit.const(dq.input[2])),
            TensorProto.DataType.Name(zp.data_type),
        )

    for node in (n for n in model.graph.node if n.op_type == "DeformConv"):
        w_src = producers.get(node.input[1])
        w_name = w_src.input[0] if w_src is not None else node.input[1]
        w_shape = list(edit.inits[w_name].dims)
        clip = through(node.input[2], "DequantizeLinear", "QuantizeLinear")
        r = float(edit.const(clip.input[2])) if clip is not None and clip.op_type == "Clip" else None
        users = consumers[node.output[0]]
        out_dq = consumers[users[0].output[0]][0] if users and users[0].op_type == "QuantizeLinear" else None
        rows.append(
            {
                "name": node.name,
                "weight_shape": w_shape,
                "weight_type": TensorProto.DataType.Name(edit.inits[w_name].data_type),
                "group": _attr(node, "group", 1),
                "offset_group": _attr(node, "offset_group", 1),
                "kernel_shape": list(_attr(node, "kernel_shape", [])),
                "pads": list(_attr(node, "pads", [0, 0, 0, 0])),
                "strides": list(_attr(node, "strides", [1, 1])),
                "dilations": list(_attr(node, "dilations", [1, 1])),
                "offset_range": r,
                "offset_clip": clip.name if clip is not None and clip.op_type == "Clip" else None,
                "x": qparams(producers.get(node.input[0])),
                "offset": qparams(producers.get(node.input[2])),
                "output": qparams(out_dq),
            }
        )
    return rows


# ---------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------


def build_codenet(out_dir: Path, seed: int = 0) -> dict[str, Path]:
    """Write ``codenet_float.onnx`` and ``codenet_w4a8.onnx`` into ``out_dir``; return their paths
    (keys ``"float"`` and ``"w4a8"``).

    Deterministic for a given seed. Raises AssertionError if the QDQ model is not on the grid.
    """
    import torch

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"float": out_dir / FLOAT_FILE, "w4a8": out_dir / QDQ_FILE}
    old_threads = torch.get_num_threads()
    torch.set_num_threads(min(old_threads, 2))
    try:
        model = make_model(seed)
        float_model = export_float(model, paths["float"])
    finally:
        torch.set_num_threads(old_threads)
    calibration, _ = synthetic_scenes(CALIBRATION_IMAGES, seed=seed, stream=3)
    quantized = quantize_w4a8(float_model, calibration)
    problems = check_qdq(quantized)
    if problems:
        raise AssertionError("QDQ model is not on the grid:\n" + "\n".join(problems))
    onnx.checker.check_model(quantized, full_check=True)
    onnx.save(quantized, str(paths["w4a8"]))
    return paths


def model_stats(paths: dict[str, Path]) -> dict:
    """Parameter counts, sizes, op counts, shapes and DeformConv convention of the built models."""
    torch_params = sibling("model").parameter_count(sibling("model").CoDeNet())
    float_model = onnx.load(str(paths["float"]))
    quantized = onnx.load(str(paths["w4a8"]))
    bits = {TensorProto.INT4: 4, TensorProto.INT8: 8, TensorProto.INT32: 32, TensorProto.FLOAT: 32}
    weights = biases = weight_bits = bias_bits = 0
    producers = {o: n for n in quantized.graph.node for o in n.output}
    inits = {i.name: i for i in quantized.graph.initializer}
    for node in quantized.graph.node:
        if node.op_type not in ("Conv", "DeformConv"):
            continue
        bias_index = 2 if node.op_type == "Conv" else 3
        for index in (1, bias_index):
            if index >= len(node.input) or not node.input[index]:
                continue
            dq = producers.get(node.input[index])
            src = inits[dq.input[0]] if dq is not None else inits[node.input[index]]
            count = int(np.prod(src.dims))
            if index == 1:
                weights, weight_bits = weights + count, weight_bits + count * bits[src.data_type]
            else:
                biases, bias_bits = biases + count, bias_bits + count * bits[src.data_type]

    def shape(value):
        return [d.dim_value for d in value.type.tensor_type.shape.dim]

    return {
        "torch_parameters": torch_params,
        "weights": weights,
        "biases": biases,
        "size_mb_4bit_all_params": torch_params * 4 / 8 / 1e6,
        "size_mb_deployed": (weight_bits + bias_bits) / 8 / 1e6,
        "size_mb_float32": torch_params * 4 / 1e6,
        "inputs": {v.name: shape(v) for v in float_model.graph.input},
        "outputs": {v.name: shape(v) for v in float_model.graph.output},
        "ops_float": op_counts(float_model),
        "ops_w4a8": op_counts(quantized),
        "deform": deform_convention(quantized),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    paths = build_codenet(args.out, seed=args.seed)
    elapsed = time.perf_counter() - start
    stats = model_stats(paths)
    for key, path in paths.items():
        print(f"{key:>6}: {path} ({path.stat().st_size / 1e6:.2f} MB file)")
    print(f"input {stats['inputs']}, outputs {stats['outputs']}")
    print(
        f"parameters: {stats['torch_parameters']:,} in torch (BatchNorm gains/shifts included); "
        f"after folding {stats['weights']:,} int4 weights + {stats['biases']:,} int32 biases"
    )
    print(
        f"model size: {stats['size_mb_4bit_all_params']:.3f} MB at 4 bits per parameter; "
        f"{stats['size_mb_deployed']:.3f} MB as deployed (int4 weights + int32 biases); "
        f"{stats['size_mb_float32']:.2f} MB in float32"
    )
    print("ops (float):", ", ".join(f"{k} {v}" for k, v in stats["ops_float"].items()))
    print("ops (w4a8): ", ", ".join(f"{k} {v}" for k, v in stats["ops_w4a8"].items()))
    for row in stats["deform"]:
        print(
            f"{row['name']}: W {row['weight_shape']} {row['weight_type']}, group {row['group']}, "
            f"offset_group {row['offset_group']}, R {row['offset_range']}, x {row['x']}, "
            f"offset {row['offset']}, out {row['output']}"
        )
    print(f"built in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
