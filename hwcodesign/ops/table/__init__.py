"""Lookup tables: any float function of one quantized tensor, as the table of its 2**b levels, and
the mean over H, W of one (the sum of its values on a fine grid)."""

from hwcodesign.ops.family import OpFamily
from hwcodesign.ops.table import dataflow, engine, golden, lowering
from hwcodesign.ops.table.ir import Lookup, LookupMean

FAMILY = OpFamily(
    name="table",
    ops=(Lookup, LookupMean),
    # How ONNX nodes become this family's IR ops: a rule per ONNX op type (hwcodesign.ops.facets.lowering).
    lowering=lowering.LOWERING,
    # The integer arithmetic the hardware computes, the golden model's definition (hwcodesign.ops.facets.golden).
    golden=golden.GOLDEN,
    # The dataflow pipeline: stage plan, resources and cycles, HLS stage code (hwcodesign.ops.facets.dataflow).
    dataflow=dataflow.DATAFLOW,
    # The layer-sequential engine: instructions, costs, descriptors (hwcodesign.ops.facets.engine).
    engine=engine.FACET,
)
