"""FINN's networks as FINN users have them: the `bnn_pynq` CNV and TFC at W1A1, W1A2 and W2A2 as
Brevitas' `export_qonnx` writes them (seeded weights, per-channel BatchNorm thresholds,
support/brevitas_models.py), checked against qonnx's own executor on 50 images (the whole model,
host parts included, and the accelerator's integers at its boundary), mapped on the PYNQ-Z2 and the
Ultra96-V2, and compiled and run in C simulation bit-exact on CNV-W1A1, CNV-W2A2 and TFC-W2A2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from support.brevitas_models import user_inputs
from support.codegen import assert_bit_exact, build_all, random_frames
from support.qonnx_reference import qonnx_tensors

from hwcodesign.boards import load_board
from hwcodesign.cli import main
from hwcodesign.flows.compile import compile_model
from hwcodesign.flows.simulate import simulate_model
from hwcodesign.flows.whole_model import golden_whole_model
from hwcodesign.hardware.units import xnor_macs
from hwcodesign.ir.graph import Graph
from hwcodesign.ops import Conv, Linear
from hwcodesign.partition import Partition, load_partitioned
from hwcodesign.passes import optimize

NETWORKS = ("tfc", "cnv")
PRECISIONS = ("w1a1", "w1a2", "w2a2")
FRAMES = 50
WEIGHT_TYPES = {"w1a1": "bipolar", "w1a2": "bipolar", "w2a2": "int2"}
Export = Callable[[str, str, str], Path]


def loaded(path: Path) -> tuple[Partition, Graph]:
    partition, graph = load_partitioned(path)
    return partition, optimize(graph)


def mac_layers(graph: Graph) -> list[Conv | Linear]:
    return [op for op in graph if isinstance(op, Conv | Linear)]


EXPORTS = [(network, precision, exporter) for network in NETWORKS for precision in PRECISIONS
           for exporter in ("qonnx", "qonnx-torchscript", "qcdq", "qcdq-torchscript")
           if precision == "w2a2" or exporter.startswith("qonnx")]  # Brevitas writes no 1-bit QCDQ


@pytest.mark.parametrize(("network", "precision", "exporter"), EXPORTS)
def test_the_whole_model_equals_qonnx(brevitas_export: Export, network: str, precision: str, exporter: str) -> None:
    """The accelerator's output integers equal qonnx's values of the same tensors on every element
    (the host's first ops in float32 as qonnx runs them, then exact integer layers); the model's
    outputs (the last layer and TensorNorm on the host) agree to float32 rounding. QCDQ files are
    standard ONNX, which qonnx's executor runs with onnxruntime node by node."""
    path = brevitas_export(network, precision, exporter)
    partition, graph = loaded(path)
    assert {str(op.weight_type) for op in mac_layers(graph)} == {WEIGHT_TYPES[precision]}
    images = user_inputs(network, FRAMES)
    model = onnx.load(str(path))
    outputs, accelerator = golden_whole_model(partition, graph, {model.graph.input[0].name: images}, backend="numpy")
    boundary = accelerator.integers("outputs")
    output = model.graph.output[0].name
    reference = qonnx_tensors(model, [image[None] for image in images], [*boundary, output])
    tensors = {tensor.name: tensor for tensor in graph.output_tensors()}
    for name, integers in boundary.items():
        expected = tensors[name].quantize(reference[name]).reshape(integers.shape)
        assert np.array_equal(integers, expected), f"{name}: {np.count_nonzero(integers != expected)} elements differ"
    got, want = outputs[output].reshape(reference[output].shape), reference[output]
    assert np.abs(got - want).max() <= 1e-5 * max(1.0, float(np.abs(want).max()))


@pytest.mark.parametrize("board", ["pynqz2", "ultra96v2"])
@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("network", NETWORKS)
def test_maps_within_the_board_with_binarised_layers_in_luts(brevitas_export: Export, network: str, precision: str,
                                                             board: str) -> None:
    partition, graph = loaded(brevitas_export(network, precision, "qonnx"))
    simulation = simulate_model(graph, load_board(board), partition=partition)
    mapping, report = simulation.mapping, simulation.report
    assert report["architecture"] == "dataflow" and report["summary"]["fps"] > 0 and "host" in report
    for resource, entry in report["resources"].items():
        assert entry["used"] <= entry["available"], resource
    for op in mac_layers(graph):
        if xnor_macs(op.weight_type, graph.input_tensors(op)[0].dtype):
            assert mapping.foldings[op.name].mac == "lut", op.name
    if precision == "w1a1":  # XNOR-popcount lanes and sign output stages: no multiplier but the first layer's
        for name, cost in mapping.costs.items():  # (8-bit pixels x bipolar weights), when DSPs make it faster
            if cost.dsp:
                op = graph.op(name)
                assert mapping.foldings[name].mac == "dsp", name
                assert graph.input_tensors(op)[0].dtype.bits == 8 and not xnor_macs(op.weight_type, graph.input_tensors(op)[0].dtype), name


def test_inspect_names_the_bipolar_layers(brevitas_export: Export, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(brevitas_export("cnv", "w1a1", "qonnx"))]) == 0
    assert "bipolar" in capsys.readouterr().out


@pytest.fixture(scope="module")
def compiled(brevitas_export: Export, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Graph, object]]:
    """CNV-W1A1, CNV-W2A2 and TFC-W2A2 compiled for the PYNQ-Z2 as mapped, their C simulations
    built side by side."""
    root = tmp_path_factory.mktemp("finn_networks")
    results = {}
    for network, precision in (("cnv", "w1a1"), ("cnv", "w2a2"), ("tfc", "w2a2")):
        result = compile_model(brevitas_export(network, precision, "qonnx"), "pynqz2", root / f"{network}_{precision}")
        results[f"{network}_{precision}"] = (result.graph, result.project)
    build_all([project for _, project in results.values()])  # type: ignore[misc]
    return results


@pytest.mark.parametrize("name", ["cnv_w1a1", "cnv_w2a2", "tfc_w2a2"])
def test_c_simulation_is_bit_exact(compiled: dict[str, tuple[Graph, object]], name: str) -> None:
    graph, project = compiled[name]
    assert_bit_exact(graph, project, random_frames(graph, 4, seed=1), name)  # type: ignore[arg-type]
