"""What a project folder records, shared by the writers (`project`, `engine_project`), the
reader (`Project`), its schema check, the C simulation and the emulated board: the metadata file's name,
the boundary port (`BoundaryPort`), the engine's register layout and the testbench's byte text.
Its own module so that none of those has to import another to agree on the format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hwcodesign.codegen.packing import (
    StreamLayout,
    layout_of,
    pack_frames,
    pack_tokens,
    token_words_per_frame,
    unpack_frames,
)
from hwcodesign.ir.input_window import FramedInput, InputWindow
from hwcodesign.ir.types import ActiveSet, BipolarType, IntType, Tensor

PROJECT_FILE = "project.json"
IP_CELL = "accel"
"""The accelerator's cell in the block design (the name `pynq.Overlay` gives it)."""


def engine_cells(instances: int) -> tuple[str, ...]:
    """The block-design cell of each of `instances` engine instances: `IP_CELL`, as a single
    accelerator is named, then accel1, accel2, ... (instance i on PS HP port i)."""
    return (IP_CELL, *(f"{IP_CELL}{i}" for i in range(1, instances)))


def listed_engine_cells(meta: dict[str, Any]) -> list[str]:
    """The engine cells project.json lists under "instances"; a project without the key (written
    before engines had instances) has the one engine `IP_CELL`."""
    return list(meta.get("instances", [IP_CELL]))


def listed_batch(meta: dict[str, Any]) -> int:
    """The frames one engine run holds, as project.json says ("batch"); a project without the key
    (written before engines ran batches) runs one frame at a time."""
    return int(meta.get("batch", 1))


POINTER_ARGUMENTS = ("fmap_in", "fmap_aux", "fmap_out", "params")  # the engine's DDR pointers, in order
SCALAR_ARGUMENTS = ("layers", "frames", "frame_words")  # then its scalars: instructions, frames a run, arena stride


@dataclass(frozen=True)
class BoundaryPort(FramedInput):
    """A tensor crossing the accelerator boundary: a dataflow top's AXI4-Stream, or a tensor the
    engine reads from or writes to its DDR arena (`address`). The one description every writer
    (HLS top, testbench, build scripts, project.json, driver) and every reader (`Project`, the
    C simulation, the emulated board) derives its sizes and packing from.

    `sparse` is recorded rather than read off the tensor, since a port read back from project.json
    carries no active set of its own.
    """

    port: str  # "in0" / "out0": C++ argument, AXIS interface and project.json name
    tensor: Tensor
    layout: StreamLayout  # the engine's: one byte of DDR per element (`storage_bits`)
    sparse: bool = False  # frames are tokens of the active sites (packing.pack_tokens)
    address: int | None = None  # the engine's arena word; None for a stream
    window: InputWindow | None = None  # an input the host packs from frames (`ir/input_window.py`)

    @classmethod
    def stream(cls, port: str, tensor: Tensor, word_bits: int, window: InputWindow | None = None) -> BoundaryPort:
        """A dataflow top's port: the tensor's own element width in `word_bits`-bit words."""
        return cls(port, tensor, layout_of(tensor.shape, tensor.dtype, word_bits), tensor.sparse, window=window)

    @property
    def word_bits(self) -> int:
        return self.layout.word_bits

    @property
    def words_per_frame(self) -> int:
        """Words of a frame: fixed for a dense tensor, at most this many tokens' for a sparse one."""
        return token_words_per_frame(self.layout) if self.sparse else self.layout.words_per_frame

    @property
    def frame_bytes(self) -> int:
        """Bytes of one frame's buffer (a sparse input's: the most its tokens can take)."""
        return self.words_per_frame * self.layout.word_bits // 8

    def pack(self, frames: np.ndarray) -> np.ndarray:
        """(N, C, H, W) integers -> (N, frame_bytes) uint8, the buffer the DMA or the engine reads."""
        if self.sparse:
            return pack_tokens(frames, self.layout, self.tensor.zero_point, self.tensor.shape[3])
        return pack_frames(frames, self.layout)

    @property
    def boundary_tensor(self) -> Tensor:
        return self.tensor

    def unpack(self, buffer: np.ndarray) -> np.ndarray:
        """(N, frame bytes) uint8 of a dense port -> (N, C, H, W) integers."""
        return unpack_frames(buffer, self.layout, self.tensor.shape[2], self.tensor.shape[3])

    def as_template(self) -> dict[str, object]:
        """What the HLS and host templates print about the port."""
        _, c, h, w = self.tensor.shape
        return {
            "port": self.port, "tensor": self.tensor.name, "shape_text": f"{c}x{h}x{w} (CxHxW)",
            "dtype": str(self.tensor.dtype) + (", sparse: tokens of its active sites" if self.sparse else ""),
            "words": self.words_per_frame, "bytes": self.frame_bytes, "sparse": self.sparse, "address": self.address,
        }

    def to_json(self) -> dict[str, Any]:
        """The port as project.json records it; an engine port adds its storage width and address."""
        tensor = self.tensor
        data: dict[str, Any] = {
            "port": self.port, "tensor": tensor.name, "shape": list(tensor.shape), "bits": tensor.dtype.bits,
            "signed": tensor.dtype.signed, "scale": tensor.scale, "zero_point": tensor.zero_point,
        }
        if isinstance(tensor.dtype, BipolarType):  # an int2 of -1/+1 that the driver quantizes as a sign
            data["bipolar"] = True
        if self.address is None:
            data["sparse"] = self.sparse
        else:
            data |= {"storage_bits": self.layout.bits, "address": self.address}
        if self.window is not None:
            data["window"] = self.window.to_json()
        return data | {"words_per_frame": self.words_per_frame, "bytes_per_frame": self.frame_bytes}

    @classmethod
    def from_json(cls, data: dict[str, Any], word_bits: int) -> BoundaryPort:
        dtype = BipolarType() if data.get("bipolar") else IntType(data["bits"], data["signed"])
        tensor = Tensor(data["tensor"], tuple(data["shape"]), dtype, data["scale"], data["zero_point"])
        # the engine keeps every element in a byte of DDR (`storage_bits`), every pixel word-aligned
        # (`engine.sources.storage_layout`); a stream packs `bits`, narrow pixels sharing words (`layout_of`)
        engine = "address" in data
        bits = data.get("storage_bits", dtype.bits)
        layout = StreamLayout(tensor.channels, tensor.shape[2] * tensor.shape[3], bits, dtype.signed, word_bits,
                              pack_pixels=not engine)
        if data.get("sparse"):
            tensor = tensor.with_active(ActiveSet(tensor.name))
        window = InputWindow.from_json(data["window"]) if "window" in data else None
        return cls(data["port"], tensor, layout, bool(data.get("sparse", False)), data.get("address"), window)


def register_offsets() -> dict[str, int]:
    """The top function's AXI4-Lite registers as Vitis HLS lays them out (its generated
    x<top>_hw.h): control at 0x00, then from 0x10 each 64-bit pointer as two data words and a
    reserved one (12 bytes), then the 32-bit scalars `layers`, `frames` and `frame_words`, each a
    data word and a reserved one (8 bytes)."""
    offsets = {name: 0x10 + 12 * index for index, name in enumerate(POINTER_ARGUMENTS)}
    first = 0x10 + 12 * len(POINTER_ARGUMENTS)
    offsets.update({name: first + 8 * index for index, name in enumerate(SCALAR_ARGUMENTS)})
    return offsets


def byte_text(buffer: np.ndarray, per_line: int = 32) -> str:
    flat = [str(v) for v in buffer.ravel().tolist()]
    return "\n".join(" ".join(flat[i:i + per_line]) for i in range(0, len(flat), per_line)) + "\n"
