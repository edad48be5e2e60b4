"""The generated PYNQ driver on the emulated board: packing at every width, batches, bad input.

The emulated board runs the project's C simulation, so these tests also prove the driver's
numpy packing and the HLS AXI adapters agree on the word layout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from support.codegen import build_all
from support.examples import load_script
from support.onnx_models import IR_VERSION, one_channel_map_qdq
from support.qdq_by_hand import conv_bn_relu_qdq

from hwcodesign.flows.compile import CompileResult, compile_model
from hwcodesign.runtime import emulated
from hwcodesign.sim.golden import run_golden

DOMAIN = "qonnx.custom_op.general"
BITS = (1, 2, 3, 4, 5, 6, 7, 8, 12, 16)
WORD_BITS = (32, 64, 128)


def load_driver(project_root: Path) -> types.ModuleType:
    """Import a project's driver/driver.py under a unique module name."""
    path = project_root / "driver" / "driver.py"
    return load_script(path, f"driver_{abs(hash(str(path)))}")


def stream_model(bits: int) -> onnx.ModelProto:
    """A 1x1 conv whose input and output are `bits`-bit activations (signed for even widths)."""
    signed = bits % 2 == 0
    rng = np.random.default_rng(bits)
    nodes, inits = [], []

    def quant(x: str, out: str, scale: float, qbits: int, is_signed: bool) -> str:
        names = [f"{out}_s", f"{out}_z", f"{out}_b"]
        inits.extend([numpy_helper.from_array(np.array(scale, np.float32), names[0]),
                      numpy_helper.from_array(np.array(0, np.float32), names[1]),
                      numpy_helper.from_array(np.array(qbits, np.float32), names[2])])
        nodes.append(helper.make_node("Quant", [x, *names], [out], name=out, domain=DOMAIN,
                                      signed=int(is_signed), narrow=0, rounding_mode="ROUND"))
        return out

    x = quant("input", "x_q", 1.0 / 2 ** (bits - 1), bits, signed)
    inits.append(numpy_helper.from_array(rng.normal(0, 0.5, (5, 5, 1, 1)).astype(np.float32), "w"))
    w = quant("w", "w_q", 1.0 / 64, 8, True)
    nodes.append(helper.make_node("Conv", [x, w], ["c"], name="conv"))
    quant("c", "y", 2.0 / 2 ** (bits - 1), bits, signed)
    graph = helper.make_graph(nodes, f"stream{bits}", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 5, 3, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5, 3, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(DOMAIN, 1)],
                              ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    return model


@pytest.fixture(scope="module")
def width_projects(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[int, int], CompileResult]:
    root = tmp_path_factory.mktemp("driver_widths")
    results = {}
    for bits in BITS:
        path = root / f"stream{bits}.onnx"
        onnx.save(stream_model(bits), path)
        for word_bits in WORD_BITS:
            results[(bits, word_bits)] = compile_model(path, "ultra96v2", root / f"b{bits}_w{word_bits}", word_bits=word_bits)
    build_all([result.project for result in results.values()])
    return results


@pytest.mark.parametrize("word_bits", WORD_BITS)
@pytest.mark.parametrize("bits", BITS)
def test_every_activation_width_and_word_width(width_projects: dict[tuple[int, int], CompileResult], bits: int,
                                               word_bits: int) -> None:
    result = width_projects[(bits, word_bits)]
    port = result.project.inputs[0]
    assert (port.tensor.dtype.bits, port.layout.word_bits) == (bits, word_bits)
    # five channels: up to half a word, whole pixels share words (3x4 pixels, often a partial last word)
    assert port.layout.pixels_per_word == (word_bits // (5 * bits) if 10 * bits <= word_bits else 1)
    driver = load_driver(result.project.root)
    acc = driver.Accelerator(backend="emulate")
    rng = np.random.default_rng(bits * word_bits)
    frames = rng.integers(port.tensor.dtype.min, port.tensor.dtype.max + 1, (5, *port.tensor.shape[1:]))
    expected = run_golden(result.graph, frames)[result.graph.outputs[0]]
    assert np.array_equal(acc.run_batch(frames, raw=True), expected)
    assert np.array_equal(acc.run(frames[2], raw=True), expected[2])
    # the driver's own packing is the library's, byte for byte
    from hwcodesign.codegen.packing import pack_frames

    assert np.array_equal(driver.pack_frames(frames, acc.inputs[0].layout), pack_frames(frames, port.layout))


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> CompileResult:
    root = tmp_path_factory.mktemp("driver_small")
    onnx.save(conv_bn_relu_qdq(), root / "model.onnx")
    return compile_model(root / "model.onnx", "ultra96v2", root / "net")


def test_one_channel_ports_travel_eight_pixels_a_word(tmp_path: Path) -> None:
    """A 1x13x11 uint8 image to a 1x13x11 map: the driver's DMA buffers hold 18 words a frame
    (143 pixels, the last word seven of them) instead of 143, and the board's outputs are the
    golden model's."""
    result = compile_model(one_channel_map_qdq(tmp_path / "map.onnx"), "pynq-z2", tmp_path / "map",
                           architecture="dataflow")
    driver = load_driver(result.project.root)
    acc = driver.Accelerator(backend="emulate")
    assert [p.frame_capacity for p in acc.inputs + acc.outputs] == [18 * 8, 18 * 8]
    port = result.graph.inputs[0].output
    floats = np.random.default_rng(5).uniform(0, 1, (6, *port.shape[1:])).astype(np.float32)
    expected = run_golden(result.graph, port.quantize(floats))[result.graph.outputs[0]]
    assert np.array_equal(acc.run_batch(floats, raw=False), result.graph.output_tensors()[0].dequantize(expected))
    assert acc._buffers[("in0", 6)].shape == (6, 144)


def test_float_batches_and_dequantized_outputs(small: CompileResult) -> None:
    driver = load_driver(small.project.root)
    acc = driver.Accelerator(backend="emulate")
    port = small.graph.inputs[0].output
    floats = np.random.default_rng(0).normal(0, 1, (7, *port.shape[1:])).astype(np.float32)
    expected = run_golden(small.graph, port.quantize(floats))[small.graph.outputs[0]]
    out_tensor = small.graph.output_tensors()[0]
    assert np.allclose(acc.run_batch(floats), out_tensor.dequantize(expected))
    assert np.allclose(acc.run(floats[3]), out_tensor.dequantize(expected[3]))
    stats = acc.benchmark(6)
    assert stats["frames"] == 6 and stats["fps"] > 0 and stats["latency_ms"] > 0
    sample = np.load(small.project.root / "driver" / "sample.npz")
    assert np.array_equal(acc.run_batch(sample["input_q"], raw=True), sample["expected_0"])


@pytest.mark.parametrize(("bad", "message"), [
    (lambda s: np.zeros(s[:-1] + (s[-1] + 1,), np.float32), "must be"),
    (lambda s: np.zeros((2, 1) + s, np.float32), "must be"),
    (lambda s: np.zeros(s, np.int32), "must be floating point"),
    (lambda s: np.full(s, np.nan, np.float32), "NaN"),
    (lambda s: np.full(s, np.inf, np.float32), "NaN or infinity"),
    (lambda s: np.array(["x"]), "must be"),
])
def test_bad_inputs_fail_before_any_transfer(small: CompileResult, bad, message: str) -> None:  # noqa: ANN001
    driver = load_driver(small.project.root)
    acc = driver.Accelerator(backend="emulate")
    shape = small.project.inputs[0].tensor.shape[1:]
    with pytest.raises(driver.DriverError, match=message):
        acc.run(bad(shape))
    assert all(dma.sendchannel.idle for dma in acc.dmas)


def test_bad_raw_inputs_and_batches(small: CompileResult) -> None:
    driver = load_driver(small.project.root)
    acc = driver.Accelerator(backend="emulate")
    port = acc.inputs[0]
    with pytest.raises(driver.DriverError, match="outside"):
        acc.run(np.full(port.shape, port.hi + 1), raw=True)
    with pytest.raises(driver.DriverError, match="integers"):
        acc.run(np.zeros(port.shape, np.float32), raw=True)
    with pytest.raises(driver.DriverError, match="one frame"):
        acc.run(np.zeros((2, *port.shape), np.float32))
    with pytest.raises(driver.DriverError, match="missing input"):
        acc.run({"nope": np.zeros(port.shape, np.float32)})
    with pytest.raises(driver.DriverError, match="unknown backend"):
        driver.Accelerator(backend="fpga")


def test_board_backend_without_pynq_or_bitstream_explains(small: CompileResult, monkeypatch: pytest.MonkeyPatch) -> None:
    driver = load_driver(small.project.root)
    with pytest.raises(driver.DriverError, match="make bitstream"):
        driver.Accelerator(backend="pynq")
    bitfile = small.project.root / "driver" / f"{small.project.name}.bit"
    bitfile.write_bytes(b"not a real bitstream")
    try:
        monkeypatch.setitem(sys.modules, "pynq", None)  # import pynq -> ImportError
        with pytest.raises(driver.DriverError, match="pynq package is not installed"):
            driver.Accelerator(backend="pynq")
    finally:
        bitfile.unlink()


def test_board_code_path_with_a_stand_in_pynq(small: CompileResult, monkeypatch: pytest.MonkeyPatch) -> None:
    """The `backend="pynq"` path (Overlay, allocate, DMA, registers) against a stand-in `pynq` module."""
    root = small.project.root
    bitfile = root / "output" / f"{small.project.name}.bit"
    bitfile.parent.mkdir()
    bitfile.write_bytes(b"bitstream")
    opened = []

    def overlay(path: str) -> emulated.EmulatedOverlay:
        opened.append(path)
        return emulated.EmulatedOverlay(root, path)

    monkeypatch.setitem(sys.modules, "pynq", types.SimpleNamespace(Overlay=overlay, allocate=emulated.allocate))
    try:
        driver = load_driver(root)
        acc = driver.Accelerator()  # the board is the default backend
        assert opened == [str(bitfile)]
        sample = np.load(root / "driver" / "sample.npz")
        assert np.array_equal(acc.run_batch(sample["input_q"], raw=True), sample["expected_0"])
    finally:
        bitfile.unlink()
        bitfile.parent.rmdir()


def test_driver_imports_without_pynq_and_stays_lazy(small: CompileResult) -> None:
    code = ("import sys; sys.modules['pynq'] = None; import driver; "
            "acc = driver.Accelerator(backend='emulate'); "
            "assert 'pynq' not in sys.modules or sys.modules['pynq'] is None; print(driver.MODEL_NAME)")
    result = subprocess.run([sys.executable, "-c", code], cwd=small.project.root / "driver", capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == small.project.name


def test_emulated_board_refuses_what_hardware_would_hang_on(small: CompileResult) -> None:
    overlay = emulated.EmulatedOverlay(small.project.root)
    out = emulated.allocate((1, small.project.outputs[0].layout.bytes_per_frame), np.uint8)
    overlay.dma0.recvchannel.transfer(out)
    with pytest.raises(emulated.EmulationError, match="never started"):
        overlay.dma0.recvchannel.wait()
    with pytest.raises(emulated.EmulationError, match="previous one is still running"):
        overlay.dma0.recvchannel.transfer(out)
    with pytest.raises(emulated.EmulationError, match="does not exist"):
        overlay.accel.write(0x10, 1)


def test_emulation_outside_a_project_says_where_to_point(small: CompileResult, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    driver = load_driver(small.project.root)
    monkeypatch.setenv("HWCODESIGN_PROJECT", str(tmp_path))
    with pytest.raises(emulated.EmulationError, match="set HWCODESIGN_PROJECT"):
        driver.Accelerator(backend="emulate")
    monkeypatch.setenv("HWCODESIGN_BACKEND", "")
    with pytest.raises(driver.DriverError, match="make bitstream"):  # empty means the default, the board
        driver.Accelerator()


def test_project_folder_is_an_ordinary_folder(small: CompileResult) -> None:
    mode = small.project.root.stat().st_mode & 0o777
    mask = os.umask(0)
    os.umask(mask)
    assert mode == 0o777 & ~mask
