"""HLS stages of submanifold sparse layers (templates/hls/layers/hwc_sparse.h): config structs,
weight tables and calls, beside the dense ones in `stages.py`.

A sparse tensor streams as tokens (one per active site, all channels, then an end-of-frame
token), so these stages take whole pixels: their input and output lanes are the channel counts
(`cost.input_lanes`/`output_lanes`), no re-folding converter ever joins them. The arithmetic is
the dense layers' (`output_stage`, the conv weight layout), so the same bounds make it exact.
"""

from __future__ import annotations

import numpy as np

from hwcodesign.hardware.ctext import (
    Stage,
    c_type,
    int_list,
    magnitude,
    max_sites,
    output_stage,
    require,
    struct,
)
from hwcodesign.hardware.folding import Folding
from hwcodesign.ir.requant import signed_bits
from hwcodesign.ir.types import Tensor
from hwcodesign.ops import Act, Add, GlobalAvgPool, SubmanifoldConv


def subm_conv_stage(op: SubmanifoldConv, ident: str, source: Tensor, folding: Folding, in_stream: str,
                    out_stream: str) -> Stage:
    """A sparse conv (`hwc_subm_conv`): dense or depthwise, stride 1 (submanifold) or strided."""
    pe, simd = folding.pe, folding.simd
    out = op.output
    kh, kw = op.kernel
    taps = kh * kw
    require(op.groups == 1 or op.depthwise, op.name, f"a sparse conv is dense or depthwise, not {op.groups} groups")
    require(out.channels % pe == 0, op.name, f"PE={pe} must divide the {out.channels} output channels")
    folds = out.channels // pe
    if op.depthwise:
        require(simd == 1, op.name, "a depthwise sparse conv runs one tap per cycle (SIMD=1)")
        steps = taps
        table = op.weight.reshape(folds, pe, taps, 1).transpose(1, 0, 2, 3)  # [lane][fold][tap][1]
        row_length, in_lanes = taps, pe
    else:
        require(source.channels % simd == 0, op.name, f"SIMD={simd} must divide the {source.channels} input channels")
        row_length = source.channels * taps
        steps = row_length // simd
        rows = op.weight.transpose(0, 2, 3, 1).reshape(out.channels, row_length)  # (tap, channel) order
        table = rows.reshape(folds, pe, steps, simd).transpose(1, 0, 2, 3)
        in_lanes = simd
    acc_bound = magnitude(source) * int(np.abs(op.weight).max(initial=0)) * row_length + int(np.abs(op.bias).max(initial=0))
    stage = output_stage(op.requant, acc_bound, out.channels, out.dtype, f"{ident}_rq")
    window_rows = (kh - 1) * op.dilation[0] + 1
    constants = {
        "IN_H": source.shape[2], "IN_W": source.shape[3], "IN_C": source.channels, "IN_ZP": source.zero_point,
        "OUT_H": out.shape[2], "OUT_W": out.shape[3], "OUT_C": out.channels,
        "KH": kh, "KW": kw, "STRIDE_H": op.stride[0], "STRIDE_W": op.stride[1], "PAD_T": op.pads[0],
        "PAD_L": op.pads[1], "DIL_H": op.dilation[0], "DIL_W": op.dilation[1], "WINDOW_ROWS": window_rows,
        "PE": pe, "SIMD": 1 if op.depthwise else simd, "IN_LANES": in_lanes, "DEPTHWISE": int(op.depthwise),
        "WEIGHT_DEPTH": folds * steps, "ROW_STEPS": folds * steps, "LUT_MACS": int(folding.mac == "lut"),
        **stage.constants,
    }
    types = {
        "in_t": c_type(source.dtype), "weight_t": c_type(op.weight_type),
        "bias_t": f"ap_int<{signed_bits(int(np.abs(op.bias).max(initial=0)))}>",
        "acc_t": f"ap_int<{signed_bits(acc_bound)}>", **stage.types,
    }
    declarations = "\n".join([
        struct(f"{ident}_config", types, constants),
        f"static const {ident}_config::weight_t {ident}_w[{pe}][{folds * steps}][{table.shape[3]}] = {{\n    {int_list(table)}}};",
        f"static const {ident}_config::bias_t {ident}_b[{out.channels}] = {{\n    {int_list(op.bias)}}};",
        stage.table,
    ])
    call = f"hwc_subm_conv<{ident}_config>({in_stream}, {out_stream}, {ident}_w, {ident}_b, {ident}_rq);"
    return Stage(ident, "hwc_sparse.h", declarations, call)


def token_constants(tensor: Tensor, pe: int, layer: str) -> dict[str, int]:
    require(tensor.channels % pe == 0, layer, f"PE={pe} must divide the {tensor.channels} channels")
    return {"OUT_C": tensor.channels, "PE": pe, "FOLDS": tensor.channels // pe, "MAX_SITES": max_sites(tensor)}


def sparse_act_stage(op: Act, ident: str, source: Tensor, folding: Folding, in_stream: str, out_stream: str) -> Stage:
    acc_bound = magnitude(source)
    stage = output_stage(op.requant, acc_bound, op.output.channels, op.output.dtype, f"{ident}_rq")
    constants = {**token_constants(op.output, folding.pe, op.name), "IN_ZP": source.zero_point, **stage.constants}
    types = {"in_t": c_type(source.dtype), "acc_t": f"ap_int<{signed_bits(acc_bound)}>", **stage.types}
    declarations = struct(f"{ident}_config", types, constants) + "\n" + stage.table
    return Stage(ident, "hwc_sparse.h", declarations, f"hwc_sparse_act<{ident}_config>({in_stream}, {out_stream}, {ident}_rq);")


def sparse_add_stage(op: Add, ident: str, sources: list[Tensor], folding: Folding, in_streams: list[str],
                     out_stream: str) -> Stage:
    a, b = sources
    mult_a, mult_b = op.input_multipliers
    acc_bound = magnitude(a) * abs(mult_a) + magnitude(b) * abs(mult_b)
    stage = output_stage(op.requant, acc_bound, op.output.channels, op.output.dtype, f"{ident}_rq")
    constants = {**token_constants(op.output, folding.pe, op.name), "IN_ZP": a.zero_point, "IN_B_ZP": b.zero_point,
                 "MULT_A": mult_a, "MULT_B": mult_b, **stage.constants}
    types = {"in_t": c_type(a.dtype), "in_b_t": c_type(b.dtype), "acc_t": f"ap_int<{signed_bits(acc_bound)}>",
             **stage.types}
    declarations = struct(f"{ident}_config", types, constants) + "\n" + stage.table
    call = f"hwc_sparse_add<{ident}_config>({in_streams[0]}, {in_streams[1]}, {out_stream}, {ident}_rq);"
    return Stage(ident, "hwc_sparse.h", declarations, call)


def sparse_global_pool_stage(op: GlobalAvgPool, ident: str, source: Tensor, folding: Folding, in_stream: str,
                             out_stream: str) -> Stage:
    """Tokens in, one dense pixel out in words of PE channels (what dense readers take)."""
    acc_bound = magnitude(source) * source.shape[2] * source.shape[3]
    stage = output_stage(op.requant, acc_bound, op.output.channels, op.output.dtype, f"{ident}_rq")
    constants = {**token_constants(source, folding.pe, op.name), "IN_C": source.channels, "IN_ZP": source.zero_point,
                 **stage.constants}
    types = {"in_t": c_type(source.dtype), "acc_t": f"ap_int<{signed_bits(acc_bound)}>", **stage.types}
    declarations = struct(f"{ident}_config", types, constants) + "\n" + stage.table
    call = f"hwc_sparse_global_pool<{ident}_config>({in_stream}, {out_stream}, {ident}_rq);"
    return Stage(ident, "hwc_sparse.h", declarations, call)
