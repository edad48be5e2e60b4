"""The engine facet of a layer's op family, or the family's reason for refusing the engine.

Its own module because both the program (`program.py`: what each instruction is) and the cost
model (`cost.py`: how long a pixel instruction's loops run) ask it, and the program in turn
times its blocking choices with the cost model.
"""

from __future__ import annotations

from hwcodesign.hardware.engine.config import EngineUnsupported
from hwcodesign.ir.op import Op
from hwcodesign.ops import Refused, family_of
from hwcodesign.ops.facets.engine import EngineFacet


def engine_facet(op: Op) -> EngineFacet:
    """The engine facet of `op`'s family; EngineUnsupported when the family refuses the engine."""
    facet = family_of(op).engine
    if isinstance(facet, Refused):
        raise EngineUnsupported(f"layer '{op.name}' ({op.kind}) {facet.reason}")
    return facet
