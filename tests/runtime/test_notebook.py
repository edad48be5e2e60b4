"""The notebooks, executed headlessly (nbclient, ipykernel on this venv's Python).

A compiled project's driver/notebook.ipynb must run every cell without error and report the
accelerator bit-exact with the golden model and within 1 LSB of onnxruntime: in the project
(emulated board), in a package copied elsewhere (emulated, HWCODESIGN_PROJECT), and as on a
board (backend `pynq` with a stand-in `pynq` module, bitstream files beside the driver, no
onnxruntime). The example notebook compiles ResNet-8 and runs the same checks.
"""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import nbformat
import numpy as np
import onnx
import pytest
from support import host_models
from support.examples import BUILD_MODELS, load_script, write_notebook_module
from support.notebooks import (
    errors,
    execute_notebook,
    images,
    isolate_jupyter,
    notebook_result,
    notebook_text,
)
from support.onnx_models import mlp_qdq, two_inputs_two_outputs_qdq
from support.qdq_by_hand import conv_bn_relu_qdq

from hwcodesign.cli import main
from hwcodesign.codegen.notebook import RESULT_MARKER, notebook_json
from hwcodesign.codegen.package import package_project
from hwcodesign.flows.compile import CompileResult, compile_model

EXAMPLES = BUILD_MODELS.parent
STAND_IN_PYNQ = '''"""Stand-in for PYNQ on a test machine: the emulated board behind pynq's names."""
import os
from pathlib import Path

from hwcodesign.runtime.emulated import EmulatedOverlay, allocate  # noqa: F401


def Overlay(bitfile):
    assert Path(bitfile).is_file(), bitfile
    print(f"stand-in pynq: Overlay({bitfile})")
    return EmulatedOverlay(os.environ["HWCODESIGN_PROJECT"], bitfile)
'''
NO_ONNXRUNTIME = 'raise ImportError("no onnxruntime on this image")\n'


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> CompileResult:
    root = tmp_path_factory.mktemp("notebook_small")
    onnx.save(conv_bn_relu_qdq(), root / "small.onnx")
    return compile_model(root / "small.onnx", "ultra96v2", root / "small")


@pytest.fixture
def kernel_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """Private Jupyter folders and kernelspec; the kernel inherits os.environ (incl. the csim cache)."""
    isolate_jupyter(monkeypatch, tmp_path)
    for name in ("HWCODESIGN_BACKEND", "HWCODESIGN_PROJECT", "PYTHONPATH"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def assert_checks_pass(notebook: nbformat.NotebookNode, onnxruntime: bool = True) -> dict:
    assert not errors(notebook)
    result = notebook_result(notebook)
    text = notebook_text(notebook)
    assert result["bit_exact"] is True, text
    assert result["differing_elements"] == 0
    assert result["float_path_ok"] is True, text
    assert result["fps"] > 0
    assert "bit-exact with the golden model: True" in text
    if onnxruntime:
        assert result["max_lsb_vs_onnxruntime"] is not None, text
        assert result["max_lsb_vs_onnxruntime"] <= 1
    else:
        assert result["max_lsb_vs_onnxruntime"] is None
        assert "skipping the comparison" in text
    assert "compiler estimate for the hardware" in text  # report.json was found
    assert images(notebook) == 1  # the cycles / output figure
    return result


def test_notebook_is_deterministic_valid_and_unexecuted(small: CompileResult) -> None:
    text = notebook_json(small.project.name, "Ultra96-V2")
    assert text == notebook_json(small.project.name, "Ultra96-V2")
    notebook = nbformat.reads(text, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.execution_count is None and cell.outputs == [] for cell in code)
    for cell in code:
        ast.parse(cell.source)  # plain Python: no magics, runs in any kernel
    sources = "\n".join(cell.source for cell in code)
    for needle in ("from driver import", "Accelerator()", "run_ports(frames_q, raw=True)", "ORT_DISABLE_ALL",
                   "report.json", "benchmark(", RESULT_MARKER):
        assert needle in sources
    # the project writer puts this very notebook beside the driver
    written = (small.project.root / "driver" / "notebook.ipynb").read_text()
    assert written == notebook_json(small.project.name, small.mapping.board.display_name)


def test_project_notebook_runs_bit_exact_on_the_emulated_board(small: CompileResult, kernel_env: pytest.MonkeyPatch) -> None:
    kernel_env.setenv("HWCODESIGN_BACKEND", "emulate")
    driver_dir = small.project.root / "driver"
    notebook = execute_notebook(driver_dir / "notebook.ipynb", driver_dir)
    result = assert_checks_pass(notebook)
    assert result["backend"] == "emulate"


def test_notebook_of_a_model_with_a_stateful_host_head(kernel_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A CNN + GRU head: the accelerator's ports bit-exact, then the whole model (the GRU on the CPU,
    its state carried frame to frame) against onnxruntime on model.onnx with the state fed back."""
    path = tmp_path / "gru.onnx"
    onnx.save(host_models.gru_head().model, path)
    result = compile_model(path, "ultra96v2", tmp_path / "gru")
    kernel_env.setenv("HWCODESIGN_BACKEND", "emulate")
    driver_dir = result.project.root / "driver"
    notebook = execute_notebook(driver_dir / "notebook.ipynb", driver_dir)
    assert not errors(notebook)
    outcome, text = notebook_result(notebook), notebook_text(notebook)
    assert outcome["bit_exact"] is True and outcome["float_path_ok"] is True, text
    assert outcome["model_max_abs_vs_onnxruntime"] is not None and outcome["model_max_abs_vs_onnxruntime"] < 1e-5, text
    assert "the whole model:" in text and "centre: (4, 2) float32" in text


def test_an_mlp_with_a_rank_2_input_in_csim_the_driver_and_the_notebook(kernel_env: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    """The model's own input shape, (N, 16), is what `csim` reads from a frames file, what the
    driver's `run` takes, and what the notebook feeds onnxruntime; the results are those of the
    (N, 16, 1, 1) frames the compiler streams."""
    result = compile_model(mlp_qdq(tmp_path / "mlp.onnx"), "ultra96v2", tmp_path / "mlp")
    frames = np.random.default_rng(4).normal(0, 1, (5, 16)).astype(np.float32)
    np.save(tmp_path / "vectors.npy", frames)
    np.save(tmp_path / "frames.npy", frames.reshape(5, 16, 1, 1))
    for name in ("vectors", "frames"):
        assert main(["csim", str(result.project.root), str(tmp_path / f"{name}.npy"), "-o", str(tmp_path / f"{name}.npz")]) == 0
    vectors, four_d = np.load(tmp_path / "vectors.npz"), np.load(tmp_path / "frames.npz")
    assert all(np.array_equal(vectors[key], four_d[key]) for key in four_d.files)
    driver = load_script(result.project.root / "driver" / "driver.py", "mlp_driver")
    acc = driver.Accelerator(backend="emulate")
    assert np.array_equal(acc.run_batch(frames), acc.run_batch(frames.reshape(5, 16, 1, 1)))
    assert np.array_equal(acc.run(frames[0]), acc.run(frames[0].reshape(16, 1, 1)))
    kernel_env.setenv("HWCODESIGN_BACKEND", "emulate")
    driver_dir = result.project.root / "driver"
    assert_checks_pass(execute_notebook(driver_dir / "notebook.ipynb", driver_dir))


def test_notebook_with_two_inputs_and_two_outputs(kernel_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dicts by name in and out of the driver; onnxruntime's inputs and outputs matched in model order."""
    result = compile_model(two_inputs_two_outputs_qdq(tmp_path / "two.onnx"), "ultra96v2", tmp_path / "two")
    assert (len(result.project.inputs), len(result.project.outputs)) == (2, 2)
    kernel_env.setenv("HWCODESIGN_BACKEND", "emulate")
    driver_dir = result.project.root / "driver"
    notebook = execute_notebook(driver_dir / "notebook.ipynb", driver_dir)
    assert_checks_pass(notebook)
    assert notebook_text(notebook).count("% of elements equal") == 2  # both outputs compared with onnxruntime


def test_packaged_notebook_runs_away_from_the_project(small: CompileResult, kernel_env: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    package = package_project(small.project.root, tmp_path / "copied" / small.project.name, warn=lambda _: None)
    kernel_env.setenv("HWCODESIGN_BACKEND", "emulate")
    kernel_env.setenv("HWCODESIGN_PROJECT", str(small.project.root))  # emulation needs the hls/ sources
    notebook = execute_notebook(package / "notebook.ipynb", package)
    assert_checks_pass(notebook)
    assert f"driver: {package.resolve() / 'driver.py'}" in notebook_text(notebook)


def test_packaged_notebook_as_on_a_board(small: CompileResult, kernel_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Default backend (pynq), bitstream beside the driver, no onnxruntime: what the board sees."""
    project = tmp_path / "project"
    shutil.copytree(small.project.root, project)
    name = small.project.name
    (project / "output").mkdir()
    (project / "output" / f"{name}.bit").write_bytes(b"bitstream")
    (project / "output" / f"{name}.hwh").write_text("<hwh/>")
    package = package_project(project, tmp_path / "board" / name)
    site = tmp_path / "board_site"
    (site / "pynq").mkdir(parents=True)
    (site / "pynq" / "__init__.py").write_text(STAND_IN_PYNQ)
    (site / "onnxruntime").mkdir()
    (site / "onnxruntime" / "__init__.py").write_text(NO_ONNXRUNTIME)
    kernel_env.setenv("PYTHONPATH", str(site))
    kernel_env.setenv("HWCODESIGN_PROJECT", str(project))  # for the stand-in's emulated board only
    notebook = execute_notebook(package / "notebook.ipynb", package)
    result = assert_checks_pass(notebook, onnxruntime=False)
    assert result["backend"] == "pynq"
    assert f"stand-in pynq: Overlay({package.resolve() / (name + '.bit')})" in notebook_text(notebook)


def test_example_notebook_is_current() -> None:
    """examples/resnet8_pynq.ipynb is generated by examples/write_notebook.py: regenerate when this fails."""
    module = write_notebook_module()
    assert (EXAMPLES / "resnet8_pynq.ipynb").read_text() == module.notebook_text(), \
        "stale: run .venv/bin/python examples/write_notebook.py"
    nbformat.validate(nbformat.read(EXAMPLES / "resnet8_pynq.ipynb", as_version=4))


def test_example_notebook_compiles_and_runs_resnet8(example_models: dict[str, Path], kernel_env: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    project = tmp_path / "resnet8_ultra96v2"
    kernel_env.setenv("HWCODESIGN_EXAMPLE_MODEL", str(example_models["w8a8"]))
    kernel_env.setenv("HWCODESIGN_EXAMPLE_PROJECT", str(project))
    notebook = execute_notebook(EXAMPLES / "resnet8_pynq.ipynb", EXAMPLES)
    text = notebook_text(notebook)
    assert f"into {project}" in text
    assert json.loads((project / "project.json").read_text())["board"] == "ultra96v2"
    result = assert_checks_pass(notebook)
    assert result["backend"] == "emulate"
    assert "argmax per frame" in text  # ResNet-8's logits are 10 x 1 x 1
