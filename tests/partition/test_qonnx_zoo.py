"""The QONNX model zoo's trained TFC_2W2A (MNIST; opset 9 from PyTorch 1.7-era Brevitas, flattening
with Shape -> Gather -> Unsqueeze -> Concat -> Reshape) through the split and the frontend, and its
accelerator part's golden model against qonnx's executor at the accelerator's boundary."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from support.brevitas_models import user_inputs
from support.qonnx_reference import qonnx_tensors

from hwcodesign.errors import ModelNote, UnsupportedModelError
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.op import Input
from hwcodesign.partition import Partition, load_partitioned, split_model
from hwcodesign.partition.run import run_host_part
from hwcodesign.partition.state import static_shape
from hwcodesign.passes import optimize
from hwcodesign.passes.lowering import handled_op_types
from hwcodesign.sim import quantize_input, run_golden

TFC_2W2A = Path(__file__).parent.parent / "data" / "qonnx_zoo" / "TFC_2W2A.onnx"
SAMPLES = 20
@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return user_inputs("tfc", SAMPLES, seed=7)


@pytest.fixture(scope="module")
def reference(images: np.ndarray) -> dict[str, np.ndarray]:
    """qonnx's values of the tensors entering ('35') and leaving ('75') the accelerator."""
    return qonnx_tensors(TFC_2W2A, [image[None] for image in images], ["35", "75"])


@pytest.fixture(scope="module")
def loaded() -> tuple[Partition, Graph]:
    """`load_partitioned` + `optimize` of the file as downloaded."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelNote)  # the file leaves the onnx.brevitas opset undeclared
        partition, graph = load_partitioned(TFC_2W2A)
    return partition, optimize(graph)


def test_flatten_by_shape_folds_and_the_host_part_is_the_input_scaling(images: np.ndarray,
                                                                        reference: dict[str, np.ndarray]) -> None:
    partition = split_model(onnx.load(str(TFC_2W2A)), handled_op_types())
    assert partition.pre is not None and [node.op_type for node in partition.pre.graph.node] == ["Reshape", "Mul", "Sub"]
    target = {init.name: numpy_helper.to_array(init) for init in partition.pre.graph.initializer}
    reshape = partition.pre.graph.node[0]
    assert target[reshape.input[1]].tolist() == [1, -1]
    (entry,) = partition.accelerator.graph.input
    assert entry.name == "35" and static_shape(entry) == (1, 784)
    assert partition.accelerator_outputs == ["75"]  # the last layer has no output quantizer: the host's
    (image,) = partition.pre.graph.input
    scaled = run_host_part(partition.pre, {image.name: images}, ["35"])["35"]
    np.testing.assert_array_equal(scaled, reference["35"])  # 2x - 1 of the flattened image, as qonnx computes it


def test_accelerator_layers(loaded: tuple[Partition, Graph]) -> None:
    _, graph = loaded
    layers = Counter(op.summary() for op in graph if not isinstance(op, Input))
    assert layers["Linear"] == 3 and set(layers) <= {"Linear", "Act clip"}  # a clip: the input's narrow [-1, 1]
    assert [str(tensor.dtype) for tensor in graph.output_tensors()] == ["int2"]


def test_golden_equals_qonnx_at_the_accelerator_boundary(loaded: tuple[Partition, Graph],
                                                         reference: dict[str, np.ndarray]) -> None:
    """MNIST-like inputs (8-bit pixels / 255): qonnx's values of the tensor entering the accelerator
    quantized by its input, run by the golden model, against qonnx's values of the tensor leaving
    it on the output's integer grid."""
    partition, graph = loaded
    (entry,), (exit_,) = partition.accelerator_inputs, partition.accelerator_outputs
    assert (entry, exit_) == ("35", "75")
    (output,) = graph.output_tensors()
    (accelerator_input,) = graph.inputs
    streamed = reference[entry].reshape(SAMPLES, *accelerator_input.output.shape[1:])  # (N, 784) as (N, 784, 1, 1)
    golden = run_golden(graph, quantize_input(graph, streamed))[output.name]
    expected = output.quantize(reference[exit_])
    lsb = int(np.abs(golden.reshape(SAMPLES, -1) - expected.reshape(SAMPLES, -1).astype(np.int64)).max())
    print(f"TFC_2W2A accelerator boundary '{exit_}': max {lsb} LSB over {SAMPLES} inputs")
    assert lsb <= 1
    assert len({row.tobytes() for row in golden.reshape(SAMPLES, -1)}) > 1, "every input gives the same output"


def test_a_model_whose_every_layer_runs_on_the_host_is_refused_naming_the_first() -> None:
    """qonnx's own channels-last test file: its graph input is annotated UINT8 but its Conv's
    weights are plain floats and its one Quant is its last node, so nothing is left for the
    accelerator; refused up front rather than as a project with no layer."""
    import qonnx

    path = Path(qonnx.__file__).parent / "data" / "onnx" / "eltwise_chanlast_testcase.onnx"
    with pytest.raises(UnsupportedModelError, match=r"'Conv_0' \(op Conv\): runs on the host.*hold no layer"):
        load_partitioned(path)
