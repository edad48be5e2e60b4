"""DyBit weights end to end, three ways: onnxruntime on the rewritten QDQ model (within 1 LSB of
the golden model), the golden model, and the C simulation of the generated HLS (bit-exact).

The layers store DyBit codes and decode them before the multiply (hwc_dybit_decode in
hwc_common.h): conv, depthwise conv and Gemm, at 2, 3, 4 and 8 bits with fitted weights (8 bits
decode to 14-bit levels: one MAC per DSP) and at 5..8 bits with every code of the format in a
layer, folded fully serial, fully parallel on DSPs, and fully parallel on LUT MACs. One
integer (int4) model guards the code path without a decoder. 16 projects, compiled
concurrently once.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from support.codegen import assert_bit_exact, build_all, random_frames, widest_folding
from support.compare import compare_with_onnxruntime
from support.op_cases import build

from hwcodesign.backends import emit_project
from hwcodesign.boards import load_board
from hwcodesign.codegen.project import Project
from hwcodesign.frontend.formats import weight_nodes, with_weight_formats
from hwcodesign.ir import dybit
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.types import DyBitType, IntType
from hwcodesign.mapper.cost import candidate_foldings
from hwcodesign.mapper.ilp import fixed_mapping
from hwcodesign.mapper.mapping import Mapping
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.quant.formats import WeightFormat
from hwcodesign.quantize import quantize_qdq
from hwcodesign.sim.golden import run_golden

FRAMES = 10

# (case, format of every weight layer, weights, folding): 16 projects. weights "fit": the layer's
# real weights rounded to the format (with_weight_formats); "all": every level of the format at
# least once (`every_level`), so the C decoder meets every code, the widest ones included (fitted
# DyBit8 weights stay below level ~200 of 4096).
PROJECTS = [
    ("conv_relu", "dybit2", "fit", "serial"),
    ("conv_relu", "dybit3", "fit", "parallel"),
    ("conv_relu", "dybit4", "fit", "serial"),
    ("conv_relu", "dybit4", "fit", "parallel_lut"),
    ("conv_relu", "dybit8", "fit", "parallel"),
    ("conv_relu", "dybit8", "all", "serial"),
    ("conv_relu", "dybit6", "all", "parallel_lut"),
    ("conv_depthwise", "dybit2", "fit", "parallel"),
    ("conv_depthwise", "dybit4", "fit", "serial"),
    ("conv_depthwise", "dybit4", "fit", "parallel_lut"),
    ("conv_depthwise", "dybit8", "fit", "serial"),
    ("conv_depthwise", "dybit5", "all", "parallel"),
    ("flatten_gemm", "dybit3", "fit", "serial"),
    ("flatten_gemm", "dybit4", "fit", "parallel_lut"),
    ("flatten_gemm", "dybit7", "all", "serial"),
    ("flatten_gemm", "int4", "fit", "parallel"),
]
MODELS = sorted({(case, fmt, weights) for case, fmt, weights, _ in PROJECTS})
WEIGHT_LAYERS = ("conv3_node", "gemm9_node")  # the op cases' Conv/Gemm node names (the IR keeps them)
ModelKey = tuple[str, str, str]
ProjectKey = tuple[str, str, str, str]


def mapping_for(graph: Graph, variant: str) -> Mapping:
    """serial: PE=1/SIMD=1; parallel: the widest DSP folding of every layer; parallel_lut: the
    widest LUT-MAC folding of every layer that offers one (the DyBit MAC layers)."""
    board = load_board("ultra96v2")
    if variant == "serial":
        return fixed_mapping(graph, board, {})
    foldings = {}
    for op in graph:
        mac = "dsp"
        if variant == "parallel_lut":
            options = candidate_foldings(op, graph.input_tensors(op), max_candidates=10**6)
            mac = "lut" if any(f.mac == "lut" for f in options) else "dsp"
        foldings[op.name] = widest_folding(graph, op.name, mac)
    return fixed_mapping(graph, board, foldings)


def formatted_model(case: str, fmt: str, weights: str) -> tuple[onnx.ModelProto, list[np.ndarray]]:
    model, calibration = build(case)
    qdq = quantize_qdq(model, calibration)
    written = with_weight_formats(qdq, {name: WeightFormat.parse(fmt) for name in weight_nodes(qdq)})
    if weights == "all":
        for layer in weight_nodes(written):
            every_level(written, layer, fmt)
    return written, calibration


def every_level(model: onnx.ModelProto, layer: str, fmt: str) -> None:
    """Replace a written layer's levels by every level of `fmt` (shuffled, repeated to fill the
    tensor), rescaling each output channel so its largest real weight stays what it was (the
    outputs stay in range instead of saturating)."""
    initializers = {init.name: init for init in model.graph.initializer}
    q_init, s_init = initializers[f"{layer}_{fmt}_q"], initializers[f"{layer}_{fmt}_scale"]
    old = numpy_helper.to_array(q_init)
    scale = numpy_helper.to_array(s_init).astype(np.float64)
    bits = WeightFormat.parse(fmt).bits
    all_levels = dybit.levels(bits)
    assert old.size >= all_levels.size, f"{layer} has too few weights for every {fmt} level"
    axis = 0 if old.shape[0] == scale.size else 1  # Conv/Gemm(transB) rows, or MatMul columns

    def peak(q: np.ndarray) -> np.ndarray:  # largest |level| of each output channel
        return np.abs(np.moveaxis(q.astype(np.int64), axis, 0).reshape(scale.size, -1)).max(axis=1)

    new = np.resize(np.random.default_rng(bits).permutation(all_levels), old.size).reshape(old.shape)
    rescaled = scale * peak(old) / peak(new)
    container = old.dtype if all_levels.max() <= 127 else np.int32  # as with_weight_formats chooses
    z_init = initializers[f"{layer}_{fmt}_zero_point"]
    q_init.CopyFrom(numpy_helper.from_array(new.astype(container), q_init.name))
    z_init.CopyFrom(numpy_helper.from_array(np.zeros(scale.size, container), z_init.name))
    s_init.CopyFrom(numpy_helper.from_array(rescaled.astype(np.float32), s_init.name))


@pytest.fixture(scope="module")
def dybit_models() -> dict[ModelKey, tuple[onnx.ModelProto, list[np.ndarray], Graph]]:
    models = {}
    for key in MODELS:
        model, calibration = formatted_model(*key)
        models[key] = (model, calibration, optimize(load_onnx(model)))
    return models


@pytest.fixture(scope="module")
def dybit_projects(dybit_models: dict[ModelKey, tuple[onnx.ModelProto, list[np.ndarray], Graph]],
                   tmp_path_factory: pytest.TempPathFactory) -> dict[ProjectKey, tuple[Graph, Project]]:
    """Every project emitted and compiled (concurrently) once for the module."""
    root = tmp_path_factory.mktemp("dybit_projects")
    projects = {}
    for case, fmt, weights, variant in PROJECTS:
        graph = dybit_models[(case, fmt, weights)][2]
        projects[(case, fmt, weights, variant)] = (
            graph, emit_project(graph, mapping_for(graph, variant), root / case / f"{fmt}_{weights}" / variant))
    build_all([project for _, project in projects.values()])
    return projects


def mac_layers(graph: Graph) -> list:
    return [op for op in graph if op.name in WEIGHT_LAYERS]


@pytest.mark.parametrize("key", PROJECTS, ids=["-".join(p) for p in PROJECTS])
def test_csim_equals_golden(dybit_projects: dict[ProjectKey, tuple[Graph, Project]], key: ProjectKey) -> None:
    case, fmt, weights, variant = key
    graph, project = dybit_projects[key]
    expected = WeightFormat.parse(fmt).weight_type
    layers = mac_layers(graph)
    assert layers and all(op.weight_type == expected for op in layers)
    frames = random_frames(graph, FRAMES, seed=sum(map(ord, case + fmt + weights)))
    golden = run_golden(graph, frames)[graph.output_tensors()[0].name]
    out_type = graph.output_tensors()[0].dtype
    inside = np.mean((golden > out_type.min) & (golden < out_type.max))
    assert inside > 0.2, f"{key}: {inside:.0%} of outputs unsaturated, too few for the check to mean much"
    assert_bit_exact(graph, project, frames, "/".join(key))


@pytest.mark.parametrize("key", MODELS, ids=["-".join(m) for m in MODELS])
def test_onnxruntime_within_one_lsb(dybit_models: dict[ModelKey, tuple[onnx.ModelProto, list[np.ndarray], Graph]],
                                    key: ModelKey) -> None:
    model, calibration, graph = dybit_models[key]
    agreement = compare_with_onnxruntime(model, calibration[:6], graph)
    assert agreement.max_lsb <= 1, f"{key}: {agreement}"


@pytest.mark.parametrize("key", [m for m in MODELS if m[2] == "all"], ids=lambda m: "-".join(m))
def test_every_code_is_exercised(dybit_models: dict[ModelKey, tuple[onnx.ModelProto, list[np.ndarray], Graph]],
                                 key: ModelKey) -> None:
    """Guard for the test itself: the "all" models' layers hold every level of their format."""
    graph = dybit_models[key][2]
    bits = WeightFormat.parse(key[1]).bits
    for op in mac_layers(graph):
        assert set(op.weight.ravel().tolist()) == set(dybit.levels(bits).tolist()), op.name


def test_the_variants_really_differ(dybit_projects: dict[ProjectKey, tuple[Graph, Project]]) -> None:
    """Guard for the test itself: the LUT-MAC variant builds the DyBit layers on LUT MACs."""
    def folding(key: ProjectKey, kind: str) -> str:
        return next(layer["folding"] for layer in dybit_projects[key][1].meta["layers"] if layer["kind"] == kind)

    # these layers' weight ROMs are below 2 Kb: LUTRAM is the only memory offered
    assert folding(("conv_relu", "dybit4", "fit", "serial"), "Conv") == "PE1 SIMD1 lutram"
    assert folding(("conv_relu", "dybit3", "fit", "parallel"), "Conv") == "PE8 SIMD36 lutram"
    assert folding(("conv_relu", "dybit4", "fit", "parallel_lut"), "Conv") == "PE8 SIMD36 lut lutram"
    assert folding(("conv_relu", "dybit6", "all", "parallel_lut"), "Conv") == "PE8 SIMD36 lut lutram"
    assert folding(("conv_depthwise", "dybit4", "fit", "parallel_lut"), "DepthwiseConv").endswith(" lut lutram")
    assert folding(("flatten_gemm", "dybit4", "fit", "parallel_lut"), "Linear").endswith(" lut lutram")
    assert folding(("flatten_gemm", "int4", "fit", "parallel"), "Linear") == "PE10 SIMD4 lutram"


CONFIG_INT = re.compile(r"static const int (\w+) = (-?\d+);")


def params_of(project: Project, layer: str) -> str:
    (header,) = [p for p in (project.hls_dir() / "params").glob("*.h") if p.stem.endswith(layer)]
    return Path(header).read_text()


def weight_array(text: str) -> tuple[str, np.ndarray]:
    """The weight_t typedef and the values of the `_w` array of a params header."""
    weight_t = re.search(r"typedef (ap_u?int<\d+>) weight_t;", text).group(1)
    body = re.search(r"::weight_t>::type \w+_w\[[^=]*= \{(.*?)\};", text, re.S).group(1)
    return weight_t, np.array([int(v) for v in body.replace("\n", " ").split(",") if v.strip()])


@pytest.mark.parametrize("case, layer", [("conv_relu", "conv3_node"), ("conv_depthwise", "conv3_node"),
                                         ("flatten_gemm", "gemm9_node")])
def test_weight_memory_stores_codes(dybit_projects: dict[ProjectKey, tuple[Graph, Project]], case: str,
                                    layer: str) -> None:
    """The generated header of a DyBit4 layer holds 4-bit codes (ap_uint<4>, WEIGHT_CODE_BITS =
    4) that decode to exactly the layer's weights."""
    graph, project = dybit_projects[(case, "dybit4", "fit", "parallel_lut")]
    text = params_of(project, layer)
    config = dict(CONFIG_INT.findall(text))
    assert config["WEIGHT_CODE_BITS"] == "4"
    weight_t, stored = weight_array(text)
    assert weight_t == "ap_uint<4>"
    assert stored.min() >= 0 and stored.max() <= 15
    op = next(o for o in graph if o.name == layer)
    assert op.weight_type == DyBitType(4)
    assert stored.size == op.weight.size
    assert sorted(dybit.decode(stored, 4).tolist()) == sorted(op.weight.ravel().tolist())
    assert int(config["WEIGHT_DEPTH"]) * int(config["PE"]) * int(config["SIMD"]) == op.weight.size


def test_all_codes_header_holds_every_code(dybit_projects: dict[ProjectKey, tuple[Graph, Project]]) -> None:
    """The DyBit8 "all" layer stores each of the 255 codes except negative zero, as ap_uint<8>."""
    _, project = dybit_projects[("conv_relu", "dybit8", "all", "serial")]
    text = params_of(project, "conv3_node")
    assert dict(CONFIG_INT.findall(text))["WEIGHT_CODE_BITS"] == "8"
    weight_t, stored = weight_array(text)
    assert weight_t == "ap_uint<8>"
    assert set(stored.tolist()) == set(range(256)) - {128}


def test_integer_weight_memory_is_unchanged(dybit_projects: dict[ProjectKey, tuple[Graph, Project]]) -> None:
    """Integer layers keep their integers (ap_int<4>) and no decoder (WEIGHT_CODE_BITS = 0)."""
    graph, project = dybit_projects[("flatten_gemm", "int4", "fit", "parallel")]
    for layer in ("conv3_node", "gemm9_node"):
        text = params_of(project, layer)
        assert dict(CONFIG_INT.findall(text))["WEIGHT_CODE_BITS"] == "0"
        weight_t, stored = weight_array(text)
        assert weight_t == "ap_int<4>"
        op = next(o for o in graph if o.name == layer)
        assert op.weight_type == IntType(4, True)
        assert sorted(stored.tolist()) == sorted(op.weight.ravel().tolist())
