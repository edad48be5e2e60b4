"""One way to quantize a float model for the accelerator: `hwcodesign quantize` and `quantize_model`.

onnxruntime's `quantize_static` (through `hwcodesign.quantize.quantize_qdq`) does the
quantizing; this flow tells it what the hardware wants, and finishes what it cannot do:

* symmetric int8 (or int4) weights per output channel (per tensor on request), uint8 activations;
* float pre and post parts, the sparse active-site mask and its Muls, DeformConv offset Clips and
  the user's `host` nodes stay float (`flows/float_parts.py` says which and why);
* a sparse input whose calibration frames lie on a binary grid keeps it exactly: event counts
  (integers 0..255) keep scale 1 (uint8), signed values such as voxel grids in multiples of 2^-k
  keep scale 2^-k (int8 when any is negative), as the sparse examples quantize them; a site whose
  value rounded to zero would otherwise turn inactive in the integer model only;
* a conv output quantized both before and after its mask Mul keeps only the second quantizer
  when the first changes nothing the second does not (a ReLU's clamp at 0, a wider range): one
  rounding and no extra requantization layer;
* DeformConvs, which onnxruntime leaves float, get integer weights, offsets clipped to the
  model's bound and rounded onto the int8 grid, and a quantized output (`flows/deform_grid.py`).

Calibration is float frames: an array (N, ...) for a one-input model, arrays by input name, or
the path of a .npy/.npz holding those (read by `hwcodesign.frames`, never unpickled).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from hwcodesign.errors import HwcodesignError
from hwcodesign.flows.deform_grid import put_deformconv_on_grid
from hwcodesign.flows.float_parts import FloatGroup, float_groups
from hwcodesign.frames import frame_array, load_float_frames
from hwcodesign.frontend.loader import read_model
from hwcodesign.frontend.sparse import mask_nodes, sparse_roots
from hwcodesign.onnx_edit import GraphEdit, fresh_name, inline_constants, keep_used_opsets
from hwcodesign.outputs import check_output_file, write_file_atomically
from hwcodesign.quantize import WEIGHT_TYPES, quantize_qdq

INT4_OPSET = 21  # native int4 QuantizeLinear/DequantizeLinear
GRID_FINEST = 8  # a sparse input's exact grid is at most this fine: steps 2^0 .. 2^-8

Calibration = np.ndarray | Mapping[str, np.ndarray] | str | os.PathLike[str]


@dataclass(frozen=True)
class Quantized:
    """A quantized model and what the flow decided: the groups kept float, and notes."""

    model: onnx.ModelProto
    kept_float: tuple[FloatGroup, ...]
    notes: tuple[str, ...]


def input_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Static shape of each graph input (a symbolic batch counts as 1: frames are fed one at a time)."""
    inits = {i.name for i in model.graph.initializer}
    shapes = {}
    for value in model.graph.input:
        if value.name in inits:
            continue
        dims = value.type.tensor_type.shape.dim
        shape = tuple(d.dim_value if d.HasField("dim_value") else (1 if i == 0 else 0) for i, d in enumerate(dims))
        if any(s <= 0 for s in shape):
            raise HwcodesignError(f"input '{value.name}' has no static shape ({shape}); export the model with "
                                  "fixed input sizes")
        shapes[value.name] = shape
    return shapes


def calibration_feeds(model: onnx.ModelProto, calibration: Calibration) -> list[dict[str, np.ndarray]]:
    """Batch-1 feeds by input name from `calibration`, checked against the model's inputs."""
    shapes = input_shapes(model)
    if isinstance(calibration, str | os.PathLike):
        frames = load_float_frames(calibration, shapes)
    else:
        arrays = {next(iter(shapes)): calibration} if isinstance(calibration, np.ndarray) else dict(calibration)
        if set(arrays) != set(shapes):
            raise HwcodesignError(f"calibration: the model's inputs are {', '.join(shapes)}; got arrays for "
                                  f"{', '.join(arrays) or 'nothing'}")
        frames = {name: frame_array(f"calibration for input '{name}'", np.asarray(arrays[name]), shapes[name][1:])
                  .astype(np.float32) for name in shapes}
        if len({len(value) for value in frames.values()}) > 1:
            raise HwcodesignError("calibration: the inputs have different frame counts")
    count = len(next(iter(frames.values())))
    return [{name: value[i:i + 1] for name, value in frames.items()} for i in range(count)]


def named_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose every node has a unique name: onnxruntime excludes nodes by name."""
    named = onnx.ModelProto()
    named.CopyFrom(model)
    taken = {node.name for node in named.graph.node if node.name}
    seen: set[str] = set()
    for node in named.graph.node:
        if not node.name or node.name in seen:
            node.name = fresh_name(f"{node.op_type}_{node.output[0]}", taken)
        seen.add(node.name)
    return named


def with_int4_opset(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model at default-domain opset 21 (int4 Q/DQ); its IR version not raised."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset >= INT4_OPSET:
        return model
    converted = onnx.version_converter.convert_version(model, INT4_OPSET)
    converted.ir_version = min(converted.ir_version, model.ir_version)
    return converted


def exact_grid(values: np.ndarray) -> tuple[float, type[np.integer]] | None:
    """(step, uint8 or int8) of the coarsest binary grid 2^-k (k = 0..GRID_FINEST) holding every
    value as a code of that type with zero point 0, or None: event counts are (1, uint8)."""
    for k in range(GRID_FINEST + 1):
        codes = values.astype(np.float64) * 2.0 ** k
        if not np.array_equal(codes, np.rint(codes)):
            continue
        lowest, highest = (codes.min(), codes.max()) if codes.size else (0.0, 0.0)
        if lowest >= 0 and highest <= np.iinfo(np.uint8).max:
            return 2.0 ** -k, np.uint8
        if lowest >= np.iinfo(np.int8).min and highest <= np.iinfo(np.int8).max:
            return 2.0 ** -k, np.int8
        return None  # a finer grid only makes the codes larger
    return None


def exact_grid_overrides(model: onnx.ModelProto, feeds: Sequence[dict[str, np.ndarray]]
                         ) -> tuple[dict[str, list], list[str]]:
    """onnxruntime TensorQuantOverrides keeping each sparse input that its calibration frames show
    on an exact grid (`exact_grid`) on that grid, and the notes saying so."""
    overrides, notes = {}, []
    for root in sparse_roots(model):
        grid = exact_grid(np.concatenate([feed[root].ravel() for feed in feeds]))
        if grid is None:
            continue
        step, dtype = grid
        signed = dtype is np.int8
        overrides[root] = [{"scale": np.array(step, np.float32), "zero_point": np.array(0, dtype),
                            **({"quant_type": "int8"} if signed else {})}]
        notes.append(f"input '{root}' keeps its grid: scale {step:g}, {'int8' if signed else 'uint8'} zero point 0 "
                     f"(its calibration frames are {'signed ' if signed else ''}multiples of {step:g})")
    return overrides, notes


def quantizer_params(edit: GraphEdit, node: onnx.NodeProto) -> tuple[float, int, int, int] | None:
    """(scale, zero point, qmin, qmax) of a per-tensor Q/DQ node with constant parameters."""
    if len(node.input) < 3 or node.input[1] not in edit.inits or node.input[2] not in edit.inits:
        return None
    scale, zero = edit.const(node.input[1]), edit.const(node.input[2])
    if scale.size != 1 or zero.size != 1 or zero.dtype.kind not in "iu":
        return None
    info = np.iinfo(zero.dtype)
    return float(scale), int(zero), int(info.min), int(info.max)


def drop_quantizers_before_masks(model: onnx.ModelProto, muls: Sequence[str]) -> int:
    """Remove a Q/DQ pair that feeds only a mask Mul whose output is quantized again on a range the
    pair's contains: the second quantizer alone clamps the same (the mask is 0/1, so it commutes
    with clamping). Returns how many pairs were dropped."""
    edit = GraphEdit(model)
    dropped = 0
    for node in [n for n in model.graph.node if n.name in set(muls)]:
        for index, tensor in enumerate(node.input):
            dq = edit.producer(tensor)
            q = edit.producer(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
            after = edit.consumers(node.output[0])
            if q is None or q.op_type != "QuantizeLinear" or len(edit.consumers(tensor)) != 1 \
                    or len(edit.consumers(q.output[0])) != 1 or not after \
                    or any(a.op_type != "QuantizeLinear" for a in after):
                continue
            first = quantizer_params(edit, q)
            seconds = [quantizer_params(edit, a) for a in after]
            if first is None or None in seconds:
                continue
            s1, z1, lo1, hi1 = first
            inside = all(s2 * (lo2 - z2) >= s1 * (lo1 - z1) and s2 * (hi2 - z2) <= s1 * (hi1 - z1)
                         for s2, z2, lo2, hi2 in seconds)  # type: ignore[misc]
            if inside:
                node.input[index] = q.input[0]
                edit.remove(q, dq)
                dropped += 1
    edit.finish()
    return dropped


def quantize_float_model(model: onnx.ModelProto | str | os.PathLike[str], calibration: Calibration, *,
                         weight_bits: int = 8, per_channel: bool = True, host: Sequence[str] = (),
                         symmetric_activations: bool = False) -> Quantized:
    """`model` quantized for the accelerator (see the module docstring), with what was kept float."""
    if weight_bits not in WEIGHT_TYPES:
        raise HwcodesignError(f"weight bits must be one of {sorted(WEIGHT_TYPES)}, got {weight_bits}")
    source = named_nodes(read_model(model if isinstance(model, onnx.ModelProto) else Path(model)))
    inline_constants(source)  # the exporter's shared initializers, each its own again
    if weight_bits == 4:
        source = with_int4_opset(source)
    feeds = calibration_feeds(source, calibration)
    groups = float_groups(source, host)
    overrides, notes = exact_grid_overrides(source, feeds)
    extra = {"TensorQuantOverrides": overrides} if overrides else None
    quantized = quantize_qdq(source, feeds, weight_bits=weight_bits, per_channel=per_channel,
                             symmetric_activations=symmetric_activations,
                             nodes_to_exclude=[name for group in groups for name in group.nodes], extra_options=extra)
    _, muls = mask_nodes(source)
    dropped = drop_quantizers_before_masks(quantized, [mul.name for mul in muls])
    if dropped:
        notes.append(f"{dropped} conv output(s) quantized once, after the mask Mul (the quantizer before it "
                     "changed nothing)")
    if any(node.op_type == "DeformConv" for node in source.graph.node):
        quantized = put_deformconv_on_grid(quantized, source, feeds, weight_bits, symmetric_activations)
        notes.append("DeformConv weights, offsets (clipped to the model's Clip bound, int8 grid) and outputs "
                     "quantized after onnxruntime")
    quantized.ir_version = min(quantized.ir_version, source.ir_version)
    keep_used_opsets(quantized)
    onnx.checker.check_model(quantized)
    return Quantized(quantized, tuple(groups), tuple(notes))


def quantize_model(model: onnx.ModelProto | str | os.PathLike[str], calibration: Calibration, *,
                   weight_bits: int = 8, per_channel: bool = True, host: Sequence[str] = (),
                   symmetric_activations: bool = False) -> onnx.ModelProto:
    """`model` quantized for the accelerator: `quantize_float_model(...).model`."""
    return quantize_float_model(model, calibration, weight_bits=weight_bits, per_channel=per_channel,
                                host=host, symmetric_activations=symmetric_activations).model


def quantize_file(model: str | os.PathLike[str], calibration: str | os.PathLike[str], out: str | os.PathLike[str],
                  **options: object) -> tuple[Path, Quantized]:
    """Quantize the model file `model` on the frames file `calibration` into `out` (.onnx), written
    atomically; the inputs are never overwritten. Returns the path written and the result."""
    path = check_output_file(out, ".onnx", inputs=(model, calibration))
    result = quantize_float_model(model, calibration, **options)  # type: ignore[arg-type]
    write_file_atomically(path, lambda stream: stream.write(result.model.SerializeToString()))
    return path, result
