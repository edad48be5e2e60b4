"""Channel re-routing without arithmetic: a channel range (Split, Slice, a Gather of a range) and a
channel permutation (the channel shuffle, a Gather of every channel)."""

from hwcodesign.ops.family import OpFamily
from hwcodesign.ops.route import dataflow, engine, golden, lowering
from hwcodesign.ops.route.ir import ChannelPermute, ChannelSlice

FAMILY = OpFamily(
    name="route",
    ops=(ChannelSlice, ChannelPermute),
    # How ONNX nodes become this family's IR ops: a rule per ONNX op type (hwcodesign.ops.facets.lowering).
    lowering=lowering.LOWERING,
    # The integer arithmetic the hardware computes, the golden model's definition (hwcodesign.ops.facets.golden).
    golden=golden.GOLDEN,
    # The dataflow pipeline: stage plan, resources and cycles, HLS stage code (hwcodesign.ops.facets.dataflow).
    dataflow=dataflow.DATAFLOW,
    # The layer-sequential engine: instructions, costs, descriptors (hwcodesign.ops.facets.engine).
    engine=engine.FACET,
)
