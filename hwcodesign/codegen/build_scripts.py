"""Vendor build scripts for a compiled project: Vitis HLS, the Vivado block design, the bitstream.

The compiler never runs the Xilinx tools itself; it writes the scripts a hardware engineer would
otherwise write by hand, so the project folder builds on any machine with Vitis/Vivado installed
(`make hls`, `make bitstream`) and can be read and edited like hand-written Tcl. Everything the
scripts depend on (the board's part and PS, the stream ports and their widths, the IP's VLNV) is
decided here once and handed to the templates, so the three Tcl files and the Makefile cannot
disagree about a path or a name.

The system is the PYNQ-style one: the HLS IP (`accel`) is started over AXI4-Lite by the PS and
fed by one AXI DMA per stream pair in simple (register) mode, because that is what PYNQ's `DMA`
driver and `allocate()` buffers drive directly. The layer-sequential engine has no streams: its
own AXI4 masters (`BuildContext.masters`) reach DDR through an HP port, and the driver hands it
`allocate()` buffers' physical addresses in its registers. Several engine instances
(`BuildContext.instances`) are cells accel, accel1, ... (`project_format.engine_cells`), instance
i's masters on HP port i through its own SmartConnect.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from hwcodesign.boards import HP_PORTS, Board
from hwcodesign.codegen.csim import CXX_BUILD_FLAGS
from hwcodesign.codegen.project_format import IP_CELL, BoundaryPort, engine_cells
from hwcodesign.codegen.render import render
from hwcodesign.errors import HwcodesignError

IP_VENDOR = "hwcodesign.org"
IP_LIBRARY = "hls"
IP_VERSION = "1.0"

HLS_SOLUTION = "solution1"
BD_NAME = "system"
"""Block-design name; the .bit/.hwh are renamed to the project name, so this never shows."""

DMA_LENGTH_BITS = 26
"""Width of the DMA's buffer-length register: 2**26 - 1 bytes (64 MB) per simple-mode transfer,
the IP's maximum, so one frame is one transfer and the PYNQ driver never has to split it."""

_C_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_C_SOURCE_SUFFIXES = (".c", ".cc", ".cpp", ".cxx")


@dataclass(frozen=True)
class BuildContext:
    """What the build scripts need to know about one compiled project."""

    name: str  # project name, a C identifier (also the Vivado project name)
    top_function: str  # HLS top function name
    board: Board
    inputs: tuple[BoundaryPort, ...]  # the AXI4-Stream arguments of the HLS top function
    outputs: tuple[BoundaryPort, ...]
    hls_sources: tuple[str, ...]  # paths relative to hls/ added as design files
    testbench: tuple[str, ...]  # paths relative to hls/ added with -tb
    masters: tuple[str, ...] = ()  # the IP's AXI4 masters (the layer-sequential engine): no DMAs
    instances: int = 1  # copies of the IP (engines only), each on its own HP port


@dataclass(frozen=True)
class MemoryPath:
    """AXI4 masters that reach DDR through one SmartConnect and one PS HP port."""

    smartconnect: str
    masters: tuple[str, ...]
    hp_port: int


@dataclass(frozen=True)
class DmaPlan:
    """One AXI DMA: MM2S feeds input stream i, S2MM drains output stream i (either may be absent)."""

    name: str
    mm2s: BoundaryPort | None
    s2mm: BoundaryPort | None


def render_build_scripts(ctx: BuildContext) -> dict[str, str]:
    """Relative output path -> file text for "hls/run_hls.tcl", "vivado/block_design.tcl",
    "vivado/build_bitstream.tcl" and "Makefile"."""
    validate_context(ctx)
    values = _template_values(ctx)
    return {
        "hls/run_hls.tcl": render("hls/run_hls.tcl.j2", **values),
        "vivado/block_design.tcl": render("vivado/block_design.tcl.j2", **values),
        "vivado/build_bitstream.tcl": render("vivado/build_bitstream.tcl.j2", **values),
        "Makefile": render("project/Makefile.j2", **values),
    }


def hls_project_name(name: str) -> str:
    return f"{name}_hls"


def build_products(name: str) -> tuple[str, ...]:
    """What `make csim|hls|bitstream` writes into project `name` (relative paths, shell patterns):
    its `make clean` removes them, and the project's manifest lists them as the tool's own, so a
    recompile may replace a built project (`outputs.check_destination`)."""
    return ("build", "output", f"hls/{hls_project_name(name)}", "hls/vitis_hls.log", f"vivado/{name}",
            "vivado/*.log", "vivado/.Xil", ".Xil")


def validate_context(ctx: BuildContext) -> None:
    """Reject contexts that would produce scripts failing late inside Vivado with an obscure error.

    Names end up as Tcl words, file names and HDL identifiers, so they must be plain C
    identifiers. A port's word width is one the DMA and the `ap_axiu` words support by
    construction (`StreamLayout`).
    """
    for what, value in (("project name", ctx.name), ("top function", ctx.top_function)):
        if not _C_IDENTIFIER.fullmatch(value):
            raise HwcodesignError(f"{what} '{value}' is not a C identifier")
    if not 1 <= ctx.instances <= HP_PORTS or (ctx.instances > 1 and not ctx.masters):
        raise HwcodesignError(f"{ctx.instances} accelerator instances: an engine has 1 to {HP_PORTS} (one per HP "
                              "port), a dataflow pipeline one")
    if ctx.masters:
        if ctx.inputs or ctx.outputs:
            raise HwcodesignError("an accelerator reads DDR through its AXI4 masters or through streams, not both")
        for master in ctx.masters:
            if not _C_IDENTIFIER.fullmatch(master):
                raise HwcodesignError(f"AXI4 master '{master}' is not an identifier")
    elif not ctx.inputs or not ctx.outputs:
        raise HwcodesignError("the accelerator needs at least one input and one output stream")
    seen: set[str] = set()
    for port in ctx.inputs + ctx.outputs:
        if not _C_IDENTIFIER.fullmatch(port.port):
            raise HwcodesignError(f"stream port '{port.port}' is not a C identifier")
        if port.port in seen:
            raise HwcodesignError(f"stream port '{port.port}' appears twice")
        seen.add(port.port)
    if not ctx.hls_sources:
        raise HwcodesignError("no HLS design sources given")
    for path in ctx.hls_sources + ctx.testbench:
        _check_hls_path(path)


def _check_hls_path(path: str) -> None:
    """HLS paths are relative to hls/ and never name the g++-only shim (Vitis has the real headers)."""
    parts = PurePosixPath(path).parts
    if not parts or PurePosixPath(path).is_absolute() or ".." in parts or any(" " in p for p in parts):
        raise HwcodesignError(f"HLS file '{path}' must be a relative path inside hls/ without spaces")
    if parts[0] == "shim":
        raise HwcodesignError(f"HLS file '{path}': the shim headers are for g++ only, not for Vitis")


def plan_dmas(inputs: tuple[BoundaryPort, ...], outputs: tuple[BoundaryPort, ...]) -> list[DmaPlan]:
    """Pair input i and output i on DMA i, as PYNQ users expect (`dma0.sendchannel` feeds in0,
    `dma0.recvchannel` receives out0); extra inputs or outputs get half-used DMAs."""
    count = max(len(inputs), len(outputs))
    return [
        DmaPlan(
            name=f"dma{i}",
            mm2s=inputs[i] if i < len(inputs) else None,
            s2mm=outputs[i] if i < len(outputs) else None,
        )
        for i in range(count)
    ]


def control_slaves(cells: tuple[str, ...], dmas: list[DmaPlan]) -> list[str]:
    """AXI4-Lite slaves behind the PS master port, in SmartConnect M00, M01, ... order."""
    return [f"{cell}/s_axi_control" for cell in cells] + [f"{dma.name}/S_AXI_LITE" for dma in dmas]


def memory_masters(dmas: list[DmaPlan]) -> list[str]:
    """DMA memory-mapped masters sharing the PS HP0 port, in SmartConnect S00, S01, ... order."""
    masters = []
    for dma in dmas:
        if dma.mm2s:
            masters.append(f"{dma.name}/M_AXI_MM2S")
        if dma.s2mm:
            masters.append(f"{dma.name}/M_AXI_S2MM")
    return masters


def memory_paths(ctx: BuildContext, dmas: list[DmaPlan]) -> list[MemoryPath]:
    """The DMAs' masters on HP0 (one SmartConnect, `mem_smc`); a lone engine's masters each on its
    own HP port (mem_smc, mem_smc1, ... to HP0, HP1, ...: the cost model's `MemorySystem.ports`);
    several engines' masters on one HP port per engine (mem_smc, mem_smc1, ... beside accel,
    accel1, ...)."""
    if not ctx.masters:
        return [MemoryPath("mem_smc", tuple(memory_masters(dmas)), 0)]
    cells = engine_cells(ctx.instances)
    if len(cells) == 1 and len(ctx.masters) <= HP_PORTS:
        return [MemoryPath(f"mem_smc{index or ''}", (f"{cells[0]}/{master}",), index)
                for index, master in enumerate(ctx.masters)]
    return [MemoryPath(cell.replace(IP_CELL, "mem_smc", 1), tuple(f"{cell}/{m}" for m in ctx.masters), index)
            for index, cell in enumerate(cells)]


def clock_period_ns(clock_mhz: float) -> str:
    """Clock period in ns as written in Tcl: three decimals at most, no trailing zeros.

    Fixed formatting keeps the generated scripts byte-identical between runs (5, 4, 10, 3.333).
    """
    return f"{1000.0 / clock_mhz:.3f}".rstrip("0").rstrip(".")


def format_mhz(clock_mhz: float) -> str:
    """MHz as the PS configuration properties take it: an integer when whole (200, not 200.0)."""
    return f"{clock_mhz:g}"


def _is_c_source(path: str) -> bool:
    return path.endswith(_C_SOURCE_SUFFIXES)


def _template_values(ctx: BuildContext) -> dict[str, object]:
    """Everything the four templates use; one dict so they share every derived name."""
    hls_project = hls_project_name(ctx.name)
    dmas = plan_dmas(ctx.inputs, ctx.outputs)
    cells = engine_cells(ctx.instances)
    return {
        "name": ctx.name,
        "top_function": ctx.top_function,
        "board": ctx.board,
        "inputs": ctx.inputs,
        "outputs": ctx.outputs,
        "dmas": dmas,
        "cells": cells,
        "lite_slaves": control_slaves(cells, dmas),
        "memory_paths": memory_paths(ctx, dmas),
        "engine": bool(ctx.masters),
        "hls_sources": ctx.hls_sources,
        "testbench": [(path, _is_c_source(path)) for path in ctx.testbench],
        "csim_sources": [p for p in ctx.hls_sources + ctx.testbench if _is_c_source(p)],
        "csim_flags": " ".join(CXX_BUILD_FLAGS),
        "hls_project": hls_project,
        "build_products": build_products(ctx.name),
        "hls_solution": HLS_SOLUTION,
        # Where `export_design -format ip_catalog` leaves the unpacked IP (component.xml), relative
        # to the project root; block_design.tcl and the Makefile both point here.
        "hls_ip_dir": f"hls/{hls_project}/{HLS_SOLUTION}/impl/ip",
        "ip_vendor": IP_VENDOR,
        "ip_library": IP_LIBRARY,
        "ip_version": IP_VERSION,
        "ip_vlnv": f"{IP_VENDOR}:{IP_LIBRARY}:{ctx.top_function}:{IP_VERSION}",
        "bd_name": BD_NAME,
        "clock_period_ns": clock_period_ns(ctx.board.clock_mhz),
        "clock_mhz": format_mhz(ctx.board.clock_mhz),
        "dma_length_bits": DMA_LENGTH_BITS,
    }
