"""Channel re-routing on the layer-sequential engine: the pixel unit's channel gather.

A channel range (Split, Slice) and a channel shuffle are both "output channel c is input channel
order[c]" of every pixel. The engine keeps a tensor in DDR as whole words of a pixel's channels,
so a range starting inside a word, or a permutation within a pixel, is not an address: the pixel
unit's gather mode (`hardware.engine.gather`) holds each input pixel and writes the output's words
EW_LANES channels a cycle through an order table. Its output stage is the op's requantization
(the identity on one grid). A gather may write straight into part of a Concat's output
(`write_copies_in_place`), as a MAC layer does: ShuffleNetV2's pass-through half lands in the
next unit's concatenation without a copy of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from hwcodesign.hardware.engine.plan import Instruction
from hwcodesign.ir.types import Tensor
from hwcodesign.ops.facets.engine import GatherFacet
from hwcodesign.ops.route.ir import ChannelPermute, ChannelSlice


class RouteEngine(GatherFacet):
    def order(self, instruction: Instruction, inputs: Sequence[Tensor], word_bytes: int) -> tuple[int, ...]:
        """One input, held from byte 0: the positions are its channels."""
        op = instruction.op
        if isinstance(op, ChannelSlice):
            return tuple(range(op.start, op.start + op.output.channels))
        assert isinstance(op, ChannelPermute), op.kind
        return op.order


FACET = RouteEngine()
