"""A boundary port for tests that need only its name and word width (the build scripts')."""

from __future__ import annotations

from hwcodesign.codegen.project_format import BoundaryPort
from hwcodesign.ir.types import IntType, Tensor


def stream_port(name: str, word_bits: int) -> BoundaryPort:
    """An AXI4-Stream port `name` of `word_bits`-bit words carrying a small 8-bit tensor."""
    return BoundaryPort.stream(name, Tensor(f"t_{name}", (1, 3, 4, 4), IntType(8, False), 1.0, 0), word_bits)
