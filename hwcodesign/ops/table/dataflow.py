"""Lookup tables as dataflow stages (`hwc_lookup` in hwc_table.h): PE channels per cycle, each
lane reading its own copy of the 2**b-entry table (a LUT ROM: 64 entries x 1 bit per LUT6), II=1,
no multiplier. A table after a conv stays a stage of its own: the conv's output stage rounds to
the grid the table reads, as onnxruntime does, and a per-lane ROM read costs one cycle of
latency, not throughput. A lookup mean (`hwc_lookup_mean`) is the global average pool's stage
with each lane's element read through its copy of the fine table first."""

from __future__ import annotations

from hwcodesign.hardware.ctext import Stage, c_type, output_stage, pixel_constants, struct
from hwcodesign.hardware.folding import Folding, LayerCost, divisors
from hwcodesign.hardware.memory import MemoryCost, lut_rom
from hwcodesign.hardware.stage_cost import pixel_stage_cost
from hwcodesign.ir.requant import signed_bits
from hwcodesign.ir.types import Tensor
from hwcodesign.ops.channelwise.dataflow import dense_global_pool_plan
from hwcodesign.ops.facets.dataflow import (
    CostTarget,
    DataflowFacet,
    PerOp,
    StageCode,
    StagePlan,
    StageWiring,
    dense_only,
    streamed_plan,
)
from hwcodesign.ops.table.ir import MEAN_TABLE_BITS, Lookup, LookupMean

PIPELINE_DEPTH = 8  # as the other per-pixel stages (read, ROM, write)


def table_rom(entries: int, bits: int, pe: int) -> MemoryCost:
    """One `entries` x `bits` LUT ROM per lane."""
    return MemoryCost(0, pe * lut_rom(entries, bits).lut)


class LookupDataflow(DataflowFacet):
    def candidate_foldings(self, op: Lookup, inputs: list[Tensor]) -> list[Folding]:
        return [Folding(pe, 1) for pe in divisors(op.output.channels)]

    def plan(self, op: Lookup, inputs: list[Tensor], folding: Folding) -> StagePlan:
        dense_only(op, inputs)
        out, pe = op.output, folding.pe
        # hwc_lookup: the `steps` loop, one iteration per output word (OUT_W x C / PE a row)
        return streamed_plan(inputs, pe, out.shape[2], out.shape[3] * (out.channels // pe))

    def cost(self, op: Lookup, inputs: list[Tensor], folding: Folding, plan: StagePlan,
             target: CostTarget) -> LayerCost:
        rom = table_rom(int(op.table.size), op.output.dtype.bits, folding.pe)
        return pixel_stage_cost(op, folding.pe, plan.loop_trips, PIPELINE_DEPTH, rom)

    def stage(self, op: Lookup, wiring: StageWiring, folding: Folding, plan: StagePlan) -> StageCode:
        return StageCode.of(lookup_stage(op, wiring, folding))


def lookup_stage(op: Lookup, wiring: StageWiring, folding: Folding) -> Stage:
    ident, source, pe = wiring.ident, wiring.sources[0], folding.pe
    constants = {**pixel_constants(source, op.output, pe, op.name), "IN_MIN": source.dtype.min,
                 "ENTRIES": int(op.table.size)}
    types = {"in_t": c_type(source.dtype), "out_t": c_type(op.output.dtype)}
    row = f"{ident.upper()}_TABLE"
    entries = ", ".join(str(v) for v in op.table.tolist())
    # one copy per lane, so each lane's ROM is its own memory (ARRAY_PARTITION dim=1 in hwc_lookup)
    table = (f"// {op.function}: output level for each input level {source.dtype.min}..{source.dtype.max}\n"
             f"#define {row} {{{entries}}}\n"
             f"static const {c_type(op.output.dtype)} {ident}_table[{pe}][{op.table.size}] = "
             f"{{{', '.join([row] * pe)}}};\n#undef {row}\n")
    declarations = struct(f"{ident}_config", types, constants) + "\n" + table
    return Stage(ident, "hwc_table.h", declarations,
                 f"hwc_lookup<{ident}_config>({wiring.in_streams[0]}, {wiring.out_stream}, {ident}_table);")


class LookupMeanDataflow(DataflowFacet):
    """The global average pool's stage (`dense_global_pool_plan`), each element read through the
    lane's copy of the fine table before it is summed."""

    def candidate_foldings(self, op: LookupMean, inputs: list[Tensor]) -> list[Folding]:
        return [Folding(pe, 1) for pe in divisors(op.output.channels)]

    def plan(self, op: LookupMean, inputs: list[Tensor], folding: Folding) -> StagePlan:
        dense_only(op, inputs)
        return dense_global_pool_plan(inputs[0], folding.pe)

    def cost(self, op: LookupMean, inputs: list[Tensor], folding: Folding, plan: StagePlan,
             target: CostTarget) -> LayerCost:
        rom = table_rom(int(op.table.size), MEAN_TABLE_BITS, folding.pe)
        return pixel_stage_cost(op, folding.pe, plan.loop_trips, PIPELINE_DEPTH, rom)

    def stage(self, op: LookupMean, wiring: StageWiring, folding: Folding, plan: StagePlan) -> StageCode:
        return StageCode.of(lookup_mean_stage(op, wiring, folding))


def mean_acc_bound(op: LookupMean, source: Tensor) -> int:
    """The largest |sum| of a lookup mean: the largest |entry| at every pixel."""
    return int(abs(op.table).max()) * source.shape[2] * source.shape[3]


def lookup_mean_stage(op: LookupMean, wiring: StageWiring, folding: Folding) -> Stage:
    ident, source, pe = wiring.ident, wiring.sources[0], folding.pe
    stage = output_stage(op.requant, mean_acc_bound(op, source), op.output.channels, op.output.dtype, f"{ident}_rq")
    constants = {**pixel_constants(source, op.output, pe, op.name), "IN_MIN": source.dtype.min,
                 "ENTRIES": int(op.table.size), **stage.constants}
    types = {"in_t": c_type(source.dtype), "value_t": f"ap_int<{MEAN_TABLE_BITS}>",
             "acc_t": f"ap_int<{signed_bits(mean_acc_bound(op, source))}>", **stage.types}
    row = f"{ident.upper()}_TABLE"
    entries = ", ".join(str(v) for v in op.table.tolist())
    table = (f"// mean of {op.function}: its value on a fine grid for each input level "
             f"{source.dtype.min}..{source.dtype.max}\n"
             f"#define {row} {{{entries}}}\n"
             f"static const ap_int<{MEAN_TABLE_BITS}> {ident}_table[{pe}][{op.table.size}] = "
             f"{{{', '.join([row] * pe)}}};\n#undef {row}\n")
    declarations = "\n".join([struct(f"{ident}_config", types, constants), table, stage.table])
    return Stage(ident, "hwc_table.h", declarations,
                 f"hwc_lookup_mean<{ident}_config>({wiring.in_streams[0]}, {wiring.out_stream}, {ident}_table, "
                 f"{ident}_rq);")


DATAFLOW = PerOp({Lookup: LookupDataflow(), LookupMean: LookupMeanDataflow()})
