"""Nearest-neighbour upsampling by integer factors."""

from hwcodesign.ops.family import OpFamily
from hwcodesign.ops.resize import dataflow, engine, golden, lowering
from hwcodesign.ops.resize.ir import Resize

FAMILY = OpFamily(
    name="resize",
    ops=(Resize,),
    # How ONNX nodes become this family's IR ops: a rule per ONNX op type (hwcodesign.ops.facets.lowering).
    lowering=lowering.LOWERING,
    # The integer arithmetic the hardware computes, the golden model's definition (hwcodesign.ops.facets.golden).
    golden=golden.GOLDEN,
    # The dataflow pipeline: stage plan, resources and cycles, HLS stage code (hwcodesign.ops.facets.dataflow).
    dataflow=dataflow.DATAFLOW,
    # The layer-sequential engine: instructions, costs, descriptors (hwcodesign.ops.facets.engine).
    engine=engine.FACET,
)
