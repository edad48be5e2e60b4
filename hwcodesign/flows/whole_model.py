"""The whole model off the board: host parts + accelerator, checked against onnxruntime.

The host parts run with the driver's own runtime (`hwcodesign/host/runtime.py`, onnxruntime
backend, files as the project ships them), so what is verified here is what the board runs; the
accelerator is the golden model or the project's C simulation. The reference is onnxruntime on
the whole model, optimisations off, run frame by frame with its state pairs fed back the same way.

The comparison has two levels, because the accelerator's outputs are integers on a grid and the
host's are floats: (1) at the boundary, the accelerator's output integers against onnxruntime's
QuantizeLinear at the same tensors (within `lsb` steps, 1 as the golden model's tolerance per
layer); (2) the model's outputs against onnxruntime's (max absolute difference reported; equal
to float rounding when the boundary integers are equal).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from hwcodesign.codegen.host_parts import host_spec, write_host_files
from hwcodesign.codegen.project import Project
from hwcodesign.host.runtime import HostModel
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.input_window import InputWindow, im2col
from hwcodesign.ir.types import Tensor
from hwcodesign.onnx_edit import quantizer_outputs
from hwcodesign.partition import Partition
from hwcodesign.reference import Reference
from hwcodesign.sim.golden import run_golden

Accelerate = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass
class IntegerAccelerator:
    """An accelerator run on real values by port name: quantize, run integers, dequantize; it
    keeps every batch's integers (`inputs`, `outputs`), for the bit-exact check."""

    in_tensors: list[Tensor]
    out_tensors: list[Tensor]
    run_integers: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
    inputs: list[dict[str, np.ndarray]] = field(default_factory=list)
    outputs: list[dict[str, np.ndarray]] = field(default_factory=list)
    windows: Mapping[str, InputWindow] = field(default_factory=dict)  # inputs packed from frames, by tensor name

    def __call__(self, floats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ints = {t.name: self.quantize(t, floats[t.name]) for t in self.in_tensors}
        results = self.run_integers({name: self.from_frames(name, value) for name, value in ints.items()})
        self.inputs.append(ints)  # the frames' integers: the model's own input layout
        self.outputs.append(results)
        return {t.name: t.dequantize(results[t.name]).astype(np.float32) for t in self.out_tensors}

    def quantize(self, tensor: Tensor, floats: np.ndarray) -> np.ndarray:
        """One input's real frames -> their integers, (N, C, H, W) of the frame."""
        window = self.windows.get(tensor.name)
        return tensor.quantize(floats.reshape(len(floats), *(window.frame if window else tensor.shape[1:])))

    def from_frames(self, name: str, integers: np.ndarray) -> np.ndarray:
        """An input's frame integers -> what the accelerator reads (a windowed input's: their im2col)."""
        window = self.windows.get(name)
        return integers if window is None else im2col(integers, window)

    def integers(self, side: str) -> dict[str, np.ndarray]:
        """Every batch's integers of one side ("inputs"/"outputs"), stacked by tensor name."""
        batches = getattr(self, side)
        return {name: np.concatenate([b[name] for b in batches]) for name in batches[0]} if batches else {}


def golden_accelerator(graph: Graph) -> IntegerAccelerator:
    """The accelerator as the golden model computes it."""
    inputs = {op.output.name: op.name for op in graph.inputs}
    return IntegerAccelerator([op.output for op in graph.inputs], graph.output_tensors(),
                              lambda ints: run_golden(graph, {inputs[name]: value for name, value in ints.items()}),
                              windows={op.output.name: op.window for op in graph.inputs if op.window})


def golden_differences(graph: Graph, frames: Mapping[str, np.ndarray],
                       outputs: Mapping[str, np.ndarray]) -> tuple[int, int]:
    """(output integers unlike the golden model's, output integers) when the golden model runs on
    `frames` (the accelerator's input integers by tensor name, the frames' own layout)."""
    core = golden_accelerator(graph)
    golden = core.run_integers({name: core.from_frames(name, value) for name, value in frames.items()})
    differing = sum(int(np.count_nonzero(outputs[name] != golden[name])) for name in golden)
    return differing, sum(value.size for value in golden.values())


def csim_accelerator(project: Project, headers: Path | None = None, workers: int = 1) -> IntegerAccelerator:
    """The accelerator as the project's C simulation computes it (`headers`: Xilinx's, not the
    shim), its frames split over `workers` processes."""
    return IntegerAccelerator([p.tensor for p in project.inputs], [p.tensor for p in project.outputs],
                              lambda ints: project.csim(ints, headers, workers),
                              windows={p.tensor.name: p.window for p in project.inputs if p.window})


def run_with_host(folder: Path, spec: Mapping[str, Any], frames: Mapping[str, np.ndarray], accelerate: Accelerate,
                  backend: str = "onnxruntime") -> dict[str, np.ndarray]:
    """The model's outputs for frames (N, ...) by input name: the shipped host parts in `folder`
    run by the driver's runtime, the accelerator by `accelerate`, state from zeros."""
    host = HostModel(folder, dict(spec), backend=backend)
    return host.run_batch(dict(frames), accelerate)


def golden_whole_model(partition: Partition, graph: Graph, frames: Mapping[str, np.ndarray],
                       backend: str = "onnxruntime") -> tuple[dict[str, np.ndarray], IntegerAccelerator]:
    """The golden flow on the whole model: host parts as the project would ship them (written to a
    temporary folder), the accelerator's integer core by the golden model."""
    accelerator = golden_accelerator(graph)
    spec = host_spec(partition, graph)
    with tempfile.TemporaryDirectory() as tmp:
        outputs = run_with_host(write_host_files(partition, spec, Path(tmp)), spec, frames, accelerator, backend)
    return outputs, accelerator


def reference_whole_model(model: onnx.ModelProto, spec: Mapping[str, Any], frames: Mapping[str, np.ndarray],
                          intermediates: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
    """onnxruntime on the whole model, frame by frame, the state pairs fed back (zeros first):
    the model's outputs and the named `intermediates` (name -> ONNX element type), stacked."""
    return run_reference(Reference(model, intermediates=dict(intermediates or {})), spec, frames, intermediates)


def run_reference(reference: Reference, spec: Mapping[str, Any], frames: Mapping[str, np.ndarray],
                  intermediates: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
    """`reference_whole_model` on a session already open (one per data set, not per batch)."""
    state = {s["input"]: np.zeros(s["shape"], s["dtype"]) for s in spec["state"]}
    wanted = [o["name"] for o in spec["outputs"]] + list(intermediates or {})
    count = next(iter(frames.values())).shape[0]
    runs = []
    for index in range(count):
        feeds = {name: value[index:index + 1] for name, value in frames.items()}
        result = reference.run({**feeds, **state}, wanted + [s["output"] for s in spec["state"]])
        state = {s["input"]: result[s["output"]] for s in spec["state"]}
        runs.append(result)
    return {name: np.concatenate([run[name] for run in runs]) for name in wanted}


@dataclass(frozen=True)
class WholeModelCheck:
    """How the whole model (host + accelerator) compares with onnxruntime."""

    boundary_lsb: dict[str, int]  # the accelerator's outputs: max |integer difference| from onnxruntime's
    output_abs: dict[str, float]  # the model's outputs: max |difference| from onnxruntime's
    lsb: int

    @property
    def passed(self) -> bool:
        return all(diff <= self.lsb for diff in self.boundary_lsb.values())

    def describe(self) -> str:
        boundary = ", ".join(f"{name} {diff} LSB" for name, diff in self.boundary_lsb.items())
        outputs = ", ".join(f"{name} max |diff| {diff:.3g}" for name, diff in self.output_abs.items())
        verdict = "agrees with" if self.passed else "DIFFERS from"
        return (f"whole model {verdict} onnxruntime (optimisations off): accelerator outputs {boundary} "
                f"(tolerance {self.lsb}); model outputs {outputs}")


def check_whole_model(partition: Partition, graph: Graph, spec: Mapping[str, Any], frames: Mapping[str, np.ndarray],
                      outputs: Mapping[str, np.ndarray], accelerator: IntegerAccelerator, lsb: int = 1) -> WholeModelCheck:
    """Compare a whole-model run (its `outputs`, and the integers its `accelerator` produced) with
    onnxruntime on `partition.model`. The boundary tensors are the QuantizeLinear outputs feeding
    the accelerator's output dequantizers, when the model names them so; else only outputs compare."""
    reference = WholeModelReference(partition, spec)
    return reference.compare(reference.run(frames), outputs, accelerator, lsb)


class WholeModelReference:
    """onnxruntime on the whole model, its session opened and the accelerator's output boundary
    (`boundary_quantizers`) found once, then run and compared batch after batch."""

    def __init__(self, partition: Partition, spec: Mapping[str, Any]) -> None:
        self.spec = spec
        self.boundary = boundary_quantizers(partition.model, spec["accelerator_outputs"])
        quantized = quantizer_outputs(partition.model)
        self.types = {q: quantized.get(q, onnx.TensorProto.UINT8) for q in self.boundary.values()}
        self.reference = Reference(partition.model, intermediates=self.types)

    def run(self, frames: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The model's outputs on `frames`, and the integers at the accelerator's output boundary."""
        return run_reference(self.reference, self.spec, frames, self.types)

    def compare(self, reference: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray],
                accelerator: IntegerAccelerator, lsb: int = 1) -> WholeModelCheck:
        """A whole-model run's `outputs` and its accelerator's integers against `run`'s."""
        produced = accelerator.integers("outputs")
        boundary_lsb = {port: int(np.abs(produced[port].astype(np.int64)
                                         - reference[q].reshape(produced[port].shape).astype(np.int64)).max())
                        for port, q in self.boundary.items()}
        output_abs = {name: float(np.abs(np.asarray(outputs[name], np.float64) - reference[name]).max())
                      for name in outputs}
        return WholeModelCheck(boundary_lsb, output_abs, lsb)


def boundary_quantizers(model: onnx.ModelProto, ports: Mapping[str, str]) -> dict[str, str]:
    """Port name -> the integer tensor onnxruntime computes for it: the input of the
    DequantizeLinear that writes the accelerator's output."""
    producer = {t: node for node in model.graph.node for t in node.output}
    found = {}
    for port, tensor in ports.items():
        node = producer.get(tensor)
        if node is not None and node.op_type == "DequantizeLinear":
            found[port] = node.input[0]
    return found
