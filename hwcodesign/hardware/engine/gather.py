"""The pixel unit's channel gather (`hwc_gather_compute`): what its plan, loops and descriptor are.

A gather holds each output pixel's input words, of one tensor on the feature-map port and
optionally a second on the aux port, in a copy per pixel lane, then writes the output's words
EW_LANES channels a cycle: output channel c is the byte at position `order[c]` of the held words
(the first input's words, then the second's). A channel range, a channel shuffle and a Concat
whose parts do not fill whole words are each one gather.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from hwcodesign.hardware.engine.config import EngineConfig, EngineUnsupported, words_per_pixel
from hwcodesign.hardware.engine.descriptor import FLAGS, DescribeContext
from hwcodesign.hardware.engine.plan import Instruction, InstructionPlan, PixelLoops, pixel_plan
from hwcodesign.hardware.engine.tables import GATHER_INDEX_BITS, gather_order_words
from hwcodesign.ir.requant import Requant
from hwcodesign.ir.types import Tensor

GATHER_INPUTS = 2
"""Tensors a gather holds a pixel of: the feature-map port's and the aux port's."""


def copies_bytes(requant: Requant, source: Tensor) -> bool:
    """The output stage is the identity on every value `source` can hold: multiplier 2**shift, no
    offset, the source's zero point, a clamp covering its range (the pixel unit computes
    (x - zp_in) * M >> shift + zp_out, clamped), so each output byte is its input byte."""
    return (requant.is_identity() and requant.zero_point == source.zero_point
            and requant.lo <= source.dtype.min and requant.hi >= source.dtype.max)


def held_positions(inputs: Sequence[Tensor], word_bytes: int) -> list[int]:
    """The byte position of each input's channel 0 in the held words (each input's whole words)."""
    starts, position = [], 0
    for tensor in inputs:
        starts.append(position)
        position += words_per_pixel(tensor, word_bytes) * word_bytes
    return starts


def check_gather(name: str, kind: str, inputs: Sequence[Tensor], order: Sequence[int], word_bytes: int) -> None:
    """EngineUnsupported when the gather's inputs or order are outside what the pixel unit holds."""
    if len(inputs) > GATHER_INPUTS:
        raise EngineUnsupported(f"layer '{name}' ({kind}): {len(inputs)} inputs; the pixel unit's gather reads at most "
                                f"{GATHER_INPUTS} (the feature-map and aux ports)")
    held = sum(words_per_pixel(t, word_bytes) for t in inputs) * word_bytes
    if held > 1 << GATHER_INDEX_BITS or any(not 0 <= p < held for p in order):
        raise EngineUnsupported(f"layer '{name}' ({kind}): a gather over {held} held bytes; its order holds "
                                f"{GATHER_INDEX_BITS}-bit positions")


def gather_plan(instruction: Instruction, inputs: Sequence[Tensor], config: EngineConfig,
                order: Sequence[int]) -> InstructionPlan:
    """Records for the output's channels, and the order table loaded with them."""
    return replace(pixel_plan(instruction, inputs, config, instruction.op.output),
                   lookup_words=len(gather_order_words(tuple(order))))


def gather_loops(item: InstructionPlan, config: EngineConfig) -> PixelLoops:
    """Per pixel: every input's words into the lanes' copies, then the output's own words,
    WORD_BYTES / EW_LANES cycles each, in one loop; written at their place in the written tensor
    (a pixel at a time when that is a wider tensor, `Instruction.destination`)."""
    out = item.output
    held = sum(words_per_pixel(t, config.word_bytes) for t in item.inputs)
    own_cw = words_per_pixel(out, config.word_bytes)
    pixels = out.shape[2] * out.shape[3]
    iterations = pixels * (held + own_cw * (config.word_bytes // config.ew_lanes))
    written_cw = words_per_pixel(item.instruction.written, config.word_bytes)
    return PixelLoops(iterations, 1, pixels * own_cw, 1 if own_cw == written_cw else pixels)


def describe_gather(item: InstructionPlan, order: Sequence[int], fields: dict[str, int],
                    context: DescribeContext) -> int:
    """The order table (where the pixel unit's otherwise unused weights address points) and the
    second input on the aux port; the aux port's signedness flag."""
    fields["weights_addr"] = context.writer.append(gather_order_words(tuple(order)))
    if len(item.inputs) < 2:
        return 0
    second = item.inputs[1]
    fields.update(context.tensor_fields("aux", second))
    return FLAGS["aux_signed"] if second.dtype.signed else 0
