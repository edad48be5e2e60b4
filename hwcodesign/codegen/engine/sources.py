"""The HLS sources of a layer-sequential engine project: config, descriptor layout, top, host code.

The engine's C++ (templates/hls/engine/) is the same for every model; what a model decides is
written here: the engine's sizes and datapath widths (engine_config.h), the descriptor layout
(engine_layer.h, from `DESCRIPTOR_FIELDS`), and the top function with its AXI interfaces. The
program itself (descriptors, weights) is data in params.bin, not code.
"""

from __future__ import annotations

from hwcodesign.boards import Board
from hwcodesign.codegen.csim import SHIM_HEADERS
from hwcodesign.codegen.engine.program import EngineProgram
from hwcodesign.codegen.project_format import BoundaryPort
from hwcodesign.codegen.render import render, static_file
from hwcodesign.hardware.engine.config import (
    MAX_BATCH,
    PARAMS_WORD_BITS,
    PARAMS_WORD_BYTES,
    STORAGE_BITS,
    URAM_BUFFERS,
    memory_words,
)
from hwcodesign.hardware.engine.datapath import X_BITS
from hwcodesign.hardware.engine.descriptor import (
    ARENA_ADDRESS_FIELDS,
    DESCRIPTOR_FIELDS,
    DESCRIPTOR_WORDS,
    FLAG_MEANINGS,
    FLAGS,
)
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.input_window import InputWindow
from hwcodesign.ir.stream_layout import StreamLayout
from hwcodesign.ir.types import Tensor

ENGINE_HEADERS = ("hwc_engine.h", "hwc_engine_base.h", "hwc_engine_io.h", "hwc_engine_mac.h", "hwc_engine_pixel.h")
LOOKUP_HEADER = "hwc_engine_lookup.h"
"""The pixel unit's lookup mode and table memory: only in engines whose program has a lookup table
(every other engine's sources stay as they were without it)."""
BURST_WORDS = 64
"""AXI burst length (beats) of every master, and the depth of the FIFOs beside them."""


def storage_layout(tensor: Tensor, word_bits: int) -> StreamLayout:
    """The engine's DDR layout of a tensor: the stream layout with one byte per element, every
    pixel starting a word (its descriptors address tensors and rows pixel by pixel, `in_cw` words
    each), however narrow the pixel."""
    _, channels, height, width = tensor.shape
    return StreamLayout(channels, height * width, STORAGE_BITS, tensor.dtype.signed, word_bits, pack_pixels=False)


def engine_ports(graph: Graph, program: EngineProgram) -> tuple[list[BoundaryPort], list[BoundaryPort]]:
    """The graph's inputs and outputs where they sit in the engine's arena, in its DDR layout."""
    word_bits = program.config.word_bits

    def port(name: str, tensor: Tensor, window: InputWindow | None = None) -> BoundaryPort:
        return BoundaryPort(name, tensor, storage_layout(tensor, word_bits), address=program.arena.addresses[tensor.name],
                            window=window)

    inputs = [port(f"in{i}", op.output, op.window) for i, op in enumerate(graph.inputs)]
    outputs = [port(f"out{i}", graph.tensor(name)) for i, name in enumerate(graph.outputs)]
    return inputs, outputs


def config_constants(program: EngineProgram) -> list[tuple[str, int]]:
    """The engine config struct's constants, in a fixed order."""
    config, widths = program.config, program.widths
    constants = {
        "WORD_BITS": config.word_bits, "WORD_BYTES": config.word_bytes, "PARAMS_WORD_BITS": PARAMS_WORD_BITS,
        "PARAMS_WORD_BYTES": PARAMS_WORD_BYTES, "PE": config.pe, "SIMD": config.simd,
        "PP": config.pp, "COL_BANKS": config.col_banks,
        "OUT_LANES": config.out_lanes, "RQ_UNITS": config.rq_units, "EW_LANES": config.ew_lanes,
        "MW": memory_words(config, widths.weight_bits), "BURST_WORDS": BURST_WORDS, "MAX_BATCH": MAX_BATCH,
        **program.limits,
        "W_BITS": widths.weight_bits, "X_BITS": X_BITS, "ACC_BITS": widths.acc_bits, "EW_ACC_BITS": widths.ew_acc_bits,
        "PROD_BITS": widths.prod_bits, "MULT_BITS": widths.mult_bits, "OFF_BITS": widths.off_bits,
        "BIAS_BITS": widths.bias_bits, "SAMPLE_BITS": widths.sample_bits, "BLEND_BITS": widths.blend_bits,
        "WEIGHT_FP_BITS": widths.weight_fp_bits, "MASK_BITS": widths.mask_bits, "XM_BITS": widths.xm_bits,
        "OFFSET_FP_BITS": widths.offset_fp_bits, "HAS_DEFORM": int(widths.has_deform), "HAS_MASK": int(widths.has_mask),
        "HAS_MAX_POOL": int(widths.has_max_pool), "HAS_ADD": int(widths.has_add), "HAS_RESIZE": int(widths.has_resize),
        "HAS_GLOBAL_POOL": int(widths.has_global_pool), "HAS_MUL": int(widths.has_mul),
        "HAS_MEAN_TABLE": int(widths.has_mean_table), "HAS_RESIDUAL": int(widths.has_residual),
        "HAS_GATHER": int(widths.has_gather),
        "MAC_PACK": int(config.packed_macs),
    }
    constants.pop("ARENA_WORDS")
    # the record tables as rows of banks, one bank per output stage (hwc_load_records)
    constants["TABLE_ROWS"] = -(-constants["TABLE_DEPTH"] // config.rq_units)
    constants["EW_TABLE_ROWS"] = -(-constants["EW_TABLE_DEPTH"] // config.ew_lanes)
    return list(constants.items())


def engine_hls_files(graph: Graph, program: EngineProgram, name: str, board: Board, model_label: str,
                     tb_frames: int, batch: int = 1) -> dict[str, str | bytes]:
    """Every file under hls/ except the testbench vectors; `batch`: the frames a run holds."""
    inputs, outputs = engine_ports(graph, program)
    context = {
        "model": model_label, "name": name, "top_function": f"{name}_top", "board": board,
        "word_bits": program.config.word_bits, "params_word_bits": PARAMS_WORD_BITS, "guard": f"HWC_{name.upper()}_TOP_H",
        "inputs": [p.as_template() for p in inputs], "outputs": [p.as_template() for p in outputs],
        "arena_words": program.arena.words, "params_words": int(program.params.size), "layers": len(program.plans),
        "burst": BURST_WORDS, "tb_frames": tb_frames, "config": str(program.config),
        "fields": DESCRIPTOR_FIELDS, "words": DESCRIPTOR_WORDS, "constants": config_constants(program),
        "lookup": program.widths.has_lookup, "batch": batch, "max_batch": MAX_BATCH,
        "arena_fields": ARENA_ADDRESS_FIELDS,
        "flags": [(name.upper(), FLAGS[name], meaning) for name, meaning in FLAG_MEANINGS.items()],
        "uram": [(buffer.upper(), int(buffer in program.config.uram)) for buffer in URAM_BUFFERS],
    }
    files: dict[str, str | bytes] = {
        "hls/top.h": render("hls/engine/top.h.j2", **context),
        "hls/top.cpp": render("hls/engine/top.cpp.j2", **context),
        "hls/engine_config.h": render("hls/engine/engine_config.h.j2", **context),
        "hls/engine_layer.h": render("hls/engine/engine_layer.h.j2", **context),
        "hls/host_run.h": render("hls/engine/host_run.h.j2", **context),
        "hls/tb.cpp": render("hls/engine/tb.cpp.j2", **context),
        "hls/csim_lib.cpp": render("hls/engine/csim_lib.cpp.j2", **context),
        "hls/layers/hwc_common.h": static_file("hls/layers/hwc_common.h"),
    }
    for header in ENGINE_HEADERS + ((LOOKUP_HEADER,) if program.widths.has_lookup else ()):
        files[f"hls/engine/{header}"] = static_file(f"hls/engine/{header}")
    for header in SHIM_HEADERS:
        files[f"hls/shim/{header}"] = static_file(f"hls/shim/{header}")
    return files
