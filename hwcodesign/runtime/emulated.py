"""An emulated PYNQ board: the small surface of `pynq` the generated driver uses, backed by the
project's C simulation, so the same driver and notebook run without a board.

Surface (PYNQ 3.x names): `Overlay` attributes per IP instance (`accel`, `dma0`, ...); the HLS IP
with `write(offset, value)` / `read(offset)` on its AXI4-Lite control registers (ap_ctrl_hs:
CTRL at 0x00 with ap_start, ap_done, ap_idle, auto_restart); AXI DMAs with `sendchannel` and
`recvchannel`, each `transfer(buffer)`, `wait()`, `idle`; and `allocate(shape, dtype)` giving
numpy buffers with `flush()`, `invalidate()`, `physical_address` and `freebuffer()`.

Semantics kept from the hardware, because a driver bug should fail here as it would there: a
started IP consumes whole input frames from the MM2S streams (one frame per start, or every
available frame with auto_restart); an S2MM transfer ends at TLAST, i.e. receives exactly one
frame; waiting on a transfer that can never complete raises instead of hanging.

A layer-sequential engine project has no DMA: `accel` (and accel1, ... with several instances) is
an engine's AXI4-Lite register file
(`EmulatedEngine`: the four 64-bit buffer pointers and the layer count, at the offsets Vitis HLS
gives them), and ap_start runs the C simulation in place on whichever `allocate` buffers those
pointers address, so a wrong address, a buffer too small or a missing flush shows up here.
"""

from __future__ import annotations

import os
import weakref
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from hwcodesign.codegen.csim import run_csim, run_engine
from hwcodesign.codegen.packing import split_token_frames
from hwcodesign.codegen.project import Project
from hwcodesign.codegen.project_format import IP_CELL, SCALAR_ARGUMENTS, listed_batch, listed_engine_cells
from hwcodesign.errors import HwcodesignError
from hwcodesign.hardware.engine.config import PARAMS_WORD_BYTES

CTRL = 0x00
AP_START, AP_DONE, AP_IDLE, AUTO_RESTART = 0x01, 0x02, 0x04, 0x80


class EmulationError(HwcodesignError):
    """The driver did something the hardware would hang on or reject."""


class EmulatedBuffer(np.ndarray):
    """A `pynq.allocate` buffer: a numpy array with a (fake) physical address and cache calls."""

    physical_address: int

    def flush(self) -> None:
        """Write back the CPU cache (nothing to do off-board)."""

    def invalidate(self) -> None:
        """Discard stale cache lines before reading DMA results (nothing to do off-board)."""

    def freebuffer(self) -> None:
        """Release the contiguous memory (nothing to do off-board)."""

    def close(self) -> None:
        self.freebuffer()

    def __enter__(self) -> EmulatedBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.freebuffer()


class _AddressSpace:
    """Physical addresses for emulated buffers: page-aligned, never overlapping, so a pointer
    register resolves to exactly one buffer (as in the board's contiguous memory)."""

    PAGE = 4096

    def __init__(self, first: int = 0x1000_0000) -> None:
        self.next = first
        self.buffers: dict[int, weakref.ref[EmulatedBuffer]] = {}

    def place(self, buffer: EmulatedBuffer) -> int:
        address = self.next
        self.next += -(-max(buffer.nbytes, 1) // self.PAGE) * self.PAGE
        self.buffers[address] = weakref.ref(buffer)
        return address


_space = _AddressSpace()


def allocate(shape: int | tuple[int, ...], dtype: Any = np.uint32, **_: Any) -> EmulatedBuffer:
    """`pynq.allocate`: zero-filled contiguous memory (here: a numpy array)."""
    buffer = np.zeros(shape, dtype=dtype).view(EmulatedBuffer)
    buffer.physical_address = _space.place(buffer)
    return buffer


def buffer_at(address: int, nbytes: int) -> np.ndarray | None:
    """The bytes [address, address + nbytes) of a live allocate() buffer, or None."""
    for base, ref in list(_space.buffers.items()):
        buffer = ref()
        if buffer is None:
            del _space.buffers[base]
            continue
        if base <= address and address + nbytes <= base + buffer.nbytes:
            flat = np.asarray(buffer).reshape(-1).view(np.uint8)
            return flat[address - base:address - base + nbytes]
    return None


class _Channel:
    """One direction of an AXI DMA in simple (register) mode."""

    def __init__(self, overlay: EmulatedOverlay, name: str, port: str | None) -> None:
        self.overlay, self.name, self.port = overlay, name, port
        self.pending: np.ndarray | None = None

    @property
    def idle(self) -> bool:
        return self.pending is None

    @property
    def running(self) -> bool:
        return self.port is not None

    def transfer(self, array: np.ndarray, start: int = 0, nbytes: int = 0) -> None:
        if self.port is None:
            raise EmulationError(f"{self.name}: this DMA channel is not in the design")
        if self.pending is not None:
            raise EmulationError(f"{self.name}: transfer started while the previous one is still running")
        flat = np.asarray(array).reshape(-1).view(np.uint8)
        length = nbytes or flat.size - start
        self.pending = flat[start:start + length]
        self.overlay.pump()

    def wait(self) -> None:
        self.overlay.pump()
        if self.pending is not None:
            raise EmulationError(
                f"{self.name}: wait() would hang: {self.waiting_for()}"
            )

    def waiting_for(self) -> str:
        ip = self.overlay.accel
        if not ip.started:
            return "the accelerator was never started (write ap_start to its CTRL register at 0x00)"
        return "the accelerator has no complete input frame on every input stream"


class _Send(_Channel):
    def take(self) -> np.ndarray | None:
        data, self.pending = self.pending, None
        return data


class _Receive(_Channel):
    def fill(self, frame: np.ndarray) -> None:
        assert self.pending is not None
        if self.pending.size < frame.size:
            raise EmulationError(
                f"{self.name}: receive buffer of {self.pending.size} bytes is smaller than one output frame "
                f"({frame.size} bytes); the transfer would end early and lose data"
            )
        self.pending[: frame.size] = frame
        self.pending = None


class EmulatedDMA:
    def __init__(self, overlay: EmulatedOverlay, name: str, mm2s: str | None, s2mm: str | None) -> None:
        self.sendchannel = _Send(overlay, f"{name}.sendchannel", mm2s)
        self.recvchannel = _Receive(overlay, f"{name}.recvchannel", s2mm)


class EmulatedIP:
    """The HLS IP's AXI4-Lite control interface (ap_ctrl_hs)."""

    def __init__(self) -> None:
        self.started = False
        self.auto_restart = False
        self.done = False

    def write(self, offset: int, value: int) -> None:
        if offset != CTRL:
            raise EmulationError(f"accel: register 0x{offset:02x} does not exist (the design has only CTRL at 0x00)")
        self.auto_restart = bool(value & AUTO_RESTART)
        if value & AP_START:
            self.started, self.done = True, False

    def read(self, offset: int) -> int:
        if offset != CTRL:
            raise EmulationError(f"accel: register 0x{offset:02x} does not exist")
        value = AP_START if self.started else AP_IDLE
        value |= AP_DONE if self.done else 0
        return value | (AUTO_RESTART if self.auto_restart else 0)


class EmulatedEngine:
    """The layer-sequential engine's AXI4-Lite registers (ap_ctrl_hs, four 64-bit pointers, the
    layer count, the frames a run holds and the words between their arenas); ap_start runs the C
    simulation on the buffers the pointers address."""

    POINTERS = ("fmap_in", "fmap_aux", "fmap_out", "params")

    def __init__(self, project: Project, name: str = IP_CELL) -> None:
        self.project = project
        self.name = name  # its block-design cell (messages name it)
        self.offsets: dict[str, int] = dict(project.meta["registers"])
        self.registers: dict[int, int] = {}
        self.done = False
        self.started = False
        self.auto_restart = False
        self.arena_words = int(project.meta["arena_words"])
        self.word_bytes = int(project.meta["word_bits"]) // 8
        self.batch = listed_batch(project.meta)
        self.params_bytes = int(project.meta["params_words"]) * PARAMS_WORD_BYTES

    def _names(self) -> dict[int, str]:
        names = {self.offsets[scalar]: scalar for scalar in SCALAR_ARGUMENTS}
        for pointer in self.POINTERS:
            names[self.offsets[pointer]] = f"{pointer} (low word)"
            names[self.offsets[pointer] + 4] = f"{pointer} (high word)"
        return names

    def write(self, offset: int, value: int) -> None:
        if offset == CTRL:
            self.auto_restart = bool(value & AUTO_RESTART)
            if self.auto_restart:
                raise EmulationError(f"{self.name}: the engine runs one frame per ap_start; auto_restart is not used")
            if value & AP_START:
                self.started, self.done = True, False
                self.run()
            return
        if offset not in self._names():
            raise EmulationError(f"{self.name}: register 0x{offset:02x} does not exist (the engine has CTRL at 0x00, "
                                 f"then {', '.join(f'{n} 0x{o:02x}' for n, o in self.offsets.items())})")
        self.registers[offset] = int(value) & 0xFFFFFFFF

    def read(self, offset: int) -> int:
        if offset == CTRL:
            value = (AP_DONE | AP_IDLE) if self.done else (0 if self.started else AP_IDLE)
            self.done = False  # ap_done clears on read (Vitis HLS 2022.1 and later)
            return value
        if offset in self._names():
            return self.registers.get(offset, 0)
        raise EmulationError(f"{self.name}: register 0x{offset:02x} does not exist")

    def pointer(self, name: str, nbytes: int) -> np.ndarray:
        offset = self.offsets[name]
        if offset not in self.registers or offset + 4 not in self.registers:
            raise EmulationError(f"{self.name}: ap_start with the {name} address register (0x{offset:02x}) never written")
        address = self.registers[offset] | (self.registers[offset + 4] << 32)
        view = buffer_at(address, nbytes)
        if view is None:
            raise EmulationError(f"{self.name}: {name} = 0x{address:x} does not address {nbytes} bytes of an allocate() "
                                 "buffer (the engine would read or write outside it)")
        return view

    def run(self) -> None:
        layers = self.registers.get(self.offsets["layers"], 0)
        expected = int(self.project.meta["layer_count"])
        if layers != expected:
            raise EmulationError(f"{self.name}: layers = {layers}, but params.bin holds {expected} instructions")
        frames = self.registers.get(self.offsets["frames"], 0)
        if not 1 <= frames <= self.batch:
            raise EmulationError(f"{self.name}: frames = {frames}, but a run of this engine holds 1 to {self.batch} "
                                 "(project.json \"batch\"; its feature-map buffer has that many arenas)")
        frame_words = self.registers.get(self.offsets["frame_words"], 0)
        if frames > 1 and frame_words < self.arena_words:
            raise EmulationError(f"{self.name}: frame_words = {frame_words}, fewer than one frame's arena "
                                 f"({self.arena_words} words): the frames would overwrite each other")
        span = ((frames - 1) * frame_words + self.arena_words) * self.word_bytes
        fmaps = [self.pointer(name, span) for name in self.POINTERS[:3]]
        params = self.pointer("params", self.params_bytes)
        run_engine(self.project, *fmaps, params, layers, frames, frame_words)
        self.started, self.done = False, True


class EmulatedOverlay:
    """`pynq.Overlay` for a compiled project, executing frames with its C simulation."""

    def __init__(self, project: str | os.PathLike[str] | Project, bitfile: str | os.PathLike[str] | None = None) -> None:
        self.project = project if isinstance(project, Project) else open_project(Path(project))
        self.bitfile_name = str(bitfile) if bitfile else f"{self.project.name}.bit"
        self.ip_dict = {IP_CELL: {"type": f"hwcodesign.org:hls:{self.project.meta['top_function']}:1.0"}}
        if self.project.architecture == "sequential":  # one register file per engine instance
            for cell in listed_engine_cells(self.project.meta):
                setattr(self, cell, EmulatedEngine(self.project, cell))
                self.ip_dict[cell] = dict(self.ip_dict[IP_CELL])
            self.accel: EmulatedIP | EmulatedEngine = getattr(self, IP_CELL)
            self.dmas: list[EmulatedDMA] = []
            return
        self.accel = EmulatedIP()
        self.ports_in = [p.port for p in self.project.inputs]
        self.ports_out = [p.port for p in self.project.outputs]
        self.frame_bytes = {p.port: p.frame_bytes for p in self.project.inputs + self.project.outputs}
        self.input_ports = {p.port: p for p in self.project.inputs}
        self.streams: dict[str, bytearray] = {port: bytearray() for port in self.ports_in}
        self.results: dict[str, deque[np.ndarray]] = {port: deque() for port in self.ports_out}
        self.dmas = []
        for index in range(max(len(self.ports_in), len(self.ports_out))):
            mm2s = self.ports_in[index] if index < len(self.ports_in) else None
            s2mm = self.ports_out[index] if index < len(self.ports_out) else None
            dma = EmulatedDMA(self, f"dma{index}", mm2s, s2mm)
            setattr(self, f"dma{index}", dma)
            self.dmas.append(dma)
            self.ip_dict[f"dma{index}"] = {"type": "xilinx.com:ip:axi_dma:7.1"}

    def pump(self) -> None:
        """Move data as the hardware would: MM2S into the streams, frames through the IP, S2MM out."""
        for dma in self.dmas:
            channel = dma.sendchannel
            if channel.pending is not None:
                self.streams[channel.port].extend(channel.take().tobytes())
        ip = self.accel
        while ip.started:
            lengths = {port: self.frame_lengths(port) for port in self.ports_in}
            ready = min(len(found) for found in lengths.values())
            if ready == 0:
                break
            frames = ready if ip.auto_restart else 1
            inputs = []
            for port in self.ports_in:
                buffer = np.zeros((frames, self.frame_bytes[port]), np.uint8)
                for frame, length in enumerate(lengths[port][:frames]):
                    buffer[frame, :length] = np.frombuffer(bytes(self.streams[port][:length]), np.uint8)
                    del self.streams[port][:length]
                inputs.append(buffer)
            outputs = run_csim(self.project, frames, inputs)
            for port, values in zip(self.ports_out, outputs):
                self.results[port].extend(values)
            if not ip.auto_restart:
                ip.started, ip.done = False, True
        for dma in self.dmas:
            channel = dma.recvchannel
            if channel.pending is not None and self.results[channel.port]:
                channel.fill(self.results[channel.port].popleft())

    def frame_lengths(self, port: str) -> list[int]:
        """Bytes of each complete frame waiting on an input stream: fixed for a dense tensor, up
        to its end header for a sparse one (tokens)."""
        info = self.input_ports[port]
        if info.sparse:
            return split_token_frames(self.streams[port], info.layout)
        return [self.frame_bytes[port]] * (len(self.streams[port]) // self.frame_bytes[port])

    def free(self) -> None:
        """`Overlay.free()`: nothing is programmed off-board."""


def open_project(root: Path) -> Project:
    """The compiled project emulation runs; it needs the project's HLS sources, not just a package."""
    if not (root / "project.json").is_file() or not (root / "hls" / "top.cpp").is_file():
        raise EmulationError(
            f"emulation runs the C simulation of a compiled project's hls/ sources, and {root} is not such a "
            "project (a board package has no HLS sources): set HWCODESIGN_PROJECT to the folder written by "
            "`hwcodesign compile`"
        )
    return Project(root)


def project_root_for(driver_file: str | os.PathLike[str]) -> Path:
    """Where emulation finds the HLS sources: $HWCODESIGN_PROJECT, else the driver's project."""
    explicit = os.environ.get("HWCODESIGN_PROJECT")
    return Path(explicit) if explicit else Path(driver_file).resolve().parent.parent
