"""The `driver/` folder of a project: the PYNQ driver, a sample with golden outputs, the model.

The driver is a standalone Python file for the board (numpy only, `pynq` imported lazily); the
stream packing inside it is the source of `ir/stream_layout.py` and `codegen/packing.py`
copied in at generation time, so host, board and C simulation share one definition.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from pprint import pformat
from typing import Any

import numpy as np

from hwcodesign import __version__
from hwcodesign.boards import Board
from hwcodesign.codegen import packing
from hwcodesign.codegen.notebook import notebook_json
from hwcodesign.codegen.project_format import IP_CELL, listed_batch, listed_engine_cells
from hwcodesign.codegen.render import render
from hwcodesign.data_files import deterministic_npz
from hwcodesign.host.program import host_runtime_source
from hwcodesign.ir import input_window, stream_layout
from hwcodesign.ir.graph import Graph
from hwcodesign.sim.golden import quantize_input, run_golden

SAMPLE_FRAMES = 4


def packing_source() -> str:
    """The layout class and the pack/unpack functions, as source for the standalone driver."""
    parts = [f"WORD_BITS = {stream_layout.WORD_BITS!r}", f"BYTE_FIELDS = {packing.BYTE_FIELDS!r}",
             inspect.getsource(stream_layout.StreamLayout),
             inspect.getsource(packing.pixel_slots), inspect.getsource(packing.pack_frames), inspect.getsource(packing.unpack_frames),
             inspect.getsource(packing.token_words_per_frame), inspect.getsource(packing.pack_tokens),
             inspect.getsource(packing.token_stream), inspect.getsource(input_window.InputWindow),
             inspect.getsource(input_window.im2col)]
    return "\n\n".join(part.rstrip() for part in parts)


def driver_source(name: str, board: Board, inputs: list[dict], outputs: list[dict], word_bits: int,
                  engine: dict[str, Any] | None = None, host: Mapping[str, Any] | None = None) -> str:
    """driver.py; `engine` (registers, layers, arena_bytes, engines) for a layer-sequential engine; `host`
    (the host parts' spec) for a model with parts on the board's CPU."""
    def specs(ports: list[dict]) -> str:
        return pformat([{**port, "word_bits": word_bits} for port in ports], width=100, sort_dicts=True)

    return render("driver/driver.py.j2", name=name, board=board.name, board_display_name=board.display_name,
                  pynq_image=board.pynq_image, version=__version__, ip_cell=IP_CELL, inputs=specs(inputs), outputs=specs(outputs),
                  packing_source=packing_source(), engine=engine is not None, **(engine or {}),
                  host=host is not None, host_source=host_runtime_source() if host else "")


def sample_npz(graph: Graph, host: Mapping[str, Any] | None = None, seed: int = 0) -> bytes:
    """Float frames, their quantized integers and the golden outputs, as a reproducible .npz.

    Frames are uniform over each input's real range (what its quantization can represent). With
    host parts, `model_<input>` holds frames of the model's own inputs: uniform in [0, 1) (the
    range of an image a float part before the accelerator normalises) for a model with such a
    part, else the accelerator's own float frames.
    """
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    integers = {}
    for index, op in enumerate(graph.inputs):
        tensor = op.output
        lo, hi = tensor.dequantize(tensor.dtype.min), tensor.dequantize(tensor.dtype.max)
        floats = rng.uniform(lo, hi, (SAMPLE_FRAMES, *op.frame_shape)).astype(np.float32)
        suffix = "" if index == 0 else f"_{index}"
        arrays[f"input{suffix}"] = floats
        integers[op.name] = arrays[f"input_q{suffix}"] = quantize_input(graph, floats, op.name)
    if host is not None:
        for spec in host["inputs"]:
            shape = (SAMPLE_FRAMES, *spec["shape"][1:])
            direct = host["pre"] is None and host["accelerator_inputs"].get(spec["name"])
            index = [op.output.name for op in graph.inputs].index(direct) if direct else None
            arrays[f"model_{spec['name']}"] = (arrays["input" if not index else f"input_{index}"] if direct else
                                               rng.random(shape, dtype=np.float32).astype(spec["dtype"]))
    golden = run_golden(graph, integers)
    for index, name in enumerate(graph.outputs):
        arrays[f"expected_{index}"] = golden[name]
    return deterministic_npz(arrays)


def driver_files(graph: Graph, name: str, board: Board, inputs: list[dict], outputs: list[dict], word_bits: int,
                 model_path: Path | None, host: Mapping[str, Any] | None = None) -> dict[str, str | bytes]:
    files: dict[str, str | bytes] = {
        "driver/driver.py": driver_source(name, board, inputs, outputs, word_bits, host=host),
        "driver/sample.npz": sample_npz(graph, host),
    }
    if model_path is not None:
        files["driver/model.onnx"] = Path(model_path).read_bytes()
    files["driver/notebook.ipynb"] = notebook_json(name, board.display_name, host is not None)
    return files


def engine_driver_files(graph: Graph, name: str, board: Board, meta: dict[str, Any], params: np.ndarray,
                        model_path: Path | None, host: Mapping[str, Any] | None = None) -> dict[str, str | bytes]:
    """The driver folder of a layer-sequential engine: the same files plus params.bin, which the
    driver loads into DDR (the engine's program: descriptors and weights)."""
    engine = {"registers": pformat(meta["registers"], sort_dicts=False), "layers": meta["layer_count"],
              "arena_bytes": meta["arena_words"] * meta["word_bits"] // 8, "arena_words": meta["arena_words"],
              "engines": listed_engine_cells(meta), "batch": listed_batch(meta)}
    source = driver_source(name, board, meta["inputs"], meta["outputs"], meta["word_bits"], engine, host)
    files: dict[str, str | bytes] = {
        "driver/driver.py": source,
        "driver/params.bin": params.astype("<u8").tobytes(),
        "driver/sample.npz": sample_npz(graph, host),
    }
    if model_path is not None:
        files["driver/model.onnx"] = Path(model_path).read_bytes()
    files["driver/notebook.ipynb"] = notebook_json(name, board.display_name, host is not None)
    return files
