"""Deformable convolution (CoDeNet): bounded learned offsets, bilinear samples, then a convolution."""

from hwcodesign.ops.deform import dataflow, engine, golden, lowering
from hwcodesign.ops.deform.ir import DeformConv
from hwcodesign.ops.family import OpFamily

FAMILY = OpFamily(
    name="deform",
    ops=(DeformConv,),
    # How ONNX nodes become this family's IR ops: a rule per ONNX op type (hwcodesign.ops.facets.lowering).
    lowering=lowering.LOWERING,
    # The integer arithmetic the hardware computes, the golden model's definition (hwcodesign.ops.facets.golden).
    golden=golden.GOLDEN,
    # The dataflow pipeline: stage plan, resources and cycles, HLS stage code (hwcodesign.ops.facets.dataflow).
    dataflow=dataflow.DATAFLOW,
    # The layer-sequential engine: instructions, costs, descriptors (hwcodesign.ops.facets.engine).
    engine=engine.FACET,
)
