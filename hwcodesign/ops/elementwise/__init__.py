"""Per-element layers: activations and rescales (Act), the two-input sum (Add), the product of two
activations (Mul: same shape, or a per-channel gate broadcast over H and W)."""

from hwcodesign.ops.elementwise import dataflow, engine, golden, lowering
from hwcodesign.ops.elementwise.ir import Act, Add, Mul
from hwcodesign.ops.family import OpFamily

FAMILY = OpFamily(
    name="elementwise",
    ops=(Act, Add, Mul),
    # How ONNX nodes become this family's IR ops: a rule per ONNX op type (hwcodesign.ops.facets.lowering).
    lowering=lowering.LOWERING,
    # The integer arithmetic the hardware computes, the golden model's definition (hwcodesign.ops.facets.golden).
    golden=golden.GOLDEN,
    # The dataflow pipeline: stage plan, resources and cycles, HLS stage code (hwcodesign.ops.facets.dataflow).
    dataflow=dataflow.DATAFLOW,
    # The layer-sequential engine: instructions, costs, descriptors (hwcodesign.ops.facets.engine).
    engine=engine.FACET,
)
