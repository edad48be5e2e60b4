"""The op registry's completeness: every IR op class belongs to one family, and every family
implements every facet for every architecture or refuses it by name; an op no family registers
is refused by every stage, never costed, simulated or generated with a default."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

import hwcodesign.ops
from hwcodesign.hardware.folding import Folding
from hwcodesign.ir.op import Op, Shape
from hwcodesign.ir.types import IntType, Tensor
from hwcodesign.mapper.cost import candidate_foldings, layer_cost
from hwcodesign.ops import FAMILIES, OpUnsupported, Refused, family_of, op_classes
from hwcodesign.ops.facets.dataflow import DataflowFacet, PerOp
from hwcodesign.ops.facets.engine import ByOp, EngineFacet
from hwcodesign.ops.facets.golden import GoldenRules
from hwcodesign.ops.facets.lowering import FamilyLowering
from hwcodesign.passes.lowering import lowering_rules
from hwcodesign.sim.golden import run_op

FAMILY_IDS = [family.name for family in FAMILIES]


def every_op_class() -> set[type[Op]]:
    """Every Op subclass defined in the package (imported through the registry's families); the
    tests' own stray classes (below) are not the package's."""
    found, todo = set(), [Op]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.startswith("hwcodesign."):
                found.add(sub)
            todo.append(sub)
    return found


def test_every_op_class_is_in_exactly_one_family() -> None:
    registered = [cls for family in FAMILIES for cls in family.ops]
    assert len(registered) == len(set(registered))
    assert every_op_class() == set(registered) == set(op_classes())


@pytest.mark.parametrize("family", FAMILIES, ids=FAMILY_IDS)
def test_every_facet_is_implemented_or_refused(family: hwcodesign.ops.OpFamily) -> None:
    assert isinstance(family.lowering, FamilyLowering)
    assert isinstance(family.golden, GoldenRules) and set(family.golden.rules) == set(family.ops)
    for facet, interface, per_op in ((family.dataflow, DataflowFacet, PerOp), (family.engine, EngineFacet, ByOp)):
        if isinstance(facet, Refused):
            assert facet.reason.strip(), f"{family.name}: a refusal says why"
            continue
        assert isinstance(facet, interface)
        leaves = list(facet.facets.values()) if isinstance(facet, per_op) else [facet]
        if isinstance(facet, per_op):
            assert set(facet.facets) == set(family.ops), f"{family.name}: one {interface.__name__} per op class"
        for leaf in leaves:
            if isinstance(leaf, Refused):  # one op class of the family refused, with the reason
                assert leaf.reason.strip(), f"{family.name}: a refusal says why"
                continue
            assert not inspect.isabstract(type(leaf)), f"{family.name}: {type(leaf).__name__} leaves a method abstract"
            for name in REQUIRED[interface]:
                assert getattr(type(leaf), name) is not getattr(interface, name), \
                    f"{family.name}: {type(leaf).__name__}.{name} falls back to the interface"


# The methods a facet must write itself (the engine's are its ABC's abstract methods, checked above;
# its other methods are documented choices such as "no bias"). A dataflow stage's sparse steps are
# asked only of families that run sparse tensors, and refuse by name elsewhere.
REQUIRED: dict[type, tuple[str, ...]] = {
    DataflowFacet: ("candidate_foldings", "plan", "cost", "stage"),
    EngineFacet: (),
}


def test_every_onnx_op_type_has_one_owner() -> None:
    owners: dict[str, list[str]] = {}
    for family in FAMILIES:
        for op_type in family.lowering.rules:
            owners.setdefault(op_type, []).append(family.name)
    assert all(len(names) == 1 for names in owners.values()), owners
    assert set(owners) <= set(lowering_rules())


@dataclass(frozen=True, eq=False)
class Unregistered(Op):
    """An op class no family registers (what a half-added op looks like)."""

    kind: ClassVar[str] = "Unregistered"

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        return input_shapes[0]


def unregistered() -> tuple[Unregistered, list[Tensor]]:
    tensor = Tensor("x", (1, 4, 4, 4), IntType(8, False), 0.1, 0)
    return Unregistered("stray", ("x",), Tensor("y", (1, 4, 4, 4), IntType(8, False), 0.1, 0)), [tensor]


def test_an_unregistered_op_is_refused_by_every_stage_by_name() -> None:
    op, inputs = unregistered()
    with pytest.raises(OpUnsupported, match="Unregistered"):
        family_of(op)
    with pytest.raises(OpUnsupported, match="Unregistered"):
        candidate_foldings(op, inputs)
    with pytest.raises(OpUnsupported, match="Unregistered"):
        layer_cost(op, inputs, Folding())
    with pytest.raises(OpUnsupported, match="Unregistered"):
        run_op(op, [np.zeros((1, 4, 4, 4), np.int64)], inputs)

