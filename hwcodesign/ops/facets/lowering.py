"""The lowering facet's interface: how ONNX nodes become a family's IR ops.

A family's `lowering` is a `FamilyLowering`:
- `rules`: one `LoweringRule` per ONNX op type the family builds, called with the shared
  `LoweringContext` (hwcodesign/frontend/context.py), the node and its name;
- `patterns`: named steps the lowering driver tries before the op type's rule (fold a BatchNorm,
  recognise an active-site mask); each can be disabled by its name (`--disable-pass`), and a node
  that only a disabled pattern would have taken is refused like any unsupported op;
- `builders`: layers the toolkit's plumbing asks for by name (`frontend.context.Builders`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

import onnx

from hwcodesign.frontend.context import LoweringContext


class LoweringRule(Protocol):
    """Lower one node: put a value for each of its outputs into `ctx.values`, or raise
    `UnsupportedModelError` naming the node."""

    def __call__(self, ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None: ...


class PatternMatch(Protocol):
    """Try a pattern on one node: True when it lowered the node, False to leave it to the next."""

    def __call__(self, ctx: LoweringContext, node: onnx.NodeProto, name: str) -> bool: ...


@dataclass(frozen=True)
class Pattern:
    """A named, disableable step of the lowering, tried on nodes of `op_types` ("*": every node)."""

    name: str
    op_types: tuple[str, ...]
    match: PatternMatch
    summary: str


@dataclass(frozen=True)
class FamilyLowering:
    """Everything a family contributes to lowering ONNX into the IR (see the module doc)."""

    rules: Mapping[str, LoweringRule] = field(default_factory=lambda: MappingProxyType({}))
    patterns: tuple[Pattern, ...] = ()
    builders: Mapping[str, Callable[..., Any]] = field(default_factory=lambda: MappingProxyType({}))
