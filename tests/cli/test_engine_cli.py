"""`--architecture` on the command line: compile and simulate as a layer-sequential engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from support.qdq_by_hand import conv_bn_relu_qdq

from hwcodesign.cli import main
from hwcodesign.codegen.project import Project
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.sim.golden import run_golden


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "small.onnx"
    onnx.save(conv_bn_relu_qdq(), path)
    return path


def test_compile_sequential_writes_an_engine_project(model: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "proj"
    assert main(["compile", str(model), "--architecture", "sequential", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "architecture: sequential" in captured.err and "simulating the layer-sequential engine" in captured.err
    assert f"project written to {out}/ (2 layers as a layer-sequential engine, top function small_top)" in captured.out
    meta = json.loads((out / "project.json").read_text())
    assert meta["architecture"] == "sequential" and meta["engine"]["pe"] > 0
    assert json.loads((out / "report.json").read_text())["architecture"] == "sequential"
    assert (out / "driver" / "params.bin").is_file() and (out / "hls" / "engine_config.h").is_file()
    # and the project's C simulation runs from the CLI, checked against the golden model
    frames = np.random.default_rng(0).integers(0, 256, (2, 3, 10, 10))
    np.save(tmp_path / "x.npy", frames)
    assert main(["csim", str(out), str(tmp_path / "x.npy"), "--model", str(model), "-o", str(tmp_path / "y.npz")]) == 0
    assert "bit-exact: all 1200 output elements equal the golden model" in capsys.readouterr().out
    name = Project(out).outputs[0].tensor.name
    expected = run_golden(optimize(load_onnx(model)), frames)[name]
    assert np.array_equal(np.load(tmp_path / "y.npz")[name], expected)


def test_compile_dataflow_is_not_an_engine(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "proj"
    assert main(["compile", str(model), "--architecture", "dataflow", "-o", str(out)]) == 0
    assert "as a dataflow pipeline" in capsys.readouterr().out
    project = Project(out)
    assert project.architecture == "dataflow"
    assert not (out / "driver" / "params.bin").exists()


def test_simulate_sequential_reports_the_engine(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    assert main(["simulate", str(model), "--board", "ultra96v2", "--architecture", "sequential", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "architecture: layer-sequential engine PE" in captured.out
    assert "one layer at a time" in captured.out
    assert "simulating the layer-sequential engine" in captured.err
    report = json.loads((out / "report.json").read_text())
    assert report["architecture"] == "sequential"
    page = (out / "report.html").read_text()
    # the roofline: a plot of the MAC layers, and the table's bound and utilisation columns
    assert '<h2>Roofline</h2>\n<img alt="roofline" src="data:image/png;base64,' in page
    assert all(f"<th>{column}</th>" in page for column in ("bound", "MAC util", "DDR util"))
    assert "roofline:" in captured.out


def test_max_batch_bounds_the_frames_of_a_run(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The default takes the largest batch (8 for this small model); --max-batch 3 runs at most 3
    frames a run (the report says so, with the latency every frame of a run pays); the latency
    goal runs one frame at a time."""
    reports = {}
    for label, options in {"default": [], "three": ["--max-batch", "3"], "latency": ["--goal", "latency"]}.items():
        out = tmp_path / label
        assert main(["simulate", str(model), "--architecture", "sequential", "-o", str(out), *options]) == 0
        reports[label] = (json.loads((out / "report.json").read_text()), capsys.readouterr().out)
    assert [reports[k][0]["engine"]["batch"] for k in ("default", "three", "latency")] == [8, 3, 1]
    three, text = reports["three"]
    assert "batch: each engine run holds 3 frames" in text and "frames a run" in text
    assert f"({three['summary']['latency_ms']:.2f} ms)" in text
    assert "batch:" not in reports["latency"][1]
    # a larger batch: a longer run, a shorter interval
    summaries = [reports[k][0]["summary"] for k in ("default", "three")]
    assert summaries[0]["latency_ms"] > summaries[1]["latency_ms"] and summaries[0]["fps"] > summaries[1]["fps"]


@pytest.mark.parametrize("value", ["0", "9", "two"])
def test_a_max_batch_outside_one_to_eight_is_a_usage_error(value: str, model: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", str(model), "--max-batch", value, "-o", str(out)])
    assert exit_info.value.code == 2
    expected = "the batch must be a whole number of frames" if value == "two" else "an engine run holds 1 to 8 frames"
    assert f"argument --max-batch: '{value}': {expected}" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("command", ["compile", "simulate"])
def test_an_unknown_architecture_is_a_usage_error(command: str, model: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main([command, str(model), "--architecture", "bogus", "-o", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --architecture: invalid choice: 'bogus'" in err
    assert "auto" in err and "dataflow" in err and "sequential" in err
    assert not out.exists()
