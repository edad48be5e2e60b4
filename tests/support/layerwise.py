"""Layer-by-layer comparison of the golden model with onnxruntime on a QDQ model.

The frontend names every IR tensor after the ONNX ``QuantizeLinear`` output that fixed its grid
(``frontend.context.LoweringContext.finalize``: the layer's output tensor is ``node.output[0]`` of the
quantizer), so onnxruntime's quantized intermediates are the outputs of the model's
``QuantizeLinear`` nodes, exposed as extra graph outputs (``hwcodesign.reference.Reference``).

Two comparisons per layer:

* ``isolated``: the golden layer fed onnxruntime's own quantized inputs of that layer -- the
  layer's own error, which should be at most 1 LSB;
* ``chained``: the whole golden model run from the quantized graph input -- what the per-layer
  differences add up to downstream.

Also here: the CoDeNet-like example (``examples/codenet/build.py``) built once per test session,
shared by the test modules that need it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx

from hwcodesign.ir.graph import Graph
from hwcodesign.ir.op import Input
from hwcodesign.onnx_edit import quantizer_outputs
from hwcodesign.reference import Reference
from hwcodesign.sim.golden import run_golden, run_op
from support.examples import load_script

CODENET_BUILD = Path(__file__).resolve().parents[2] / "examples" / "codenet" / "build.py"


# --------------------------------------------------------------------------- onnxruntime side


def quantized_tensors(model: onnx.ModelProto, feeds: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Every quantized activation of ``model`` (each ``QuantizeLinear`` output, and each ``Round``
    output: integers by definition, CoDeNet's square offsets) as the onnxruntime reference computes
    it, int64, for each feed dict in ``feeds`` (a batch-1 model run once per feed), stacked along N."""
    quantizers = {**quantizer_outputs(model),
                  **{node.output[0]: onnx.TensorProto.FLOAT for node in model.graph.node if node.op_type == "Round"}}
    reference = Reference(model, intermediates=quantizers)
    runs = [reference.run(feed, list(quantizers)) for feed in feeds]
    return {name: np.concatenate([run[name] for run in runs]).astype(np.int64) for name in quantizers}


# --------------------------------------------------------------------------- comparisons


@dataclass(frozen=True)
class LayerDifference:
    """|golden - onnxruntime| on one layer's output, in LSB of that output."""

    layer: str
    kind: str
    tensor: str
    max_lsb: int
    differing: float  # fraction of elements that differ
    rms_lsb: float
    elements: int
    low: int  # onnxruntime's output range, to see the layer is not trivially constant
    high: int

    def row(self) -> str:
        return (
            f"{self.kind:<13} {self.layer:<58} max {self.max_lsb:3d} LSB, rms {self.rms_lsb:5.2f} LSB, "
            f"{100 * self.differing:7.3f}% differ ({self.elements} elements, range {self.low}..{self.high})"
        )


def _difference(op, golden: np.ndarray, reference: np.ndarray) -> LayerDifference:
    if reference.size == golden.size:  # the IR's (N, C, 1, 1) for ONNX's (N, C) after a Gemm
        reference = reference.reshape(golden.shape)
    diff = np.abs(golden.astype(np.int64) - reference)
    return LayerDifference(
        op.name,
        op.kind,
        op.output.name,
        int(diff.max(initial=0)),
        float(np.mean(diff > 0)),
        float(np.sqrt(np.mean(diff.astype(np.float64) ** 2))),
        int(diff.size),
        int(reference.min()),
        int(reference.max()),
    )


def _layers(graph: Graph, reference: Mapping[str, np.ndarray]) -> list:
    ops = [op for op in graph if not isinstance(op, Input)]
    missing = [op.output.name for op in ops if op.output.name not in reference]
    if missing:
        raise KeyError(f"no onnxruntime tensor for IR tensors {missing}")
    return ops


def ir_shaped(graph: Graph, name: str, value: np.ndarray) -> np.ndarray:
    """onnxruntime's tensor in the IR's layout: the IR is (N, C, H, W) where ONNX may be (N, C) after
    a Gemm or (N, g, C/g, H, W) inside a channel shuffle."""
    return np.asarray(value, np.int64).reshape(len(value), *graph.tensor(name).shape[1:])


def isolated_differences(graph: Graph, reference: Mapping[str, np.ndarray]) -> list[LayerDifference]:
    """Per layer: the golden layer run on onnxruntime's quantized inputs of that layer, against
    onnxruntime's quantized output. ``reference`` maps IR tensor names to integer arrays."""
    diffs = []
    for op in _layers(graph, reference):
        args = [ir_shaped(graph, name, reference[name]) for name in op.inputs]
        golden = run_op(op, args, graph.input_tensors(op))
        diffs.append(_difference(op, golden, np.asarray(reference[op.output.name], np.int64)))
    return diffs


def chained_differences(graph: Graph, reference: Mapping[str, np.ndarray]) -> list[LayerDifference]:
    """Per layer: the whole golden model, run from onnxruntime's quantized graph inputs, against
    onnxruntime's quantized output of that layer (differences accumulate downstream)."""
    inputs = {op.name: ir_shaped(graph, op.output.name, reference[op.output.name]) for op in graph.inputs}
    values = run_golden(graph, inputs, keep_intermediates=True)
    return [
        _difference(op, values[op.output.name], np.asarray(reference[op.output.name], np.int64))
        for op in _layers(graph, reference)
    ]


def table(diffs: Sequence[LayerDifference]) -> str:
    return "\n".join(d.row() for d in diffs)


# --------------------------------------------------------------------------- the CoDeNet example


def codenet_build() -> ModuleType:
    """``examples/codenet/build.py``, imported as ``codenet_build`` (the name its ``sibling``
    loader and the CoDeNet tests use, so there is one instance)."""
    return load_script(CODENET_BUILD, "codenet_build")


#: (id(tmp_path_factory), seed) -> (the factory, kept alive so its id stays unique; the paths)
_BUILT: dict[tuple[int, int], tuple[object, dict[str, Path]]] = {}


def built_codenet(tmp_path_factory, seed: int = 0) -> dict[str, Path]:
    """The example's float and QDQ models (keys ``"float"``, ``"w4a8"``), built once per test
    session (``tmp_path_factory``) and seed -- the build takes ~10 s -- and shared by every test
    module that asks."""
    key = (id(tmp_path_factory), seed)
    if key not in _BUILT:
        out = tmp_path_factory.mktemp(f"codenet_seed{seed}")
        _BUILT[key] = (tmp_path_factory, codenet_build().build_codenet(out, seed=seed))
    return _BUILT[key][1]
