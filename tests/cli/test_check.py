"""`hwcodesign check PROJECT`: a compiled project passes; an unbounded loop, a recursive function
or a broken Tcl script fails naming its file and line; exit 0, 1, and 2 for a folder that is
not a project. An edited project gets its manifest re-recorded, as if compile had written it."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from support.codegen import compile_small_project
from support.markers import needs_tclsh

from hwcodesign.cli import main
from hwcodesign.outputs import MANIFEST_FILE


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_small_project(tmp_path_factory.mktemp("check"))


def edited(small: Path, tmp_path: Path, rel: str, old: str, new: str) -> Path:
    """A copy of the project with `old` replaced by `new` in `rel`, its manifest updated."""
    root = tmp_path / "edited"
    shutil.copytree(small, root)
    path = root / rel
    text = path.read_text()
    assert old in text, f"{rel} no longer holds {old!r}"
    path.write_text(text.replace(old, new, 1))
    manifest = json.loads((root / MANIFEST_FILE).read_text())
    content = path.read_bytes()
    manifest["files"][rel] = {"bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    (root / MANIFEST_FILE).write_text(json.dumps(manifest))
    return root


def line_of(root: Path, rel: str, text: str) -> int:
    return next(k for k, line in enumerate((root / rel).read_text().splitlines(), 1) if text in line)


@needs_tclsh
def test_a_compiled_project_passes(small: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(small)]) == 0
    out = capsys.readouterr().out
    for name in ("synthesizable C++: ok", "Vitis/Vivado Tcl: ok", "C simulation build: ok", "all checks passed"):
        assert name in out
    assert not (small / "vivado" / "small").exists(), "the Tcl check must not write into the user's project"


def test_an_unbounded_loop_fails_naming_file_and_line(small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = edited(small, tmp_path, "hls/top.cpp", "#pragma HLS DATAFLOW",
                  "#pragma HLS DATAFLOW\n    while (true) { break; }")
    assert main(["check", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"hls/top.cpp:{line_of(root, 'hls/top.cpp', 'while (true)')}:" in out
    assert "synthesizable C++: FAILED" in out and "1 check(s) failed" in out


def test_a_recursive_function_fails_naming_file_and_line(small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recursive = "static int hwc_depth(int n) { return n > 0 ? hwc_depth(n - 1) : 0; }\n"
    root = edited(small, tmp_path, "hls/top.cpp", "#pragma HLS DATAFLOW",
                  "#pragma HLS DATAFLOW\n    (void)hwc_depth(3);")
    top = root / "hls" / "top.cpp"
    text = top.read_text()
    first_function = text.index("void ")
    top.write_text(text[:first_function] + recursive + text[first_function:])
    manifest = json.loads((root / MANIFEST_FILE).read_text())
    content = top.read_bytes()
    manifest["files"]["hls/top.cpp"] = {"bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    (root / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert main(["check", str(root)]) == 1
    out = capsys.readouterr().out
    where = f"hls/top.cpp:{line_of(root, 'hls/top.cpp', 'static int hwc_depth')}: recursion: "
    assert any(line.strip().startswith(where) and "hwc_depth" in line for line in out.splitlines()), out


@needs_tclsh
def test_a_broken_tcl_script_fails_naming_file_and_line(small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = edited(small, tmp_path, "vivado/block_design.tcl", "create_bd_design", "create_bd_desing")
    assert main(["check", str(root)]) == 1
    out = capsys.readouterr().out
    line = line_of(root, "vivado/block_design.tcl", "create_bd_desing")
    assert f"vivado/block_design.tcl:{line}: UNSTUBBED COMMAND: create_bd_desing" in out
    assert "Vitis/Vivado Tcl: FAILED" in out


def test_tcl_check_is_skipped_without_tclsh(small: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import hwcodesign.check as check

    monkeypatch.setattr(check, "TCLSH", None)
    assert main(["check", str(small)]) == 0
    assert "Vitis/Vivado Tcl: skipped" in capsys.readouterr().out


def test_not_a_project_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path)]) == 2
    assert "is not a hwcodesign project" in capsys.readouterr().err


def test_a_folder_without_xilinx_headers_is_bad_input(small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(small), "--xilinx-headers", str(tmp_path)]) == 2
    assert f"{tmp_path}: not a folder of Xilinx's HLS headers" in capsys.readouterr().err
