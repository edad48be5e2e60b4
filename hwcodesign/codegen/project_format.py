"""What a project folder records, shared by the writers (`project`, `engine_project`), the
reader (`Project`), its schema check and the C simulation: the metadata file's name, a boundary
port as project.json describes it, the engine's register layout and the testbench's byte text.
Its own module so that none of those has to import another to agree on the format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hwcodesign.codegen.packing import StreamLayout, pack_frames, pack_tokens, token_words_per_frame
from hwcodesign.ir.types import ActiveSet, IntType, Tensor

PROJECT_FILE = "project.json"
POINTER_ARGUMENTS = ("fmap_in", "fmap_aux", "fmap_out", "params")  # the engine's DDR pointers, in order


@dataclass(frozen=True)
class PortInfo:
    """One boundary stream as recorded in project.json: enough to pack, unpack and (de)quantize."""

    port: str
    tensor: Tensor
    layout: StreamLayout
    sparse: bool = False  # frames are tokens of the active sites (packing.pack_tokens)

    @property
    def frame_bytes(self) -> int:
        """Bytes of one frame's buffer (a sparse input's: the most its tokens can take)."""
        if self.sparse:
            return token_words_per_frame(self.layout) * self.layout.word_bits // 8
        return self.layout.bytes_per_frame

    def pack(self, frames: np.ndarray) -> np.ndarray:
        if self.sparse:
            return pack_tokens(frames, self.layout, self.tensor.zero_point, self.tensor.shape[3])
        return pack_frames(frames, self.layout)

    @classmethod
    def from_json(cls, data: dict[str, Any], word_bits: int) -> PortInfo:
        dtype = IntType(data["bits"], data["signed"])
        tensor = Tensor(data["tensor"], tuple(data["shape"]), dtype, data["scale"], data["zero_point"])
        # the engine keeps every element in a byte of DDR (`storage_bits`); streams pack `bits`
        bits = data.get("storage_bits", dtype.bits)
        layout = StreamLayout(tensor.channels, tensor.shape[2] * tensor.shape[3], bits, dtype.signed, word_bits)
        if data.get("sparse"):
            tensor = tensor.with_active(ActiveSet(tensor.name))
        return cls(data["port"], tensor, layout, bool(data.get("sparse", False)))


def register_offsets() -> dict[str, int]:
    """The top function's AXI4-Lite registers as Vitis HLS lays them out (its generated
    x<top>_hw.h): control at 0x00, then from 0x10 each 64-bit pointer as two data words and a
    reserved one (12 bytes), then the 32-bit `layers` scalar."""
    offsets = {name: 0x10 + 12 * index for index, name in enumerate(POINTER_ARGUMENTS)}
    offsets["layers"] = 0x10 + 12 * len(POINTER_ARGUMENTS)
    return offsets


def byte_text(buffer: np.ndarray, per_line: int = 32) -> str:
    flat = [str(v) for v in buffer.ravel().tolist()]
    return "\n".join(" ".join(flat[i:i + per_line]) for i in range(0, len(flat), per_line)) + "\n"
