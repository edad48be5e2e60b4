"""The engine's descriptor: its fields and flags, where tensors sit in DDR, and the params buffer
a family's tables go into.

The C++ reads descriptors back field by field (`templates/hls/engine/engine_layer.h.j2` is
generated from `DESCRIPTOR_FIELDS`, so the two layouts are one definition).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwcodesign.hardware.engine.config import EngineConfig, words_per_pixel
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.types import Tensor

# The stage2_* fields are a MAC layer's second output stage: a deformable layer's offset conversion,
# or a fused residual Add's (`Residual`); the aux_* fields its second input on the aux port (the
# offsets, or the skip tensor).
DESCRIPTOR_FIELDS = (
    "mode", "flags",
    "in_addr", "in_h", "in_w", "in_c", "in_cw", "in_zp",
    "aux_addr", "aux_cw", "aux_c", "aux_zp",
    "mask_addr", "mask_cw", "mask_c", "mask_zp",
    "out_addr", "out_h", "out_w", "out_c", "out_cw", "out_word_offset", "out_zp", "out_lo", "out_hi",
    "kh", "kw", "stride_h", "stride_w", "pad_t", "pad_l", "dil_h", "dil_w",
    "reach", "window_rows", "ring_rows", "slot0", "bank_row_words",
    "chunks", "pixels", "inner", "sf", "sfx", "lanes_out", "outer_total", "outer_per_block", "blocks", "load_pe",
    "chunks_per_group", "weights_addr", "block_weight_words", "tables_addr",
    "mult_a", "mult_b", "scale_h", "scale_w",
    "frac_bits", "sample_shift", "stage2_tables_addr", "stage2_zp", "stage2_lo", "stage2_hi",
    "pattern_cy", "pattern_cx",
)
ARENA_ADDRESS_FIELDS = ("in_addr", "aux_addr", "mask_addr", "out_addr")
"""The fields that are word addresses in the feature-map arena: a batch's frame f has its own arena
`f * frame_words` further on (`hwc_frame_layer` in the generated engine_layer.h), the params
addresses stay."""
DESCRIPTOR_WORDS = 32  # two 32-bit fields per 64-bit word, padded to a power of two
FLAG_MEANINGS = {
    "in_signed": "the input's bytes are signed",
    "aux_signed": "the aux port's bytes are signed",
    "mask_signed": "the modulation mask's bytes are signed",
    "negative": "a fused LeakyReLU: second multiplier for negative products",
    "mask": "deformable conv v2: modulation mask on the aux port after offsets",
    "fixed_shape": "deformable conv with one scale per offset group (CoDeNet)",
    "deform": "sample at offsets read from the aux port",
    "max_pool": "channelwise: max over the window instead of a weighted sum",
    "gate": "mul: the aux tensor is one pixel, a gate applied at every pixel",
    "table": "global pool: each element read through a 16-bit table first (a lookup mean)",
    "residual": "MAC: a fused residual Add of the skip tensor on the aux port",
    "prefetch": "MAC: blocks alternate between the weight memories' halves, the next loaded under compute",
}
"""The descriptor's flag bits, in bit order, and what each means (the generated engine_layer.h
declares them as HWC_FLAG_<NAME> from this one list)."""
FLAGS = {name: 1 << bit for bit, name in enumerate(FLAG_MEANINGS)}


@dataclass(frozen=True)
class Arena:
    """Word address and size of every tensor in the feature-map buffer."""

    addresses: dict[str, int]
    sizes: dict[str, int]
    words: int


class ParamsWriter:
    """Appends word blocks to the params buffer after the descriptor table."""

    def __init__(self, descriptor_words: int) -> None:
        self.blocks: list[np.ndarray] = [np.zeros(descriptor_words, np.uint64)]
        self.size = descriptor_words

    def append(self, words: np.ndarray) -> int:
        """Appends `words`; returns their word address in params."""
        address = self.size
        flat = np.ascontiguousarray(words, dtype=np.uint64).reshape(-1)
        self.blocks.append(flat)
        self.size += flat.size
        return address


@dataclass(frozen=True)
class DescribeContext:
    """What a family's descriptor fields may refer to: the graph, the engine, DDR and params."""

    graph: Graph
    config: EngineConfig
    arena: Arena
    writer: ParamsWriter

    def tensor_fields(self, prefix: str, tensor: Tensor) -> dict[str, int]:
        """Address, words per pixel, zero point (and shape for "in") of a tensor on one port."""
        return tensor_fields(prefix, tensor, self.arena, self.config.word_bytes)


def tensor_fields(prefix: str, tensor: Tensor, arena: Arena, word_bytes: int) -> dict[str, int]:
    fields = {f"{prefix}_addr": arena.addresses[tensor.name], f"{prefix}_cw": words_per_pixel(tensor, word_bytes),
              f"{prefix}_zp": tensor.zero_point}
    if prefix == "in":
        fields.update(in_h=tensor.shape[2], in_w=tensor.shape[3], in_c=tensor.channels)
    else:
        fields[f"{prefix}_c"] = tensor.channels
    return fields
