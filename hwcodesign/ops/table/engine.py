"""Lookup tables on the layer-sequential engine: refused. The engine's pixel unit computes the
output stages (requantize, clamp, add, pool) from per-channel records; a table needs a 2**b-entry
memory per lane, loaded for each table layer, which the engine does not have."""

from __future__ import annotations

from hwcodesign.ops.refusal import Refused

FACET = Refused("is a lookup table (a float function of one quantized tensor, e.g. Sigmoid or HardSwish): the "
                "layer-sequential engine's pixel unit has no per-layer table memory; such networks are built as the "
                "dataflow pipeline")
