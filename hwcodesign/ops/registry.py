"""The op registry: every op family, and the lookup from an IR op to its family.

Adding a family means writing its package under `hwcodesign/ops/` and naming it here once.
Lookups go by the op's exact class, so a subclass (DepthwiseConv of Conv) is its own entry.
"""

from __future__ import annotations

from types import MappingProxyType

from hwcodesign.ir.op import Op
from hwcodesign.ops import (
    boundary,
    channelwise,
    concat,
    conv,
    deform,
    elementwise,
    resize,
    route,
    sparse,
    table,
)
from hwcodesign.ops.family import OpFamily
from hwcodesign.ops.refusal import OpUnsupported

FAMILIES: tuple[OpFamily, ...] = (
    boundary.FAMILY,
    conv.FAMILY,
    channelwise.FAMILY,
    deform.FAMILY,
    sparse.FAMILY,
    elementwise.FAMILY,
    resize.FAMILY,
    concat.FAMILY,
    table.FAMILY,
    route.FAMILY,
)

_BY_CLASS = MappingProxyType({cls: family for family in FAMILIES for cls in family.ops})


def family_of(op: Op | type[Op]) -> OpFamily:
    """The family registered for this op's exact class; `OpUnsupported` names an unknown one."""
    cls = op if isinstance(op, type) else type(op)
    family = _BY_CLASS.get(cls)
    if family is None:
        raise OpUnsupported(f"no op family is registered for {cls.__name__}")
    return family


def op_classes() -> tuple[type[Op], ...]:
    """Every registered IR op class, in family order."""
    return tuple(_BY_CLASS)
