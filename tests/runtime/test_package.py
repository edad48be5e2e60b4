"""`hwcodesign package`: the board folder's contents, with and without a bitstream, zip, atomicity, CLI."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest
from support.codegen import compile_small_project
from support.qdq_by_hand import conv_bn_relu_qdq

from hwcodesign.backends import emit_project
from hwcodesign.boards import load_board
from hwcodesign.cli import main
from hwcodesign.codegen.notebook import notebook_json
from hwcodesign.codegen.package import DEFAULT_FOLDER, PackageError, package_project
from hwcodesign.mapper.ilp import fixed_mapping
from hwcodesign.outputs import MANIFEST_FILE, OutputError
from hwcodesign.passes import load_onnx, optimize

BOARD_FILES = {"driver.py", "notebook.ipynb", "sample.npz", "model.onnx", "report.json", "project.json", "README.md"} | {MANIFEST_FILE}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_small_project(tmp_path_factory.mktemp("package"))


@pytest.fixture
def project(compiled: Path, tmp_path: Path) -> Path:
    """A private copy of the compiled project (tests add bitstreams, delete files)."""
    copy = tmp_path / "small"
    shutil.copytree(compiled, copy)
    return copy


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def add_bitstream(project: Path, which: tuple[str, ...] = ("bit", "hwh")) -> None:
    (project / "output").mkdir(exist_ok=True)
    for suffix in which:
        (project / "output" / f"small.{suffix}").write_bytes(f"fake {suffix} of small".encode())


def test_without_bitstream_packages_the_rest_and_warns(project: Path) -> None:
    warnings: list[str] = []
    out = package_project(project, warn=warnings.append)
    assert out == project.resolve() / DEFAULT_FOLDER
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask()  # not mkdtemp's 0700
    assert {path.name for path in out.iterdir()} == BOARD_FILES
    for name in ("driver.py", "notebook.ipynb", "sample.npz", "model.onnx"):
        assert (out / name).read_bytes() == (project / "driver" / name).read_bytes()
    for name in ("report.json", "project.json"):
        assert (out / name).read_bytes() == (project / name).read_bytes()
    assert len(warnings) == 1
    assert f"make -C {project.resolve()} bitstream" in warnings[0] and "emulation" in warnings[0]
    readme = (out / "README.md").read_text()
    assert "No bitstream yet" in readme and "small.bit" in readme


def test_with_bitstream_the_readme_gives_the_board_steps(project: Path, tmp_path: Path) -> None:
    add_bitstream(project)
    warnings: list[str] = []
    out = package_project(project, tmp_path / "dist" / "small", warn=warnings.append)
    assert not warnings
    assert {path.name for path in out.iterdir()} == BOARD_FILES | {"small.bit", "small.hwh"}
    assert (out / "small.bit").read_bytes() == b"fake bit of small"
    assert (out / "small.hwh").read_bytes() == b"fake hwh of small"
    readme = (out / "README.md").read_text()
    assert "No bitstream yet" not in readme
    assert load_board("ultra96v2").pynq_image in readme
    for step in ("ssh xilinx@<board-ip> mkdir -p /home/xilinx/jupyter_notebooks/small",
                 "scp ./* xilinx@<board-ip>:/home/xilinx/jupyter_notebooks/small/",
                 "http://<board-ip>:9090", "notebook.ipynb", "`pynq` by default", "HWCODESIGN_BACKEND=emulate"):
        assert step in readme, step


def test_half_built_bitstream_is_an_error(project: Path) -> None:
    add_bitstream(project, ("bit",))
    with pytest.raises(PackageError, match="small.hwh does not"):
        package_project(project)
    assert not (project / DEFAULT_FOLDER).exists()


def test_project_without_model_copy_still_packages(tmp_path: Path) -> None:
    """emit_project without model_path writes no driver/model.onnx; the notebook then skips onnxruntime."""
    graph = optimize(load_onnx(conv_bn_relu_qdq()))
    project = emit_project(graph, fixed_mapping(graph, load_board("ultra96v2"), {}), tmp_path / "small").root
    assert not (project / "driver" / "model.onnx").exists()
    out = package_project(project, warn=lambda _: None)
    assert {path.name for path in out.iterdir()} == BOARD_FILES - {"model.onnx", "report.json"}  # report: compile


def test_notebook_keeps_edits_but_not_outputs(project: Path) -> None:
    """A notebook run (and edited) in the project ships clean: the board shows its own results."""
    path = project / "driver" / "notebook.ipynb"
    document = json.loads(path.read_text())
    code = next(cell for cell in document["cells"] if cell["cell_type"] == "code")
    code["source"].append("\n# my edit")
    code["execution_count"] = 7
    code["outputs"] = [{"name": "stdout", "output_type": "stream", "text": ["bit-exact with the golden model: True\n"]}]
    path.write_text(json.dumps(document))
    out = package_project(project, warn=lambda _: None)
    shipped = json.loads((out / "notebook.ipynb").read_text())
    code = next(cell for cell in shipped["cells"] if cell["cell_type"] == "code")
    assert code["source"][-1] == "\n# my edit"
    assert all(cell["outputs"] == [] and cell["execution_count"] is None
               for cell in shipped["cells"] if cell["cell_type"] == "code")
    path.unlink()  # no notebook in the project: a fresh one is generated
    out = package_project(project, warn=lambda _: None)
    assert (out / "notebook.ipynb").read_text() == notebook_json("small", load_board("ultra96v2").display_name)
    path.write_text("{not json")
    with pytest.raises(PackageError, match="not a readable notebook"):
        package_project(project, warn=lambda _: None)


def test_zip_holds_the_folder_and_is_reproducible(project: Path) -> None:
    add_bitstream(project)
    out = package_project(project, zip_file=True)
    archive = project / "small.zip"
    assert archive.stat().st_mode & 0o777 == 0o666 & ~umask()  # not mkstemp's 0600
    with zipfile.ZipFile(archive) as opened:
        assert sorted(opened.namelist()) == sorted(f"small/{path.name}" for path in out.iterdir())
        for path in out.iterdir():
            assert opened.read(f"small/{path.name}") == path.read_bytes()
    first = archive.read_bytes()
    files = {path.name: path.read_bytes() for path in out.iterdir()}
    package_project(project, zip_file=True)
    assert archive.read_bytes() == first
    assert {path.name: path.read_bytes() for path in out.iterdir()} == files


def test_failed_write_keeps_the_previous_package(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = package_project(project, zip_file=True, warn=lambda _: None)
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    add_bitstream(project)
    real_write_bytes = Path.write_bytes

    def failing_write_bytes(self: Path, *args: object, **kwargs: object) -> int:
        if self.name == "README.md":
            raise OSError("disk full")
        return real_write_bytes(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_bytes", failing_write_bytes)
    with pytest.raises(OutputError, match="disk full"):  # one line, not a traceback
        package_project(project, zip_file=True)
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before  # no bitstream: the old one
    assert not [path for path in project.iterdir() if path.name.startswith(".") and path.name != MANIFEST_FILE]  # no staging left behind


def test_refuses_to_overwrite_the_project_or_foreign_folders(project: Path, tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=f"is the input {project.resolve()}"):
        package_project(project, project)
    with pytest.raises(OutputError, match=f"holds the input {project.resolve()}"):
        package_project(project, project.parent)
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"jpeg")
    with pytest.raises(OutputError, match="did not write \\(holiday.jpg\\)"):
        package_project(project, foreign)
    assert (foreign / "holiday.jpg").read_bytes() == b"jpeg"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert package_project(project, empty, warn=lambda _: None) == empty.resolve()


def test_cli_package(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "for_board"
    assert main(["package", str(project), "-o", str(out), "--zip"]) == 0
    captured = capsys.readouterr()
    assert "warning: no bitstream" in captured.err and "make -C" in captured.err
    assert f"package written to {out.resolve()}/" in captured.out and "only emulation works" in captured.out
    assert (tmp_path / "small.zip").is_file()
    add_bitstream(project)
    assert main(["package", str(project)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "/home/xilinx/jupyter_notebooks/small/" in captured.out
    assert (project / DEFAULT_FOLDER / "small.bit").is_file()


def test_cli_errors_are_one_line(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["package", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hwcodesign: error:") and "not a hwcodesign project" in err and len(err.splitlines()) == 1
    (project / "driver" / "driver.py").unlink()
    assert main(["package", str(project)]) == 2
    err = capsys.readouterr().err
    assert "driver/driver.py" in err and "compile the model again" in err and len(err.splitlines()) == 1
    assert not (project / DEFAULT_FOLDER).exists()
