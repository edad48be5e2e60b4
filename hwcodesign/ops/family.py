"""An op family: one registration holding everything the compiler knows about a group of layers.

A family names its IR op classes and the facets that lower, compute, plan, cost and generate
them. A facet the family does not offer for an architecture is a `Refused` with the reason,
never a silent default: asking for it raises `OpUnsupported`, naming the op, the facet and the
reason, before any number is made up for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwcodesign.ir.op import Op
from hwcodesign.ops.facets.dataflow import DataflowFacet
from hwcodesign.ops.facets.engine import EngineFacet
from hwcodesign.ops.facets.golden import GoldenRules
from hwcodesign.ops.facets.lowering import FamilyLowering
from hwcodesign.ops.refusal import Refused


@dataclass(frozen=True)
class OpFamily:
    """Everything about one family of layers, registered once in `hwcodesign.ops.registry`.

    Every facet is required: an architecture the family does not run is a `Refused` with the
    reason (tests/ops/test_registry.py holds every family to this).
    """

    name: str
    ops: tuple[type[Op], ...]
    # How ONNX nodes become this family's IR ops: a rule per ONNX op type (hwcodesign.ops.facets.lowering).
    lowering: FamilyLowering
    # The integer arithmetic the hardware computes, the golden model's definition (hwcodesign.ops.facets.golden).
    golden: GoldenRules
    # The dataflow pipeline: stage plan, resources and cycles, HLS stage code (hwcodesign.ops.facets.dataflow).
    dataflow: DataflowFacet | Refused
    # The layer-sequential engine: instructions, costs, descriptors (hwcodesign.ops.facets.engine).
    engine: EngineFacet | Refused
