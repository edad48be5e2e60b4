"""The engine asks every op family for what its layers are on the engine: each family registers
an engine facet (or refuses the engine with a reason), covering exactly its own op classes."""

from __future__ import annotations

import pytest

from hwcodesign.hardware.engine.config import SPARSE_REFUSAL
from hwcodesign.ir.op import Input
from hwcodesign.ir.types import IntType, Tensor
from hwcodesign.ops import FAMILIES, Refused, SubmanifoldConv, family_of
from hwcodesign.ops.facets.engine import ByOp, EngineFacet


@pytest.mark.parametrize("family", FAMILIES, ids=lambda family: family.name)
def test_every_family_registers_an_engine_facet_or_a_refusal(family) -> None:
    assert isinstance(family.engine, EngineFacet | Refused)
    if isinstance(family.engine, ByOp):  # one facet per op class, no more and no fewer
        assert set(family.engine.facets) == set(family.ops)


def test_the_sparse_family_refuses_the_engine_with_the_sparse_message() -> None:
    assert family_of(SubmanifoldConv).engine == Refused(SPARSE_REFUSAL)  # the message: tests/mapper/test_engine_map.py


def test_a_graph_input_is_no_instruction() -> None:
    source = Input("in", (), Tensor("x", (1, 8, 4, 4), IntType(8, False), 0.05, 0))
    assert family_of(Input).engine.instructions(source, [], 64) == ()
