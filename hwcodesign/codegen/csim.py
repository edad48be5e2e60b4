"""C simulation: the generated HLS sources compiled with g++ against the shim headers.

The shared library is cached by a hash of every source it is built from (and of the compiler
command), so re-running a project, or an identical project in another folder, costs no compile.
Vitis is not needed: `hls/shim/` stands in for `ap_int.h`, `hls_stream.h` and `ap_axi_sdata.h`.
Inside the library a stage reading an empty stream sets a flag instead of aborting
(`HWC_CSIM_SOFT_UNDERFLOW`), so a broken design raises here rather than killing Python.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hwcodesign.errors import HwcodesignError

if TYPE_CHECKING:
    from hwcodesign.codegen.project import Project

COMPILER = "g++"
# Hidden visibility and no STB_GNU_UNIQUE: several projects' libraries live in one Python process,
# and their same-named template instances (with different static line buffers) must not merge.
FLAGS = ("-std=c++14", "-O3", "-funroll-loops", "-fPIC", "-shared", "-fvisibility=hidden", "-fno-gnu-unique",
         "-fno-exceptions", "-fno-rtti", "-Wno-unknown-pragmas", "-DHWC_CSIM_SOFT_UNDERFLOW",
         "-DHWC_ENGINE_COUNT_STEPS")
STATUS = {
    1: "a stage read an empty stream (the design consumed more than was produced)",
    2: "an input stream was not fully consumed",
    3: "an output stream did not hold exactly one frame",
    4: "TLAST was not on the last word of an output frame",
}


class CsimError(HwcodesignError):
    """The generated C++ did not compile, or the simulated design misbehaved."""


def cache_root() -> Path:
    return Path(os.environ.get("HWCODESIGN_CACHE", Path.home() / ".cache" / "hwcodesign")) / "csim"


def source_files(hls_dir: Path) -> list[Path]:
    return sorted(p for p in hls_dir.rglob("*") if p.is_file() and p.suffix in (".h", ".cpp") and p.name != "tb.cpp")


_hashes: dict[tuple[object, ...], str] = {}


def content_hash(hls_dir: Path, command: tuple[str, ...]) -> str:
    """Hash of the sources and the command. Remembered per (path, size, mtime) of every source,
    so repeated runs (the emulated board calls this per batch) stat the files instead of reading
    megabytes of weight tables again; any edit changes a stat and forces a fresh hash."""
    files = source_files(hls_dir)
    key = (str(hls_dir.resolve()), command,
           tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))
    if key not in _hashes:
        digest = hashlib.sha256(" ".join(command).encode())
        for path in files:
            digest.update(str(path.relative_to(hls_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
        _hashes[key] = digest.hexdigest()[:20]
    return _hashes[key]


def library_path(project: Project) -> Path:
    """Where the project's library lives in the cache (it may not be built yet)."""
    return cache_root() / content_hash(project.hls_dir(), FLAGS) / "libcsim.so"


def run_csim_cached_note(project: Project) -> str:
    """'cached build' or 'compiling with g++', for progress messages."""
    return "cached build" if library_path(project).is_file() else "compiling with g++ first"


def build_library(project: Project) -> Path:
    """Compile (or reuse) the project's C-simulation library; returns its path."""
    compiler = shutil.which(COMPILER)
    if compiler is None:
        raise CsimError(f"C simulation needs {COMPILER} on PATH (Debian/Ubuntu: apt-get install g++)")
    hls_dir = project.hls_dir()
    library = library_path(project)
    if library.is_file():
        return library
    library.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=library.parent) as scratch:
        target = Path(scratch) / "libcsim.so"
        command = [compiler, *FLAGS, "-I", str(hls_dir / "shim"), "-I", str(hls_dir),
                   str(hls_dir / "top.cpp"), str(hls_dir / "csim_lib.cpp"), "-o", str(target)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise CsimError(f"g++ failed on {hls_dir}:\n{result.stderr[-4000:]}")
        os.replace(target, library)
    return library


def run_csim(project: Project, frames: int, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Run `frames` packed frames (one (frames, bytes) uint8 buffer per input port). An engine
    project also gets its params buffer (hls/tb_data/params.bin), as the driver loads it."""
    library = ctypes.CDLL(str(build_library(project)))
    entry = library.hwc_csim
    entry.restype = ctypes.c_int
    arguments = [ctypes.c_int, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_void_p)]
    in_buffers = [np.ascontiguousarray(b, dtype=np.uint8) for b in inputs]
    out_buffers = [np.zeros((frames, p.layout.bytes_per_frame), np.uint8) for p in project.outputs]
    in_pointers = (ctypes.c_void_p * len(in_buffers))(*[b.ctypes.data for b in in_buffers])
    out_pointers = (ctypes.c_void_p * len(out_buffers))(*[b.ctypes.data for b in out_buffers])
    if project.architecture == "sequential":
        entry.argtypes = [*arguments, ctypes.c_void_p]
        params = engine_params(project)
        status = entry(frames, in_pointers, out_pointers, params.ctypes.data)
    else:
        entry.argtypes = arguments
        status = entry(frames, in_pointers, out_pointers)
    if status != 0:
        raise CsimError(f"C simulation of {project.name} failed: {STATUS.get(status, f'status {status}')}")
    return out_buffers


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
               params: np.ndarray, layers: int) -> None:
    """Run the engine in place on caller-owned uint8 buffers (views starting where its pointer
    registers point), as on the board: the emulated PYNQ board's ap_start."""
    views = (fmap_in, fmap_aux, fmap_out, params)
    for view in views:
        if not view.flags.c_contiguous or view.ctypes.data % 8:
            raise CsimError("engine buffers must be contiguous and 8-byte aligned (as allocate() gives them)")
    library = ctypes.CDLL(str(build_library(project)))
    entry = library.hwc_csim_engine
    entry.restype = ctypes.c_int
    entry.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int]
    status = entry(*(view.ctypes.data for view in views), layers)
    if status != 0:
        raise CsimError(f"C simulation of {project.name} failed: {STATUS.get(status, f'status {status}')}")


def engine_steps(project: Project) -> list[int]:
    """Compute-loop iterations per instruction of the last engine run in this process (what the
    cost model's `compute_iterations` predicts)."""
    library = ctypes.CDLL(str(build_library(project)))
    count = int(project.meta["layer_count"])
    steps = (ctypes.c_longlong * count)()
    library.hwc_csim_steps(steps, count)
    return list(steps)
