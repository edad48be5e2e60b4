"""A model over a data set, off the board: `hwcodesign evaluate MODEL FRAMES [--labels LABELS]`.

The whole model runs as the board would run it: the host parts with the driver's runtime, the
accelerator's integer core by the golden model or a project's C simulation (`flows/whole_model.py`),
a batch of frames at a time. Reported: top-1 accuracy against the labels (the first output's largest score per frame),
and agreement with onnxruntime running the model as written (optimisations off): the
accelerator's output integers within 1 LSB of onnxruntime's at the same tensors, the model's
outputs' largest difference, and how often the two pick the same class.

A model with state (a GRU carried across frames) runs its frames as one sequence, in one batch:
splitting it would restart the state.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwcodesign.codegen.host_parts import host_spec, write_host_files
from hwcodesign.errors import HwcodesignError
from hwcodesign.flows.whole_model import (
    IntegerAccelerator,
    WholeModelCheck,
    WholeModelReference,
    golden_accelerator,
    golden_differences,
    run_with_host,
)
from hwcodesign.ir.graph import Graph
from hwcodesign.partition import Partition

DEFAULT_BATCH = 64

Progress = Callable[[int], None]
"""Told how many more frames are done."""


class EvaluationError(HwcodesignError):
    """The frames or labels do not fit the model (the message names the file and the problem)."""


@dataclass(frozen=True)
class Evaluation:
    """What `evaluate` found over the frames."""

    frames: int
    outputs: dict[str, np.ndarray]  # the model's outputs, stacked over the frames
    accuracy: float | None  # top-1 against the labels
    reference_accuracy: float | None  # onnxruntime's top-1 against the labels
    agreement: WholeModelCheck | None  # None: onnxruntime cannot run the model
    same_class: float | None  # the fraction of frames where the two pick the same class
    not_compared: str  # why agreement is None
    seconds: float
    golden_differing: int | None = None  # C simulation: output integers unlike the golden model's (None: not run)
    elements: int = 0  # the accelerator's output integers compared with the golden model

    @property
    def passed(self) -> bool:
        return (self.agreement is None or self.agreement.passed) and not self.golden_differing

    def describe(self) -> list[str]:
        lines = [f"{self.frames} frame(s) in {self.seconds:.1f} s ({self.seconds / self.frames * 1e3:.2f} ms a frame)"]
        if self.accuracy is not None:
            line = f"top-1 accuracy {self.accuracy:.2%} against the labels"
            if self.reference_accuracy is not None:
                line += f" (onnxruntime {self.reference_accuracy:.2%})"
            lines.append(line)
        if self.agreement is not None:
            lines.append(self.agreement.describe())
            if self.same_class is not None:
                lines.append(f"same class as onnxruntime on {self.same_class:.2%} of the frames")
        else:
            lines.append(f"agreement with onnxruntime not checked: {self.not_compared}")
        if self.golden_differing is not None:
            lines.append(f"C simulation equals the golden model on all {self.elements} output integers"
                         if not self.golden_differing else
                         f"C simulation DIFFERS from the golden model on {self.golden_differing} of {self.elements} "
                         "output integers")
        return lines


def top1(scores: np.ndarray) -> np.ndarray:
    """Each frame's largest score's index (the scores flattened per frame)."""
    return scores.reshape(len(scores), -1).argmax(axis=1)


def check_labels(labels: np.ndarray, frames: int, classes: int, where: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise EvaluationError(f"{where}: labels must be one integer class per frame, shape (N,); got "
                              f"{labels.dtype} {labels.shape}")
    if len(labels) != frames:
        raise EvaluationError(f"{where}: {len(labels)} labels for {frames} frames")
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        raise EvaluationError(f"{where}: labels must be classes 0..{classes - 1} of the model's first output; "
                              f"found {int(labels.min())}..{int(labels.max())}")
    return labels.astype(np.int64)


def evaluate(partition: Partition, graph: Graph, frames: Mapping[str, np.ndarray], labels: np.ndarray | None = None,
             labels_file: str = "labels", batch: int = DEFAULT_BATCH, compare: bool = True,
             progress: Progress = lambda done: None,
             accelerator: Callable[[], IntegerAccelerator] | None = None) -> Evaluation:
    """The whole model over `frames` (N, ...) by input name, a `batch` of frames at a time (all at
    once for a model with state): the host parts as a project ships them, the accelerator by the
    golden model, or by what `accelerator` makes (`csim_accelerator`: a project's C simulation);
    `compare`: onnxruntime too."""
    make = accelerator or (lambda: golden_accelerator(graph))
    spec = host_spec(partition, graph)
    count = next(iter(frames.values())).shape[0]
    first = spec["outputs"][0]["name"]
    classes = int(np.prod(spec["outputs"][0]["shape"][1:]))
    if labels is not None:
        labels = check_labels(labels, count, classes, labels_file)
    step = count if spec["state"] else max(1, batch)
    start = time.perf_counter()
    outputs: list[dict[str, np.ndarray]] = []
    checks: list[WholeModelCheck] = []
    references: list[np.ndarray] = []
    not_compared = "" if compare else "not asked for (--no-compare)"
    differing = elements = 0
    reference_model = opened_reference(partition, spec) if compare else None
    if isinstance(reference_model, str):
        not_compared = reference_model
    with tempfile.TemporaryDirectory() as tmp:
        host = write_host_files(partition, spec, Path(tmp))
        for begin in range(0, count, step):
            chunk = {name: value[begin:begin + step] for name, value in frames.items()}
            core = make()
            result = run_with_host(host, spec, chunk, core)
            outputs.append(result)
            if accelerator is not None:  # the same integers through the golden model: bit for bit
                found, total = golden_differences(graph, core.integers("inputs"), core.integers("outputs"))
                differing, elements = differing + found, elements + total
            if isinstance(reference_model, WholeModelReference):
                reference = reference_model.run(chunk)
                checks.append(reference_model.compare(reference, result, core))
                references.append(reference[first])
            progress(len(next(iter(chunk.values()))))
    seconds = time.perf_counter() - start
    stacked = {name: np.concatenate([o[name] for o in outputs]) for name in outputs[0]}
    predicted = top1(stacked[first])
    compared = bool(checks) and not not_compared
    theirs = top1(np.concatenate(references)) if compared else None
    return Evaluation(
        frames=count, outputs=stacked,
        accuracy=float(np.mean(predicted == labels)) if labels is not None else None,
        reference_accuracy=float(np.mean(theirs == labels)) if labels is not None and theirs is not None else None,
        agreement=merge_checks(checks) if compared else None,
        same_class=float(np.mean(predicted == theirs)) if theirs is not None and classes > 1 else None,
        not_compared=not_compared, seconds=seconds,
        golden_differing=differing if accelerator is not None else None, elements=elements)


def opened_reference(partition: Partition, spec: dict) -> WholeModelReference | str:
    """onnxruntime's session on the whole model, or why it cannot run it (a QONNX model's custom
    domain): opened once for the data set."""
    try:
        return WholeModelReference(partition, spec)
    except Exception as error:  # onnxruntime's own exception types live in its compiled module
        if not type(error).__module__.startswith("onnxruntime"):
            raise
        return f"onnxruntime cannot run the model ({str(error).splitlines()[0][:200]})"


def merge_checks(checks: list[WholeModelCheck]) -> WholeModelCheck:
    """The batches' checks as one: each port's and output's largest difference."""
    boundary = {port: max(c.boundary_lsb[port] for c in checks) for port in checks[0].boundary_lsb}
    outputs = {name: max(c.output_abs[name] for c in checks) for name in checks[0].output_abs}
    return WholeModelCheck(boundary, outputs, checks[0].lsb)
