"""`hwcodesign package` of a layer-sequential engine project: the engine's program (params.bin)
travels with the driver, the package still works without a bitstream, and the packaged driver
runs in emulation away from the project."""

from __future__ import annotations

import json
import shutil
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
from support.codegen import build_all
from support.engine import compile_small_engine
from support.examples import load_script

from hwcodesign.cli import main
from hwcodesign.codegen.package import DEFAULT_FOLDER, package_project
from hwcodesign.outputs import MANIFEST_FILE
from hwcodesign.runtime import emulated

BOARD_FILES = {"driver.py", "notebook.ipynb", "sample.npz", "model.onnx", "params.bin", "report.json",
               "project.json", "README.md"} | {MANIFEST_FILE}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = compile_small_engine(tmp_path_factory.mktemp("engine_package"))
    build_all([result.project])
    return result.project.root


@pytest.fixture
def project(compiled: Path, tmp_path: Path) -> Path:
    """A private copy of the compiled project (tests add bitstreams)."""
    copy = tmp_path / "small"
    shutil.copytree(compiled, copy)
    return copy


def load_driver(folder: Path) -> types.ModuleType:
    path = folder / "driver.py"
    return load_script(path, f"engine_package_driver_{abs(hash(str(path)))}")


def add_bitstream(project: Path) -> None:
    (project / "output").mkdir(exist_ok=True)
    for suffix in ("bit", "hwh"):
        (project / "output" / f"small.{suffix}").write_bytes(f"fake {suffix} of small".encode())


def test_without_bitstream_the_package_holds_params_bin_and_warns(project: Path) -> None:
    warnings: list[str] = []
    out = package_project(project, warn=warnings.append)
    assert out == project.resolve() / DEFAULT_FOLDER
    assert {path.name for path in out.iterdir()} == BOARD_FILES
    params = (out / "params.bin").read_bytes()
    assert params == (project / "driver" / "params.bin").read_bytes()
    assert params == (project / "hls" / "tb_data" / "params.bin").read_bytes()
    meta = json.loads((out / "project.json").read_text())
    assert meta["architecture"] == "sequential" and len(params) == meta["params_words"] * 8
    for name in ("driver.py", "sample.npz", "model.onnx"):
        assert (out / name).read_bytes() == (project / "driver" / name).read_bytes()
    assert len(warnings) == 1
    assert f"make -C {project.resolve()} bitstream" in warnings[0] and "emulation" in warnings[0]
    readme = (out / "README.md").read_text()
    assert "No bitstream yet" in readme
    assert "| `params.bin` | the layer-sequential engine's program" in readme
    assert "loads `params.bin` into DDR and starts the engine over AXI4-Lite" in readme
    assert "through its DMAs" not in readme  # the engine has none


def test_with_bitstream_and_zip(project: Path) -> None:
    add_bitstream(project)
    warnings: list[str] = []
    out = package_project(project, zip_file=True, warn=warnings.append)
    assert not warnings
    assert {path.name for path in out.iterdir()} == BOARD_FILES | {"small.bit", "small.hwh"}
    with zipfile.ZipFile(project / "small.zip") as archive:
        assert archive.read("small/params.bin") == (project / "driver" / "params.bin").read_bytes()
        assert sorted(archive.namelist()) == sorted(f"small/{path.name}" for path in out.iterdir())
    assert "No bitstream yet" not in (out / "README.md").read_text()


def test_packaged_driver_runs_in_emulation_away_from_the_project(project: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    out = package_project(project, tmp_path / "copied" / "small", warn=lambda _: None)
    monkeypatch.delenv("HWCODESIGN_BACKEND", raising=False)
    monkeypatch.delenv("HWCODESIGN_PROJECT", raising=False)
    driver = load_driver(out)
    # the package has no hls/ sources: emulation needs to be told where the project is
    with pytest.raises(emulated.EmulationError, match="set HWCODESIGN_PROJECT"):
        driver.Accelerator(backend="emulate")
    monkeypatch.setenv("HWCODESIGN_PROJECT", str(project))
    monkeypatch.setenv("HWCODESIGN_BACKEND", "emulate")
    acc = driver.Accelerator()
    assert acc.backend == "emulate"
    # the program comes from the package folder, beside the packaged driver
    assert np.array_equal(acc.params, np.fromfile(out / "params.bin", np.uint8))
    sample = np.load(out / "sample.npz")
    assert np.array_equal(acc.run_batch(sample["input_q"], raw=True), sample["expected_0"])


def test_cli_package_of_an_engine_project(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "for_board"
    assert main(["package", str(project), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "warning: no bitstream" in captured.err
    assert "params.bin" in captured.out and "only emulation works" in captured.out
    assert (out / "params.bin").is_file()
