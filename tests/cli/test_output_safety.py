"""`-o` never destroys a user's files: every command that writes a folder checks its destination
before any work starts, and replaces only a folder hwcodesign wrote (issue 15, findings 1 and 8)."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import onnx
import pytest
from support.codegen import compile_small_project
from support.output_checks import assert_complete, snapshot
from support.qdq_by_hand import conv_bn_relu_qdq

from hwcodesign.cli import main
from hwcodesign.codegen.package import package_project
from hwcodesign.codegen.project import Project
from hwcodesign.outputs import MANIFEST_FILE, current_umask, write_atomically

COMMANDS = ("compile", "simulate", "search", "package")
KIND = {"compile": "project", "simulate": "report", "search": "search", "package": "package"}
OTHER_KIND = {"compile": "search", "simulate": "project", "search": "report", "package": "project"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_small_project(tmp_path_factory.mktemp("compiled"))


@pytest.fixture
def workspace(tmp_path: Path, compiled: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """tmp_path/work (the working directory, with a user file), models/small.onnx beside a user file,
    project/ (a compiled project), photos/ (a user folder)."""
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "notes.txt").write_text("my notes")
    (tmp_path / "models").mkdir()
    onnx.save(conv_bn_relu_qdq(), tmp_path / "models" / "small.onnx")
    (tmp_path / "models" / "readme.txt").write_text("where the model came from")
    shutil.copytree(compiled, tmp_path / "project")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "holiday.jpg").write_bytes(b"jpeg")
    monkeypatch.chdir(tmp_path / "work")
    yield tmp_path


@pytest.fixture
def no_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if a command gets as far as loading its model or project files."""
    def called(*args: object, **kwargs: object) -> None:
        raise AssertionError("the pipeline ran before the destination was checked")

    cli = importlib.import_module("hwcodesign.cli.commands")
    monkeypatch.setattr(cli, "load_onnx", called)
    monkeypatch.setattr(cli, "load_partitioned", called)
    monkeypatch.setattr(cli, "compile_model", called)
    monkeypatch.setattr("hwcodesign.frontend.loader.read_model", called)
    monkeypatch.setattr("hwcodesign.codegen.package.collect_files", called)


def command(name: str, root: Path, out: str) -> list[str]:
    source = root / "project" if name == "package" else root / "models" / "small.onnx"
    return [name, str(source), "-o", out]


def tool_folder(path: Path, kind: str) -> Path:
    write_atomically(path, {"a.txt": "written by the tool"}, kind=kind)
    return path


def user_file_in_own_folder(root: Path, name: str) -> tuple[str, str]:
    folder = tool_folder(root / "previous", KIND[name])
    (folder / "mine.txt").write_text("a file the user put there")
    return str(folder), "mine.txt"


def damaged_manifest(root: Path, name: str) -> tuple[str, str]:
    folder = tool_folder(root / "previous", KIND[name])
    (folder / MANIFEST_FILE).write_text("{")
    return str(folder), MANIFEST_FILE


# Each builds a destination in the workspace: (the -o argument, a word the message must hold).
DESTINATIONS: dict[str, Callable[[Path, str], tuple[str, str]]] = {
    "a plain file": lambda root, name: (str(root / "work" / "notes.txt"), str(root / "work" / "notes.txt")),
    "a folder of user files": lambda root, name: (str(root / "photos"), "holiday.jpg"),
    "the working directory": lambda root, name: (".", str(root / "work")),
    "a folder holding the working directory": lambda root, name: (str(root), str(root)),
    "the input's own folder": lambda root, name: (
        str(root / ("project" if name == "package" else "models")),
        str(root / ("project" if name == "package" else "models"))),
    "a path inside a file": lambda root, name: (str(root / "work" / "notes.txt" / "out"),
                                                str(root / "work" / "notes.txt")),
    "/proc": lambda root, name: ("/proc/hwcodesign-out", "/proc/hwcodesign-out"),
    "/sys": lambda root, name: ("/sys/hwcodesign-out", "/sys/hwcodesign-out"),
    "a tool folder of another kind": lambda root, name: (
        str(tool_folder(root / "other", OTHER_KIND[name])), OTHER_KIND[name]),
    "its own kind holding a user file": user_file_in_own_folder,
    "a damaged manifest": damaged_manifest,
}


@pytest.mark.parametrize("destination", DESTINATIONS)
@pytest.mark.parametrize("name", COMMANDS)
def test_refused_before_any_work_and_nothing_touched(name: str, destination: str, workspace: Path,
                                                     no_pipeline: None, capsys: pytest.CaptureFixture[str]) -> None:
    out, named = DESTINATIONS[destination](workspace, name)
    before = snapshot(workspace)
    assert main(command(name, workspace, out)) == 2
    err = capsys.readouterr().err
    assert err.startswith("hwcodesign: error: ") and len(err.splitlines()) == 1, err
    assert named in err and "Traceback" not in err
    assert snapshot(workspace) == before


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` where nothing can be created, for root too (which ignores permission bits)."""
    if os.geteuid() != 0:
        folder.chmod(0o500)
    elif subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("root, and chattr +i is not available here")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True) if os.geteuid() == 0 else folder.chmod(0o700)


@pytest.mark.parametrize("name", COMMANDS)
def test_unwritable_parent_is_refused(name: str, workspace: Path, no_pipeline: None,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    locked = workspace / "locked"
    locked.mkdir()
    with read_only(locked):
        assert main(command(name, workspace, str(locked / "out"))) == 2
    err = capsys.readouterr().err
    assert str(locked) in err and "not writable" in err and len(err.splitlines()) == 1, err
    assert list(locked.iterdir()) == []


def test_recompiling_replaces_the_projects_own_build_products(workspace: Path) -> None:
    """What `make csim/hls/bitstream` and `hwcodesign package [--zip]` leave in a project is the
    tool's; the next compile replaces it (a stale bitstream must not survive a recompile)."""
    project = workspace / "project"
    assert subprocess.run(["make", "-C", str(project), "csim"], capture_output=True).returncode == 0
    assert (project / "build" / "csim").is_file()
    for product in ("output/small.bit", "output/small.hwh", "hls/small_hls/solution1/impl/ip/component.xml",
                    "hls/vitis_hls.log", "vivado/small/small.xpr", "vivado/block_design.log", "vivado/.Xil/x",
                    ".Xil/y", "driver/__pycache__/driver.cpython-312.pyc", "driver/.ipynb_checkpoints/n.ipynb"):
        (project / product).parent.mkdir(parents=True, exist_ok=True)
        (project / product).write_text("a build product")
    package_project(project, zip_file=True, warn=lambda _: None)
    assert (project / "pynq_package" / "small.bit").is_file() and (project / "small.zip").is_file()
    model = workspace / "models" / "small.onnx"
    assert main(["compile", str(model), "-o", str(project)]) == 0
    assert_complete(project, "project")
    assert not (project / "output").exists() and not (project / "pynq_package").exists()


def test_a_user_file_among_the_build_products_is_refused(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = workspace / "project"
    out = package_project(project, warn=lambda _: None)
    (out / "holiday.jpg").write_bytes(b"jpeg")
    (project / "small.zip").write_bytes(b"a user's zip, not a package")
    before = snapshot(workspace)
    assert main(["compile", str(workspace / "models" / "small.onnx"), "-o", str(project)]) == 2
    err = capsys.readouterr().err
    assert "pynq_package/holiday.jpg" in err and "small.zip" in err and len(err.splitlines()) == 1
    assert snapshot(workspace) == before


@pytest.mark.parametrize("name", COMMANDS)
def test_a_new_path_an_empty_folder_and_the_tools_own_folder_are_written(name: str, workspace: Path) -> None:
    for out in (workspace / "new" / "nested", workspace / "empty", workspace / "empty"):
        out.mkdir(exist_ok=True) if out.name == "empty" else None
        assert main(command(name, workspace, str(out))) == 0
        assert_complete(out, KIND[name])
    assert snapshot(workspace / "photos") == {"holiday.jpg": b"jpeg"}


def test_package_zip_never_replaces_a_users_zip(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workspace / "dist").mkdir()
    (workspace / "dist" / "small.zip").write_bytes(b"a user's zip")
    before = snapshot(workspace)
    assert main(["package", str(workspace / "project"), "-o", str(workspace / "dist" / "small"), "--zip"]) == 2
    err = capsys.readouterr().err
    assert str(workspace / "dist" / "small.zip") in err and len(err.splitlines()) == 1
    assert snapshot(workspace) == before
    (workspace / "dist" / "small.zip").unlink()
    assert main(["package", str(workspace / "project"), "-o", str(workspace / "dist" / "small"), "--zip"]) == 0
    assert main(["package", str(workspace / "project"), "-o", str(workspace / "dist" / "small"), "--zip"]) == 0
    with zipfile.ZipFile(workspace / "dist" / "small.zip") as archive:
        assert f"small/{MANIFEST_FILE}" in archive.namelist()


# csim -o: a file, written exactly where reported, never over an input.

@pytest.fixture
def frames(workspace: Path) -> Path:
    project = Project(workspace / "project")
    shape = (2,) + project.inputs[0].tensor.shape[1:]
    path = workspace / "work" / "frames.npz"
    np.savez(path, **{project.inputs[0].tensor.name: np.zeros(shape, np.int64)})
    return path


@pytest.fixture
def no_csim(monkeypatch: pytest.MonkeyPatch) -> None:
    def called(*args: object, **kwargs: object) -> None:
        raise AssertionError("the C simulation ran before the output path was checked")

    monkeypatch.setattr(Project, "csim", called)


def test_csim_writes_the_path_it_reports(workspace: Path, frames: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["csim", str(workspace / "project"), str(frames), "-o", "result"]) == 0
    out = capsys.readouterr().out
    written = workspace / "work" / "result.npz"
    assert f"outputs written to {written}" in out
    assert written.is_file() and not (workspace / "work" / "result").exists()
    assert sorted(path.name for path in (workspace / "work").iterdir()) == ["frames.npz", "notes.txt", "result.npz"]
    assert written.stat().st_mode & 0o777 == 0o666 & ~current_umask()


@pytest.mark.parametrize("destination", ["frames", "model", "suffix", "under a file", "folder", "missing folder",
                                         "/proc", "read-only folder"])
def test_csim_refuses_a_bad_output_before_simulating(destination: str, workspace: Path, frames: Path,
                                                     no_csim: None, capsys: pytest.CaptureFixture[str]) -> None:
    model = workspace / "models" / "small.onnx"
    out, named = {
        "frames": (str(frames), str(frames)),
        "model": (str(model), str(model)),
        "suffix": (str(workspace / "work" / "result.txt"), ".npz"),
        "under a file": (str(workspace / "work" / "notes.txt" / "r.npz"), str(workspace / "work" / "notes.txt")),
        "folder": (str(workspace / "photos"), str(workspace / "photos")),
        "missing folder": (str(workspace / "nowhere" / "r.npz"), str(workspace / "nowhere")),
        "/proc": ("/proc/hwcodesign.npz", "/proc"),
        "read-only folder": (str(workspace / "photos" / "r.npz"), f"{workspace / 'photos'} is not writable"),
    }[destination]
    before = snapshot(workspace)
    with read_only(workspace / "photos") if destination == "read-only folder" else nullcontext():
        assert main(["csim", str(workspace / "project"), str(frames), "--model", str(model), "-o", out]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hwcodesign: error: ") and len(err.splitlines()) == 1 and named in err, err
    assert snapshot(workspace) == before
