"""C simulation: the generated HLS sources compiled with g++ against the shim headers.

The shared library is cached by a hash of every source it is built from (and of the compiler
command), so re-running a project, or an identical project in another folder, costs no compile.
Vitis is not needed: `hls/shim/` stands in for `ap_int.h`, `hls_stream.h` and `ap_axi_sdata.h`.
Given a folder of Xilinx's own `ap_int.h`/`hls_stream.h` (the open-source
HLS_arbitrary_Precision_Types), the library is built against those instead, as Vitis compiles
the sources; the shim then only supplies `ap_axi_sdata.h`, which that set lacks. Xilinx's stream
warns on an empty read and carries on, so that build has no underflow flag (only the shim's).
Inside the library a stage reading an empty stream sets a flag instead of aborting
(`HWC_CSIM_SOFT_UNDERFLOW`), so a broken design raises here rather than killing Python.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import fcntl
import hashlib
import json
import multiprocessing
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hwcodesign.codegen.project_format import BoundaryPort, listed_batch
from hwcodesign.errors import HwcodesignError
from hwcodesign.hardware.engine.config import PARAMS_WORD_BYTES
from hwcodesign.outputs import file_sha256

COMPILER = "g++"
CXX_BUILD_FLAGS = ("-DHWC_TABLES_FROM_FILES", "-include", "hwc_file_table.h", "-fopenmp-simd")
"""What every g++ build of a project's C simulation adds (this library, and `make csim` in the
project's Makefile): large constant tables from binary files (shim/hwc_file_table.h; paths
relative to hls/), so the compiler does not parse their values; and `#pragma omp simd` honoured,
so the dot products of the C++ view vectorise (no OpenMP runtime)."""
# Hidden visibility and no STB_GNU_UNIQUE: several projects' libraries live in one Python process,
# and their same-named template instances (with different static line buffers) must not merge.
FLAGS = ("-std=c++14", "-O3", "-funroll-loops", "-fPIC", "-shared", "-fvisibility=hidden", "-fno-gnu-unique",
         "-fno-exceptions", "-fno-rtti", "-Wno-unknown-pragmas", "-DHWC_CSIM_SOFT_UNDERFLOW",
         "-DHWC_ENGINE_COUNT_STEPS", "-DHWC_COUNT_LOOPS", *CXX_BUILD_FLAGS)
SHIM_HEADERS = ("ap_int.h", "ap_axi_sdata.h", "hls_stream.h", "hwc_file_table.h")
"""hls/shim/: the g++ build's stand-ins for Vitis's headers, and its table reader."""
STATUS = {
    1: "a stage read an empty stream (the design consumed more than was produced)",
    2: "an input stream was not fully consumed",
    3: "an output stream did not hold exactly one frame",
    4: "TLAST was not on the last word of an output frame",
    5: "a buffer's size or the number of ports does not match what the library was compiled for",
}
ARCHITECTURE_CODES = {0: "dataflow", 1: "sequential"}
# hls::shim_underflows() exists in the shim only; Xilinx's hls::stream names itself with typeid
SHIM_ONLY_FLAGS = ("-DHWC_CSIM_SOFT_UNDERFLOW", "-fno-rtti")
XILINX_HEADERS = ("ap_int.h", "hls_stream.h")


class Project(Protocol):
    """What C simulation reads of a project folder (`codegen.project.Project` is one): declared
    here so that this module need not import the reader, which calls it."""

    root: Path
    meta: dict[str, Any]
    inputs: list[BoundaryPort]
    outputs: list[BoundaryPort]

    @property
    def name(self) -> str: ...

    @property
    def architecture(self) -> str: ...

    def hls_dir(self) -> Path: ...

    def verify(self) -> None: ...


class CsimError(HwcodesignError):
    """The generated C++ did not compile, or the simulated design misbehaved."""


def cache_root() -> Path:
    return Path(os.environ.get("HWCODESIGN_CACHE", Path.home() / ".cache" / "hwcodesign")) / "csim"


def source_files(hls_dir: Path) -> list[Path]:
    """What the library is built from: the C++ sources but the testbench, and the table files
    (params/*.bin, `HWC_FILE_TABLE`; not tb_data/, which an engine's weights are in)."""
    return sorted(p for p in hls_dir.rglob("*")
                  if p.is_file() and (p.suffix in (".h", ".cpp") and p.name != "tb.cpp"
                                      or p.suffix == ".bin" and p.parent == hls_dir / "params"))


def content_hash(hls_dir: Path, command: tuple[str, ...], headers: Path | None = None) -> str:
    """Hash of the sources, the command and the header set (the shim is among the sources; a
    Xilinx header folder is hashed file by file), from each file's SHA-256 as `file_sha256`
    remembers it per (path, size, mtime): repeated runs (the emulated board calls this per batch)
    stat the files instead of reading megabytes of weight tables again."""
    digest = hashlib.sha256(" ".join(command).encode())
    folders = [(hls_dir, source_files(hls_dir))]
    if headers is not None:
        folders.append((headers, sorted(p for p in headers.rglob("*.h") if p.is_file())))
    for folder, files in folders:
        digest.update(b"\1")
        for path in files:
            digest.update(str(path.relative_to(folder)).encode() + b"\0" + file_sha256(path).encode() + b"\0")
    return digest.hexdigest()[:20]


def compile_flags(xilinx_headers: Path | None) -> tuple[str, ...]:
    return FLAGS if xilinx_headers is None else tuple(f for f in FLAGS if f not in SHIM_ONLY_FLAGS)


def include_flags(hls_dir: Path, xilinx_headers: Path | None) -> list[str]:
    """-I folders in search order: Xilinx's first when given (the shim's ap_axi_sdata.h includes
    <ap_int.h>, so it finds theirs), then the shim, then the sources."""
    first = ["-I", str(xilinx_headers)] if xilinx_headers is not None else []
    return [*first, "-I", str(hls_dir / "shim"), "-I", str(hls_dir)]


def checked_headers(xilinx_headers: str | os.PathLike[str] | None) -> Path | None:
    """The Xilinx header folder made absolute, refused unless it holds ap_int.h and hls_stream.h."""
    if xilinx_headers is None:
        return None
    folder = Path(xilinx_headers).absolute()
    missing = [name for name in XILINX_HEADERS if not (folder / name).is_file()]
    if missing:
        raise CsimError(f"{xilinx_headers}: not a folder of Xilinx's HLS headers (no {' or '.join(missing)}); "
                        "give the folder that holds ap_int.h and hls_stream.h (`make xilinx-headers` fetches one)")
    return folder


def library_path(project: Project, xilinx_headers: Path | None = None) -> Path:
    """Where the project's library lives in the cache (it may not be built yet)."""
    hls_dir = project.hls_dir()
    command = (*compile_flags(xilinx_headers), *include_flags(Path("hls"), xilinx_headers))
    return cache_root() / content_hash(hls_dir, command, xilinx_headers) / "libcsim.so"


def run_csim_cached_note(project: Project, xilinx_headers: Path | None = None) -> str:
    """'cached build' or 'compiling with g++', for progress messages."""
    return "cached build" if library_path(project, xilinx_headers).is_file() else "compiling with g++ first"


def build_library(project: Project, xilinx_headers: str | os.PathLike[str] | None = None) -> Path:
    """Compile (or reuse) the project's C-simulation library; returns its path. The project's files
    are checked against its manifest first: the library must be built from what compile wrote.
    `xilinx_headers`: a folder with Xilinx's ap_int.h and hls_stream.h to build against."""
    project.verify()
    headers = checked_headers(xilinx_headers)
    compiler = shutil.which(COMPILER)
    if compiler is None:
        raise CsimError(f"C simulation needs {COMPILER} on PATH (Debian/Ubuntu: apt-get install g++)")
    hls_dir = project.hls_dir()
    library = library_path(project, headers)
    if library.is_file():
        return library
    library.parent.mkdir(parents=True, exist_ok=True)
    with build_lock(library.parent):
        if library.is_file():  # another process built it while this one waited
            return library
        with tempfile.TemporaryDirectory(dir=library.parent) as scratch:
            target = Path(scratch) / "libcsim.so"
            command = [compiler, *compile_flags(headers), *include_flags(hls_dir, headers),
                       str(hls_dir / "top.cpp"), str(hls_dir / "csim_lib.cpp"), "-o", str(target)]
            returncode, stderr, cost = run_measured(command, cwd=hls_dir)
            if returncode != 0:
                raise CsimError(f"g++ failed on {hls_dir}:\n{stderr[-4000:]}")
            (Path(scratch) / BUILD_COST).write_text(json.dumps(asdict(cost)))
            os.replace(Path(scratch) / BUILD_COST, library.parent / BUILD_COST)
            os.replace(target, library)
    return library


BUILD_COST = "build.json"


@dataclass(frozen=True)
class BuildCost:
    """What one g++ build of a library took: wall seconds and the peak resident memory of the
    compiler's processes (cc1plus, the assembler, the linker: their sum at the worst sample)."""

    seconds: float
    peak_bytes: int


SAMPLE_SECONDS = 0.02


def run_measured(command: list[str], cwd: Path | None = None) -> tuple[int, str, BuildCost]:
    """Run `command`; its exit status, its stderr and what it cost. Memory is sampled from /proc
    every `SAMPLE_SECONDS`: the resident bytes of the command's descendants (g++'s cc1plus and
    ld; the driver itself is small). Not `wait4`'s maxrss: Linux carries a process's high-water
    mark across fork and exec, so every child of a large Python process reports that process's
    size (7 GB from a test worker)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=cwd)
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.append(process.stderr.read() if process.stderr else ""))
    reader.start()
    peak = 0
    while process.poll() is None:
        peak = max(peak, descendants_rss(process.pid))
        time.sleep(SAMPLE_SECONDS)
    reader.join()
    return process.returncode, "".join(errors), BuildCost(time.perf_counter() - start, peak)


def descendants_rss(root: int) -> int:
    """Resident bytes of `root`'s descendants now, from /proc (0 where /proc is missing)."""
    children: dict[int, list[int]] = {}
    resident: dict[int, int] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            pages = int((entry / "statm").read_text().split()[1])
        except (OSError, ValueError, IndexError):  # gone, or not readable
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state, past the name
        children.setdefault(parent, []).append(int(entry.name))
        resident[int(entry.name)] = pages * PAGE_BYTES
    total, pending = 0, list(children.get(root, []))
    while pending:
        pid = pending.pop()
        total += resident.get(pid, 0)
        pending += children.get(pid, [])
    return total


PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def build_cost(project: Project, xilinx_headers: str | os.PathLike[str] | None = None) -> BuildCost | None:
    """What building the project's cached library cost, when it was built by this version
    (None for a library not built yet)."""
    path = library_path(project, checked_headers(xilinx_headers)).parent / BUILD_COST
    return BuildCost(**json.loads(path.read_text())) if path.is_file() else None


def build_note(project: Project, xilinx_headers: str | os.PathLike[str] | None = None) -> str | None:
    """One line on what the project's library cost to build, for the CLI (None when unknown)."""
    cost = build_cost(project, xilinx_headers)
    if cost is None:
        return None
    return f"C-simulation library: g++ built it in {cost.seconds:.1f} s, peak memory {cost.peak_bytes / 2**20:.0f} MB"


@contextlib.contextmanager
def build_lock(folder: Path) -> Iterator[None]:
    """Held while one library is built: processes building the same sources at once (two test
    workers, two notebooks, a sweep's jobs) wait for the first build and reuse it, instead of
    compiling the same library side by side."""
    with open(folder / "build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class LibraryInfo:
    """What a C-simulation library was compiled for (its `hwc_csim_info`)."""

    architecture: str
    word_bits: int
    params_bytes: int
    input_bytes: tuple[int, ...]
    output_bytes: tuple[int, ...]


def library_info(library: ctypes.CDLL) -> LibraryInfo:
    try:
        entry = library.hwc_csim_info
    except AttributeError:  # built from sources of an hwcodesign before the entry points checked buffers
        raise CsimError(f"{library._name} has no hwc_csim_info: its sources predate this hwcodesign; "
                        "compile the model again") from None
    entry.restype = ctypes.c_int
    entry.argtypes = [ctypes.POINTER(ctypes.c_longlong), ctypes.c_int]
    count = entry(None, 0)
    values = (ctypes.c_longlong * count)()
    entry(values, count)
    architecture, word_bits, params_bytes, inputs, outputs = values[:5]
    return LibraryInfo(ARCHITECTURE_CODES.get(architecture, f"unknown ({architecture})"), word_bits, params_bytes,
                       tuple(values[5:5 + inputs]), tuple(values[5 + inputs:5 + inputs + outputs]))


def load_library(project: Project, xilinx_headers: str | os.PathLike[str] | None = None) -> ctypes.CDLL:
    """The project's library, once checked to be built for what project.json describes: its entry
    points take buffers sized from project.json, and a library of another design (an architecture
    flipped, a port added) would read or write past them."""
    library = ctypes.CDLL(str(build_library(project, xilinx_headers)))
    info = library_info(library)
    found = LibraryInfo(project.architecture, int(project.meta["word_bits"]),
                        int(project.meta.get("params_words", 0)) * PARAMS_WORD_BYTES,
                        tuple(p.frame_bytes for p in project.inputs),
                        tuple(p.layout.bytes_per_frame for p in project.outputs))
    for field in ("architecture", "word_bits", "params_bytes", "input_bytes", "output_bytes"):
        if getattr(info, field) != getattr(found, field):
            raise CsimError(f"{project.root / 'project.json'} does not describe the design in {project.hls_dir()}: "
                            f"{field.replace('_', ' ')} {getattr(found, field)} there, {getattr(info, field)} in the "
                            "sources; compile the model again")
    return library


def byte_sizes(buffers: list[np.ndarray]) -> ctypes.Array[ctypes.c_longlong]:
    return (ctypes.c_longlong * len(buffers))(*[b.nbytes for b in buffers])


def pointers(buffers: list[np.ndarray]) -> ctypes.Array[ctypes.c_void_p]:
    return (ctypes.c_void_p * len(buffers))(*[b.ctypes.data for b in buffers])


def run_csim(project: Project, frames: int, inputs: list[np.ndarray],
             xilinx_headers: str | os.PathLike[str] | None = None) -> list[np.ndarray]:
    """Run `frames` packed frames (one (frames, bytes) uint8 buffer per input port). An engine
    project also gets its params buffer (hls/tb_data/params.bin), as the driver loads it. Every
    buffer goes in with its size, which the library checks against what it was compiled for.
    `xilinx_headers`: build against Xilinx's ap_int.h/hls_stream.h in that folder (`build_library`)."""
    library = load_library(project, xilinx_headers)
    engine = project.architecture == "sequential"
    # an engine runs the frames project.json's "batch" to a run, as the driver does
    entry = library.hwc_csim_batches if engine else library.hwc_csim
    entry.restype = ctypes.c_int
    entry.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_longlong), ctypes.c_int,
                      ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_longlong), ctypes.c_int,
                      ctypes.c_void_p, ctypes.c_longlong] + ([ctypes.c_int] if engine else [])
    in_buffers = [np.ascontiguousarray(b, dtype=np.uint8) for b in inputs]
    out_buffers = [np.zeros((frames, p.layout.bytes_per_frame), np.uint8) for p in project.outputs]
    params = engine_params(project) if engine else np.zeros(0, np.uint8)
    status = entry(frames, pointers(in_buffers), byte_sizes(in_buffers), len(in_buffers),
                   pointers(out_buffers), byte_sizes(out_buffers), len(out_buffers), params.ctypes.data, params.nbytes,
                   *([listed_batch(project.meta)] if engine else []))
    if status != 0:
        raise CsimError(f"C simulation of {project.name} failed: {STATUS.get(status, f'status {status}')}")
    return out_buffers


def run_csim_parallel(project: Project, frames: int, inputs: list[np.ndarray], workers: int,
                      xilinx_headers: str | os.PathLike[str] | None = None) -> list[np.ndarray]:
    """`run_csim` with the frames split over `workers` processes, each running its share through
    its own copy of the library (the generated C++ keeps state in static arrays, so one process
    runs one simulation at a time). Frames are independent, so the outputs are the same; the loop
    counters of the parent's library are not those of this run."""
    load_library(project, xilinx_headers)  # built (and checked) once, before the workers start
    workers = min(workers, frames)
    if workers <= 1:
        return run_csim(project, frames, inputs, xilinx_headers)
    bounds = np.linspace(0, frames, workers + 1).astype(int)
    shares = [(int(lo), int(hi)) for lo, hi in zip(bounds, bounds[1:]) if hi > lo]
    _shared.update(project=project, headers=xilinx_headers)  # the forked workers inherit it
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(len(shares), mp_context=context) as pool:
        parts = list(pool.map(run_share, [(hi - lo, [b[lo:hi] for b in inputs]) for lo, hi in shares]))
    return [np.concatenate([part[k] for part in parts]) for k in range(len(project.outputs))]


_shared: dict[str, Any] = {}
"""What `run_csim_parallel`'s workers run: set in the parent before they are forked."""


def run_share(job: tuple[int, list[np.ndarray]]) -> list[np.ndarray]:
    frames, inputs = job
    return run_csim(_shared["project"], frames, inputs, _shared["headers"])


_params: dict[tuple[str, int, int], np.ndarray] = {}


def engine_params(project: Project) -> np.ndarray:
    """The project's params buffer (descriptors, weights, records), read once per file version."""
    path = project.hls_dir() / "tb_data" / str(project.meta.get("params_file", "params.bin"))
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _params:
        _params[key] = np.fromfile(path, dtype=np.uint8)
    return _params[key]


def run_engine(project: Project, fmap_in: np.ndarray, fmap_aux: np.ndarray, fmap_out: np.ndarray,
               params: np.ndarray, layers: int, frames: int = 1, frame_words: int = 0) -> None:
    """Run the engine in place on caller-owned uint8 buffers (views starting where its pointer
    registers point), as on the board: the emulated PYNQ board's ap_start. `frames` frames, each
    in its own arena `frame_words` words after the previous one's."""
    views = (fmap_in, fmap_aux, fmap_out, params)
    for view in views:
        if not view.flags.c_contiguous or view.ctypes.data % 8:
            raise CsimError("engine buffers must be contiguous and 8-byte aligned (as allocate() gives them)")
    library = load_library(project)
    entry = library.hwc_csim_engine
    entry.restype = ctypes.c_int
    entry.argtypes = [ctypes.c_void_p, ctypes.c_longlong] * 4 + [ctypes.c_int] * 3
    arguments = [value for view in views for value in (view.ctypes.data, view.nbytes)]
    status = entry(*arguments, layers, frames, frame_words)
    if status != 0:
        raise CsimError(f"C simulation of {project.name} failed: {STATUS.get(status, f'status {status}')}")


def engine_steps(project: Project, layers: int | None = None) -> list[int]:
    """Compute-loop iterations per instruction of the last engine run in this process (what the
    cost model's `compute_iterations` predicts): of the project's program, or of the first
    `layers` instructions of another program run on its engine."""
    library = load_library(project)
    count = int(project.meta["layer_count"]) if layers is None else layers
    steps = (ctypes.c_longlong * count)()
    library.hwc_csim_steps(steps, count)
    return list(steps)


def counted_loops(project: Project) -> dict[str, int]:
    """Pipelined-loop iterations per stage in the last frame of the last dataflow C simulation of
    this project in this process (hwc_csim_loops, hwc_common.h), for the tests that hold them
    against the cost model. A layer's stage is named as its layer ("l1_conv3_node", its config
    without "_config"); an adapter by its tag ("hwc_fanout_loops<ap_uint<8>, 4, 144>")."""
    library = load_library(project)
    entry = library.hwc_csim_loops
    entry.restype = ctypes.c_int
    entry.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_longlong), ctypes.c_int]
    count = entry(None, None, 0)
    if count < 0:
        raise CsimError(f"{project.name}: the C simulation library counted no loops (built without HWC_COUNT_LOOPS, "
                        "or too many stages)")
    keys, iterations = (ctypes.c_char_p * count)(), (ctypes.c_longlong * count)()
    entry(keys, iterations, count)
    # a key is g++'s __PRETTY_FUNCTION__ of hwc_loops<K>: "long long int& hwc_loops() [with K = name]"
    names = [key.decode().partition("[with K = ")[2][:-1].removesuffix("_config") for key in keys]
    return dict(zip(names, iterations, strict=True))
