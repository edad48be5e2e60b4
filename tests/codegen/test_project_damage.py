"""A damaged or edited project never crashes `csim` or runs wrong: one error naming the file or key.

Every case runs the CLI in a forked child process, because before these checks several of them
ended in a segmentation fault that would take pytest down with it.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from support.engine import compile_small_engine
from support.fuzz_run import Limits, Result, run_command
from support.qdq_by_hand import conv_bn_relu_qdq

from hwcodesign.codegen import csim
from hwcodesign.flows.compile import compile_model
from hwcodesign.outputs import MANIFEST_FILE

ROOT = Path(__file__).resolve().parents[2]
Damage = Callable[[Path], None]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One small dataflow and one small engine project (the same model), plus input frames."""
    root = tmp_path_factory.mktemp("damage")
    model = root / "small.onnx"
    onnx.save(conv_bn_relu_qdq(), model)
    compile_model(model, "ultra96v2", root / "dataflow")
    compile_small_engine(root)
    np.save(root / "x.npy", np.random.default_rng(0).integers(0, 256, (2, 3, 10, 10)))
    other = root / "other.onnx"
    onnx.save(conv_bn_relu_qdq(channels=8), other)
    return {"dataflow": root / "dataflow", "sequential": root / "small", "frames": root / "x.npy",
            "model": model, "other": other}


def run_cli(*args: str | Path) -> Result:
    """The CLI in a forked child of this (already importing) interpreter: a segmentation fault
    there is a negative exit code here, at a fraction of a fresh `python -m hwcodesign`'s cost."""
    with tempfile.TemporaryDirectory() as scratch:
        return run_command([str(arg) for arg in args], ROOT, Limits(), timeout=600, scratch=Path(scratch))


def assert_refused(result: Result, *named: str) -> str:
    """Exit 2 (no signal, not 0), no traceback, one error line naming every string in `named`."""
    assert result.returncode == 2, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("hwcodesign: error: ")]
    assert len(errors) == 1 and result.stderr.strip().endswith(errors[0]), result.stderr
    for text in named:
        assert text in errors[0], errors[0]
    return errors[0]


def copy_of(project: Path, tmp_path: Path) -> Path:
    target = tmp_path / project.name
    shutil.copytree(project, target)
    return target


def edit_json(project: Path, change: Callable[[dict], object]) -> None:
    path = project / "project.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta, indent=2) + "\n")


def flip_architecture(meta: dict) -> None:
    if meta.get("architecture") == "sequential":
        meta["architecture"] = "dataflow"
    else:
        meta["architecture"] = "sequential"


def cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def edit_header(path: Path) -> None:
    text = path.read_text()
    path.write_text(text.replace("_BYTES = ", "_BYTES = 1", 1))


# damage name -> (what it does, what the error must name)
DAMAGES: dict[str, tuple[Damage, tuple[str, ...]]] = {
    "no outputs": (lambda p: edit_json(p, lambda m: m.update(outputs=[])), ("project.json", "outputs")),
    "no inputs": (lambda p: edit_json(p, lambda m: m.update(inputs=[])), ("project.json", "inputs")),
    "flipped architecture": (lambda p: edit_json(p, flip_architecture), ("project.json",)),
    "edited shape": (lambda p: edit_json(p, lambda m: m["inputs"][0]["shape"].__setitem__(2, 5)), ("project.json",)),
    "edited bits": (lambda p: edit_json(p, lambda m: m["outputs"][0].update(bits=4)), ("project.json",)),
    "edited word bits": (lambda p: edit_json(p, lambda m: m.update(word_bits=32)), ("project.json",)),
    "truncated project.json": (lambda p: cut_in_half(p / "project.json"), ("project.json",)),
    "empty object project.json": (lambda p: (p / "project.json").write_text("{}"), ("project.json",)),
    "missing key": (lambda p: edit_json(p, lambda m: m.pop("word_bits")), ("project.json", "word_bits")),
    "missing header": (lambda p: (p / "hls" / "top.h").unlink(), ("top.h", "missing")),
    "edited header": (lambda p: edit_header(p / "hls" / "top.h"), ("top.h",)),
    "no manifest": (lambda p: (p / MANIFEST_FILE).unlink(), ("compile again",)),
}
ENGINE_DAMAGES: dict[str, tuple[Damage, tuple[str, ...]]] = {
    "empty params.bin": (lambda p: (p / "hls" / "tb_data" / "params.bin").write_bytes(b""), ("params.bin",)),
    "params.bin cut in half": (lambda p: cut_in_half(p / "hls" / "tb_data" / "params.bin"), ("params.bin", "bytes")),
    "missing params.bin": (lambda p: (p / "hls" / "tb_data" / "params.bin").unlink(), ("params.bin", "missing")),
}


@pytest.mark.parametrize("architecture", ["dataflow", "sequential"])
@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_csim_refuses_a_damaged_project(compiled: dict[str, Path], tmp_path: Path, architecture: str,
                                        damage: str) -> None:
    project = copy_of(compiled[architecture], tmp_path)
    apply, named = DAMAGES[damage]
    apply(project)
    assert_refused(run_cli("csim", project, compiled["frames"], "-o", tmp_path / "y.npz"), *named)
    assert not (tmp_path / "y.npz").exists()


@pytest.mark.parametrize("damage", sorted(ENGINE_DAMAGES))
def test_csim_refuses_damaged_engine_params(compiled: dict[str, Path], tmp_path: Path, damage: str) -> None:
    project = copy_of(compiled["sequential"], tmp_path)
    apply, named = ENGINE_DAMAGES[damage]
    apply(project)
    assert_refused(run_cli("csim", project, compiled["frames"], "-o", tmp_path / "y.npz"), *named)


@pytest.mark.parametrize("architecture", ["dataflow", "sequential"])
@pytest.mark.parametrize("damage", ["truncated project.json", "empty object project.json", "missing key"])
def test_package_refuses_a_damaged_project_json(compiled: dict[str, Path], tmp_path: Path, architecture: str,
                                                damage: str) -> None:
    project = copy_of(compiled[architecture], tmp_path)
    apply, named = DAMAGES[damage]
    apply(project)
    assert_refused(run_cli("package", project, "-o", tmp_path / "package"), *named)
    assert not (tmp_path / "package").exists()


@pytest.mark.parametrize("architecture", ["dataflow", "sequential"])
def test_intact_project_runs_bit_exact(compiled: dict[str, Path], tmp_path: Path, architecture: str) -> None:
    """The checks pass on an untouched project (run twice: the second run uses the cached hashes)."""
    for _ in range(2):
        result = run_cli("csim", compiled[architecture], compiled["frames"], "-o", tmp_path / "y.npz",
                         "--model", compiled["model"])
        assert result.returncode == 0, result.stderr
        assert "bit-exact" in result.stdout


@pytest.mark.parametrize("architecture", ["dataflow", "sequential"])
def test_csim_model_of_another_network_is_refused(compiled: dict[str, Path], tmp_path: Path,
                                                  architecture: str) -> None:
    result = run_cli("csim", compiled[architecture], compiled["frames"], "-o", tmp_path / "y.npz",
                     "--model", compiled["other"])
    assert_refused(result, str(compiled["other"]), "shape")


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=600)


EXPECT_CSIM_ERROR = """
import sys
import numpy as np
from hwcodesign.codegen import csim
from hwcodesign.codegen.project import Project
project = Project(sys.argv[1] if len(sys.argv) > 1 else {root!r})
{setup}
try:
    {call}
except csim.CsimError as error:
    print("refused:", error)
else:
    print("ran")
"""


def expect_csim_error(root: Path, setup: str, call: str) -> str:
    result = run_python(EXPECT_CSIM_ERROR.format(root=str(root), setup=setup, call=call))
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr}"
    assert result.stdout.startswith("refused: "), result.stdout
    return result.stdout


@pytest.mark.parametrize("architecture", ["dataflow", "sequential"])
def test_library_checks_its_buffer_sizes(compiled: dict[str, Path], architecture: str) -> None:
    """Two frames announced, one frame's buffer passed: the library refuses instead of reading past it."""
    message = expect_csim_error(compiled[architecture], "", "csim.run_csim(project, 2, "
                                "[np.zeros((1, project.inputs[0].frame_bytes), np.uint8)])")
    assert csim.STATUS[5] in message


def test_library_of_another_architecture_is_refused(compiled: dict[str, Path]) -> None:
    """project.json and the sources disagree (here forged in memory, past the manifest): the
    library's info is checked before calling an entry point whose signature may differ."""
    setup = 'project.meta.update(architecture="sequential", params_words=136)'
    message = expect_csim_error(compiled["dataflow"], setup,
                                "csim.run_csim(project, 1, [np.zeros((1, 800), np.uint8)])")
    assert "architecture sequential there, dataflow in the sources" in message


def test_engine_entry_checks_params_size(compiled: dict[str, Path]) -> None:
    """The emulated board's entry point: a params buffer shorter than the program is refused."""
    setup = ("arena = np.zeros(project.meta['arena_words'] * 8, np.uint8)\n"
             "params = np.zeros(8, np.uint8)")
    message = expect_csim_error(compiled["sequential"], setup,
                                "csim.run_engine(project, arena, arena, arena, params, project.meta['layer_count'])")
    assert csim.STATUS[5] in message


def test_emulated_board_checks_the_project_per_run(compiled: dict[str, Path], tmp_path: Path) -> None:
    """A file edited (same size) after the overlay opened the project is caught at the next batch."""
    from hwcodesign.codegen.project import Project, ProjectError
    from hwcodesign.runtime.emulated import EmulatedOverlay

    project = copy_of(compiled["dataflow"], tmp_path)
    overlay = EmulatedOverlay(project)
    ports = Project(project)

    def run_one_frame() -> np.ndarray:
        received = np.zeros(ports.outputs[0].frame_bytes, np.uint8)
        overlay.dma0.recvchannel.transfer(received)
        overlay.accel.write(0x00, 0x01)
        overlay.dma0.sendchannel.transfer(np.zeros(ports.inputs[0].frame_bytes, np.uint8))
        overlay.dma0.recvchannel.wait()
        return received

    run_one_frame()
    header = project / "hls" / "top.h"
    header.write_text(header.read_text().replace("Generated", "generated", 1))
    with pytest.raises(ProjectError, match=r"top\.h has changed since hwcodesign wrote it"):
        run_one_frame()


def test_csim_on_a_package_folder_says_what_it_is(compiled: dict[str, Path], tmp_path: Path) -> None:
    """A PYNQ package holds project.json too, but no sources: named as a package, not run."""
    project = copy_of(compiled["dataflow"], tmp_path)
    assert run_cli("package", project, "-o", tmp_path / "package").returncode == 0
    result = run_cli("csim", tmp_path / "package", compiled["frames"], "-o", tmp_path / "y.npz")
    assert_refused(result, "package folder, not a compiled project")


def test_library_without_info_is_refused(tmp_path: Path) -> None:
    """A library from sources that predate the checked entry points is named, not called blindly."""
    source = tmp_path / "old.cpp"
    source.write_text('extern "C" int hwc_csim(int frames) { return frames; }\n')
    library = tmp_path / "libold.so"
    subprocess.run(["g++", "-shared", "-fPIC", str(source), "-o", str(library)], check=True)
    with pytest.raises(csim.CsimError, match="has no hwc_csim_info: its sources predate this hwcodesign"):
        csim.library_info(ctypes.CDLL(str(library)))


def key_paths(value: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Every key path into a JSON value (dict keys and list indices), depth first."""
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            paths += key_paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += key_paths(item, prefix + (index,))
    return paths


REPLACEMENTS = (None, "x", -1, 0, 1.5, [], {}, True, float("nan"), float("inf"), 1 << 70)


@pytest.mark.parametrize("architecture", ["dataflow", "sequential"])
def test_schema_names_the_key_or_the_ports_are_usable(compiled: dict[str, Path], architecture: str) -> None:
    """Every key of project.json replaced by every kind of value: meta_problem names a problem, or
    what it passes builds ports whose frame sizes agree with project.json (never an exception)."""
    import copy

    from hwcodesign.codegen.project_format import BoundaryPort
    from hwcodesign.codegen.project_schema import meta_problem

    intact = json.loads((compiled[architecture] / "project.json").read_text())
    assert meta_problem(intact) is None
    for data in intact["inputs"] + intact["outputs"]:  # a port read back writes what it was read from
        assert BoundaryPort.from_json(data, intact["word_bits"]).to_json() == data
    refused = 0
    for path in key_paths(intact):
        for replacement in REPLACEMENTS:
            meta = copy.deepcopy(intact)
            parent = meta
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = replacement
            problem = meta_problem(meta)
            if problem is not None:
                refused += 1
                assert problem.startswith("key '") or problem.startswith("must be"), problem
                continue
            for side in ("inputs", "outputs"):
                for data in meta[side]:
                    port = BoundaryPort.from_json(data, meta["word_bits"])
                    assert port.frame_bytes == data["bytes_per_frame"], (path, replacement)
    assert refused > len(key_paths(intact))  # most replacements are refused


@pytest.mark.parametrize("unreadable", ["project.json", MANIFEST_FILE, "hls/top.cpp"])
def test_unreadable_files_are_named(compiled: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    unreadable: str) -> None:
    """A file that exists but cannot be read (permissions; as root, simulated) is named, not a traceback."""
    from hwcodesign.codegen.project import Project, ProjectError

    project = copy_of(compiled["dataflow"], tmp_path)
    target = project / unreadable
    real_open = Path.open

    def guarded_open(self: Path, *args: object, **kwargs: object) -> object:
        if self == target:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", guarded_open)
    with pytest.raises(ProjectError, match=f"{unreadable} cannot be read \\(Permission denied\\)"):
        Project(project)


def test_a_folder_in_place_of_a_file_is_named(compiled: dict[str, Path], tmp_path: Path) -> None:
    project = copy_of(compiled["dataflow"], tmp_path)
    (project / "hls" / "top.h").unlink()
    (project / "hls" / "top.h").mkdir()
    assert_refused(run_cli("csim", project, compiled["frames"], "-o", tmp_path / "y.npz"), "top.h is not a file")
