from __future__ import annotations

import pytest
from support.deform_suite import DeformSuite, emit_deform_suite
from support.op_suite import OpSuite, emit_op_suite

from hwcodesign.boards import load_board


@pytest.fixture(scope="session")
def op_suite(tmp_path_factory: pytest.TempPathFactory) -> OpSuite:
    """Every op case in one project per folding variant (support/op_suite.py), emitted once (not
    compiled) for the session."""
    return emit_op_suite(load_board("ultra96v2"), tmp_path_factory.mktemp("op_suite"))


@pytest.fixture(scope="session")
def deform_suite(tmp_path_factory: pytest.TempPathFactory) -> DeformSuite:
    """Every deformable conv case in one project per folding variant (support/deform_suite.py),
    emitted once (not compiled) for the session."""
    return emit_deform_suite(load_board("zcu104"), tmp_path_factory.mktemp("deform_suite"))
