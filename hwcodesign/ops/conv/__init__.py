"""Convolution and fully connected layers: a window (or the whole input) times weights, summed over input channels."""

from hwcodesign.ops.conv import dataflow, engine, golden, lowering
from hwcodesign.ops.conv.ir import Conv, Linear
from hwcodesign.ops.family import OpFamily

FAMILY = OpFamily(
    name="conv",
    ops=(Conv, Linear),
    # How ONNX nodes become this family's IR ops: a rule per ONNX op type (hwcodesign.ops.facets.lowering).
    lowering=lowering.LOWERING,
    # The integer arithmetic the hardware computes, the golden model's definition (hwcodesign.ops.facets.golden).
    golden=golden.GOLDEN,
    # The dataflow pipeline: stage plan, resources and cycles, HLS stage code (hwcodesign.ops.facets.dataflow).
    dataflow=dataflow.DATAFLOW,
    # The layer-sequential engine: instructions, costs, descriptors (hwcodesign.ops.facets.engine).
    engine=engine.FACET,
)
