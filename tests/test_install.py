"""A user's install: the sdist and wheel built from a clean copy of the sources, the wheel installed
into a fresh venv outside the source tree, and the tool run from an unrelated folder.

The editable install the suite otherwise runs on hides what a wheel leaves out (a folder without
`__init__.py`, the `templates/` and `boards/` at the repository top): this test sees the tool as
`pip install hwcodesign-*.whl` leaves it.

Cost: the venv gets the wheel alone (`--no-deps`); the dependencies come from the interpreter
running the suite, whose site-packages folder is put on the venv's path by a `.pth` line. A path
added that way is searched after the venv's own site-packages and its `.pth` files are not run, so
the editable install of the checkout stays off the path; the test asserts that `hwcodesign` and its
data are read from the venv. Installing the dependencies afresh would cost a minute and an index;
that they are all declared is `test_packaging.py`'s job.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import onnx
from support.qdq_by_hand import conv_bn_relu_qdq

import hwcodesign

REPOSITORY = Path(__file__).resolve().parents[1]
# What a clean clone does not have: build products, caches, the developer's venv.
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache", "reports"
)

def run(command: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run one step; on failure show its output, which names what the wheel lacks."""
    done = subprocess.run([str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{command} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def files_under(folder: Path) -> set[str]:
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts}


def build_distributions(tmp_path: Path) -> tuple[Path, Path]:
    """`python -m build` on a copy of the sources: the sdist, then the wheel built from the sdist
    (so the wheel proves the sdist complete). No isolation: the suite's setuptools builds it."""
    source = tmp_path / "source"
    shutil.copytree(REPOSITORY, source, ignore=NOT_SOURCES)
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, source], cwd=tmp_path)
    (sdist,) = dist.glob("hwcodesign-*.tar.gz")
    (wheel,) = dist.glob("hwcodesign-*.whl")
    return sdist, wheel


def user_environment() -> dict[str, str]:
    """The environment of a user's shell: nothing pointing into the checkout."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def fresh_venv(tmp_path: Path, wheel: Path) -> Path:
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path).strip())
    dependencies = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "suite_dependencies.pth").write_text("".join(f"{folder}\n" for folder in sorted(dependencies)))
    run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index", wheel],
        cwd=tmp_path)
    return venv


def test_the_wheel_carries_every_module_template_and_board(tmp_path: Path) -> None:
    sdist, wheel = build_distributions(tmp_path)
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    wanted = {f"hwcodesign/{name}" for name in files_under(REPOSITORY / "hwcodesign") if name.endswith(".py")}
    wanted |= {f"hwcodesign/_templates/{name}" for name in files_under(REPOSITORY / "templates")}
    wanted |= {f"hwcodesign/_boards/{name}" for name in files_under(REPOSITORY / "boards")}
    assert sorted(wanted - in_wheel) == []
    top = sdist.name.removesuffix(".tar.gz")
    in_sdist = set(tarfile.open(sdist).getnames())
    assert {f"{top}/templates/hls/top.cpp.j2", f"{top}/boards/ultra96v2.toml", f"{top}/setup.cfg"} <= in_sdist

    venv = fresh_venv(tmp_path, wheel)
    tool = venv / "bin" / "hwcodesign"
    work = tmp_path / "work"
    work.mkdir()
    env = user_environment()

    assert run([tool, "--version"], work, env).strip() == f"hwcodesign {hwcodesign.__version__}"
    where = run([venv / "bin" / "python", "-c",
                 "import hwcodesign; from hwcodesign.codegen.render import templates_dir; "
                 "from hwcodesign.boards import boards_dir; "
                 "print(hwcodesign.__file__); print(templates_dir()); print(boards_dir())"], work, env)
    for line in where.split():
        assert Path(line).is_relative_to(venv), f"{line} is read from outside the installed wheel"

    onnx.save(conv_bn_relu_qdq(), work / "small.onnx")
    np.save(work / "frames.npy", np.random.default_rng(0).uniform(-2, 2, (2, 3, 10, 10)).astype(np.float32))
    run([tool, "compile", "small.onnx", "--board", "ultra96v2", "-o", "small_project"], work, env)
    assert (work / "small_project" / "Makefile").is_file()
    checked = run([tool, "csim", "small_project", "frames.npy", "--model", "small.onnx"], work, env)
    assert "bit-exact" in checked
    report = run([tool, "check", "small_project"], work, env)  # synthesizability, Tcl, the csim build
    assert "synthesizable" in report.lower() and "fail" not in report.lower(), report
