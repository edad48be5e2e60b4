"""The shape of project.json, checked before a project runs: `meta_problem(meta)`.

project.json drives C simulation and the emulated board: its ports size the buffers handed to the
compiled C library, so a key that is missing, of the wrong type, out of range or inconsistent
with the rest (bytes per frame against shape, bits and word width) must stop a run with a message
naming the key, rather than fail later inside numpy or C. The manifest's hashes catch any edit;
this catches what the hashes cannot (a manifest edited to match) and names the key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from hwcodesign.boards import HP_PORTS
from hwcodesign.codegen.project_format import (
    BoundaryPort,
    engine_cells,
    listed_engine_cells,
    register_offsets,
)
from hwcodesign.hardware.engine.config import MAX_BATCH
from hwcodesign.ir.stream_layout import WORD_BITS

ARCHITECTURES = ("dataflow", "sequential")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
FILE_NAME = re.compile(r"[A-Za-z0-9_.-]+\Z")


class SchemaProblem(Exception):
    """What is wrong with one key (its path, e.g. `inputs[0].bits`)."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"key '{key}' {problem}")


Check = Callable[[Any, str], None]


def integer(low: int, high: int | None = None) -> Check:
    def check(value: Any, key: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaProblem(key, f"must be an integer, not {value!r}")
        if value < low or (high is not None and value > high):
            bounds = f"in [{low}, {high}]" if high is not None else f">= {low}"
            raise SchemaProblem(key, f"must be {bounds}, not {value}")
    return check


def positive_number(value: Any, key: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise SchemaProblem(key, f"must be a finite positive number, not {value!r}")


def boolean(value: Any, key: str) -> None:
    if not isinstance(value, bool):
        raise SchemaProblem(key, f"must be true or false, not {value!r}")


def text(pattern: re.Pattern[str] | None = None) -> Check:
    def check(value: Any, key: str) -> None:
        if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
            raise SchemaProblem(key, f"must be {'a C identifier' if pattern is IDENTIFIER else 'a name'}, not {value!r}")
    return check


def one_of(*choices: object) -> Check:
    def check(value: Any, key: str) -> None:
        if value not in choices:
            raise SchemaProblem(key, f"must be one of {', '.join(map(repr, choices))}, not {value!r}")
    return check


def list_of(item: Check, at_least: int = 0) -> Check:
    def check(value: Any, key: str) -> None:
        if not isinstance(value, list):
            raise SchemaProblem(key, f"must be a list, not {type(value).__name__}")
        if len(value) < at_least:
            raise SchemaProblem(key, f"must list at least {at_least}, not {len(value)}")
        for index, entry in enumerate(value):
            item(entry, f"{key}[{index}]")
    return check


def record(required: Mapping[str, Check], optional: Mapping[str, Check] | None = None) -> Check:
    def check(value: Any, key: str) -> None:
        if not isinstance(value, dict):
            raise SchemaProblem(key, f"must be an object, not {type(value).__name__}")
        for name, item in required.items():
            if name not in value:
                raise SchemaProblem(join(key, name), "is missing")
            item(value[name], join(key, name))
        for name, item in (optional or {}).items():
            if name in value:
                item(value[name], join(key, name))
    return check


def join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def shape(value: Any, key: str) -> None:
    list_of(integer(1), 4)(value, key)
    if len(value) != 4:
        raise SchemaProblem(key, f"must be N, C, H, W (4 sizes), not {len(value)}")


PORT = {"port": text(IDENTIFIER), "tensor": text(), "shape": shape, "bits": integer(1, 64), "signed": boolean,
        "scale": positive_number, "zero_point": integer(-(1 << 63), (1 << 64) - 1),
        "words_per_frame": integer(1), "bytes_per_frame": integer(1)}
WINDOW = record({"frame": list_of(integer(1), 3), "kernel": list_of(integer(1), 2), "stride": list_of(integer(1), 2),
                 "pads": list_of(integer(0), 4), "dilation": list_of(integer(1), 2),
                 "pad_value": integer(-(1 << 63), (1 << 64) - 1)})
DATAFLOW_PORT = record(PORT, {"sparse": boolean, "bipolar": boolean, "window": WINDOW})
ENGINE_PORT = record({**PORT, "storage_bits": integer(1, 64), "address": integer(0)}, {"bipolar": boolean, "window": WINDOW})
COMMON = {"name": text(IDENTIFIER), "top_function": text(IDENTIFIER), "board": text(), "clock_mhz": positive_number,
          "word_bits": one_of(*WORD_BITS), "testbench_frames": integer(1), "layers": list_of(record({}))}
DATAFLOW = record({**COMMON, "inputs": list_of(DATAFLOW_PORT, 1), "outputs": list_of(DATAFLOW_PORT, 1)},
                  {"architecture": one_of("dataflow")})
SEQUENTIAL = record({**COMMON, "architecture": one_of("sequential"), "inputs": list_of(ENGINE_PORT, 1),
                     "outputs": list_of(ENGINE_PORT, 1), "arena_words": integer(1), "params_words": integer(1),
                     "params_file": text(FILE_NAME), "layer_count": integer(1), "registers": record({}),
                     "instructions": list_of(record({}), 1)},
                    {"instances": list_of(text(IDENTIFIER), 1), "batch": integer(1, MAX_BATCH)})


def meta_problem(meta: Any) -> str | None:
    """What is wrong with project.json's content `meta` (the first problem found), or None."""
    try:
        if not isinstance(meta, dict):
            raise SchemaProblem("", f"must be an object, not {type(meta).__name__}")
        sequential = meta.get("architecture", "dataflow") == "sequential"
        (SEQUENTIAL if sequential else DATAFLOW)(meta, "")
        check_consistency(meta, sequential)
    except SchemaProblem as problem:
        return str(problem).replace("key '' ", "", 1)
    return None


def check_consistency(meta: dict[str, Any], sequential: bool) -> None:
    """What the types alone do not say: frame sizes match shape, bits and word width; names are
    unique; an engine's ports lie inside its arena and its registers are where Vitis puts them."""
    word_bits = meta["word_bits"]
    seen: set[str] = set()
    for side in ("inputs", "outputs"):
        for index, port in enumerate(meta[side]):
            key = f"{side}[{index}]"
            if port["port"] in seen or port["tensor"] in seen:
                raise SchemaProblem(f"{key}.port", f"names a port or tensor twice ({port['port']}, {port['tensor']})")
            seen.update({port["port"], port["tensor"]})
            low, high = (-(1 << (port["bits"] - 1)), (1 << (port["bits"] - 1)) - 1) if port["signed"] else \
                (0, (1 << port["bits"]) - 1)
            if not low <= port["zero_point"] <= high:
                raise SchemaProblem(f"{key}.zero_point", f"is {port['zero_point']}, outside the {port['bits']}-bit type")
            if port["bytes_per_frame"] != port["words_per_frame"] * word_bits // 8:
                raise SchemaProblem(f"{key}.bytes_per_frame", f"is {port['bytes_per_frame']}, but "
                                    f"{port['words_per_frame']} words of {word_bits} bits are "
                                    f"{port['words_per_frame'] * word_bits // 8} bytes")
            expected = frame_words(port, word_bits)
            if port["words_per_frame"] != expected:
                raise SchemaProblem(f"{key}.words_per_frame", f"is {port['words_per_frame']}, but shape "
                                    f"{port['shape']} of {port.get('storage_bits', port['bits'])}-bit elements in "
                                    f"{word_bits}-bit words takes {expected}")
            if sequential and port["address"] + port["words_per_frame"] > meta["arena_words"]:
                raise SchemaProblem(f"{key}.address", f"puts the frame past the arena's {meta['arena_words']} words")
    if sequential:
        if meta["registers"] != register_offsets():
            raise SchemaProblem("registers", f"must be {register_offsets()}")
        cells = listed_engine_cells(meta)
        if len(cells) > HP_PORTS or cells != list(engine_cells(len(cells))):
            raise SchemaProblem("instances", f"must name 1 to {HP_PORTS} engine cells in order, "
                                f"{list(engine_cells(min(len(cells), HP_PORTS)))}, not {cells}")
        if len(meta["instructions"]) != meta["layer_count"]:
            raise SchemaProblem("layer_count", f"is {meta['layer_count']}, but {len(meta['instructions'])} "
                                "instructions are listed")


def frame_words(port: dict[str, Any], word_bits: int) -> int:
    """Words of one frame of `port` as the generated sources lay it out (`BoundaryPort`)."""
    try:
        return BoundaryPort.from_json(port, word_bits).words_per_frame
    except ValueError as error:  # the layout's: elements wider than the words
        raise SchemaProblem("word_bits", str(error)) from None
