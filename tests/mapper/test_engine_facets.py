"""The engine facets' own rules (that every family has one or refuses, covering exactly its op
classes, is tests/ops/test_registry.py's)."""

from __future__ import annotations

from hwcodesign.hardware.engine.config import SPARSE_REFUSAL
from hwcodesign.ir.op import Input
from hwcodesign.ir.types import IntType, Tensor
from hwcodesign.ops import Refused, SubmanifoldConv, family_of


def test_the_sparse_family_refuses_the_engine_with_the_sparse_message() -> None:
    assert family_of(SubmanifoldConv).engine == Refused(SPARSE_REFUSAL)  # the message: tests/mapper/test_engine_map.py


def test_a_graph_input_is_no_instruction() -> None:
    source = Input("in", (), Tensor("x", (1, 8, 4, 4), IntType(8, False), 0.05, 0))
    assert family_of(Input).engine.instructions(source, [], 64) == ()
