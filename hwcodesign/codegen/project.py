"""A mapped graph -> a complete, buildable project folder (`backends.emit_project` drives it for
either architecture: the dataflow pipeline's files here, the engine's in `engine_project`);
`Project` reads one back.

The folder is written into a temporary sibling and renamed into place only when every file is
written, so a failed compile leaves no half-written project (and a previous project of the same
name survives until the new one is complete). Every file is a pure function of the graph, the
mapping and the options: no timestamps, no absolute paths, fixed number formatting, so the same
model compiles to byte-identical files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping as MappingType
from pathlib import Path
from typing import Any

import numpy as np

from hwcodesign import __version__
from hwcodesign.codegen.build_scripts import BuildContext, build_products, render_build_scripts
from hwcodesign.codegen.csim import SHIM_HEADERS, run_csim, run_csim_parallel
from hwcodesign.codegen.driver import driver_files
from hwcodesign.codegen.hls_top import DataflowTop, build_top
from hwcodesign.codegen.host_parts import HOST_SPEC_FILE
from hwcodesign.codegen.packing import pack_frames
from hwcodesign.codegen.project_format import PROJECT_FILE, BoundaryPort, byte_text
from hwcodesign.codegen.project_schema import meta_problem
from hwcodesign.codegen.render import render, static_file, templates_dir
from hwcodesign.errors import HwcodesignError
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.op import Input
from hwcodesign.mapper.folding_file import FILE_NAME as FOLDING_FILE
from hwcodesign.mapper.folding_file import folding_json
from hwcodesign.mapper.mapping import Mapping
from hwcodesign.outputs import (
    MANIFEST_FILE,
    PROJECT_KIND,
    Manifest,
    OutputError,
    read_manifest,
    verify_files,
    write_atomically,
)
from hwcodesign.sim.golden import run_golden

TESTBENCH_FRAMES = 2
# Files a user may edit or delete: `package` ships the notebook with the user's edits (or a fresh one)
EDITABLE_FILES = ("driver/notebook.ipynb",)


def c_identifier(name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name).strip("_") or "model"
    return cleaned if not cleaned[0].isdigit() else f"m_{cleaned}"


def dataflow_project_files(graph: Graph, mapping: Mapping, name: str, model_label: str, word_bits: int,
                           fifo_rows: MappingType[tuple[str, str], int], seed: int,
                           model_path: str | os.PathLike[str] | None,
                           host: MappingType[str, Any] | None = None) -> dict[str, str | bytes]:
    """Every file of the dataflow pipeline's project (`backends.emit_project` writes them): the
    HLS sources with FIFOs of `fifo_rows` rows per edge, the build scripts, project.json and the
    driver (with the model at `model_path` beside it)."""
    top = build_top(graph, mapping.foldings, fifo_rows, word_bits)
    files = project_files(graph, mapping, top, name, model_label, word_bits, seed)
    files.update(driver_files(graph, name, mapping.board, [p.to_json() for p in top.inputs],
                              [p.to_json() for p in top.outputs], word_bits,
                              Path(model_path) if model_path else None, host))
    return files


def write_project(out: Path, files: dict[str, str | bytes], name: str) -> Project:
    """Write a project's `files` into `out` atomically (module doc) and read it back."""
    write_atomically(out, files, kind=PROJECT_KIND, products=project_products(name))
    return Project(out)


def project_products(name: str) -> tuple[str, ...]:
    """What may appear in a project after it is written and is still the tool's: the build's
    products, and what running the driver and its notebook in `driver/` leaves there."""
    return build_products(name) + ("driver/__pycache__", "driver/.ipynb_checkpoints")


def project_files(graph: Graph, mapping: Mapping, top: DataflowTop, name: str, model_label: str,
                  word_bits: int, seed: int) -> dict[str, str | bytes]:
    top_function = f"{name}_top"
    ports = top.inputs + top.outputs
    context = {
        "model": model_label, "name": name, "top_function": top_function, "board": mapping.board,
        "word_bits": word_bits, "guard": f"HWC_{name.upper()}_TOP_H",
        "inputs": [p.as_template() for p in top.inputs], "outputs": [p.as_template() for p in top.outputs],
        "port_arguments": ", ".join(f"hls::stream<hwc_word_t> &{p.port}" for p in ports),
        "port_names": ", ".join(p.port for p in ports),
        "stages": top.stages, "streams": top.streams, "calls": top.calls, "layer_headers": top.layer_headers,
        "tb_frames": TESTBENCH_FRAMES,
    }
    files: dict[str, str | bytes] = {
        "hls/top.h": render("hls/top.h.j2", **context),
        "hls/top.cpp": render("hls/top.cpp.j2", **context),
        "hls/host_run.h": render("hls/host_run.h.j2", **context),
        "hls/tb.cpp": render("hls/tb.cpp.j2", **context),
        "hls/csim_lib.cpp": render("hls/csim_lib.cpp.j2", **context),
    }
    for header in top.layer_headers:
        files[f"hls/layers/{header}"] = static_file(f"hls/layers/{header}")
    for header in SHIM_HEADERS:
        files[f"hls/shim/{header}"] = static_file(f"hls/shim/{header}")
    for stage in top.stages:
        files[f"hls/params/{stage.name}.h"] = params_header(stage.name, stage.declarations, model_label)
        files.update((f"hls/params/{name}", data) for name, data in stage.files)
    files.update(testbench_vectors(graph, top, seed))
    build = BuildContext(
        name=name, top_function=top_function, board=mapping.board,
        inputs=top.inputs, outputs=top.outputs,
        hls_sources=("top.cpp",), testbench=("tb.cpp", "tb_data"),
    )
    files.update(render_build_scripts(build))
    meta = {
        "hwcodesign_version": __version__, "name": name, "top_function": top_function, "model": model_label,
        "board": mapping.board.name, "clock_mhz": mapping.board.clock_mhz, "word_bits": word_bits,
        "inputs": [p.to_json() for p in top.inputs], "outputs": [p.to_json() for p in top.outputs],
        "layers": [{"name": op.name, "kind": op.kind, "folding": str(mapping.foldings.get(op.name, ""))}
                   for op in graph],
        "streams": [{"name": s.name, "depth": s.depth} for s in top.streams],
        "testbench_frames": TESTBENCH_FRAMES,
    }
    files[PROJECT_FILE] = json.dumps(meta, indent=2) + "\n"
    files[FOLDING_FILE] = folding_json({op.name: mapping.foldings[op.name] for op in graph if not isinstance(op, Input)})
    return files


def params_header(ident: str, declarations: str, model_label: str) -> str:
    guard = f"HWC_PARAMS_{ident.upper()}_H"
    return (f"// Generated by hwcodesign from {model_label}: configuration and constant tables of layer {ident}.\n"
            f"#ifndef {guard}\n#define {guard}\n\n{declarations}\n#endif\n")


def testbench_vectors(graph: Graph, top: DataflowTop, seed: int) -> dict[str, str]:
    """Random valid input frames and the golden model's outputs, as the testbench's byte files."""
    rng = np.random.default_rng(seed)
    frames = {}
    for port in top.inputs:
        dtype = port.tensor.dtype
        frames[port.tensor.name] = port.from_frames(dtype.sample(rng, (TESTBENCH_FRAMES, *port.frame_shape)))
    op_inputs = {op.name: frames[op.output.name] for op in graph.inputs}
    golden = run_golden(graph, op_inputs)
    files = {}
    for port in top.inputs:
        files[f"hls/tb_data/{port.port}.dat"] = byte_text(port.pack(frames[port.tensor.name]))
    for port in top.outputs:
        files[f"hls/tb_data/{port.port}_expected.dat"] = byte_text(pack_frames(golden[port.tensor.name], port.layout))
    return files


class ProjectError(HwcodesignError):
    """Not a hwcodesign project folder, or inputs that do not fit it."""


class Project:
    """A generated project folder: its metadata, and C simulation of its HLS sources."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        """Read the project at `root`, refusing one that is not exactly as `compile` wrote it: its
        manifest, project.json against the schema, then every file against its recorded size and
        hash, so a damaged project fails here with the file or key named, never inside C."""
        self.root = Path(root)
        meta_path = self.root / PROJECT_FILE
        if not meta_path.is_file():
            raise ProjectError(f"{self.root} is not a hwcodesign project (no {PROJECT_FILE}); create one with `hwcodesign compile`")
        self.manifest = self.own_manifest()
        try:
            self.meta = json.loads(meta_path.read_bytes())
        except ValueError as error:  # also a file that is not UTF-8
            raise ProjectError(f"{meta_path} is not valid JSON ({error}); compile the model again") from None
        except OSError as error:
            raise ProjectError(f"{meta_path} cannot be read ({error.strerror or error})") from None
        problem = meta_problem(self.meta)
        if problem:
            raise ProjectError(f"{meta_path}: {problem}; compile the model again")
        self.verify()
        word_bits = self.meta["word_bits"]
        self.inputs = [BoundaryPort.from_json(p, word_bits) for p in self.meta["inputs"]]
        self.outputs = [BoundaryPort.from_json(p, word_bits) for p in self.meta["outputs"]]

    def own_manifest(self) -> Manifest:
        try:
            manifest = read_manifest(self.root)
        except OutputError as error:
            raise ProjectError(str(error)) from None
        except OSError as error:
            raise ProjectError(f"{self.root / MANIFEST_FILE} cannot be read ({error.strerror or error})") from None
        if manifest is None:
            raise ProjectError(f"{self.root} was not written by this version of hwcodesign (it has no {MANIFEST_FILE}): "
                               "compile again")
        if manifest.kind != "project":
            raise ProjectError(f"{self.root} is a hwcodesign {manifest.kind} folder, not a compiled project")
        return manifest

    def verify(self) -> None:
        """Every file compile wrote is still as written. Cheap when nothing changed (hashes are
        remembered by stat), so C simulation and the emulated board call it before every run."""
        try:
            verify_files(self.root, self.manifest, skip=EDITABLE_FILES)
        except OutputError as error:
            raise ProjectError(f"{error}; compile the model again") from None

    def check_model(self, graph: Graph, label: str) -> None:
        """Refuse `graph` (read from `label`) unless its inputs and outputs are the ones this project
        was compiled for: names, shapes, types, scales and zero points. (A model with the same
        boundary but other weights is caught by comparing outputs with its golden model.)"""
        sides = (("input", [port.frame_tensor for port in self.inputs], [op.frame_tensor for op in graph.inputs]),
                 ("output", [port.tensor for port in self.outputs], graph.output_tensors()))
        for side, ports, tensors in sides:  # inputs as frames: a packed input window is the project's layout
            compiled = {tensor.name: tensor for tensor in ports}
            given = {tensor.name: tensor for tensor in tensors}
            if set(given) != set(compiled):
                raise ProjectError(f"{label} is not the network {self.root} was compiled from: its {side}s are "
                                   f"{sorted(given)}, the project's {sorted(compiled)}")
            for name, tensor in given.items():
                expected = compiled[name]
                for what, found, wanted in (("shape", tensor.shape, expected.shape),
                                            ("type", tensor.dtype, expected.dtype),
                                            ("scale", tensor.scale, expected.scale),
                                            ("zero point", tensor.zero_point, expected.zero_point)):
                    if found != wanted:
                        raise ProjectError(f"{label} is not the network {self.root} was compiled from: {side} "
                                           f"'{name}' has {what} {found}, the project {wanted}")

    @property
    def name(self) -> str:
        return str(self.meta["name"])

    @property
    def architecture(self) -> str:
        """"dataflow" (one stage per layer) or "sequential" (the layer-sequential engine)."""
        return str(self.meta.get("architecture", "dataflow"))

    def hls_dir(self) -> Path:
        return self.root / "hls"

    @property
    def host_spec(self) -> dict[str, Any] | None:
        """The host parts' spec (`driver/host.json`) of a model with parts on the board's CPU, else None."""
        path = self.root / HOST_SPEC_FILE
        if not path.is_file():
            return None
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError) as error:
            raise ProjectError(f"{path}: not a readable host spec ({error}); recompile the model") from None

    def csim(self, x: np.ndarray | MappingType[str, np.ndarray],
             xilinx_headers: str | os.PathLike[str] | None = None, workers: int = 1) -> dict[str, np.ndarray]:
        """Run integer input frames through the C simulation; outputs by tensor name.

        `x` is (N, C, H, W) or (C, H, W) integers of the input type (or a dict by input tensor
        name for several inputs), exactly what `run_golden` takes, so the two compare directly.
        `workers` > 1 splits the frames over that many processes (`run_csim_parallel`).
        """
        frames = self.input_frames(x)
        count = next(iter(frames.values())).shape[0]
        buffers = [p.pack(frames[p.tensor.name]) for p in self.inputs]
        raw = (run_csim_parallel(self, count, buffers, workers, xilinx_headers) if workers > 1
               else run_csim(self, count, buffers, xilinx_headers))
        return {p.tensor.name: p.unpack(buffer) for p, buffer in zip(self.outputs, raw)}

    def input_frames(self, x: np.ndarray | MappingType[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not isinstance(x, MappingType):
            if len(self.inputs) != 1:
                raise ProjectError(f"{self.name} has {len(self.inputs)} inputs; pass a dict by input tensor name")
            x = {self.inputs[0].tensor.name: x}
        frames = {}
        counts = set()
        for port in self.inputs:
            if port.tensor.name not in x:
                raise ProjectError(f"missing input '{port.tensor.name}'")
            value = np.asarray(x[port.tensor.name])
            if value.ndim == 3:
                value = value[None]
            expected = port.tensor.shape[1:]
            if tuple(value.shape[1:]) != expected:
                raise ProjectError(f"input '{port.tensor.name}' must be (N, {', '.join(map(str, expected))}), got {value.shape}")
            if not np.issubdtype(value.dtype, np.integer):
                raise ProjectError(f"input '{port.tensor.name}' must be integers; quantize floats with the input scale first")
            if not port.tensor.dtype.contains(value):
                raise ProjectError(f"input '{port.tensor.name}' has values outside {port.tensor.dtype}")
            frames[port.tensor.name] = value.astype(np.int64)
            counts.add(value.shape[0])
        if len(counts) != 1:
            raise ProjectError(f"inputs have different frame counts: {sorted(counts)}")
        return frames


__all__ = ["Project", "ProjectError", "dataflow_project_files", "templates_dir", "write_project"]
