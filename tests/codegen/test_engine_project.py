"""A layer-sequential engine project as a whole: deterministic, atomic, `make csim` passes, its
HLS sources are synthesizable C++, and its vendor scripts are the engine's (no DMA)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from support.markers import needs_tclsh
from support.onnx_models import GraphBuilder
from support.op_cases import SHAPE
from support.qdq_by_hand import conv_bn_relu_qdq

from hwcodesign.backends import emit_project, map_to_board
from hwcodesign.boards import load_board
from hwcodesign.check.synthesizable import GXX, compile_problems, synthesis_problems, synthesizable_files
from hwcodesign.check.tcl import run_tcl
from hwcodesign.codegen import engine_project as engine_project_module
from hwcodesign.codegen.engine_project import ENGINE_MASTERS
from hwcodesign.codegen.project import Project
from hwcodesign.flows.compile import compile_model
from hwcodesign.hardware.engine.config import EngineConfig, EngineUnsupported
from hwcodesign.ir.graph import Graph
from hwcodesign.mapper.engine_map import EngineMapping, fixed_engine_mapping
from hwcodesign.outputs import OutputError
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.quantize import quantize_qdq

MAKE = shutil.which("make")
needs_make_and_gxx = pytest.mark.skipif(MAKE is None or GXX is None, reason="make or g++ not installed")
ENGINE_FILES = {
    "project.json", "Makefile", "hls/top.cpp", "hls/top.h", "hls/engine_config.h", "hls/engine_layer.h",
    "hls/host_run.h", "hls/tb.cpp", "hls/csim_lib.cpp", "hls/run_hls.tcl", "hls/tb_data/params.bin",
    "hls/tb_data/in0.dat", "hls/tb_data/out0_expected.dat", "hls/engine/hwc_engine.h", "hls/engine/hwc_engine_mac.h",
    "hls/shim/ap_int.h", "vivado/block_design.tcl", "vivado/build_bitstream.tcl", "driver/driver.py",
    "driver/params.bin", "driver/sample.npz", "driver/notebook.ipynb", "driver/model.onnx",
}


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("engine_model") / "model.onnx"
    onnx.save(conv_bn_relu_qdq(), path)
    return path


@pytest.fixture(scope="module")
def engine(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Graph, EngineMapping, Project]:
    graph = optimize(load_onnx(model_path))
    mapping = map_to_board(graph, load_board("ultra96v2"), architecture="sequential")
    assert isinstance(mapping, EngineMapping)
    project = emit_project(graph, mapping, tmp_path_factory.mktemp("engine_project") / "a" / "net",
                           model_path=model_path)
    return graph, mapping, project


@pytest.fixture(scope="module")
def made(engine: tuple[Graph, EngineMapping, Project], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A copy of the project after `make csim` (build/csim built), and what make printed."""
    root = tmp_path_factory.mktemp("engine_make") / "net"
    shutil.copytree(engine[2].root, root)
    result = subprocess.run([MAKE, "--no-print-directory", "-C", str(root), "csim"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return root, result.stdout


def test_the_same_engine_mapping_gives_byte_identical_projects(engine: tuple[Graph, EngineMapping, Project],
                                                               model_path: Path, tmp_path: Path) -> None:
    graph, mapping, first = engine
    second = emit_project(graph, mapping, tmp_path / "b" / "net", model_path=model_path)
    digest = tree_digest(first.root)
    assert digest == tree_digest(second.root)
    assert ENGINE_FILES <= set(digest)
    assert not any(name.startswith(("hls/layers/hwc_conv", "hls/params/")) for name in digest)  # no pipeline stages
    assert not any(str(tmp_path).encode() in (second.root / name).read_bytes() for name in digest)
    assert Project(second.root).architecture == "sequential"
    assert second.meta["engine"]["pe"] == mapping.config.pe and second.meta["engine"]["simd"] == mapping.config.simd
    assert second.meta["layer_count"] == len(second.meta["instructions"]) == len(mapping.timings)


@needs_make_and_gxx
def test_make_csim_passes(engine: tuple[Graph, EngineMapping, Project], made: tuple[Path, str]) -> None:
    _, _, project = engine
    _, stdout = made
    frames = project.meta["testbench_frames"]
    assert f"PASS: {frames} frames bit-exact with the golden model" in stdout


@needs_make_and_gxx
def test_make_csim_fails_on_wrong_vectors_or_program(made: tuple[Path, str], tmp_path: Path) -> None:
    """The PASS above means something: the same testbench fails on a wrong expected byte or a
    truncated params.bin (the copies keep build/csim's timestamps, so make does not recompile)."""
    root, _ = made
    broken = tmp_path / "expected"
    shutil.copytree(root, broken)
    expected = broken / "hls" / "tb_data" / "out0_expected.dat"
    values = expected.read_text().split()
    values[5] = str((int(values[5]) + 1) % 256)
    expected.write_text(" ".join(values) + "\n")
    result = subprocess.run([MAKE, "--no-print-directory", "-C", str(broken), "csim"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    assert "FAIL: 1 output bytes differ from the golden model" in result.stdout
    assert "g++" not in result.stdout  # the testbench ran without a rebuild
    truncated = tmp_path / "params"
    shutil.copytree(root, truncated)
    params = truncated / "hls" / "tb_data" / "params.bin"
    params.write_bytes(params.read_bytes()[:-8])
    result = subprocess.run([MAKE, "--no-print-directory", "-C", str(truncated), "csim"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert "tb_data/params.bin: expected" in result.stdout


@needs_make_and_gxx
def test_make_rebuilds_the_csim_after_an_engine_header_changes(made: tuple[Path, str]) -> None:
    """The engine's headers (hls/engine/) are prerequisites of build/csim and of the HLS run."""
    root, _ = made

    def up_to_date() -> bool:
        query = subprocess.run([MAKE, "-q", "-C", str(root), "build/csim"], capture_output=True, text=True)
        return query.returncode == 0

    assert up_to_date()
    header = root / "hls" / "engine" / "hwc_engine_mac.h"
    stamp = (root / "build" / "csim").stat().st_mtime + 10
    os.utime(header, (stamp, stamp))
    assert not up_to_date()


def test_a_failed_emit_leaves_no_folder(engine: tuple[Graph, EngineMapping, Project], tmp_path: Path) -> None:
    graph, mapping, _ = engine
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match=f"{blocker} is a file"):  # refused before anything is written
        emit_project(graph, mapping, blocker / "net")
    assert blocker.read_text() == "not a folder"
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_a_failure_halfway_keeps_the_previous_engine_project(engine: tuple[Graph, EngineMapping, Project],
                                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    graph, mapping, _ = engine
    out = tmp_path / "net"
    emit_project(graph, mapping, out)
    before = tree_digest(out)

    def broken(*args: object, **kwargs: object) -> dict[str, str]:
        raise RuntimeError("driver generation failed halfway")

    monkeypatch.setattr(engine_project_module, "engine_driver_files", broken)
    with pytest.raises(RuntimeError, match="halfway"):
        emit_project(graph, mapping, out)
    assert tree_digest(out) == before
    with pytest.raises(RuntimeError, match="halfway"):
        emit_project(graph, mapping, tmp_path / "fresh")
    assert sorted(os.listdir(tmp_path)) == ["net"]  # no staging folders, no half-written project


def test_a_model_the_engine_cannot_run_leaves_no_folder(tmp_path: Path) -> None:
    b = GraphBuilder(seed=2)  # a Concat of three parts, the first of 3 channels: neither copies nor one gather
    x = b.input(SHAPE)
    model = b.model([b.node("Concat", [b.conv(x, 4, channels, k=1) for channels in (3, 5, 8)], axis=1)])
    calibration = [np.random.default_rng(i).normal(0, 1, SHAPE).astype(np.float32) for i in range(8)]
    path = tmp_path / "concat.onnx"
    onnx.save(quantize_qdq(model, calibration), path)
    with pytest.raises(EngineUnsupported, match=r"Concat\): part 0 has 3 channels"):
        compile_model(path, "ultra96v2", tmp_path / "concat", architecture="sequential")
    graph = optimize(load_onnx(path))
    with pytest.raises(EngineUnsupported, match="part 0 has 3 channels"):
        fixed_engine_mapping(graph, load_board("ultra96v2"), EngineConfig(8, 8, 8, 8, 4096))
    assert sorted(os.listdir(tmp_path)) == ["concat.onnx"]


@pytest.mark.skipif(GXX is None, reason="g++ not found")
def test_engine_sources_are_synthesizable(engine: tuple[Graph, EngineMapping, Project]) -> None:
    root = engine[2].root
    checked = {path.relative_to(root).as_posix() for path in synthesizable_files(root)}
    assert {"hls/top.cpp", "hls/engine_config.h", "hls/engine_layer.h", "hls/engine/hwc_engine_mac.h",
            "hls/engine/hwc_engine_pixel.h"} <= checked  # the checker reads the engine, not only the top
    assert not any(name.startswith(("hls/shim/", "hls/tb", "hls/host_run", "hls/csim_lib")) for name in checked)
    problems = synthesis_problems(root) + compile_problems(root, synthesis_view=True)  # and as Vitis reads it
    assert problems == [], "\n".join(problems)


@needs_tclsh
@pytest.mark.parametrize("board_name", ["ultra96v2", "pynqz2"])
def test_generated_tcl_of_a_real_engine_project(engine: tuple[Graph, EngineMapping, Project], tmp_path: Path,
                                                board_name: str) -> None:
    graph, _, _ = engine
    board = load_board(board_name)
    mapping = fixed_engine_mapping(graph, board, EngineConfig(8, 8, 8, 8, 4096))
    project = emit_project(graph, mapping, tmp_path / "net")
    root, top = project.root, project.meta["top_function"]
    run = run_tcl(root / "hls" / "run_hls.tcl", tmp_path)
    assert run.returncode == 0 and run.completed, run.stderr
    assert run.named("set_part") == [[board.part]] and run.named("set_top") == [[top]]
    for args in run.named("add_files"):
        path = Path(args[-1])
        assert path.exists() and root in path.parents, path
    ip = root / "hls" / f"{project.name}_hls" / "solution1" / "impl" / "ip"
    ip.mkdir(parents=True)
    (ip / "component.xml").write_text("<component/>")
    run = run_tcl(root / "vivado" / "block_design.tcl", tmp_path)
    assert run.returncode == 0 and run.completed, run.stderr
    cells = run.cells()
    assert cells["accel"] == f"hwcodesign.org:hls:{top}:1.0"
    assert not any("axi_dma" in vlnv for vlnv in cells.values())
    nets = {tuple(args) for args in run.named("connect_bd_intf_net")}
    for index, master in enumerate(ENGINE_MASTERS):  # each master on its own SmartConnect and HP port
        smc = f"mem_smc{index or ''}"
        assert run.props(smc)["CONFIG.NUM_SI"] == "1"
        assert (f"accel/{master}", f"{smc}/S00_AXI") in nets
    # the masters the block design wires are the ones the HLS top declares
    source = (root / "hls" / "top.cpp").read_text()
    for master in ENGINE_MASTERS:
        assert f"bundle={master.removeprefix('m_axi_')} " in source


def bound_to_ultraram(root: Path) -> set[str]:
    """The arrays the preprocessed top binds to UltraRAM (the pragmas the macros of
    engine_config.h leave in, as Vitis HLS's own preprocessor would)."""
    text = subprocess.run([GXX, "-E", "-P", "-I", "hls/shim", "-I", "hls", "hls/top.cpp"], cwd=root,
                          capture_output=True, text=True, check=True).stdout
    return {line.split("variable=")[1].split()[0] for line in text.splitlines()
            if "BIND_STORAGE" in line and "impl=uram" in line}


@pytest.mark.skipif(GXX is None, reason="g++ not installed")
def test_buffers_the_configuration_puts_in_ultraram_are_bound_there(engine: tuple[Graph, EngineMapping, Project],
                                                                    tmp_path: Path) -> None:
    graph = engine[0]
    assert bound_to_ultraram(engine[2].root) == set()  # the Ultra96-V2 has no UltraRAM
    kv260 = load_board("kv260")
    for uram, arrays in ((("weights",), {"weights"}), (("weights", "ring"), {"weights", "ring.bank"})):
        mapping = fixed_engine_mapping(graph, kv260, EngineConfig(16, 8, 2, 2, 64, pp=2, uram=uram))
        project = emit_project(graph, mapping, tmp_path / "_".join(uram))
        assert bound_to_ultraram(project.root) == arrays
        assert synthesis_problems(project.root, call_graph=False) == []
    with pytest.raises(EngineUnsupported, match="ultra96v2 has no UltraRAM for the engine's weights buffers"):
        fixed_engine_mapping(graph, load_board("ultra96v2"), EngineConfig(16, 8, 2, 2, 64, uram=("weights",)))
