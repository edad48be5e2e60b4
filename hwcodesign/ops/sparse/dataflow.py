"""Submanifold sparse convolutions as dataflow stages (templates/hls/layers/hwc_sparse.h): cycles
that scale with the active sites, resources as the template builds them.

A sparse tensor streams as tokens (one per active site, all channels, then an end-of-frame
token), so the stage takes whole pixels: its input and output lanes are the channel counts, no
re-folding converter ever joins it. A sparse tensor's density d is the fraction of its H x W
sites that are active; it depends on the input (an event frame), so cycles are a function of it.
The mapper sizes for a design density per tensor (`sim.sparsity.measure_densities`: a percentile
over sample inputs, or 1.0, the dense worst case); the latency simulator takes a frame's real
active sites. Per output row: its read loop (the row's new tokens, plus one look at the next
token), the window's bitmap OR, and, if any output of the row is active, a pipelined loop of
(active outputs) x folds x steps (steps: kernel taps x input chunks, or taps for depthwise).
The arithmetic is the dense layers' (`output_stage`, the conv weight layout), so the same bounds
make it exact.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hwcodesign.hardware.ctext import (
    WEIGHT_MEMORY_CODES,
    Stage,
    bias_type,
    c_type,
    mac_tables,
    magnitude,
    output_stage,
    require,
    struct,
)
from hwcodesign.hardware.folding import Folding, LayerCost, divisors, with_weight_memories
from hwcodesign.hardware.memory import lut_rom, memory_cost
from hwcodesign.hardware.stage_cost import ROW_OVERHEAD, weight_rom, weight_roms
from hwcodesign.hardware.stream import density_of, sites
from hwcodesign.hardware.units import (
    ACCUMULATOR_BITS,
    PIPELINE_RAMP,
    REQUANT_DSP_PER_PE,
    STAGE_BASE_FF,
    STAGE_BASE_LUT,
    macs_per_dsp,
)
from hwcodesign.hardware.window import span_rows, window_needs
from hwcodesign.ir.requant import signed_bits
from hwcodesign.ir.types import Tensor
from hwcodesign.ops.facets.dataflow import (
    CostTarget,
    DataflowFacet,
    StageCode,
    StagePlan,
    StageWiring,
    row_emits,
)
from hwcodesign.ops.sparse.ir import SubmanifoldConv


def conv_steps(op: SubmanifoldConv, source: Tensor, folding: Folding) -> int:
    """Steps per output site and PE fold: kernel taps x input chunks of SIMD (depthwise: taps)."""
    return op.kernel[0] * op.kernel[1] * (1 if op.depthwise else source.channels // folding.simd)


def ring_rows(op: SubmanifoldConv) -> tuple[int, int]:
    """(rows above row oy * stride, rows) of the input an output row oy reads: its conv window's
    and its downsampling rule's (`mask_window`; ESDA's block rule reaches a row further than a
    stride-2 1x1 conv's window), the rows the line buffer holds."""
    conv_rows, conv_top = span_rows(op.kernel[0], op.dilation[0]), op.pads[0]
    mask_rows, mask_top = op.mask_window[0], op.mask_window[4]
    top = max(conv_top, mask_top)
    return top, top + max(conv_rows - conv_top, mask_rows - mask_top)


def sparse_weight_depth(op: SubmanifoldConv, source: Tensor, folding: Folding) -> int:
    """Words of one PE's weight ROM: per output fold its steps (`conv_steps`), SIMD weights a word."""
    return op.out_channels // folding.pe * conv_steps(op, source, folding)


class SparseConvDataflow(DataflowFacet):
    def candidate_foldings(self, op: SubmanifoldConv, inputs: list[Tensor]) -> list[Folding]:
        """Depthwise: PE channels x 1 tap; dense: PE outputs x SIMD channels of a tap. LUTRAM
        weights where a real trade-off."""
        source = inputs[0]
        if op.depthwise:
            shapes = [Folding(pe, 1) for pe in divisors(op.out_channels)]
        else:
            shapes = [Folding(pe, simd) for pe in divisors(op.out_channels) for simd in divisors(source.channels)]
        return with_weight_memories(shapes, lambda f: weight_rom(f, op.weight_type, sparse_weight_depth(op, source, f)))

    def plan(self, op: SubmanifoldConv, inputs: list[Tensor], folding: Folding) -> StagePlan:
        source, out = inputs[0], op.output
        top, window = ring_rows(op)
        out_rows, in_rows = out.shape[2], source.shape[2]
        row_steps = (op.out_channels // folding.pe) * conv_steps(op, source, folding)
        needs = window_needs(out_rows, in_rows, op.stride[0], top, window - 1)
        # reads a window's tokens before computing: no rows ahead
        return StagePlan((source.channels if source.sparse else folding.pe,),
                         out.channels if out.sparse else folding.pe, window_rows=window, ring_rows=window,
                         held_rows=window, row_steps=row_steps, loop_trips=out.shape[2] * out.shape[3] * row_steps,
                         steps=out_rows, emits=row_emits(out_rows), needs=(needs,), sparse=True)

    def cost(self, op: SubmanifoldConv, inputs: list[Tensor], folding: Folding, plan: StagePlan,
             target: CostTarget) -> LayerCost:
        source = inputs[0]
        return subm_conv_cost(op, source, folding, plan, target.ps_type, density_of(source, target.densities),
                              density_of(op.output, target.densities))

    def stage(self, op: SubmanifoldConv, wiring: StageWiring, folding: Folding, plan: StagePlan) -> StageCode:
        return StageCode.of(subm_conv_stage(op, wiring, folding, plan))

    def sparse_row_cycles(self, op: SubmanifoldConv, inputs: list[Tensor], folding: Folding, plan: StagePlan,
                          counts: Mapping[str, np.ndarray]) -> list[float]:
        """Per output row: the input tokens its window adds, the row overhead, and its active
        outputs' MACs (the loops of `sparse_conv_cycles`, row by row)."""
        source, out = inputs[0], op.output
        folds = op.out_channels // folding.pe
        steps = conv_steps(op, source, folding)
        top, _ = ring_rows(op)
        read_until = -1
        rows = []
        for r, active in enumerate(counts[out.name]):
            last = min(source.shape[2] - 1, r * op.stride[0] - top + plan.window_rows - 1)
            tokens = float(np.sum(counts[source.name][read_until + 1:last + 1])) if last > read_until else 0.0
            read_until = max(read_until, last)
            rows.append(tokens + ROW_OVERHEAD + active * folds * steps + (PIPELINE_RAMP if active else 0))
        rows[-1] += float(np.sum(counts[source.name][read_until + 1:])) + 1  # the drain and the end token
        return rows


def sparse_conv_cycles(op: SubmanifoldConv, source: Tensor, folding: Folding, density_in: float,
                       density_out: float) -> int:
    out = op.output
    out_rows, out_width = out.shape[2], out.shape[3]
    folds = op.out_channels // folding.pe
    steps = conv_steps(op, source, folding)
    busy_rows = out_rows * (1 - (1 - density_out) ** out_width)  # rows with at least one active output
    cycles = (sites(source, density_in) + out_rows * ROW_OVERHEAD + sites(out, density_out) * folds * steps
              + busy_rows * PIPELINE_RAMP + 1)
    return int(-(-cycles // 1))


def subm_conv_cost(op: SubmanifoldConv, source: Tensor, folding: Folding, plan: StagePlan, ps_type: str,
                   density_in: float, density_out: float) -> LayerCost:
    """The sparse conv: MACs only at active outputs; its line buffer holds the window's rows of
    the input (centred values, channel-partitioned by the lanes it reads) and their bitmaps."""
    pe, simd = folding.pe, folding.simd
    wbits, abits = op.weight_type.bits, source.dtype.bits
    folds = op.out_channels // pe
    steps = conv_steps(op, source, folding)
    lanes = pe * simd
    weights = weight_roms(folding, op.weight_type, sparse_weight_depth(op, source, folding))
    window_rows = plan.window_rows
    in_lanes = pe if op.depthwise else simd  # the ring's channel partition (its input comes as whole tokens)
    ring = memory_cost(window_rows * source.shape[3] * -(-source.channels // in_lanes), in_lanes * (abits + 1))
    bias_bits = max(2, int(abs(op.bias).max(initial=0)).bit_length() + 1)
    constants = lut_rom(op.out_channels, bias_bits + op.requant.entry_bits, pe)
    mac_dsp = -(-lanes // macs_per_dsp(wbits, abits, ps_type)) if folding.mac == "dsp" else 0
    dsp = mac_dsp + REQUANT_DSP_PER_PE * pe
    out_width = op.output.shape[3]
    selector_lut = out_width * (4 + op.mask_window[1]) + op.mask_window[0] * source.shape[3] // 4  # encoder, mask OR
    mac_lut = lanes * (wbits * abits + 8) if folding.mac == "lut" else lanes * 6
    lut = (STAGE_BASE_LUT + mac_lut + lanes * (wbits + abits) + weights.lut + constants.lut + ring.lut + selector_lut)
    ff = (STAGE_BASE_FF + lanes * (wbits + abits) + pe * ACCUMULATOR_BITS * 2 + window_rows * source.shape[3]
          + op.out_channels * op.output.dtype.bits)
    cycles = sparse_conv_cycles(op, source, folding, density_in, density_out)
    depth = window_rows * source.shape[3] + folds * steps + PIPELINE_RAMP
    return LayerCost(cycles, depth, dsp, weights.bram18k + ring.bram18k, lut, ff)


def subm_conv_stage(op: SubmanifoldConv, wiring: StageWiring, folding: Folding, plan: StagePlan) -> Stage:
    """A sparse conv (`hwc_subm_conv`): dense or depthwise, stride 1 (submanifold) or strided."""
    ident, source = wiring.ident, wiring.sources[0]
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
    window_rows = plan.window_rows
    mask_kh, mask_kw, _, _, mask_top, mask_left, _, _ = op.mask_window
    constants = {
        "IN_H": source.shape[2], "IN_W": source.shape[3], "IN_C": source.channels, "IN_ZP": source.zero_point,
        "OUT_H": out.shape[2], "OUT_W": out.shape[3], "OUT_C": out.channels,
        "KH": kh, "KW": kw, "STRIDE_H": op.stride[0], "STRIDE_W": op.stride[1], "PAD_T": op.pads[0],
        "PAD_L": op.pads[1], "DIL_H": op.dilation[0], "DIL_W": op.dilation[1], "WINDOW_ROWS": window_rows,
        "RING_TOP": ring_rows(op)[0],
        "MASK_KH": mask_kh, "MASK_KW": mask_kw, "MASK_PAD_T": mask_top, "MASK_PAD_L": mask_left,
        "PE": pe, "SIMD": 1 if op.depthwise else simd, "IN_LANES": in_lanes, "DEPTHWISE": int(op.depthwise),
        "WEIGHT_DEPTH": folds * steps, "ROW_STEPS": plan.row_steps, "LUT_MACS": int(folding.mac == "lut"),
        "WEIGHT_MEMORY": WEIGHT_MEMORY_CODES[folding.weights],
        **stage.constants,
    }
    types = {
        "in_t": c_type(source.dtype), "weight_t": c_type(op.weight_type),
        "bias_t": bias_type(op.bias),
        "acc_t": f"ap_int<{signed_bits(acc_bound)}>", **stage.types,
    }
    tables = mac_tables(ident, types, table, (pe, folds * steps, table.shape[3]), op.bias)
    declarations = "\n".join([
        struct(f"{ident}_config", types, constants),
        *tables.declarations,
        stage.table,
    ])
    call = f"hwc_subm_conv<{ident}_config>({wiring.in_streams[0]}, {wiring.out_stream}, {ident}_w, {ident}_b, {ident}_rq);"
    return Stage(ident, "hwc_sparse.h", declarations, call, tables.files)


DATAFLOW = SparseConvDataflow()
