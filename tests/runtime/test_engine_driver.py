"""The PYNQ driver of a layer-sequential engine on the emulated board.

The engine has no DMA: the driver loads params.bin into an allocate() buffer, writes the physical
addresses of that buffer and of the feature-map buffer into the engine's AXI4-Lite registers,
and per frame writes the input into DDR, pulses ap_start, polls ap_done and reads the outputs
back. The emulated board (`EmulatedEngine`) runs the C simulation in place on whatever buffers
the registers address, so these tests check the driver's register protocol and the emulator's
refusals as well as bit-exactness.
"""

from __future__ import annotations

import re
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from support.codegen import build_all
from support.engine import check_engine, compile_small_engine
from support.examples import load_script
from support.onnx_models import two_inputs_two_outputs_qdq

from hwcodesign.backends import build_report, emit_project, simulate
from hwcodesign.codegen.packing import pack_frames
from hwcodesign.codegen.project import Project
from hwcodesign.codegen.project_format import POINTER_ARGUMENTS, SCALAR_ARGUMENTS, register_offsets
from hwcodesign.flows.compile import CompileResult, compile_model
from hwcodesign.mapper.engine_map import EngineMapping, fixed_engine_mapping
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.report.summary import format_summary
from hwcodesign.runtime import emulated
from hwcodesign.sim.golden import quantize_input, run_golden

# What Vitis HLS generates for `top(ptr fmap_in, ptr fmap_aux, ptr fmap_out, ptr params, int layers,
# int frames, int frame_words)` with every argument on the s_axilite bundle (x<top>_hw.h): control at
# 0x00, GIE/IER/ISR at 0x04..0x0c, then each 64-bit pointer as two data words and a reserved word,
# then each 32-bit scalar as a data word and a reserved one.
VITIS_REGISTERS = {"fmap_in": 0x10, "fmap_aux": 0x1C, "fmap_out": 0x28, "params": 0x34, "layers": 0x40,
                   "frames": 0x48, "frame_words": 0x50}


def load_driver(project_root: Path) -> types.ModuleType:
    path = project_root / "driver" / "driver.py"
    return load_script(path, f"engine_driver_{abs(hash(str(path)))}")


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> CompileResult:
    result = compile_small_engine(tmp_path_factory.mktemp("engine_driver"))
    build_all([result.project])
    return result


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> CompileResult:
    root = tmp_path_factory.mktemp("engine_driver_two")
    result = compile_model(two_inputs_two_outputs_qdq(root / "two.onnx"), "ultra96v2", root / "two",
                           architecture="sequential")
    build_all([result.project])
    return result


@pytest.fixture
def engine_runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The `layers` and `frames` arguments of every C-simulation run the emulated engine starts."""
    runs: list[tuple[int, int]] = []
    real = emulated.run_engine

    def counting(project: Project, fmap_in: np.ndarray, fmap_aux: np.ndarray, fmap_out: np.ndarray,
                 params: np.ndarray, layers: int, frames: int, frame_words: int) -> None:
        runs.append((layers, frames))
        real(project, fmap_in, fmap_aux, fmap_out, params, layers, frames, frame_words)

    monkeypatch.setattr(emulated, "run_engine", counting)
    return runs


def golden_output(result: CompileResult, frames: np.ndarray) -> np.ndarray:
    from hwcodesign.sim.golden import run_golden

    return run_golden(result.graph, frames)[result.graph.outputs[0]]


# -- the register map -------------------------------------------------------------------------


def test_register_offsets_follow_the_vitis_hls_convention(small: CompileResult) -> None:
    meta = small.project.meta
    assert small.project.architecture == "sequential"
    assert meta["registers"] == VITIS_REGISTERS
    assert register_offsets() == VITIS_REGISTERS
    # the convention holds only if the top function takes its arguments in exactly this order,
    # four pointers and then the three 32-bit scalars, all on the one s_axilite bundle
    top = (small.project.root / "hls" / "top.cpp").read_text()
    signature = re.search(rf"void {meta['top_function']}\(([^)]*)\)", top)
    assert signature is not None
    arguments = [re.split(r"[\s*&]+", part.strip())[-1] for part in signature.group(1).split(",")]
    assert arguments == [*POINTER_ARGUMENTS, *SCALAR_ARGUMENTS]
    assert all(f"int {name}" in signature.group(1) for name in SCALAR_ARGUMENTS)
    for name in arguments:
        assert f"#pragma HLS INTERFACE s_axilite port={name} bundle=control" in top
    driver = load_driver(small.project.root)
    assert driver.ARCHITECTURE == "sequential"
    assert driver.REGISTERS == VITIS_REGISTERS
    assert driver.LAYERS == meta["layer_count"] == len(meta["instructions"])
    assert driver.ARENA_BYTES == meta["arena_words"] * meta["word_bits"] // 8
    params = (small.project.root / "driver" / "params.bin").read_bytes()
    assert len(params) == meta["params_words"] * 8
    assert params == (small.project.root / "hls" / "tb_data" / "params.bin").read_bytes()


def test_the_driver_writes_the_buffer_addresses_and_layer_count(small: CompileResult) -> None:
    driver = load_driver(small.project.root)
    acc = driver.Accelerator(backend="emulate")
    assert isinstance(acc.ip, emulated.EmulatedEngine)
    assert not hasattr(acc, "dmas")  # no DMA in an engine design

    def pointer(name: str) -> int:
        return acc.ip.read(VITIS_REGISTERS[name]) | (acc.ip.read(VITIS_REGISTERS[name] + 4) << 32)

    assert acc.arena.physical_address != acc.params.physical_address
    assert [pointer(name) for name in ("fmap_in", "fmap_aux", "fmap_out")] == [acc.arena.physical_address] * 3
    assert pointer("params") == acc.params.physical_address
    assert acc.ip.read(VITIS_REGISTERS["layers"]) == small.project.meta["layer_count"]
    assert np.array_equal(acc.params, np.fromfile(small.project.root / "driver" / "params.bin", np.uint8))
    assert acc.arena.nbytes == driver.BATCH * driver.ARENA_BYTES and driver.BATCH == small.project.meta["batch"]


# -- running ----------------------------------------------------------------------------------


def test_run_and_run_batch_are_bit_exact(small: CompileResult, engine_runs: list[tuple[int, int]]) -> None:
    driver = load_driver(small.project.root)
    acc = driver.Accelerator(backend="emulate")
    sample = np.load(small.project.root / "driver" / "sample.npz")
    assert np.array_equal(acc.run_batch(sample["input_q"], raw=True), sample["expected_0"])
    tensor = small.project.inputs[0].tensor
    frames = np.random.default_rng(7).integers(tensor.dtype.min, tensor.dtype.max + 1, (5, *tensor.shape[1:]))
    expected = golden_output(small, frames)
    engine_runs.clear()
    batch = acc.run_batch(frames, raw=True)
    size = small.project.meta["batch"]
    assert size > 1  # the throughput goal runs frames in batches
    # one engine run per `size` frames, the last holding what is left
    assert engine_runs == [(small.project.meta["layer_count"], min(size, 5 - first)) for first in range(0, 5, size)]
    assert np.issubdtype(batch.dtype, np.integer) and np.array_equal(batch, expected)
    single = acc.run(frames[2], raw=True)
    assert single.shape == expected[2].shape and np.array_equal(single, expected[2])
    # the last frame's input sits at its arena address exactly as the driver packs it
    port = acc.inputs[0]
    start = port.address * port.word_bits // 8
    assert np.array_equal(acc.arena[start:start + port.layout.bytes_per_frame],
                          pack_frames(frames[2:3], port.layout)[0])


def test_float_frames_are_quantized_and_outputs_dequantized(small: CompileResult) -> None:
    driver = load_driver(small.project.root)
    acc = driver.Accelerator(backend="emulate")
    source = small.graph.inputs[0]
    out_tensor = small.graph.output_tensors()[0]
    floats = np.random.default_rng(1).normal(0, 1, (4, *source.frame_shape)).astype(np.float32)
    expected = golden_output(small, quantize_input(small.graph, floats))
    assert np.array_equal(acc.quantize(floats), quantize_input(small.graph, floats))
    assert np.allclose(acc.run_batch(floats), out_tensor.dequantize(expected))
    assert np.allclose(acc.run(floats[1]), out_tensor.dequantize(expected[1]))
    sample = np.load(small.project.root / "driver" / "sample.npz")
    assert np.allclose(acc.run_batch(sample["input"]), out_tensor.dequantize(sample["expected_0"]))


def test_a_packed_input_window_runs_from_frames_as_the_original_layer(small: CompileResult) -> None:
    """The mapper packs the small model's 3x3 first layer into 27 input channels (a faster engine);
    the driver im2cols the frames it is given (floats, or their integers with raw=True) and the
    board's outputs are the original graph's golden outputs, every element."""
    window = small.graph.inputs[0].window
    assert window is not None and small.project.meta["inputs"][0]["window"]["kernel"] == [3, 3]
    original = optimize(load_onnx(small.project.root.parent / "small.onnx"))
    acc = load_driver(small.project.root).Accelerator(backend="emulate")
    floats = np.random.default_rng(3).uniform(-3, 3, (3, *window.frame)).astype(np.float32)
    expected = run_golden(original, quantize_input(original, floats))[original.outputs[0]]
    frames_q = quantize_input(original, floats)
    assert np.array_equal(acc.run_batch(frames_q, raw=True), expected)
    assert np.array_equal(acc.run_batch(quantize_input(small.graph, floats), raw=True), expected)
    out_tensor = small.graph.output_tensors()[0]
    assert np.allclose(acc.run_batch(floats), out_tensor.dequantize(expected))
    assert np.array_equal(acc.quantize(floats[0]), quantize_input(small.graph, floats[:1]))  # one frame
    with pytest.raises(driver_error(acc), match=r"must be \(C, H, W\) = \(3, 10, 10\)"):
        acc.run(floats[:, :2])


def driver_error(acc: object) -> type[Exception]:
    return sys.modules[type(acc).__module__].DriverError


def test_two_inputs_and_two_outputs_by_name(two: CompileResult) -> None:
    """Each input written at its own arena address, each output read from its own; dicts both ways."""
    meta = two.project.meta
    # the residual Add runs in a conv's output stage, its skip read on the aux master
    assert "add" not in [i["mode"] for i in meta["instructions"]]
    assert sum("+" in i["name"] for i in meta["instructions"]) == 1
    # inputs are live together, outputs too (an output may reuse a dead input's words)
    assert len({p["address"] for p in meta["inputs"]}) == len({p["address"] for p in meta["outputs"]}) == 2
    driver = load_driver(two.project.root)
    acc = driver.Accelerator(backend="emulate")
    rng = np.random.default_rng(3)
    frames = {port.name: rng.integers(port.lo, port.hi + 1, (3, *port.shape)) for port in acc.inputs}
    from hwcodesign.sim.golden import run_golden

    expected = run_golden(two.graph, {op.name: frames[op.output.name] for op in two.graph.inputs})
    got = acc.run_batch(frames, raw=True)
    assert set(got) == set(expected) == {port.name for port in acc.outputs}
    for name, values in expected.items():
        assert np.array_equal(got[name], values), name
    single = acc.run({name: value[1] for name, value in frames.items()}, raw=True)
    assert all(np.array_equal(single[name], values[1]) for name, values in expected.items())
    assert acc.ip.read(VITIS_REGISTERS["layers"]) == len(meta["instructions"]) == 3


def test_benchmark_times_one_engine_run_per_frame(small: CompileResult, engine_runs: list[tuple[int, int]]) -> None:
    driver = load_driver(small.project.root)
    acc = driver.Accelerator(backend="emulate")
    stats = acc.benchmark(6)
    assert stats["frames"] == 6
    assert stats["seconds"] > 0 and stats["fps"] == pytest.approx(6 / stats["seconds"])
    assert 0 < stats["latency_ms"] < 10_000
    # warm-up frame, timed single frame, the batch in runs of up to BATCH frames
    assert [frames for _, frames in engine_runs] == [1, 1] + [min(driver.BATCH, 6 - first)
                                                            for first in range(0, 6, driver.BATCH)]


def test_a_hung_engine_times_out_with_a_clear_message(small: CompileResult, monkeypatch: pytest.MonkeyPatch) -> None:
    """ap_done never rising (a bitstream that does not match the driver) ends in a DriverError."""
    driver = load_driver(small.project.root)
    acc = driver.Accelerator(backend="emulate")
    writes: list[tuple[int, int]] = []
    acc.engines = [types.SimpleNamespace(write=lambda offset, value: writes.append((offset, value)),
                                         read=lambda offset: 0)]
    monkeypatch.setattr(driver, "TIMEOUT_SECONDS", 0.05)
    port = acc.inputs[0]
    with pytest.raises(driver.DriverError, match="did not finish a run within 0.05 s"):
        acc.run(np.zeros(port.shape, np.int64), raw=True)
    assert writes == [(driver.REGISTERS["frames"], 1), (driver.CTRL, driver.AP_START)]


def test_board_code_path_with_a_stand_in_pynq(small: CompileResult, monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    """The default backend (`pynq`): Overlay of output/<name>.bit, pynq.allocate, the registers."""
    root = tmp_path / "small"
    shutil.copytree(small.project.root, root)
    bitfile = root / "output" / f"{small.project.name}.bit"
    bitfile.parent.mkdir()
    bitfile.write_bytes(b"bitstream")
    opened = []
    allocated = []

    def overlay(path: str) -> emulated.EmulatedOverlay:
        opened.append(path)
        return emulated.EmulatedOverlay(root, path)

    def allocate(shape: int | tuple[int, ...], dtype: object) -> emulated.EmulatedBuffer:
        allocated.append(shape)
        return emulated.allocate(shape, dtype)

    monkeypatch.setitem(sys.modules, "pynq", types.SimpleNamespace(Overlay=overlay, allocate=allocate))
    driver = load_driver(root)
    acc = driver.Accelerator()
    assert opened == [str(bitfile)]
    meta = small.project.meta
    # the params once (shared), a feature-map buffer of BATCH arenas per engine instance
    assert sorted(allocated) == sorted([(meta["params_words"] * 8,)] +
                                       [(driver.BATCH * driver.ARENA_BYTES,)] * len(driver.ENGINES))
    sample = np.load(root / "driver" / "sample.npz")
    assert np.array_equal(acc.run_batch(sample["input_q"], raw=True), sample["expected_0"])


# -- errors -----------------------------------------------------------------------------------


def test_driver_folder_without_params_bin_names_it(small: CompileResult, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "small"
    shutil.copytree(small.project.root, root)
    (root / "driver" / "params.bin").unlink()
    # the driver's own check (as on a board); emulation runs the intact project, which would refuse the copy
    monkeypatch.setenv("HWCODESIGN_PROJECT", str(small.project.root))
    driver = load_driver(root)
    with pytest.raises(driver.DriverError, match=r"params\.bin not found: the engine's program ships beside driver\.py"):
        driver.Accelerator(backend="emulate")


def wire_engine(project: Project, skip: tuple[int, ...] = (), layers: int | None = None,
                arena_bytes: int | None = None, params_bytes: int | None = None,
                addresses: dict[str, int] | None = None, frames: int = 1,
                frame_words: int | None = None) -> tuple[emulated.EmulatedEngine, dict[str, np.ndarray]]:
    """An emulated engine with its registers written as the driver does, except for the given
    changes: register offsets in `skip` left unwritten, another layer count, smaller buffers,
    other addresses, other frames a run or spacing between them."""
    meta = project.meta
    engine = emulated.EmulatedOverlay(project.root).accel
    assert isinstance(engine, emulated.EmulatedEngine)
    word_bytes = meta["word_bits"] // 8
    arena = emulated.allocate(arena_bytes or meta["arena_words"] * word_bytes, np.uint8)
    program = np.fromfile(project.hls_dir() / "tb_data" / "params.bin", np.uint8)
    params = emulated.allocate(params_bytes or program.size, np.uint8)
    params[:] = program[:params.size]
    pointers = {"fmap_in": arena.physical_address, "fmap_aux": arena.physical_address,
                "fmap_out": arena.physical_address, "params": params.physical_address, **(addresses or {})}
    for name, address in pointers.items():
        for offset, value in ((VITIS_REGISTERS[name], address & 0xFFFFFFFF), (VITIS_REGISTERS[name] + 4, address >> 32)):
            if offset not in skip:
                engine.write(offset, value)
    scalars = {"layers": meta["layer_count"] if layers is None else layers, "frames": frames,
               "frame_words": meta["arena_words"] if frame_words is None else frame_words}
    for name, value in scalars.items():
        if VITIS_REGISTERS[name] not in skip:
            engine.write(VITIS_REGISTERS[name], value)
    return engine, {"arena": arena, "params": params}


def test_correctly_wired_engine_runs_in_place(small: CompileResult, engine_runs: list[tuple[int, int]]) -> None:
    """The positive control for the refusals below: registers written as the driver does."""
    project = small.project
    engine, buffers = wire_engine(project)
    frames = np.random.default_rng(2).integers(0, 256, (1, *project.inputs[0].tensor.shape[1:]))
    word_bytes = project.meta["word_bits"] // 8
    port_in, port_out = project.inputs[0], project.outputs[0]
    start = project.meta["inputs"][0]["address"] * word_bytes
    buffers["arena"][start:start + port_in.layout.bytes_per_frame] = pack_frames(frames, port_in.layout)[0]
    assert engine.read(emulated.CTRL) == emulated.AP_IDLE
    engine.write(emulated.CTRL, emulated.AP_START)
    assert engine_runs == [(1, 1)]
    assert engine.read(emulated.CTRL) & emulated.AP_DONE
    assert not engine.read(emulated.CTRL) & emulated.AP_DONE  # ap_done clears on read
    out = project.meta["outputs"][0]["address"] * word_bytes
    expected = pack_frames(golden_output(small, frames), port_out.layout)[0]
    assert np.array_equal(buffers["arena"][out:out + port_out.layout.bytes_per_frame], expected)


def not_allocated_address() -> int:
    """An address above 4 GiB (the high pointer word matters) where no allocate() buffer lives."""
    address = 0xDEAD_0000_0000
    assert emulated.buffer_at(address, 1) is None
    return address


@pytest.mark.parametrize(("case", "message"), [
    ("aux_unwritten", r"ap_start with the fmap_aux address register \(0x1c\) never written"),
    ("out_high_word_unwritten", r"ap_start with the fmap_out address register \(0x28\) never written"),
    ("params_unwritten", r"ap_start with the params address register \(0x34\) never written"),
    ("in_not_allocated", r"fmap_in = 0xdead00000000 does not address \d+ bytes of an allocate\(\) buffer"),
    ("arena_too_small", r"fmap_in = 0x[0-9a-f]+ does not address {arena} bytes of an allocate\(\) buffer"),
    ("params_too_small", r"params = 0x[0-9a-f]+ does not address {params} bytes of an allocate\(\) buffer"),
    ("params_past_the_end", r"params = 0x[0-9a-f]+ does not address {params} bytes"),
    ("layers_wrong", r"layers = 2, but params.bin holds 1 instructions"),
    ("layers_unwritten", r"layers = 0, but params.bin holds 1 instructions"),
    ("frames_unwritten", r"frames = 0, but a run of this engine holds 1 to {batch} \(project.json \"batch\""),
    ("frames_past_the_batch", r"frames = {past}, but a run of this engine holds 1 to {batch}"),
    ("frames_overlapping", r"frame_words = {overlap}, fewer than one frame's arena \({words} words\)"),
    ("arena_too_small_for_the_frames", r"fmap_in = 0x[0-9a-f]+ does not address {two} bytes"),
])
def test_engine_refuses_a_start_the_hardware_would_fail_on(small: CompileResult, engine_runs: list[tuple[int, int]],
                                                           case: str, message: str) -> None:
    project = small.project
    meta = project.meta
    arena, params = meta["arena_words"] * meta["word_bits"] // 8, meta["params_words"] * 8
    batch = meta["batch"]
    assert meta["layer_count"] == 1  # the messages above are written for this one-instruction model
    options: dict = {
        "aux_unwritten": {"skip": (0x1C, 0x20)},
        "out_high_word_unwritten": {"skip": (0x2C,)},
        "params_unwritten": {"skip": (0x34, 0x38)},
        "in_not_allocated": {"addresses": {"fmap_in": not_allocated_address()}},
        "arena_too_small": {"arena_bytes": arena - 8},
        "params_too_small": {"params_bytes": params - 8},
        "layers_wrong": {"layers": 2},
        "layers_unwritten": {"skip": (0x40,)},
        "frames_unwritten": {"skip": (0x48,)},
        "frames_past_the_batch": {"frames": batch + 1},
        "frames_overlapping": {"frames": 2, "frame_words": meta["arena_words"] - 1, "arena_bytes": 2 * arena},
        "arena_too_small_for_the_frames": {"frames": 2},
        "params_past_the_end": {},
    }[case]
    engine, buffers = wire_engine(project, **options)
    if case == "params_past_the_end":  # inside an allocate() buffer, but too close to its end
        address = buffers["params"].physical_address + 8
        engine.write(0x34, address & 0xFFFFFFFF)
        engine.write(0x38, address >> 32)
    words = meta["arena_words"]
    with pytest.raises(emulated.EmulationError, match="accel: " + message.format(
            arena=arena, params=params, batch=batch, past=batch + 1, overlap=words - 1, words=words, two=2 * arena)):
        engine.write(emulated.CTRL, emulated.AP_START)
    assert engine_runs == []  # refused before the C simulation touched any memory
    assert not engine.read(emulated.CTRL) & emulated.AP_DONE


def test_auto_restart_and_unknown_registers_are_refused(small: CompileResult, engine_runs: list[tuple[int, int]]) -> None:
    engine, _ = wire_engine(small.project)
    with pytest.raises(emulated.EmulationError, match="one frame per ap_start; auto_restart is not used"):
        engine.write(emulated.CTRL, emulated.AP_START | emulated.AUTO_RESTART)
    with pytest.raises(emulated.EmulationError, match="auto_restart is not used"):
        engine.write(emulated.CTRL, emulated.AUTO_RESTART)
    assert engine_runs == []
    for offset in (0x18, 0x44, 0x100):  # a pointer's reserved word, past `layers`, far out
        with pytest.raises(emulated.EmulationError, match=f"register 0x{offset:02x} does not exist"):
            engine.read(offset)
    with pytest.raises(emulated.EmulationError, match=r"register 0x24 does not exist \(the engine has CTRL at 0x00, "
                                                      r"then fmap_in 0x10, fmap_aux 0x1c, fmap_out 0x28, params 0x34, "
                                                      r"layers 0x40, frames 0x48, frame_words 0x50\)"):
        engine.write(0x24, 1)
    # the written registers read back (32 bits each); the refusals changed none of them
    assert engine.read(0x40) == 1
    engine.write(0x10, 0x1_2345_6789)
    assert engine.read(0x10) == 0x2345_6789


# -- several engine instances -----------------------------------------------------------------


@pytest.fixture(scope="module")
def triple(small: CompileResult, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The small model on three instances of the small project's engine (the same hls/ sources, so
    the same cached C-simulation library)."""
    mapping = fixed_engine_mapping(small.graph, small.mapping.board, small.mapping.config, instances=3)
    project = emit_project(small.graph, mapping, tmp_path_factory.mktemp("engine_triple") / "triple", name=small.project.name)
    build_all([project])
    return project


def test_several_instances_run_a_batch_in_rounds_bit_exact(triple: Project, small: CompileResult,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Seven frames on three engines: rounds of three frames, each engine on its own feature-map
    buffer (its pointers), the params buffer shared; the outputs == golden, frame by frame."""
    assert triple.meta["instances"] == ["accel", "accel1", "accel2"]
    started: list[str] = []
    real = emulated.EmulatedEngine.run

    def run(engine: emulated.EmulatedEngine) -> None:
        started.append(engine.name)
        real(engine)

    monkeypatch.setattr(emulated.EmulatedEngine, "run", run)
    driver = load_driver(triple.root)
    assert driver.ENGINES == ["accel", "accel1", "accel2"]
    acc = driver.Accelerator(backend="emulate")
    assert [engine.name for engine in acc.engines] == driver.ENGINES and acc.ip is acc.engines[0]

    def pointer(engine: emulated.EmulatedEngine, name: str) -> int:
        return engine.read(VITIS_REGISTERS[name]) | (engine.read(VITIS_REGISTERS[name] + 4) << 32)

    for engine, arena in zip(acc.engines, acc.arenas, strict=True):
        assert [pointer(engine, name) for name in ("fmap_in", "fmap_aux", "fmap_out")] == [arena.physical_address] * 3
        assert pointer(engine, "params") == acc.params.physical_address
    assert len({arena.physical_address for arena in acc.arenas}) == 3
    port = acc.inputs[0]
    frames = np.random.default_rng(5).integers(port.lo, port.hi + 1, (7, *port.shape))
    outputs = acc.run_batch(frames, raw=True)
    assert started == ["accel", "accel1", "accel2"] * 2 + ["accel"]
    assert np.array_equal(outputs, golden_output(small, frames))


@pytest.fixture(scope="module")
def batched(small: CompileResult, tmp_path_factory: pytest.TempPathFactory) -> tuple[EngineMapping, Project]:
    """The small model on two instances running three frames a run (the same hls/ sources as the
    small project's: the batch is a register, so the same cached C-simulation library)."""
    mapping = fixed_engine_mapping(small.graph, small.mapping.board, small.mapping.config, instances=2, batch=3)
    project = emit_project(small.graph, mapping, tmp_path_factory.mktemp("engine_batched") / "batched",
                           name=small.project.name)
    build_all([project])
    return mapping, project


def test_batches_run_every_instruction_on_all_their_frames_bit_exact(batched: tuple[EngineMapping, Project],
                                                                     small: CompileResult,
                                                                     engine_runs: list[tuple[int, int]]) -> None:
    """Seven frames on two engines of three frames a run: accel takes frames 0-2 (its arenas 0-2),
    accel1 3-5, then accel frame 6; the outputs == golden, frame by frame. The C simulation of
    six frames (two full runs) == golden, and the loops its last run counted (three frames of
    every instruction, each block's weights loaded once) == the cost model's for the batch."""
    mapping, project = batched
    assert project.meta["batch"] == 3 and project.meta["instances"] == ["accel", "accel1"]
    driver = load_driver(project.root)
    assert driver.BATCH == 3
    acc = driver.Accelerator(backend="emulate")
    assert all(engine.read(VITIS_REGISTERS["frame_words"]) == driver.ARENA_WORDS for engine in acc.engines)
    port = acc.inputs[0]
    frames = np.random.default_rng(11).integers(port.lo, port.hi + 1, (7, *port.shape))
    outputs = acc.run_batch(frames, raw=True)
    assert [runs for _, runs in engine_runs] == [3, 3, 1]
    assert np.array_equal(outputs, golden_output(small, frames))
    # the last frame of the last round sits in arena 0 of accel, frame 5 in arena 2 of accel1
    start = port.address * port.word_bits // 8
    assert np.array_equal(acc.arenas[0][start:start + port.layout.bytes_per_frame], pack_frames(frames[6:7], port.layout)[0])
    third = 2 * driver.ARENA_BYTES + start
    assert np.array_equal(acc.arenas[1][third:third + port.layout.bytes_per_frame], pack_frames(frames[5:6], port.layout)[0])
    check_engine(small.graph, project, mapping, frames[:6], "batch of 3")


def test_the_simulator_and_report_count_frames_in_flight(triple: Project, small: CompileResult) -> None:
    one = fixed_engine_mapping(small.graph, small.mapping.board, small.mapping.config)
    three = fixed_engine_mapping(small.graph, small.mapping.board, small.mapping.config, instances=3)
    assert three.frame_cycles >= one.frame_cycles  # the DDR is shared: a frame is never faster
    assert three.bottleneck_cycles == -(-three.frame_cycles // 3)
    assert three.fps == pytest.approx(3 * three.board.clock_mhz * 1e6 / three.frame_cycles)
    assert three.total("dsp") == 3 * one.total("dsp") and three.total("bram18k") == 3 * one.total("bram18k")
    latency = simulate(small.graph, three)
    assert latency.first_frame_cycles == three.frame_cycles
    assert latency.fps == pytest.approx(three.fps)
    report = build_report(small.graph, three, latency)
    assert report["engine"]["instances"] == 3
    text = format_summary(report)
    assert "x 3 instances (one per HP port, resources summed)" in text and "3 frames in flight" in text
    # why several: one engine alone against each of three sharing the DDR
    assert report["engine"]["alone_frame_cycles"] == one.frame_cycles == three.alone_cycles
    assert (f"instances: one engine alone takes {one.frame_cycles:,} cycles a frame; each of the 3 takes "
            f"{three.frame_cycles:,} sharing the DDR") in text
    # the roofline: each instruction's bound, and the frame's share under the memory roof
    assert {layer["bound"] for layer in report["layers"]} <= {"compute", "memory", "-"}
    memory_cycles = sum(layer["cycles"] for layer in report["layers"] if layer["bound"] == "memory")
    summary = report["summary"]
    assert summary["memory_bound_percent"] == pytest.approx(100 * memory_cycles / three.frame_cycles)
    assert summary["peak_ddr_bytes_per_cycle"] == three.memory.peak_bytes
    assert f"roofline: {summary['memory_bound_percent']:.0f}% of the frame in memory-bound layers" in text
    assert all(0 <= layer["ddr_utilisation"] <= 1 for layer in report["layers"])
