"""How a facet says no: a family's deliberate `Refused` (with the reason a user reads), and the
`OpUnsupported` error every stage raises for it or for an op no family registers."""

from __future__ import annotations

from dataclasses import dataclass

from hwcodesign.errors import HwcodesignError


class OpUnsupported(HwcodesignError):
    """A facet was asked of an op whose family refuses it (or registers no family at all)."""


@dataclass(frozen=True)
class Refused:
    """A facet a family deliberately does not offer, with the reason a user reads."""

    reason: str
