"""`hwcodesign evaluate MODEL FRAMES --labels LABELS`: the whole model over a data set off the board
(host parts + the golden model of the accelerator, a batch at a time, a progress bar), its top-1
accuracy against the labels beside onnxruntime's, and its agreement with onnxruntime; bad labels
are refused naming the file; the outputs file is written only when asked, never over an input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.codegen import random_frames
from support.examples import build_models_module

from hwcodesign.cli.commands import main
from hwcodesign.flows.evaluate import evaluate
from hwcodesign.partition import load_partitioned
from hwcodesign.passes import optimize
from hwcodesign.reference import Reference

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The ResNet-8 example's synthetic test set: 100 frames and their classes."""
    x, y = build_models_module().synthetic_samples(100, seed=0, stream=3)
    root = tmp_path_factory.mktemp("evaluate")
    np.save(root / "frames.npy", x)
    np.save(root / "labels.npy", y)
    return root / "frames.npy", root / "labels.npy"


def test_accuracy_and_agreement_from_the_cli(example_models, task, tmp_path: Path, capsys) -> None:
    frames, labels = task
    out = tmp_path / "outputs.npz"
    assert main(["evaluate", str(example_models["w8a8"]), str(frames), "--labels", str(labels), "--batch", "32",
                 "-o", str(out)]) == 0
    printed, progress = capsys.readouterr()
    assert "100 frame(s) in" in printed and "whole model agrees with onnxruntime" in printed
    assert "evaluating 100 frame(s) (the golden model) [" in progress and "100/100" in progress and "done" in progress
    # the accuracy printed is the golden outputs' and onnxruntime's own, on the same labels
    x, y = np.load(frames), np.load(labels)
    ours = np.load(out)["logits"].argmax(axis=1)
    reference = Reference(example_models["w8a8"])
    theirs = np.array([int(reference.first(x[i:i + 1]).argmax()) for i in range(len(x))])
    assert f"top-1 accuracy {np.mean(ours == y):.2%} against the labels (onnxruntime {np.mean(theirs == y):.2%})" \
        in printed
    assert np.mean(ours == y) > 0.8  # the example is trained on this task
    assert f"same class as onnxruntime on {np.mean(ours == theirs):.2%}" in printed


def test_batches_do_not_change_the_outputs(example_models, task) -> None:
    frames = {"input": np.load(task[0])[:20]}
    partition, graph = load_partitioned(example_models["w8a8"])
    graph = optimize(graph)
    done: list[int] = []
    one = evaluate(partition, graph, frames, batch=20, compare=False)
    many = evaluate(partition, graph, frames, batch=6, compare=False, progress=done.append)
    assert done == [6, 6, 6, 2] and np.array_equal(one.outputs["logits"], many.outputs["logits"])
    assert many.agreement is None and "not asked for" in many.describe()[-1]


def test_a_qonnx_model_runs_without_onnxruntime_saying_why(example_models, tmp_path: Path, capsys) -> None:
    frames = tmp_path / "frames.npy"
    np.save(frames, np.random.default_rng(0).random((4, 3, 32, 32), dtype=np.float32))
    assert main(["evaluate", str(example_models["cnv"]), str(frames)]) == 0
    assert "agreement with onnxruntime not checked: onnxruntime cannot run the model" in capsys.readouterr().out


@pytest.mark.parametrize(("labels", "expected"), [
    (np.zeros(7, np.int64), "7 labels for 100 frames"),
    (np.full(100, 10), r"classes 0\.\.9 .* found 10\.\.10"),
    (np.zeros((100, 2), np.int64), r"one integer class per frame, shape \(N,\)"),
])
def test_bad_labels_are_refused_naming_the_file(example_models, task, tmp_path: Path, capsys,
                                                labels: np.ndarray, expected: str) -> None:
    path = tmp_path / "labels.npy"
    np.save(path, labels)
    out = tmp_path / "never.npz"
    assert main(["evaluate", str(example_models["w8a8"]), str(task[0]), "--labels", str(path), "-o", str(out)]) == 2
    error = capsys.readouterr().err
    assert str(path) in error and __import__("re").search(expected, error) and "Traceback" not in error
    assert not out.exists()


def test_the_accelerator_as_a_projects_c_simulation(example_models, task, tmp_path: Path, capsys) -> None:
    """`--project`: the accelerator by the compiled project's C simulation (here the engine), checked
    bit for bit against the golden model on the same integers; a model with the project's boundary
    but other weights fails that check."""
    from hwcodesign.flows.compile import compile_model

    result = compile_model(example_models["w8a8"], "ultra96v2", tmp_path / "engine", architecture="sequential")
    # frames split over processes (`run_csim_parallel`) give what one process gives
    x = random_frames(result.graph, 7, seed=2)
    serial = result.project.csim(x)
    assert all(np.array_equal(serial[k], v) for k, v in result.project.csim(x, workers=3).items())
    frames = tmp_path / "frames.npy"
    np.save(frames, np.load(task[0])[:6])
    golden, simulated = tmp_path / "golden.npz", tmp_path / "csim.npz"
    assert main(["evaluate", str(example_models["w8a8"]), str(frames), "-o", str(golden), "--no-compare"]) == 0
    assert main(["evaluate", str(example_models["w8a8"]), str(frames), "-o", str(simulated), "--batch", "4",
                 "--project", str(tmp_path / "engine")]) == 0
    printed = capsys.readouterr()
    assert "C simulation of" in printed.err and "whole model agrees with onnxruntime" in printed.out
    assert "C simulation equals the golden model on all 60 output integers" in printed.out
    assert np.array_equal(np.load(golden)["logits"], np.load(simulated)["logits"])
    # the w4a8 model has the project's boundary but other weights: its golden model tells them apart
    assert main(["evaluate", str(example_models["w4a8"]), str(frames), "--project", str(tmp_path / "engine"),
                 "--no-compare"]) == 1
    printed = capsys.readouterr()
    assert "C simulation DIFFERS from the golden model on" in printed.out and "Traceback" not in printed.err
