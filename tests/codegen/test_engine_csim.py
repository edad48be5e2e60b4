"""The layer-sequential engine: C simulation of the generated project == golden model, and the
cost model's loop trip counts == the loops the C simulation ran.

Every op case (the same tiny ONNX models the dataflow backend is checked on, quantized by
onnxruntime), every deformable-conv variant (full/depthwise, mask, fixed shape, R 1..8,
strides, dilation, offset groups), each at three engine configurations (`support.engine.CONFIGS`:
one block vs weight blocks, shared output stages, packed DSP products), 6 frames of uniform
random integers, every element. Together with the golden model's agreement with onnxruntime
(tests/frontend, tests/sim) this is the three-way check for the engine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.codegen import build_all, random_frames
from support.deform_cases import FIXED_GRID, GRID, DeformCase, deform_layer, random_inputs
from support.engine import CONFIGS, check_engine, check_engine_case, engine_project, shared_engines
from support.onnx_models import GraphBuilder
from support.op_cases import CASES, ENGINE_ONLY_CASES, build

from hwcodesign.backends import emit_project
from hwcodesign.boards import load_board
from hwcodesign.codegen.engine.program import build_program
from hwcodesign.hardware.engine.config import EngineConfig, EngineUnsupported
from hwcodesign.mapper.engine.cost import mac_compute
from hwcodesign.mapper.engine_map import fixed_engine_mapping
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.passes.input_window import pack_input_window
from hwcodesign.quantize import quantize_qdq
from hwcodesign.sim.golden import run_golden

FRAMES = 6
OP_CASES = sorted([*CASES, *ENGINE_ONLY_CASES])
# first layers whose window the host packs into the input's channels (`pack-input-window`): a
# 3x3 pad 1, a 3x3/2, an asymmetric kernel placement with stride (1, 2), a dilated one
PACKED_WINDOW_CASES = ["conv_relu", "conv_stride2_nobias", "conv_1x1_asymmetric_pads", "conv_dilated"]
# offset groups of 2 channels cannot share SIMD >= 8 lanes (refused, checked below); these
# groups are 16 channels wide, a whole number of SIMD words at every configuration
DEFORM_CASES = [case for case in GRID + FIXED_GRID if case.offset_groups == 1] + [
    DeformCase(channels=32, out_channels=8, groups=2, offset_groups=2, mask=True, size=10),
    DeformCase(channels=32, out_channels=32, groups=32, offset_groups=2, mask=True, size=10),
    DeformCase(channels=32, out_channels=32, groups=32, offset_groups=2, fixed_shape=True, size=10),
    DeformCase(channels=32, out_channels=8, offset_groups=2, fixed_shape=True, size=10, dilation=2, offset_range=4),
]


def config_id(config: EngineConfig) -> str:
    return str(config).replace(" ", "_")


@pytest.fixture(scope="module")
def op_engines(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every op case's program at each configuration, run on one engine build per configuration
    (and weight width): the engine is programmable, so a case's params.bin is all that differs."""
    root = tmp_path_factory.mktemp("engine_ops")
    graphs = {}
    for case in OP_CASES:
        model, calibration = build(case)
        graphs[case] = optimize(load_onnx(quantize_qdq(model, calibration)))
    for case in PACKED_WINDOW_CASES:  # the same engine builds run them: only params.bin differs
        graphs[f"{case} packed"] = pack_input_window(graphs[case])
    return shared_by_config(graphs, root)


@pytest.fixture(scope="module")
def deform_engines(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("engine_deform")
    layers = {case.label: deform_layer(case) for case in DEFORM_CASES}
    engines = shared_by_config({label: layer.graph for label, layer in layers.items()}, root, "zcu104")
    return {key: (layers[key[0]], *value) for key, value in engines.items()}


def shared_by_config(graphs: dict, root: Path, board: str | None = None) -> dict:
    """(case, config index) -> (EngineCase, SharedEngine), the engines built (on `board`, or
    each configuration's `board_for`)."""
    runs = {}
    for index, config in enumerate(CONFIGS):
        cases, engines = shared_engines(graphs, config, root / str(index), board)
        runs.update({(key, index): (cases[key], engines[key]) for key in graphs})
    build_all(list({id(engine.project): engine.project for _, engine in runs.values()}.values()))
    return runs


@pytest.mark.parametrize("index", range(len(CONFIGS)), ids=[config_id(c) for c in CONFIGS])
@pytest.mark.parametrize("case", OP_CASES)
def test_engine_op_equals_golden(op_engines: dict, case: str, index: int) -> None:
    engine_case, engine = op_engines[(case, index)]
    check_engine_case(engine, engine_case, random_frames(engine_case.graph, FRAMES, seed=sum(map(ord, case))),
                      f"{case}/{index}")


@pytest.mark.parametrize("index", range(len(CONFIGS)), ids=[config_id(c) for c in CONFIGS])
@pytest.mark.parametrize("case", PACKED_WINDOW_CASES)
def test_packed_input_window_equals_the_original_layer(op_engines: dict, case: str, index: int) -> None:
    """The host's im2col of random frames through the rewritten 1x1 layer on the engine == the
    golden model of the original layer on the frames, every element."""
    original, _ = op_engines[(case, index)]
    packed, engine = op_engines[(f"{case} packed", index)]
    assert packed.graph.inputs[0].window is not None
    frames = random_frames(original.graph, FRAMES, seed=sum(map(ord, case)))
    columns = packed.graph.inputs[0].from_frames(frames)
    expected = run_golden(original.graph, frames)
    assert all(np.array_equal(run_golden(packed.graph, columns)[name], value) for name, value in expected.items())
    check_engine_case(engine, packed, columns, f"{case} packed/{index}")


@pytest.mark.parametrize("index", range(len(CONFIGS)), ids=[config_id(c) for c in CONFIGS])
@pytest.mark.parametrize("case", DEFORM_CASES, ids=lambda c: c.label)
def test_engine_deform_equals_golden(deform_engines: dict, case: DeformCase, index: int) -> None:
    layer, engine_case, engine = deform_engines[(case.label, index)]
    check_engine_case(engine, engine_case, random_inputs(layer, FRAMES, seed=5), f"{case.label}/{index}")


def test_configurations_really_differ(op_engines: dict) -> None:
    """Guard for the test itself: shared output stages and packed DSP products are exercised, and
    the op cases share few builds."""
    packed = [index for index in range(len(CONFIGS)) if op_engines[("conv_relu", index)][0].mapping.config.packed_macs]
    assert packed == [2]
    engine = op_engines[("conv_relu", 2)][1]
    assert "static const int MAC_PACK = 1;" in (engine.project.root / "hls/engine_config.h").read_text()
    assert {c.rq_units for c in CONFIGS} == {1, 2, 8}
    builds = {id(engine.project) for engine_case, engine in op_engines.values()}
    assert len(builds) <= 3 * len(CONFIGS), f"{len(builds)} engine builds for {len(OP_CASES)} cases"


def test_layers_run_in_weight_blocks(tmp_path: Path) -> None:
    """A weight memory smaller than a layer's weights: the layer runs in blocks of output folds,
    each re-reading the input and writing its channel range of every pixel (a run per pixel)."""
    b = GraphBuilder(seed=3)
    x = b.input((1, 16, 9, 9))
    hidden = b.node("Relu", [b.conv(x, 16, 40, pads=[1, 1, 1, 1])])
    model = b.model([b.conv(hidden, 40, 24, pads=[1, 1, 1, 1])])
    calibration = [np.random.default_rng(i).normal(0, 1, (1, 16, 9, 9)).astype(np.float32) for i in range(8)]
    graph = optimize(load_onnx(quantize_qdq(model, calibration)))
    config = EngineConfig(8, 8, 2, 8, 48)
    mapping, project = engine_project(graph, config, tmp_path / "blocks")
    # 5 folds of 18 weight words (2 per 48-word memory), then 3 folds of 45 words (1 each)
    assert [t.blocks for t in mapping.timings] == [3, 3]
    build_all([project])
    check_engine(graph, project, mapping, random_frames(graph, FRAMES, seed=11), "blocks")


def test_a_deep_layer_prefetches_its_next_blocks_weights(tmp_path: Path) -> None:
    """A deep layer on a small map (64 -> 56 channels, 3x3, 2x2 pixels) in a memory of 4 of its
    7 output folds takes the memories' halves (`prefetch`: 2 folds each, 4 blocks, the last of
    one fold) and each block's frames store the next block's weights as they compute. One frame a
    run stores a whole block, more than its loops take, and the rest after them (the `tail`
    loop); five frames a run share a block's 144 addresses 29, 29, 29, 29 and 28, the last run of
    the six frames stores them alone. Bit-exact, the loops counted, both ways."""
    b = GraphBuilder(seed=5)
    x = b.input((1, 64, 2, 2))
    model = b.model([b.conv(x, 64, 56, pads=[1, 1, 1, 1])])
    calibration = [np.random.default_rng(i).normal(0, 1, (1, 64, 2, 2)).astype(np.float32) for i in range(8)]
    graph = optimize(load_onnx(quantize_qdq(model, calibration)))
    config = EngineConfig(8, 8, 2, 8, 288)
    (item,) = build_program(graph, config).plans
    assert (item.sf, item.outer_per_block, item.blocks, item.prefetch) == (72, 2, 4, True)
    for batch in (1, 5):
        mapping = fixed_engine_mapping(graph, load_board("ultra96v2"), config, batch=batch)
        loops = [mac_compute(item, mapping.config, outers)[1] for outers in (2, 2, 2, 1)]
        tails = mapping.timings[0].compute_iterations - batch * sum(loops)
        assert (tails > 0) == (batch == 1)  # 1,152 params words a frame after 616 loops; 232 in 616
        project = emit_project(graph, mapping, tmp_path / f"batch{batch}")
        build_all([project])
        check_engine(graph, project, mapping, random_frames(graph, 6, seed=batch), f"prefetch, {batch} a run")


def test_narrow_offset_groups_are_refused_with_the_reason(tmp_path: Path) -> None:
    layer = deform_layer(DeformCase(groups=2, offset_groups=2, mask=True))
    with pytest.raises(EngineUnsupported, match=r"'deform' \(DeformConv\): 2 offset groups of 2 channels; SIMD=8"):
        engine_project(layer.graph, CONFIGS[0], tmp_path / "deform")


def test_a_layer_too_large_for_the_weight_memory_is_refused(tmp_path: Path) -> None:
    model, calibration = build("flatten_gemm")
    graph = optimize(load_onnx(quantize_qdq(model, calibration)))
    with pytest.raises(EngineUnsupported, match=r"Linear\): one output needs 25 weight words per PE, more than the engine's 16"):
        engine_project(graph, EngineConfig(8, 8, 8, 8, 16), tmp_path / "gemm")


def test_packed_products_are_exact_for_every_packed_width(tmp_path: Path) -> None:
    """hwc_mul2 (two products per DSP48E2) against plain products, for every width pair the
    mapper packs (`packs_two_products`, weights of every storage width): every weight pair times
    the operand's extremes and 57 values spread between. C simulation multiplies natively
    (`hwc_mul_pair`), so this is what holds the packed hardware to the simulated products. The
    pairs one bit past the rule (2 W + X = 27) must go wrong: the rule is tight."""
    import subprocess

    from hwcodesign.codegen.render import templates_dir
    from hwcodesign.hardware.engine.config import WEIGHT_STORAGE_BITS
    from hwcodesign.mapper.engine.widths import packs_two_products

    pairs = [(w, x) for w in WEIGHT_STORAGE_BITS for x in range(2, 19) if packs_two_products(w, x)]
    past = [(w, 27 - 2 * w) for w in WEIGHT_STORAGE_BITS if 27 - 2 * w <= 18]
    assert (4, 9) in pairs and (4, 17) in pairs and (8, 9) in pairs and past == [(8, 11)]
    source = tmp_path / "mul2.cpp"
    source.write_text('''
#include <cstdio>
#include "engine/hwc_engine_base.h"
template <int W, int X> long check() {
    long bad = 0;
    const int lo = -(1 << (X - 1)), hi = (1 << (X - 1)) - 1;
    int xs[64] = {lo, lo + 1, -1, 0, 1, hi - 1, hi};
    for (int i = 7; i < 64; ++i) xs[i] = lo + (int)((long long)(hi - lo) * (i - 7) / 56);
    for (int a = -(1 << (W - 1)); a < (1 << (W - 1)); ++a)
        for (int b = -(1 << (W - 1)); b < (1 << (W - 1)); ++b)
            for (int x : xs) {
                ap_int<W + X> ax, bx;
                hwc_mul2<W, X>(ap_int<W>(a), ap_int<W>(b), ap_int<X>(x), ax, bx);
                bad += (long long)ax != (long long)a * x || (long long)bx != (long long)b * x;
            }
    return bad;
}
int main() { std::printf("%ld %ld\\n", PACKED, PAST); return 0; }
'''.replace("PACKED", " + ".join(f"check<{w}, {x}>()" for w, x in pairs))
     .replace("PAST", " + ".join(f"(check<{w}, {x}>() > 0)" for w, x in past)))
    (tmp_path / "engine_layer.h").write_text("struct hwc_layer { int mode; };\n")
    hls = templates_dir() / "hls"
    binary = tmp_path / "mul2"
    subprocess.run(["g++", "-std=c++14", "-O1", "-Wno-unknown-pragmas", "-I", str(hls / "shim"), "-I", str(hls),
                    "-I", str(tmp_path), str(source), "-o", str(binary)], check=True)
    wrong, past_wrong = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout.split()
    assert wrong == "0" and past_wrong == str(len(past))
