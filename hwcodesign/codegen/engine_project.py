"""A compiled project for the layer-sequential engine: the same folder shape as a dataflow project.

```
out/
  project.json     architecture "sequential", the engine's sizes, ports with their arena
                   addresses, register offsets, the instruction list
  hls/             top.cpp (four AXI4 masters, AXI4-Lite), engine/ (the units), engine_config.h,
                   engine_layer.h, tb.cpp + tb_data/ (params.bin and golden vectors), run_hls.tcl
  vivado/          block design: Zynq PS, each engine instance's masters on an HP port (no DMA), bitstream
  driver/          driver.py (PYNQ: allocate, registers, ap_start), params.bin, sample.npz, notebook
  Makefile         csim / hls / bitstream
```
The program (descriptors, weights, records) is data: `params.bin`, loaded into DDR by the
driver once; the bitstream is the engine alone, so Vitis compiles no weight tables.
"""

from __future__ import annotations

import json
from collections.abc import Mapping as MappingType
from pathlib import Path
from typing import Any

import numpy as np

from hwcodesign import __version__
from hwcodesign.codegen.build_scripts import BuildContext, render_build_scripts
from hwcodesign.codegen.driver import engine_driver_files
from hwcodesign.codegen.engine.program import EngineProgram, build_program
from hwcodesign.codegen.engine.sources import engine_hls_files, engine_ports
from hwcodesign.codegen.project_format import (
    PROJECT_FILE,
    BoundaryPort,
    byte_text,
    engine_cells,
    register_offsets,
)
from hwcodesign.ir.graph import Graph
from hwcodesign.mapper.engine_map import EngineMapping
from hwcodesign.sim.golden import run_golden

ENGINE_MASTERS = ("m_axi_gmem_in", "m_axi_gmem_aux", "m_axi_gmem_out", "m_axi_gmem_params")
PARAMS_FILE = "params.bin"


def engine_meta(graph: Graph, mapping: EngineMapping, program: EngineProgram, name: str, model_label: str,
                inputs: list[BoundaryPort], outputs: list[BoundaryPort], testbench_frames: int) -> dict[str, Any]:
    config = program.config
    return {
        "hwcodesign_version": __version__, "name": name, "top_function": f"{name}_top", "model": model_label,
        "architecture": "sequential", "board": mapping.board.name, "clock_mhz": mapping.board.clock_mhz,
        "word_bits": config.word_bits,
        "engine": {"pe": config.pe, "simd": config.simd, "rq_units": config.rq_units, "ew_lanes": config.ew_lanes,
                   "weight_depth": config.weight_depth, "packed_macs": config.packed_macs, "pp": config.pp,
                   "uram": list(config.uram), **program.limits},
        "instances": list(engine_cells(mapping.instances)), "batch": mapping.batch,
        "arena_words": program.arena.words, "params_words": int(program.params.size),
        "params_file": PARAMS_FILE, "layer_count": len(program.plans), "registers": register_offsets(),
        "inputs": [p.to_json() for p in inputs], "outputs": [p.to_json() for p in outputs],
        "layers": [{"name": op.name, "kind": op.kind, "folding": "engine"} for op in graph],
        "instructions": [{"name": p.instruction.name, "mode": p.instruction.mode, "blocks": p.blocks}
                         for p in program.plans],
        "testbench_frames": testbench_frames,
    }


def engine_testbench(graph: Graph, program: EngineProgram, inputs: list[BoundaryPort], outputs: list[BoundaryPort],
                     frames: int, seed: int) -> dict[str, str | bytes]:
    """params.bin, random valid input frames and the golden outputs in the engine's DDR layout."""
    rng = np.random.default_rng(seed)
    values = {}
    for port in inputs:
        dtype = port.tensor.dtype
        values[port.tensor.name] = port.from_frames(dtype.sample(rng, (frames, *port.frame_shape)))
    golden = run_golden(graph, {op.name: values[op.output.name] for op in graph.inputs})
    files: dict[str, str | bytes] = {f"hls/tb_data/{PARAMS_FILE}": program.params.astype("<u8").tobytes()}
    for port in inputs:
        files[f"hls/tb_data/{port.port}.dat"] = byte_text(port.pack(values[port.tensor.name]))
    for port in outputs:
        files[f"hls/tb_data/{port.port}_expected.dat"] = byte_text(port.pack(golden[port.tensor.name]))
    return files


def engine_project_files(graph: Graph, mapping: EngineMapping, name: str, model_label: str, frames: int,
                         seed: int, model_path: Path | None, host: MappingType[str, Any] | None = None,
                         program: EngineProgram | None = None) -> dict[str, str | bytes]:
    """Every file of the project; `program` is `graph`'s (built here unless given: a
    `covering_program` sizes the engine for other programs too)."""
    program = build_program(graph, mapping.config) if program is None else program
    inputs, outputs = engine_ports(graph, program)
    files = engine_hls_files(graph, program, name, mapping.board, model_label, frames, mapping.batch)
    files.update(engine_testbench(graph, program, inputs, outputs, frames, seed))
    build = BuildContext(name=name, top_function=f"{name}_top", board=mapping.board, inputs=(), outputs=(),
                         hls_sources=("top.cpp",), testbench=("tb.cpp", "tb_data"), masters=ENGINE_MASTERS,
                         instances=mapping.instances)
    files.update(render_build_scripts(build))
    meta = engine_meta(graph, mapping, program, name, model_label, inputs, outputs, frames)
    files[PROJECT_FILE] = json.dumps(meta, indent=2) + "\n"
    files.update(engine_driver_files(graph, name, mapping.board, meta, program.params, model_path, host))
    return files

