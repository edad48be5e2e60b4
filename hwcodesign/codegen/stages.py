"""Per-layer HLS code: the config struct, the constant tables and the dataflow call of each stage.

Each IR op maps onto one C++ stage template from `templates/hls/layers/` (hls4ml's idea of a
template beside its config): the template holds the loops and pragmas, this module computes the
numbers it is instantiated with. Everything a stage needs that can be decided here is decided
here, in exact integer arithmetic: accumulator widths come from bounds on the actual weights,
so the C++ wraps nowhere and agrees with the golden model (`sim/golden.py`) bit for bit.
"""

from __future__ import annotations

import numpy as np

from hwcodesign.hardware.ctext import (
    Stage,
    c_type,
    int_list,
    magnitude,
    output_stage,
    require,
    struct,
    weight_memory,
)
from hwcodesign.hardware.folding import Folding
from hwcodesign.hardware.stream import input_words
from hwcodesign.hardware.units import requant_units
from hwcodesign.hardware.window import pixels_as_rows, window_constants
from hwcodesign.ir.op import Op
from hwcodesign.ir.requant import Requant, signed_bits
from hwcodesign.ir.types import IntType, Tensor
from hwcodesign.mapper.cost import input_lanes, pixel_ring
from hwcodesign.ops import (
    Act,
    Add,
    Concat,
    Conv,
    DeformConv,
    DepthwiseConv,
    GlobalAvgPool,
    Linear,
    Pool,
    Resize,
)

# -- sliding-window stages ----------------------------------------------------------------------


def row_steps(geometry: dict[str, int], steps_per_pixel: int, output_steps: int) -> int:
    """Iterations of a sliding-window stage's loop per output row (its LOOP_TRIPCOUNT): the
    compute steps plus the shared output stages' drain, or the STRIDE_H rows' words read ahead
    if longer."""
    compute = geometry["OUT_W"] * steps_per_pixel + output_steps
    return max(compute, geometry["STRIDE_H"] * geometry["IN_W"] * geometry["IN_C"] // geometry["IN_LANES"])


def input_stream(op: Op, folding: Folding, source: Tensor) -> dict[str, int]:
    """Config entries of a line-buffered stage's input: channels per word (the ring's channel
    partition, `cost.input_lanes`) and words per frame."""
    lanes = input_lanes(op, folding, 0, [source])
    return {"IN_LANES": lanes, "IN_WORDS": input_words(source, lanes)}


def conv_stage(op: Conv | Linear, ident: str, source: Tensor, folding: Folding,
               in_stream: str, out_stream: str) -> Stage:
    """A standard/grouped conv (or a Linear as a conv whose kernel is the whole input)."""
    if isinstance(op, Linear):
        weight = op.weight
        geometry = window_constants(source, op.output, source.shape[2:], (1, 1), (0, 0, 0, 0), (1, 1))
        groups = 1
    elif pixel_ring(op, folding, source):
        # the frame as H*W rows of one pixel: a ring of two pixels (mapper/cost.py, pixel_ring)
        weight = op.weight
        geometry = window_constants(pixels_as_rows(source), pixels_as_rows(op.output), (1, 1), (1, 1), (0, 0, 0, 0), (1, 1))
        groups = op.groups
    else:
        weight = op.weight
        geometry = window_constants(source, op.output, op.kernel, op.stride, op.pads, op.dilation)
        groups = op.groups
    pe, simd = folding.pe, folding.simd
    geometry.update(input_stream(op, folding, source))
    out_channels = weight.shape[0]
    in_per_group = source.channels // groups
    row_length = in_per_group * weight.shape[2] * weight.shape[3]
    require(out_channels // groups % pe == 0, op.name, f"PE={pe} must divide {out_channels // groups} output channels per group")
    require(row_length % simd == 0 and (in_per_group % simd == 0 or simd % in_per_group == 0), op.name,
            f"SIMD={simd} must split the im2col row ({in_per_group} channels x {row_length // in_per_group} taps) "
            "into whole channel groups or whole taps")
    folds, simd_folds = out_channels // pe, row_length // simd
    # im2col row order (ky, kx, channel): (O, C_g, KH, KW) -> (O, KH, KW, C_g) -> lanes
    rows = weight.transpose(0, 2, 3, 1).reshape(out_channels, row_length)
    table = rows.reshape(folds, pe, simd_folds, simd).transpose(1, 0, 2, 3)
    acc_bound = magnitude(source) * int(np.abs(weight).max(initial=0)) * row_length + int(np.abs(op.bias).max(initial=0))
    acc_bits = signed_bits(acc_bound)
    rq_units = requant_units(pe, simd_folds)
    stage = output_stage(op.requant, acc_bound, out_channels, op.output.dtype, f"{ident}_rq")
    weight_t, stored, code_bits = weight_memory(op.weight_type, table)
    constants = {
        **geometry, "GROUPS": groups, "PE": pe, "SIMD": simd, "ROW_LENGTH": row_length,
        "WEIGHT_DEPTH": folds * simd_folds, "WEIGHT_CODE_BITS": code_bits, "BIAS_LENGTH": out_channels, "HAS_BIAS": 1,
        "RQ_UNITS": rq_units, "BIAS_BANKS": rq_units, "LUT_MACS": int(folding.mac == "lut"),
        "ROW_STEPS": row_steps(geometry, folds * simd_folds, -(-pe // rq_units)),
        **stage.constants,
    }
    types = {
        "in_t": c_type(source.dtype), "weight_t": weight_t,
        "bias_t": f"ap_int<{signed_bits(int(np.abs(op.bias).max(initial=0)))}>",
        "acc_t": f"ap_int<{acc_bits}>", **stage.types,
    }
    declarations = "\n".join([
        struct(f"{ident}_config", types, constants),
        f"static const {ident}_config::weight_t {ident}_w[{pe}][{folds * simd_folds}][{simd}] = {{\n    {int_list(stored)}}};",
        f"static const {ident}_config::bias_t {ident}_b[{out_channels}] = {{\n    {int_list(op.bias)}}};",
        stage.table,
    ])
    call = f"hwc_conv<{ident}_config>({in_stream}, {out_stream}, {ident}_w, {ident}_b, {ident}_rq);"
    return Stage(ident, "hwc_conv.h", declarations, call)


def channelwise_stage(op: DepthwiseConv | Pool, ident: str, source: Tensor, folding: Folding,
                      in_stream: str, out_stream: str) -> Stage:
    """Depthwise conv, max pool or average pool: lane p only ever reads channel p."""
    pe, simd = folding.pe, folding.simd
    channels = op.output.channels
    require(channels % pe == 0, op.name, f"PE={pe} must divide {channels} channels")
    if isinstance(op, DepthwiseConv):
        kernel, dilation, mode = op.kernel, op.dilation, "HWC_DEPTHWISE"
        taps = kernel[0] * kernel[1]
        require(taps % simd == 0, op.name, f"SIMD={simd} must divide the {taps} kernel taps")
        weights = op.weight.reshape(channels, taps)
        bias = op.bias
        weight_type = op.weight_type
        acc_bound = magnitude(source) * int(np.abs(weights).max(initial=0)) * taps + int(np.abs(bias).max(initial=0))
        rq_units = requant_units(pe, taps // simd)
    else:
        kernel, dilation = op.kernel, (1, 1)
        taps = kernel[0] * kernel[1]
        require(simd == 1, op.name, "pooling stages run one tap per cycle (SIMD=1)")
        mode = "HWC_MAX_POOL" if op.mode == "max" else "HWC_AVG_POOL"
        weights = np.zeros((channels, taps), np.int64)  # placeholder: pools read no weights
        bias = np.zeros(1, np.int64)
        weight_type = IntType(2, True)
        lowest = source.dtype.min - source.zero_point - 1
        acc_bound = max(magnitude(source), abs(lowest)) * (taps if op.mode == "avg" else 1)
        rq_units = pe
    simd_folds = taps // simd
    folds = channels // pe
    table = weights.reshape(folds, pe, simd_folds, simd).transpose(1, 0, 2, 3)
    if isinstance(op, Pool):
        table = table[:, :1, :1, :1]
    geometry = window_constants(source, op.output, kernel, op.stride, op.pads, dilation)
    geometry.update(input_stream(op, folding, source))
    stage = output_stage(op.requant, acc_bound, channels, op.output.dtype, f"{ident}_rq")
    weight_depth = table.shape[1] * table.shape[2]
    weight_t, stored, code_bits = weight_memory(weight_type, table)
    constants = {
        **geometry, "PE": pe, "SIMD": simd, "WEIGHT_DEPTH": weight_depth, "WEIGHT_CODE_BITS": code_bits,
        "BIAS_LENGTH": len(bias),
        "HAS_BIAS": int(isinstance(op, DepthwiseConv)),
        "RQ_UNITS": rq_units, "BIAS_BANKS": min(rq_units, len(bias)), "LUT_MACS": int(folding.mac == "lut"), "ACC_LOWEST": source.dtype.min - source.zero_point - 1,
        "ROW_STEPS": row_steps(geometry, folds * simd_folds, -(-pe // rq_units)),
        **stage.constants,
    }
    types = {
        "in_t": c_type(source.dtype), "weight_t": weight_t,
        "bias_t": f"ap_int<{signed_bits(int(np.abs(bias).max(initial=0)))}>",
        "acc_t": f"ap_int<{signed_bits(acc_bound)}>", **stage.types,
    }
    mode_line = f"    static const hwc_channelwise_mode MODE = {mode};\n"
    declarations = "\n".join([
        struct(f"{ident}_config", types, constants, nested=mode_line),
        f"static const {ident}_config::weight_t {ident}_w[{pe}][{weight_depth}][{table.shape[3]}] = {{\n    {int_list(stored)}}};",
        f"static const {ident}_config::bias_t {ident}_b[{len(bias)}] = {{\n    {int_list(bias)}}};",
        stage.table,
    ])
    call = f"hwc_channelwise<{ident}_config>({in_stream}, {out_stream}, {ident}_w, {ident}_b, {ident}_rq);"
    return Stage(ident, "hwc_channelwise.h", declarations, call)


# -- per-pixel stages ---------------------------------------------------------------------------


def pixel_constants(source: Tensor, out: Tensor, pe: int, layer: str) -> dict[str, int]:
    require(out.channels % pe == 0, layer, f"PE={pe} must divide {out.channels} channels")
    return {
        "IN_C": source.channels, "IN_ZP": source.zero_point, "OUT_C": out.channels, "PE": pe,
        "IN_PIXELS": source.shape[2] * source.shape[3], "OUT_PIXELS": out.shape[2] * out.shape[3],
    }


def act_stage(op: Act, ident: str, source: Tensor, folding: Folding, in_stream: str, out_stream: str) -> Stage:
    acc_bound = magnitude(source)
    stage = output_stage(op.requant, acc_bound, op.output.channels, op.output.dtype, f"{ident}_rq")
    constants = {**pixel_constants(source, op.output, folding.pe, op.name), **stage.constants}
    types = {"in_t": c_type(source.dtype), "acc_t": f"ap_int<{signed_bits(acc_bound)}>", **stage.types}
    declarations = struct(f"{ident}_config", types, constants) + "\n" + stage.table
    return Stage(ident, "hwc_elementwise.h", declarations, f"hwc_act<{ident}_config>({in_stream}, {out_stream}, {ident}_rq);")


def add_stage(op: Add, ident: str, sources: list[Tensor], folding: Folding, in_streams: list[str], out_stream: str) -> Stage:
    a, b = sources
    mult_a, mult_b = op.input_multipliers
    acc_bound = magnitude(a) * abs(mult_a) + magnitude(b) * abs(mult_b)
    stage = output_stage(op.requant, acc_bound, op.output.channels, op.output.dtype, f"{ident}_rq")
    constants = {
        **pixel_constants(a, op.output, folding.pe, op.name), "IN_B_ZP": b.zero_point,
        "MULT_A": mult_a, "MULT_B": mult_b, **stage.constants,
    }
    types = {"in_t": c_type(a.dtype), "in_b_t": c_type(b.dtype), "acc_t": f"ap_int<{signed_bits(acc_bound)}>", **stage.types}
    declarations = struct(f"{ident}_config", types, constants) + "\n" + stage.table
    call = f"hwc_add<{ident}_config>({in_streams[0]}, {in_streams[1]}, {out_stream}, {ident}_rq);"
    return Stage(ident, "hwc_elementwise.h", declarations, call)


def global_pool_stage(op: GlobalAvgPool, ident: str, source: Tensor, folding: Folding,
                      in_stream: str, out_stream: str) -> Stage:
    acc_bound = magnitude(source) * source.shape[2] * source.shape[3]
    stage = output_stage(op.requant, acc_bound, op.output.channels, op.output.dtype, f"{ident}_rq")
    constants = {**pixel_constants(source, op.output, folding.pe, op.name), **stage.constants}
    types = {"in_t": c_type(source.dtype), "acc_t": f"ap_int<{signed_bits(acc_bound)}>", **stage.types}
    declarations = struct(f"{ident}_config", types, constants) + "\n" + stage.table
    call = f"hwc_global_avg_pool<{ident}_config>({in_stream}, {out_stream}, {ident}_rq);"
    return Stage(ident, "hwc_elementwise.h", declarations, call)


def resize_stage(op: Resize, ident: str, source: Tensor, folding: Folding, in_stream: str, out_stream: str) -> Stage:
    acc_bound = magnitude(source)
    stage = output_stage(op.requant, acc_bound, op.output.channels, op.output.dtype, f"{ident}_rq")
    folds = op.output.channels // folding.pe
    constants = {
        **pixel_constants(source, op.output, folding.pe, op.name),
        "IN_H": source.shape[2], "IN_W": source.shape[3], "OUT_W": op.output.shape[3],
        "SCALE_H": op.scale[0], "SCALE_W": op.scale[1], "RING_ROWS": 2, **input_stream(op, folding, source),
        "ROW_STEPS": max(op.scale[0] * op.output.shape[3] * folds, source.shape[3] * (source.channels // folding.pe)),
        **stage.constants,
    }
    types = {"in_t": c_type(source.dtype), "acc_t": f"ap_int<{signed_bits(acc_bound)}>", **stage.types}
    declarations = struct(f"{ident}_config", types, constants) + "\n" + stage.table
    return Stage(ident, "hwc_elementwise.h", declarations, f"hwc_resize<{ident}_config>({in_stream}, {out_stream}, {ident}_rq);")


def concat_stages(op: Concat, ident: str, sources: list[Tensor], folding: Folding,
                  in_streams: list[str], out_stream: str) -> tuple[list[Stage], list[tuple[str, Tensor]]]:
    """A chain of two-input concatenations; returns the stages and the intermediate streams."""
    stages, links = [], []
    left_stream, left = in_streams[0], sources[0]
    left_requant: Requant | None = op.input_requants[0]
    offset = sources[0].channels
    for index in range(1, len(sources)):
        last = index == len(sources) - 1
        channels = offset + sources[index].channels
        link_ident = ident if len(sources) == 2 else f"{ident}_{index}"
        out = op.output if last else Tensor(f"{op.output.name}#{index}", op.output.shape[:1] + (channels,) + op.output.shape[2:],
                                            op.output.dtype, op.output.scale, op.output.zero_point)
        pe = folding.pe
        out_name = out_stream if last else f"s_{link_ident}"
        parts = []
        for part, tensor, requant in (("A", left, left_requant), ("B", sources[index], op.input_requants[index])):
            if requant is None:  # an earlier link already put this part on the output grid
                requant = Requant(np.ones(1, np.int64), np.zeros(1, np.int64), 0, out.dtype.min, out.dtype.max)
                centre = 0
            else:
                centre = tensor.zero_point
            bound = max(abs(tensor.dtype.min - centre), abs(tensor.dtype.max - centre))
            stage = output_stage(requant, bound, tensor.channels, out.dtype, f"{link_ident}_rq_{part.lower()}")
            part_constants = {"IN_C": tensor.channels, "IN_ZP": centre, **stage.constants}
            part_types = {"in_t": c_type(tensor.dtype), "acc_t": f"ap_int<{signed_bits(bound)}>", **stage.types}
            parts.append((struct(part, part_types, part_constants).replace("\n", "\n    ").rstrip() + "\n", stage.table))
        require(left.channels % pe == 0 and sources[index].channels % pe == 0, op.name,
                f"PE={pe} must divide the channels of every part ({left.channels} and {sources[index].channels})")
        constants = {"OUT_C": channels, "PE": pe, "OUT_PIXELS": out.shape[2] * out.shape[3]}
        nested = "".join("    " + text for text, _ in parts)
        declarations = struct(f"{link_ident}_config", {"out_t": c_type(out.dtype)}, constants, nested=nested)
        declarations += "\n" + "".join(table for _, table in parts)
        call = (f"hwc_concat2<{link_ident}_config>({left_stream}, {in_streams[index]}, {out_name}, "
                f"{link_ident}_rq_a, {link_ident}_rq_b);")
        stages.append(Stage(link_ident, "hwc_concat.h", declarations, call))
        if not last:
            links.append((out_name, out))
        left_stream, left, left_requant, offset = out_name, out, None, channels
    return stages, links


# -- deformable convolution ---------------------------------------------------------------------


def deform_stage(op: DeformConv, ident: str, sources: list[Tensor], folding: Folding,
                 in_streams: list[str], out_stream: str) -> Stage:
    """A deformable conv (`hwc_deform.h`): bounded offsets, integer bilinear samples, grouped MACs.

    A fixed shape (FIXED_SHAPE) converts one d per offset group, bounded by `op.offset_limit`;
    the template multiplies it by each tap's constant pattern position.
    """
    source, offset = sources[0], sources[1]
    mask = sources[2] if op.has_mask else None
    pe, simd = folding.pe, folding.simd
    taps, frac = op.taps, op.frac_bits
    if op.depthwise:
        require(op.out_channels % pe == 0 and taps % simd == 0, op.name,
                f"depthwise: PE={pe} must divide {op.out_channels} channels and SIMD={simd} the {taps} taps")
        row_length = taps
        table = op.weight.reshape(op.out_channels, taps)
        folds, simd_folds = op.out_channels // pe, taps // simd
    else:
        in_per_group = source.channels // op.groups
        require((op.out_channels // op.groups) % pe == 0, op.name, f"PE={pe} must divide the outputs per group")
        require(in_per_group % simd == 0 and (source.channels // op.offset_groups) % simd == 0, op.name,
                f"SIMD={simd} must divide the {in_per_group} channels of one tap within one offset group")
        row_length = in_per_group * taps
        table = op.weight.transpose(0, 2, 3, 1).reshape(op.out_channels, row_length)
        folds, simd_folds = op.out_channels // pe, row_length // simd
    table = table.reshape(folds, pe, simd_folds, simd).transpose(1, 0, 2, 3)
    blend_bound = magnitude(source) << (2 * frac)
    sample_bound = (blend_bound >> op.sample_shift) + 1
    mask_bound = magnitude(mask) if mask is not None else 1
    masked_bound = sample_bound * mask_bound
    acc_bound = masked_bound * int(np.abs(op.weight).max(initial=0)) * row_length + int(np.abs(op.bias).max(initial=0))
    rq_units = requant_units(pe, simd_folds)
    stage = output_stage(op.requant, acc_bound, op.out_channels, op.output.dtype, f"{ident}_rq")
    limit = op.offset_limit
    offset_out = IntType.fitting(-limit, limit)
    offset_stage = output_stage(op.offset_requant, magnitude(offset), offset.channels, offset_out, f"{ident}_offset_rq")
    geometry = window_constants(source, op.output, op.kernel, op.stride, op.pads, op.dilation)
    window_rows = (op.kernel[0] - 1) * op.dilation[0] + 2 * op.offset_range + 1
    geometry.update(WINDOW_ROWS=window_rows, RING_ROWS=window_rows + op.stride[0])
    geometry.update(input_stream(op, folding, source))
    off_struct = struct("OFF", {"acc_t": f"ap_int<{signed_bits(magnitude(offset))}>", **offset_stage.types},
                        {"IN_ZP": offset.zero_point, **offset_stage.constants})
    mask_type = mask.dtype if mask is not None else IntType(2, False)
    constants = {
        **geometry, "GROUPS": op.groups, "OFFSET_GROUPS": op.offset_groups, "DEPTHWISE": int(op.depthwise),
        "FIXED_SHAPE": int(op.fixed_shape),
        "OFFSET_RANGE": op.offset_range, "FRAC_BITS": frac, "SAMPLE_SHIFT": op.sample_shift,
        "BLEND_BITS": signed_bits(blend_bound), "OFFSET_C": offset.channels, "MASK_C": op.offset_groups * taps,
        "MASK_ZP": mask.zero_point if mask is not None else 0,
        "PE": pe, "SIMD": simd, "WEIGHT_DEPTH": folds * simd_folds, "BIAS_LENGTH": op.out_channels, "HAS_BIAS": 1,
        "RQ_UNITS": rq_units, "BIAS_BANKS": rq_units, "LUT_MACS": int(folding.mac == "lut"),
        "ROW_STEPS": row_steps(geometry, folds * simd_folds, -(-pe // rq_units)),
        **stage.constants,
    }
    types = {
        "in_t": c_type(source.dtype), "offset_t": c_type(offset.dtype), "mask_t": c_type(mask_type),
        "mask_c_t": f"ap_int<{signed_bits(mask_bound)}>", "weight_t": c_type(op.weight_type),
        "bias_t": f"ap_int<{signed_bits(int(np.abs(op.bias).max(initial=0)))}>",
        "blend_t": f"ap_int<{signed_bits(blend_bound)}>", "sample_t": f"ap_int<{signed_bits(sample_bound)}>",
        "masked_t": f"ap_int<{signed_bits(masked_bound)}>", "acc_t": f"ap_int<{signed_bits(acc_bound)}>",
        **stage.types,
    }
    nested = "    " + off_struct.replace("\n", "\n    ").rstrip() + "\n"
    declarations = "\n".join([
        struct(f"{ident}_config", types, constants, nested=nested),
        f"static const {ident}_config::weight_t {ident}_w[{pe}][{folds * simd_folds}][{simd}] = {{\n    {int_list(table)}}};",
        f"static const {ident}_config::bias_t {ident}_b[{op.out_channels}] = {{\n    {int_list(op.bias)}}};",
        stage.table,
        offset_stage.table,
    ])
    tables = f"{ident}_w, {ident}_b, {ident}_rq, {ident}_offset_rq"
    if mask is not None:
        call = f"hwc_deform_masked<{ident}_config>({in_streams[0]}, {in_streams[1]}, {in_streams[2]}, {out_stream}, {tables});"
    else:
        call = f"hwc_deform<{ident}_config>({in_streams[0]}, {in_streams[1]}, {out_stream}, {tables});"
    return Stage(ident, "hwc_deform.h", declarations, call)
