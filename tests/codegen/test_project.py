"""The project folder as a whole: deterministic, atomic, self-describing, and clear when it fails."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from support.markers import needs_tclsh
from support.qdq_by_hand import conv_bn_relu_qdq

from hwcodesign.backends import emit_project
from hwcodesign.boards import available_boards, load_board
from hwcodesign.check.tcl import run_tcl
from hwcodesign.cli import main
from hwcodesign.codegen import project as project_module
from hwcodesign.codegen.project import Project, ProjectError
from hwcodesign.flows.compile import compile_model
from hwcodesign.hardware.ctext import CodegenError
from hwcodesign.hardware.folding import Folding
from hwcodesign.mapper.ilp import fixed_mapping
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.sim.golden import run_golden


@pytest.fixture()
def model_path(tmp_path: Path) -> Path:
    path = tmp_path / "model.onnx"
    onnx.save(conv_bn_relu_qdq(), path)
    return path


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_compile_is_deterministic(model_path: Path, tmp_path: Path) -> None:
    first = compile_model(model_path, "ultra96v2", tmp_path / "a" / "net").project.root
    second = compile_model(model_path, "ultra96v2", tmp_path / "b" / "net").project.root
    digest_a, digest_b = tree_digest(first), tree_digest(second)
    assert digest_a == digest_b
    expected = {"project.json", "Makefile", "report.json", "report.html", "hls/top.cpp", "hls/top.h", "hls/tb.cpp",
                "hls/run_hls.tcl", "vivado/block_design.tcl", "vivado/build_bitstream.tcl", "hls/shim/ap_int.h",
                "hls/tb_data/in0.dat", "hls/tb_data/out0_expected.dat", "hls/layers/hwc_conv.h",
                "driver/driver.py", "driver/sample.npz", "driver/model.onnx"}
    assert expected <= set(digest_a)
    assert not any(str(tmp_path).encode() in (first / name).read_bytes() for name in digest_a)


def test_failed_compile_leaves_nothing_and_keeps_the_old_project(model_path: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "net"
    compile_model(model_path, "ultra96v2", out)
    before = tree_digest(out)

    def broken(*args: object, **kwargs: object) -> dict[str, str]:
        raise RuntimeError("template failure halfway through")

    monkeypatch.setattr(project_module, "render_build_scripts", broken)
    with pytest.raises(RuntimeError):
        compile_model(model_path, "zcu104", out)
    assert tree_digest(out) == before  # the previous project is untouched
    assert sorted(os.listdir(tmp_path)) == ["model.onnx", "net"]  # no staging folders left behind
    with pytest.raises(RuntimeError):
        compile_model(model_path, "zcu104", tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()


def test_unsupported_folding_names_the_layer(model_path: Path, tmp_path: Path) -> None:
    graph = optimize(load_onnx(model_path))
    conv = next(op for op in graph if op.kind == "Conv")
    mapping = fixed_mapping(graph, load_board("ultra96v2"), {conv.name: Folding(pe=4, simd=1)})
    with pytest.raises(CodegenError, match=f"layer '{conv.name}': PE=4 must divide 6"):
        emit_project(graph, mapping, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_project_reads_back_and_validates_inputs(model_path: Path, tmp_path: Path) -> None:
    result = compile_model(model_path, "ultra96v2", tmp_path / "net")
    project = Project(result.project.root)
    assert project.meta["board"] == "ultra96v2" and project.meta["word_bits"] == 64
    tensor = project.inputs[0].tensor
    frames = np.random.default_rng(0).integers(tensor.dtype.min, tensor.dtype.max + 1, (3,) + tensor.shape[1:])
    assert all((project.csim(frames)[k] == v).all() for k, v in run_golden(result.graph, frames).items())
    with pytest.raises(ProjectError, match="must be"):
        project.csim(frames[:, :, :-1])
    with pytest.raises(ProjectError, match="integers"):
        project.csim(frames.astype(np.float32))
    with pytest.raises(ProjectError, match="outside"):
        project.csim(frames + 1000)
    with pytest.raises(ProjectError, match="not a hwcodesign project"):
        Project(tmp_path)


def test_cli_compile_then_csim(model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "proj"
    assert main(["compile", str(model_path), "--board", "pynqz2", "-o", str(out), "--word-bits", "32"]) == 0
    captured = capsys.readouterr()
    assert "project written to" in captured.out and "make -C" in captured.out
    for stage in ("importing", "mapping onto pynqz2", "simulating", "generating the HLS project"):
        assert stage in captured.err
    project = Project(out)
    assert project.meta["word_bits"] == 32 and "xc7z020clg400-1" in (out / "hls/run_hls.tcl").read_text()
    floats = np.random.default_rng(1).normal(0, 1, (2,) + project.inputs[0].tensor.shape[1:]).astype(np.float32)
    np.save(tmp_path / "x.npy", floats)
    assert main(["csim", str(out), str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npz")]) == 0
    saved = np.load(tmp_path / "y.npz")
    name = project.outputs[0].tensor.name
    graph = optimize(load_onnx(model_path))
    expected = run_golden(graph, project.inputs[0].tensor.quantize(floats))[name]
    assert (saved[name] == expected).all()
    assert np.allclose(saved[f"{name}_dequantized"], project.outputs[0].tensor.dequantize(expected))


def test_cli_csim_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["csim", str(tmp_path), str(tmp_path / "x.npy")]) == 2
    assert "not a hwcodesign project" in capsys.readouterr().err


@needs_tclsh
@pytest.mark.parametrize("board_name", [board.name for board in available_boards()])
def test_generated_tcl_of_a_real_project(model_path: Path, tmp_path: Path, board_name: str) -> None:
    """The scripts of an actually compiled project: right part and clock, every added file exists."""
    board = load_board(board_name)
    project = compile_model(model_path, board, tmp_path / "net").project
    root, name = project.root, project.name
    run = run_tcl(root / "hls" / "run_hls.tcl", tmp_path)
    assert run.returncode == 0 and run.completed, run.stderr
    assert run.named("set_part") == [[board.part]]
    [clock] = run.named("create_clock")
    assert float(clock[clock.index("-period") + 1]) == pytest.approx(1000 / board.clock_mhz, abs=5e-4)
    assert run.named("set_top") == [[project.meta["top_function"]]]
    for args in run.named("add_files"):
        path = Path(args[-1])
        assert path.exists() and root in path.parents, path
    ip = root / "hls" / f"{name}_hls" / "solution1" / "impl" / "ip"
    ip.mkdir(parents=True)
    (ip / "component.xml").write_text("<component/>")  # what export_design leaves behind
    run = run_tcl(root / "vivado" / "block_design.tcl", tmp_path)
    assert run.returncode == 0 and run.completed, run.stderr
    [created] = run.named("create_project")
    assert board.part in created
    cells = run.cells()
    assert cells["accel"] == f"hwcodesign.org:hls:{project.meta['top_function']}:1.0"
    assert sum(vlnv.startswith("xilinx.com:ip:axi_dma") for vlnv in cells.values()) == 1
    ps = "zynq_ultra_ps_e" if board.ps_type == "zynq_ultrascale" else "processing_system7"
    assert any(f"xilinx.com:ip:{ps}" in vlnv for vlnv in cells.values())
