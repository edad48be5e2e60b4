"""Whole models through the flow: compiled, run by the driver on the emulated board and by `csim`,
against onnxruntime on the whole model (optimisations off, state fed back frame by frame).

The models are torch exports quantized by onnxruntime (`support/host_models.py`): input
normalisation + CNN + Softmax, a CNN + GRU head carrying its hidden state, Brevitas's 2x - 1
input scaling, an unquantized final linear layer. The accelerator part must stay bit-exact with
its golden model; the whole model must agree with onnxruntime.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from support import host_models
from support.codegen import build_all
from support.examples import load_script

from hwcodesign.flows.compile import CompileResult, compile_model
from hwcodesign.flows.whole_model import (
    IntegerAccelerator,
    check_whole_model,
    golden_whole_model,
    reference_whole_model,
    run_with_host,
)
from hwcodesign.partition import HostOptions
from hwcodesign.sim.golden import run_golden

NAMES = sorted(host_models.BUILDERS)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[host_models.HostModel, CompileResult, Path]]:
    root = tmp_path_factory.mktemp("whole_models")
    found = {}
    for name in NAMES:
        model = host_models.BUILDERS[name]()
        path = root / f"{name}.onnx"
        onnx.save(model.model, path)
        found[name] = (model, compile_model(path, "ultra96v2", root / name), path)
    model = found["gru_head"][0]
    found["gru_head_engine"] = (model, compile_model(found["gru_head"][2], "ultra96v2", root / "gru_engine",
                                                     architecture="sequential"), found["gru_head"][2])
    build_all([result.project for _, result, _ in found.values()])
    return found


def driver(result: CompileResult, monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.setenv("HWCODESIGN_BACKEND", "emulate")
    path = result.project.root / "driver" / "driver.py"
    return load_script(path, f"driver_{abs(hash(str(path)))}")


def as_dict(outputs: object, spec: dict) -> dict[str, np.ndarray]:
    return outputs if isinstance(outputs, dict) else {spec["outputs"][0]["name"]: outputs}  # type: ignore[return-value]


@pytest.mark.parametrize("name", [*NAMES, "gru_head_engine"])
def test_driver_runs_the_whole_model_as_onnxruntime_does(name: str, compiled: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    model, result, _ = compiled[name]
    spec = result.project.host_spec
    reference = reference_whole_model(model.model, spec, model.frames)
    module = driver(result, monkeypatch)
    for backend in ("numpy", "onnxruntime"):
        acc = module.Accelerator(host_backend=backend)  # type: ignore[attr-defined]
        assert acc.host.backend == backend
        outputs = as_dict(acc.run_batch(model.frames), spec)
        for output, value in outputs.items():
            np.testing.assert_allclose(value, reference[output], rtol=1e-5, atol=1e-6)
        # one frame at a time, the state carried by the driver, gives the batch's outputs
        acc.reset()
        frame_by_frame = [as_dict(acc.run({k: v[i] for k, v in model.frames.items()}), spec)
                          for i in range(len(next(iter(model.frames.values()))))]
        for output, value in outputs.items():
            np.testing.assert_allclose(np.stack([f[output] for f in frame_by_frame]), value, rtol=1e-5, atol=1e-6)


def test_gru_state_carries_across_calls_and_resets(compiled: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    model, result, _ = compiled["gru_head"]
    acc = driver(result, monkeypatch).Accelerator()  # type: ignore[attr-defined]
    frames = model.frames["frame"]
    first = acc.run(frames[0])
    again = acc.run(frames[0])  # the same frame with the hidden state of the first: another answer
    assert not np.allclose(first, again)
    assert set(acc.host.state) == {"hidden"} and np.any(acc.host.state["hidden"])
    acc.reset()
    assert not np.any(acc.host.state["hidden"])
    np.testing.assert_array_equal(acc.run(frames[0]), first)


@pytest.mark.parametrize("name", NAMES)
def test_csim_of_the_whole_model(name: str, compiled: dict, tmp_path: Path) -> None:
    """The accelerator in C simulation, bit-exact with its golden model; the whole model vs onnxruntime."""
    model, result, _ = compiled[name]
    project, spec, graph = result.project, result.project.host_spec, result.graph
    accelerator = IntegerAccelerator([p.tensor for p in project.inputs], [p.tensor for p in project.outputs],
                                     project.csim)
    outputs = run_with_host(project.root / "driver", spec, model.frames, accelerator)
    ints_in, ints_out = accelerator.integers("inputs"), accelerator.integers("outputs")
    golden = run_golden(graph, {op.name: ints_in[op.output.name] for op in graph.inputs})
    for port, value in ints_out.items():
        np.testing.assert_array_equal(value, golden[port])
    check = check_whole_model(result.partition, graph, spec, model.frames, outputs, accelerator)
    assert check.passed, check.describe()
    assert max(check.boundary_lsb.values()) == 0  # these models' golden outputs are onnxruntime's integers
    assert max(check.output_abs.values()) < 1e-5, check.describe()


def test_golden_flow_of_the_whole_model(compiled: dict) -> None:
    model, result, _ = compiled["normalised_softmax"]
    outputs, accelerator = golden_whole_model(result.partition, result.graph, model.frames)
    check = check_whole_model(result.partition, result.graph, result.project.host_spec, model.frames, outputs,
                              accelerator)
    assert check.passed and max(check.output_abs.values()) < 1e-5, check.describe()


def test_cli_csim_model_reports_agreement(compiled: dict, tmp_path: Path) -> None:
    model, result, path = compiled["gru_head"]
    frames = tmp_path / "frames.npz"
    np.savez(frames, **model.frames)
    run = subprocess.run([sys.executable, "-m", "hwcodesign", "csim", str(result.project.root), str(frames), "--model",
                          str(path), "-o", str(tmp_path / "out.npz")], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "bit-exact" in run.stdout and "whole model agrees with onnxruntime" in run.stdout
    saved = np.load(tmp_path / "out.npz")
    assert saved["centre"].shape == (len(model.frames["frame"]), 2)


def test_inspect_and_report_show_where_each_node_runs(compiled: dict) -> None:
    _, result, path = compiled["normalised_softmax"]
    run = subprocess.run([sys.executable, "-m", "hwcodesign", "inspect", str(path)], capture_output=True, text=True,
                         check=True)
    assert "/Softmax" in run.stdout and "host (after)" in run.stdout and "/Sub" in run.stdout
    host = result.report["host"]
    assert [node["name"] for node in host["parts"]["before"]["nodes"]] == ["/Sub", "/Div"]
    assert host["parts"]["after"]["estimated_ms"] > 0 and "estimate" in host["parts"]["after"]["estimate"]
    assert host["end_to_end_latency_ms_estimate"] > result.report["summary"]["latency_ms"]
    page = (result.project.root / "report.html").read_text()
    assert "Host parts (the board's CPU)" in page and "/Softmax" in page


def test_first_layer_on_the_host_as_codenet_runs_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--host <first conv>`: the conv runs in float on the CPU, the accelerator from the next quantizer on."""
    model = host_models.float_classifier()
    path = tmp_path / "model.onnx"
    onnx.save(model.model, path)
    first = next(node.name for node in model.model.graph.node if node.op_type == "Conv")
    result = compile_model(path, "ultra96v2", tmp_path / "project", host=HostOptions(host=(first,)))
    assert [op.kind for op in result.graph] == ["Input", "Conv", "GlobalAvgPool"]  # the second conv on
    assert first in [node["name"] for node in result.report["host"]["parts"]["before"]["nodes"]]
    reference = reference_whole_model(model.model, result.project.host_spec, model.frames)
    acc = driver(result, monkeypatch).Accelerator(host_backend="numpy")  # type: ignore[attr-defined]
    np.testing.assert_allclose(acc.run_batch(model.frames), reference["logits"], rtol=1e-4, atol=1e-4)
