"""One-channel models end to end: narrow pixels share stream words on the dataflow pipeline's
ports, and the C simulation stays bit-exact; the engine keeps its DDR frames word-aligned.

Two models built the suite's way (float ONNX quantized by onnxruntime, support/onnx_models.py):
an MNIST-like CNN (a 1x28x28 uint8 image, eight pixels to a 64-bit word) and a 1x13x11 image to
a 1x13x11 map (both ports packed, 143 pixels: the last word of each frame holds seven pixels).
The hardware adapters' bytes are compared with numpy's packing of the golden outputs, padding
included, so the C++ and the host agree on every bit of a word, not only on the pixels.
"""

from __future__ import annotations

import numpy as np
import pytest
from support.codegen import assert_bit_exact, build_all, random_frames
from support.onnx_models import mnist_conv_qdq, one_channel_map_qdq

from hwcodesign.codegen.csim import counted_loops, run_csim
from hwcodesign.flows.compile import CompileResult, compile_model
from hwcodesign.hardware.stream import frame_bytes, stream_cycles
from hwcodesign.passes import PACK_INPUT_WINDOW, PassOptions
from hwcodesign.sim.golden import run_golden

MODELS = {"mnist": mnist_conv_qdq, "map": one_channel_map_qdq}
ARCHITECTURES = ("dataflow", "sequential")


@pytest.fixture(scope="module")
def narrow(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], CompileResult]:
    root = tmp_path_factory.mktemp("narrow")
    results = {}
    for name, build in MODELS.items():
        model = build(root / f"{name}.onnx")
        for architecture in ARCHITECTURES:
            # the map's engine keeps its one-channel frame (the pass off); MNIST's packs its first window
            passes = PassOptions(frozenset({PACK_INPUT_WINDOW} if name == "map" else ()))
            results[(name, architecture)] = compile_model(model, "pynq-z2", root / f"{name}_{architecture}",
                                                          architecture=architecture, passes=passes)
    build_all([result.project for result in results.values()])
    return results


def frames_of(result: CompileResult) -> np.ndarray:
    """Uniform frames, and the input type's two extremes as whole frames."""
    tensor = result.graph.inputs[0].output
    extremes = [np.full((1, *tensor.shape[1:]), value) for value in (tensor.dtype.min, tensor.dtype.max)]
    return np.concatenate([random_frames(result.graph, 5, seed=7), *extremes])


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("name", MODELS)
def test_csim_equals_golden(narrow: dict[tuple[str, str], CompileResult], name: str, architecture: str) -> None:
    result = narrow[(name, architecture)]
    assert_bit_exact(result.graph, result.project, frames_of(result), f"{name} ({architecture})")


def test_mnist_input_travels_eight_pixels_a_word(narrow: dict[tuple[str, str], CompileResult]) -> None:
    result = narrow[("mnist", "dataflow")]
    port = result.project.inputs[0]
    assert (port.layout.pixels_per_word, port.words_per_frame, port.frame_bytes) == (8, 98, 784)
    assert result.project.meta["inputs"][0]["words_per_frame"] == 98
    frames = frames_of(result)
    result.project.csim(frames)
    adapter = next(value for key, value in counted_loops(result.project).items() if key.startswith("hwc_axis_in_loops"))
    assert adapter == 784  # a pixel per iteration, a word read every eighth


def test_packed_output_bytes_equal_the_packed_golden_frames(narrow: dict[tuple[str, str], CompileResult]) -> None:
    """The output adapter's words, padding included, are numpy's packing of the golden map."""
    result = narrow[("map", "dataflow")]
    project = result.project
    port_in, port_out = project.inputs[0], project.outputs[0]
    assert [p.layout.pixels_per_word for p in (port_in, port_out)] == [8, 8]
    assert port_out.words_per_frame == 18 and 143 % 8 == 7  # the last word: seven pixels, one zero byte
    frames = frames_of(result)
    golden = run_golden(result.graph, frames)[result.graph.outputs[0]]
    raw = run_csim(project, frames.shape[0], [port_in.pack(frames)])[0]
    assert np.array_equal(raw, port_out.pack(golden))
    assert not raw[:, 143:].any()


def test_the_engine_keeps_every_pixel_word_aligned(narrow: dict[tuple[str, str], CompileResult]) -> None:
    port = narrow[("map", "sequential")].project.inputs[0]
    assert (port.layout.pixels_per_word, port.words_per_frame) == (1, 143)
    # MNIST's first 3x3 conv has its window packed into 9 input channels (`pack-input-window`, the
    # faster engine): two words a pixel, the second holding one byte
    port = narrow[("mnist", "sequential")].project.inputs[0]
    assert port.window is not None and port.window.kernel == (3, 3) and port.tensor.shape[1:] == (9, 28, 28)
    assert (port.layout.pixels_per_word, port.words_per_frame) == (1, 2 * 784)


def test_the_dma_moves_fewer_words_and_the_adapter_a_pixel_per_cycle(
        narrow: dict[tuple[str, str], CompileResult]) -> None:
    """784 bytes a frame instead of 6272: a DMA slower than a word per cycle no longer bounds the
    input stage until it is slower than a byte per cycle; at full rate the adapter's 784 pixel
    cycles do, as the 784 words did before."""
    result = narrow[("mnist", "dataflow")]
    image = result.graph.inputs[0]
    assert frame_bytes(image.output) == 784
    assert [stream_cycles(image.output, rate) for rate in (8.0, 6.4, 1.0, 0.5)] == [784, 784, 784, 1568]
    assert result.mapping.costs[image.name].cycles == 784
