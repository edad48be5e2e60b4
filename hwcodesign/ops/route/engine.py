"""Channel re-routing on the layer-sequential engine: refused.

The engine keeps every tensor in DDR as whole words of a pixel's channels, and its pixel unit
reads and writes them word by word from a tensor's base address: no mode selects a channel range
that starts inside a word or reorders channels within a pixel. A slice whose start and length are
whole words could be an address offset, and a permutation a table-driven lane order, but both are
new pixel-unit modes (descriptor fields, the unit's HLS, its cost), not built yet.
"""

from __future__ import annotations

from hwcodesign.ops.refusal import Refused

FACET = Refused(
    "the engine's pixel unit copies whole words of a pixel from a tensor's base address; it has no mode that "
    "selects a channel range (Split/Slice) or reorders channels within a pixel (a channel shuffle); use the "
    "dataflow architecture")
