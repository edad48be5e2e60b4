"""CoDeNet's deformable conv as the paper runs it: one unsigned offset s per output pixel from a
1x1 conv, clipped to [0, N] and rounded to an integer, taps at centre + (1 + s) * p_k, no
interpolation (arXiv 2006.08357: "we round the dynamically-generated offsets to integers").

The layer comes from a torch export (plain ops: Conv -> clamp -> round -> Mul by the square
pattern -> the CoDeNet example's DeformConv Function), quantized by `hwcodesign quantize`, and is
checked three ways: onnxruntime (optimisations off) == golden model == C simulation, as a
dataflow pipeline and on the layer-sequential engine."""

from __future__ import annotations

import io
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from support.codegen import random_frames
from support.engine import check_engine
from support.examples import load_script

from hwcodesign.backends import emit_project
from hwcodesign.backends.dataflow import map_pipeline
from hwcodesign.boards import load_board
from hwcodesign.errors import UnsupportedModelError
from hwcodesign.flows.quantize import quantize_model
from hwcodesign.hardware.engine.config import EngineConfig
from hwcodesign.hardware.folding import Folding
from hwcodesign.mapper.cost import stage_plan
from hwcodesign.mapper.engine_map import fixed_engine_mapping
from hwcodesign.ops import DeformConv
from hwcodesign.ops.deform.dataflow import INTERPOLATION_DSP, deform_stage_cost
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.quantize import quantize_qdq
from hwcodesign.reference import Reference
from hwcodesign.sim.golden import run_golden

torch = pytest.importorskip("torch")
codenet = load_script(Path(__file__).resolve().parents[2] / "examples" / "codenet" / "model.py", "codenet_model")

CHANNELS, SIZE, N = 8, 12, 3


class SquareStage(torch.nn.Module):
    """conv 3x3 -> ReLU, then CoDeNet's deformable block: offsets s = round(clamp(conv1x1(x), 0,
    N)), one per pixel, a depthwise 3x3 DeformConv reading s * P (P the square pattern) -> ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(3, CHANNELS, 3, 1, 1)
        self.offset = torch.nn.Conv2d(CHANNELS, 1, 1)
        self.deform = codenet.DeformConv2d(CHANNELS, CHANNELS, 3, 1, 1, groups=CHANNELS)
        pattern = DeformConv.square_pattern((3, 3), (1, 1)).reshape(1, 18, 1, 1)
        self.register_buffer("pattern", torch.tensor(pattern, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.stem(x))
        s = torch.round(torch.clamp(self.offset(y), 0.0, float(N)))
        return torch.relu(self.deform(y, s * self.pattern))


@pytest.fixture(scope="module")
def float_export() -> onnx.ModelProto:
    torch.manual_seed(3)
    stage = SquareStage().eval()
    with torch.no_grad():
        stage.offset.weight.mul_(8.0)  # offsets over the whole range, the Clip at N in play
        stage.offset.bias.fill_(1.0)
    x = torch.randn(1, 3, SIZE, SIZE)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(stage, (x,), buffer, dynamo=False, opset_version=19, input_names=["x"],
                          output_names=["y"])
    float_model = onnx.load_from_string(buffer.getvalue())
    float_model.ir_version = min(float_model.ir_version, 10)
    return float_model


CALIBRATION = np.random.default_rng(0).normal(size=(16, 3, SIZE, SIZE)).astype(np.float32)


@pytest.fixture(scope="module")
def exported(float_export: onnx.ModelProto,
             tmp_path_factory: pytest.TempPathFactory) -> tuple[onnx.ModelProto, np.ndarray]:
    quantized = quantize_model(float_export, CALIBRATION)
    path = tmp_path_factory.mktemp("square") / "square.onnx"
    onnx.save(quantized, path)
    return quantized, path


def test_the_export_lowers_to_integer_square_offsets(exported) -> None:
    _, path = exported
    graph = optimize(load_onnx(path))
    (deform,) = [op for op in graph if isinstance(op, DeformConv)]
    assert deform.fixed_shape and deform.integer_offsets and deform.frac_bits == 0 and deform.sample_shift == 0
    assert deform.offset_range == N and deform.offset_limit == N
    offset = graph.producer(deform.inputs[1]).output
    assert offset.scale == 1.0 and offset.zero_point == 0 and offset.channels == 1


def test_golden_equals_onnxruntime(exported) -> None:
    model, path = exported
    graph = optimize(load_onnx(path))
    frames = np.random.default_rng(5).normal(size=(6, 3, SIZE, SIZE)).astype(np.float32)
    expected = graph.output_tensors()[0].quantize(Reference(model).frames(frames))
    golden = run_golden(graph, graph.inputs[0].output.quantize(frames))[graph.output_tensors()[0].name]
    assert np.array_equal(golden, expected.reshape(golden.shape))
    offsets = run_golden(graph, graph.inputs[0].output.quantize(frames), keep_intermediates=True)
    (deform,) = [op for op in graph if isinstance(op, DeformConv)]
    s = offsets[deform.inputs[1]]
    assert set(np.unique(s)) == set(range(N + 1))  # every offset 0..N occurs


@pytest.mark.parametrize("architecture", ["dataflow", "engine"])
def test_c_simulation_equals_golden(exported, architecture: str, tmp_path: Path) -> None:
    _, path = exported
    graph = optimize(load_onnx(path))
    board = load_board("ultra96v2")
    frames = random_frames(graph, 3, seed=9)
    if architecture == "dataflow":
        mapping = map_pipeline(graph, board)
        project = emit_project(graph, mapping, tmp_path / "dataflow")
        golden = run_golden(graph, frames)
        simulated = project.csim(frames)
        for name, values in golden.items():
            assert np.array_equal(simulated[name], values), name
    else:
        mapping = fixed_engine_mapping(graph, board, EngineConfig(8, 8, 4, 4, 4096))
        project = emit_project(graph, mapping, tmp_path / "engine")
        check_engine(graph, project, mapping, frames, "integer square offsets on the engine")


def test_integer_offsets_cost_no_interpolation(exported) -> None:
    """The dataflow stage's cost: a sample is one read (no blend DSPs or LUTs) where the same layer
    with fractional offsets pays four multiplies a sample; the line buffer spans 2N + K rows."""
    _, path = exported
    graph = optimize(load_onnx(path))
    (deform,) = [op for op in graph if isinstance(op, DeformConv)]
    inputs = graph.input_tensors(deform)
    fractional = replace(deform, frac_bits=8, sample_shift=8)
    folding = Folding(4, 3)
    plan = stage_plan(deform, inputs, folding)
    integer_cost = deform_stage_cost(deform, inputs[0], folding, plan, "zynq_ultrascale")
    fractional_cost = deform_stage_cost(fractional, inputs[0], folding, plan, "zynq_ultrascale")
    samples = folding.pe * folding.simd  # depthwise: a sample per lane and cycle
    # four blend multiplies a sample, and the MACs' samples are 8 bits narrower (no fraction kept)
    assert fractional_cost.dsp - integer_cost.dsp >= samples * INTERPOLATION_DSP
    assert integer_cost.lut < fractional_cost.lut and integer_cost.ff < fractional_cost.ff
    assert plan.window_rows == 2 * N + 3


def test_quantize_static_defaults_are_refused_naming_the_offset_mul(float_export: onnx.ModelProto) -> None:
    """onnxruntime's quantize_static with its defaults puts a quantizer between Mul(s, P) and the
    DeformConv (and leaves the DeformConv float): refused at the Mul, naming `hwcodesign quantize`."""
    model = quantize_qdq(float_export, CALIBRATION)
    with pytest.raises(UnsupportedModelError, match=r"\(op Mul\): the offsets Mul\(d, P\) of DeformConv .* are "
                                                     r"quantized .* `hwcodesign quantize`"):
        load_onnx(model)
