"""C simulation built against Xilinx's own ap_int.h/hls_stream.h (the open-source
HLS_arbitrary_Precision_Types, as Vitis compiles the sources) stays bit-exact with the golden
model, for one project of each family: dataflow pipeline, layer-sequential engine, deformable,
sparse and DyBit (the shim's builds of the same families are what the other C-simulation tests
check).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import pytest
from support.codegen import compile_small_project, random_frames, variant_mapping
from support.deform_cases import GRID, deform_layer, random_inputs
from support.engine import compile_small_engine
from support.op_cases import build
from support.sparse_models import SparseCase, SparseLayer, event_frames, sparse_models
from support.xilinx_headers import xilinx_headers

from hwcodesign.backends import emit_project
from hwcodesign.backends.dataflow import map_pipeline
from hwcodesign.boards import load_board
from hwcodesign.cli import main
from hwcodesign.codegen.csim import build_library, library_path
from hwcodesign.codegen.project import Project
from hwcodesign.frontend.formats import weight_nodes, with_weight_formats
from hwcodesign.ir.graph import Graph
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.quant.formats import WeightFormat
from hwcodesign.quantize import quantize_qdq
from hwcodesign.sim.golden import run_golden

Case = tuple[Graph, Project, np.ndarray | dict[str, np.ndarray]]


def pipeline(root: Path) -> Case:
    project = Project(compile_small_project(root))
    graph = optimize(load_onnx(root / "small.onnx"))
    return graph, project, random_frames(graph, 4, seed=1)


def engine(root: Path) -> Case:
    compiled = compile_small_engine(root)  # its graph as compiled: the first layer's window may be packed
    return compiled.graph, compiled.project, random_frames(compiled.graph, 4, seed=2)


def deformable(root: Path) -> Case:
    layer = deform_layer(GRID[0])
    project = emit_project(layer.graph, variant_mapping(layer.graph, load_board("zcu104"), "mapped"), root / "deform")
    return layer.graph, project, random_inputs(layer, frames=4, seed=3)


def sparse(root: Path) -> Case:
    case = SparseCase((SparseLayer("subm", 6, 3), SparseLayer("subm", 6, 3, 2), SparseLayer("gap"), SparseLayer("fc", 4)))
    masked, _ = sparse_models(case, event_frames(case, 0.3, 8, seed=1))
    onnx.save(masked, root / "sparse.onnx")
    graph = optimize(load_onnx(root / "sparse.onnx"))
    project = emit_project(graph, map_pipeline(graph, load_board("ultra96v2")), root / "sparse")
    return graph, project, graph.inputs[0].output.quantize(event_frames(case, 0.2, 3, seed=4))


def dybit(root: Path) -> Case:
    model, calibration = build("conv_relu")
    qdq = quantize_qdq(model, calibration)
    written = with_weight_formats(qdq, {name: WeightFormat.parse("dybit4") for name in weight_nodes(qdq)})
    graph = optimize(load_onnx(written))
    project = emit_project(graph, map_pipeline(graph, load_board("ultra96v2")), root / "dybit")
    return graph, project, random_frames(graph, 4, seed=5)


def route(root: Path) -> Case:
    """The channel shuffle of four groups between two convs, at the ILP's folding (PE 4 today: registers)."""
    graph = optimize(load_onnx(quantize_qdq(*build("channel_shuffle_g4"))))
    project = emit_project(graph, variant_mapping(graph, load_board("ultra96v2"), "mapped"), root / "route")
    return graph, project, random_frames(graph, 4, seed=6)


FAMILIES: dict[str, Callable[[Path], Case]] = {
    "pipeline": pipeline, "engine": engine, "deformable": deformable, "sparse": sparse, "dybit": dybit,
    "route": route,
}


@pytest.fixture(scope="module")
def family_projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    """Every family's project and its library on Xilinx's headers, compiled concurrently (g++ runs in
    subprocesses): 3-5 s of g++ per project, a few times the shim's. The shim's build of each family
    is what the other C-simulation tests check."""
    headers = xilinx_headers()
    root = tmp_path_factory.mktemp("xilinx_headers")
    cases = {}
    for family, make in FAMILIES.items():
        (root / family).mkdir()
        cases[family] = make(root / family)
    builds = [(project, headers) for _, project, _ in cases.values()]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(lambda build: build_library(*build), builds))
    return cases


@pytest.mark.parametrize("family", FAMILIES)
def test_bit_exact_against_xilinx_headers(family: str, family_projects: dict[str, Case]) -> None:
    headers = xilinx_headers()
    graph, project, frames = family_projects[family]
    golden = run_golden(graph, frames)
    simulated = project.csim(frames, headers)
    assert simulated.keys() == golden.keys()
    for name, expected in golden.items():
        differing = int(np.count_nonzero(simulated[name] != expected))
        assert differing == 0, f"{family} against Xilinx's headers: {differing} of {expected.size} elements of '{name}' differ"


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
@pytest.mark.parametrize("family", ["pipeline", "engine"])
def test_make_csim_builds_the_testbench_against_xilinx_headers(family: str, tmp_path: Path) -> None:
    """The project's own `make csim XILINX_HEADERS=DIR`: both testbenches (stream and engine) pass
    on the golden vectors, built into their own binary beside the shim's."""
    headers = xilinx_headers()
    _, project, _ = FAMILIES[family](tmp_path)
    result = subprocess.run(["make", "--no-print-directory", "-C", str(project.root), "csim", f"XILINX_HEADERS={headers}"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"-I{headers}" in result.stdout and "bit-exact with the golden model" in result.stdout
    assert (project.root / "build" / "csim_xilinx").is_file() and not (project.root / "build" / "csim").exists()


def test_csim_command_and_cache_key_take_the_header_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`hwcodesign csim --xilinx-headers DIR --model` is bit-exact; the two header sets are two
    cached libraries, and editing a Xilinx header makes a new one."""
    headers = xilinx_headers()
    graph, project, frames = pipeline(tmp_path)
    np.save(tmp_path / "frames.npy", frames)
    assert main(["csim", str(project.root), str(tmp_path / "frames.npy"), "--model", str(tmp_path / "small.onnx"),
                 "--xilinx-headers", str(headers)]) == 0
    captured = capsys.readouterr()
    assert "Xilinx's headers" in captured.err + captured.out
    assert library_path(project) != library_path(project, headers)
    copy = tmp_path / "headers"
    shutil.copytree(headers, copy)
    before = library_path(project, copy)
    with (copy / "ap_int.h").open("a") as stream:
        stream.write("// edited\n")
    assert library_path(project, copy) != before


def test_a_failed_fetch_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI (CI=true) reaches PyPI: there a header fetch that fails must fail, not skip silently."""
    import support.xilinx_headers as fetching

    def unreachable() -> Path:
        raise RuntimeError("pip download hls4ml==1.3.0 failed: no network")

    monkeypatch.setattr(fetching, "fetch", unreachable)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no network"):
        xilinx_headers()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="make xilinx-headers"):
        xilinx_headers()
