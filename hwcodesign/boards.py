"""Target boards: the FPGA part, its fabric resources and the system numbers the mapper needs.

Each board lives in a small TOML file under `boards/` rather than in code, so that adding a board
(or correcting a data-sheet number) is a data change a user can review and make without touching
the compiler. Loading validates every field up front: a typo in a board file should fail with the
file and key named, not as a confusing resource-fit error deep inside the mapper.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from hwcodesign.data_files import data_folder
from hwcodesign.errors import BoardError
from hwcodesign.tables import format_table

PS_TYPES = ("zynq_ultrascale", "zynq7")
"""Processing-system families: they decide the PS IP block, HP port width and driver flow."""
HP_PORTS = 4
"""High-performance slave ports from the fabric to DDR on either PS: S_AXI_HP0-3 (Zynq-7000, UG585)
and S_AXI_HP0-3_FPD (Zynq UltraScale+, UG1085; PSU__USE__S_AXI_GP2-5 in Vivado)."""

_TOP_KEYS = {
    "name": str,
    "display_name": str,
    "part": str,
    "board_part": str,
    "ps_type": str,
    "clock_mhz": (int, float),
    "ddr_bandwidth_gbps": (int, float),
    "pynq_image": str,
    "source": str,
    "resources": dict,
    "cpu": dict,
}
_OPTIONAL_KEYS = {"board_part"}  # not every board ships Vivado board files
_RESOURCE_KEYS = ("dsp", "bram18k", "uram", "lut", "ff")
_CPU_FIGURES = ("clock_mhz", "fp32_flops_per_cycle", "sustained_fraction", "dispatch_us")
"""The [cpu] figures the host-time estimate uses; each needs a `sources` entry."""
_CPU_KEYS = {"core": str, "cores": int, **{key: (int, float) for key in _CPU_FIGURES}, "assumed": list,
             "sources": dict}
_CPU_SOURCED = ("core", "cores", *_CPU_FIGURES)


@dataclass(frozen=True)
class Resources:
    """Programmable-logic resources of a part, as counted in the vendor data sheet.

    Block RAM is counted in 18 Kb halves (`bram18k`) because that is the unit HLS and Vivado
    utilization reports allocate in; data sheets list 36 Kb blocks, so the file stores twice that.
    """

    dsp: int
    bram18k: int
    uram: int
    lut: int
    ff: int

    def as_dict(self) -> dict[str, int]:
        """Plain dict in field order, for reports and JSON output."""
        return asdict(self)


@dataclass(frozen=True)
class Cpu:
    """The board's application processor, as far as the host-time estimate needs it.

    The host parts of a partitioned model run on this CPU, single-threaded (numpy or
    onnxruntime in the driver); their time cannot be measured off the board, so the simulator
    estimates it from these figures (hwcodesign/sim/host_time.py). Each figure carries its source,
    and `assumed` names the figures that are our assumptions rather than published facts, so an
    estimate can say what it rests on.
    """

    core: str
    cores: int
    clock_mhz: float
    fp32_flops_per_cycle: float
    """Peak fp32 FLOP per cycle of one core (SIMD lanes x 2 for a multiply-accumulate)."""
    sustained_fraction: float
    """Share of that peak single-threaded numpy/onnxruntime code reaches on small host parts."""
    dispatch_us: float
    """Fixed cost of running one ONNX node (interpreter, allocation, call overhead), microseconds."""
    sources: tuple[tuple[str, str], ...]
    """(key, where the figure comes from) for the core and every figure, in file order."""
    assumed: tuple[str, ...]
    """The figures that are assumptions, not data-sheet or manual facts."""

    def source(self, key: str) -> str:
        """Where the figure `key` comes from."""
        return dict(self.sources)[key]

    @property
    def sustained_flops(self) -> float:
        """fp32 FLOP per second one core sustains on host-part code (the estimate's rate)."""
        return self.clock_mhz * 1e6 * self.fp32_flops_per_cycle * self.sustained_fraction


@dataclass(frozen=True)
class Board:
    """One target board: what to build for and what the design may use."""

    name: str
    display_name: str
    part: str
    board_part: str | None
    ps_type: str
    resources: Resources
    clock_mhz: float
    ddr_bandwidth_gbps: float
    pynq_image: str
    source: str
    cpu: Cpu


MAX_CLOCK_MHZ = {"zynq7": 250.0, "zynq_ultrascale": 500.0}
"""The fastest PL clock a design may ask for (`with_clock`): about what a DSP48 pipeline closes
timing at on each family's fastest speed grade (DS187, DS925); the tool does not check timing."""


def with_clock(board: Board, clock_mhz: float | None) -> Board:
    """The board with its PL clock set to `clock_mhz` (None: the board's default). Everything that
    depends on the clock (cycle budgets, fps, the HLS clock period, the PS's PL clock 0 in the
    block design) reads `Board.clock_mhz`, so this is the one place a clock is chosen."""
    if clock_mhz is None:
        return board
    limit = MAX_CLOCK_MHZ.get(board.ps_type, 500.0)
    if not (math.isfinite(clock_mhz) and 1.0 <= clock_mhz <= limit):
        raise BoardError(f"clock {clock_mhz:g} MHz: {board.display_name}'s PL clock must be 1..{limit:g} MHz "
                         f"(default {board.clock_mhz:g})")
    return replace(board, clock_mhz=float(clock_mhz))


def boards_dir() -> Path:
    """The folder holding the board TOML files: the installed copy in a wheel, the repository's
    `boards/` in a checkout (hwcodesign/data_files.py)."""
    return data_folder("boards", BoardError)


def _normalize(name: str) -> str:
    """Board-name key: lower case, letters and digits only ("Ultra96-V2" -> "ultra96v2")."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _board_files() -> dict[str, Path]:
    return {_normalize(path.stem): path for path in sorted(boards_dir().glob("*.toml"))}


def _looks_like_path(text: str) -> bool:
    return text.lower().endswith(".toml") or "/" in text or "\\" in text


def load_board(name_or_path: str) -> Board:
    """Load a board by key ("ultra96v2", "Ultra96-V2", "pynq-z2") or by path to a .toml file."""
    if _looks_like_path(name_or_path):
        path = Path(name_or_path)
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "is not a regular file" if path.exists() else "not found"
            raise BoardError(f"board file {path} {what}; name a board (`hwcodesign boards`) or a .toml file")
        return _parse_board_file(path)
    files = _board_files()
    path = files.get(_normalize(name_or_path))
    if path is None:
        known = ", ".join(sorted(files))
        raise BoardError(f"unknown board '{name_or_path}'; available boards: {known}")
    return _parse_board_file(path)


def available_boards() -> list[Board]:
    """Every shipped board, smallest first (by DSP count), so listings read as a size ladder."""
    boards = [_parse_board_file(path) for path in _board_files().values()]
    return sorted(boards, key=lambda board: (board.resources.dsp, board.name))


def _parse_board_file(path: Path) -> Board:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise BoardError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise BoardError(f"{path}: cannot read board file: {exc}") from exc
    return _board_from_dict(data, path)


def _board_from_dict(data: dict[str, Any], path: Path) -> Board:
    def fail(key: str, problem: str) -> BoardError:
        return BoardError(f"{path}: key '{key}': {problem}")

    for key in data:
        if key not in _TOP_KEYS:
            raise fail(key, "unknown key")
    for key, expected in _TOP_KEYS.items():
        if key not in data:
            if key in _OPTIONAL_KEYS:
                continue
            raise fail(key, "missing")
        value = data[key]
        # bool is an int subclass in Python; `clock_mhz = true` must not pass as 1 MHz.
        if isinstance(value, bool) or not isinstance(value, expected):
            raise fail(key, f"expected {_type_name(expected)}, got {type(value).__name__}")
        if isinstance(value, str) and not value.strip():
            raise fail(key, "must not be empty")

    if data["ps_type"] not in PS_TYPES:
        raise fail("ps_type", f"must be one of {', '.join(PS_TYPES)}, got '{data['ps_type']}'")
    for key in ("clock_mhz", "ddr_bandwidth_gbps"):
        if data[key] <= 0:
            raise fail(key, f"must be positive, got {data[key]}")

    table = data["resources"]
    for key in table:
        if key not in _RESOURCE_KEYS:
            raise fail(f"resources.{key}", "unknown key")
    counts: dict[str, int] = {}
    for key in _RESOURCE_KEYS:
        if key not in table:
            raise fail(f"resources.{key}", "missing")
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail(f"resources.{key}", f"expected integer, got {type(value).__name__}")
        if value < 0:
            raise fail(f"resources.{key}", f"must not be negative, got {value}")
        counts[key] = value

    return Board(
        name=data["name"],
        display_name=data["display_name"],
        part=data["part"],
        board_part=data.get("board_part"),
        ps_type=data["ps_type"],
        resources=Resources(**counts),
        clock_mhz=float(data["clock_mhz"]),
        ddr_bandwidth_gbps=float(data["ddr_bandwidth_gbps"]),
        pynq_image=data["pynq_image"],
        source=data["source"],
        cpu=_cpu_from_dict(data["cpu"], fail),
    )


def _cpu_from_dict(table: dict[str, Any], fail: Callable[[str, str], BoardError]) -> Cpu:
    """The [cpu] table: every figure present, positive and sourced; `assumed` names figures."""
    for key in table:
        if key not in _CPU_KEYS:
            raise fail(f"cpu.{key}", "unknown key")
    for key, expected in _CPU_KEYS.items():
        if key not in table:
            raise fail(f"cpu.{key}", "missing")
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, expected):
            raise fail(f"cpu.{key}", f"expected {_type_name(expected)}, got {type(value).__name__}")
    if not table["core"].strip():
        raise fail("cpu.core", "must not be empty")
    for key in ("cores", *_CPU_FIGURES):
        if table[key] <= 0:
            raise fail(f"cpu.{key}", f"must be positive, got {table[key]}")
    if table["sustained_fraction"] > 1:
        raise fail("cpu.sustained_fraction", f"is a share of the peak, at most 1, got {table['sustained_fraction']}")

    sources = table["sources"]
    for key in sources:
        if key not in _CPU_SOURCED:
            raise fail(f"cpu.sources.{key}", f"unknown key; sources are for {', '.join(_CPU_SOURCED)}")
    for key in _CPU_SOURCED:
        if key not in sources:
            raise fail(f"cpu.sources.{key}", "missing: every CPU figure names where it comes from")
        if not isinstance(sources[key], str) or not sources[key].strip():
            raise fail(f"cpu.sources.{key}", "expected a non-empty string")
    for key in table["assumed"]:
        if key not in _CPU_SOURCED:
            raise fail("cpu.assumed", f"'{key}' is not a CPU figure ({', '.join(_CPU_SOURCED)})")

    return Cpu(
        core=table["core"],
        cores=table["cores"],
        clock_mhz=float(table["clock_mhz"]),
        fp32_flops_per_cycle=float(table["fp32_flops_per_cycle"]),
        sustained_fraction=float(table["sustained_fraction"]),
        dispatch_us=float(table["dispatch_us"]),
        sources=tuple((key, sources[key]) for key in _CPU_SOURCED),
        assumed=tuple(key for key in _CPU_SOURCED if key in table["assumed"]),
    )


def _type_name(expected: type | tuple[type, ...]) -> str:
    names = {str: "string", int: "integer", float: "float", dict: "table", list: "array"}
    kinds = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(names[kind] for kind in kinds)


def format_board_table(boards: list[Board]) -> str:
    """Aligned plain-text table of boards, one per line (`hwcodesign boards`)."""
    header = (
        "board", "part", "PS", "clock MHz", "DSP", "BRAM18K", "URAM", "LUT", "FF", "DDR GB/s",
        "PYNQ image", "CPU",
    )
    rows = [
        (
            board.name,
            board.part,
            board.ps_type,
            f"{board.clock_mhz:g}",
            *board.resources.as_dict().values(),
            f"{board.ddr_bandwidth_gbps:.1f}",
            board.pynq_image,
            f"{board.cpu.cores}x {board.cpu.core} {board.cpu.clock_mhz:g} MHz",
        )
        for board in boards
    ]
    return format_table(header, rows, right_align=range(3, 10))
