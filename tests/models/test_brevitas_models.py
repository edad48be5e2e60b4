"""The support that builds FINN's `bnn_pynq` networks (support/brevitas_models.py) gives what the
BipolarQuant, QCDQ and Trunc work will be tested against: Brevitas's own files, with the
quantizers each precision and exporter must write, non-trivial BatchNorm thresholds, and a
reference (qonnx's executor on the cleaned file) that is deterministic and equals Brevitas's torch
forward pass on the same inputs, which checks the whole pipeline (build, export, cleanup,
execution) end to end. The QONNX zoo files kept in tests/data run in that reference too.

Nothing here asserts what hwcodesign does with these files: tests/support/brevitas_survey.py
prints that, and the frontend's own tests will assert it as each feature lands.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from support.brevitas_models import (
    EXPORTERS,
    INPUT_SHAPES,
    ExportRefused,
    Variant,
    run_torch,
    torch_network,
    user_inputs,
    variants,
)
from support.qonnx_reference import run_reference

QONNX = "qonnx.custom_op.general"
ZOO = Path(__file__).parent.parent / "data" / "qonnx_zoo"
Export = Callable[[str, str, str], Path]
WEIGHTED_LAYERS = {"tfc": 4, "cnv": 9}  # Linear / Conv layers, each with a weight quantizer
ACTIVATION_QUANTIZERS = {"tfc": 4, "cnv": 9}  # input quantizer + one after each hidden layer


def op_counts(model: onnx.ModelProto) -> Counter[tuple[str, str]]:
    return Counter((node.domain, node.op_type) for node in model.graph.node)


def constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Initializers and Constant nodes' values by name: the exporters use both."""
    values = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


@pytest.mark.parametrize(("network", "exporter"), [("tfc", "qonnx"), ("tfc", "qonnx-torchscript"), ("cnv", "qonnx")])
def test_binary_network_writes_bipolar_quant_for_every_1_bit_quantizer(brevitas_export: Export, network: str,
                                                                       exporter: str) -> None:
    model = onnx.load(brevitas_export(network, "w1a1", exporter))
    ops = op_counts(model)
    # CNV's input quantizer is 8 bits (Q1.7) at every precision; TFC's is 1 bit at W1A1
    eight_bit_inputs = 1 if network == "cnv" else 0
    expected = WEIGHTED_LAYERS[network] + ACTIVATION_QUANTIZERS[network] - eight_bit_inputs
    assert ops[(QONNX, "BipolarQuant")] == expected
    assert ops[(QONNX, "Quant")] == eight_bit_inputs
    assert {o.domain: o.version for o in model.opset_import}.get(QONNX) is not None


@pytest.mark.parametrize(("network", "exporter"), [("tfc", "qonnx"), ("cnv", "qonnx-torchscript")])
def test_two_bit_network_writes_quant_of_two_bits(brevitas_export: Export, network: str, exporter: str) -> None:
    model = onnx.load(brevitas_export(network, "w2a2", exporter))
    values = constants(model)
    quants = [node for node in model.graph.node if node.domain == QONNX and node.op_type == "Quant"]
    assert not [node for node in model.graph.node if node.op_type == "BipolarQuant"]
    assert len(quants) == WEIGHTED_LAYERS[network] + ACTIVATION_QUANTIZERS[network]
    bits = sorted(float(values[node.input[3]]) for node in quants)
    assert bits == [2.0] * (len(quants) - (network == "cnv")) + [8.0] * (network == "cnv")


@pytest.mark.parametrize("exporter", ["qcdq", "qcdq-torchscript"])
def test_qcdq_of_two_bits_clips_every_quantizer_to_the_narrow_signed_range(brevitas_export: Export,
                                                                           exporter: str) -> None:
    model = onnx.load(brevitas_export("tfc", "w2a2", exporter))
    values = constants(model)
    producers = {out: node for node in model.graph.node for out in node.output}
    dequantizers = [node for node in model.graph.node if node.op_type == "DequantizeLinear"]
    assert len(dequantizers) == WEIGHTED_LAYERS["tfc"] + ACTIVATION_QUANTIZERS["tfc"]
    for node in dequantizers:
        clip = producers[node.input[0]]
        assert clip.op_type == "Clip"
        assert (int(values[clip.input[1]]), int(values[clip.input[2]])) == (-1, 1)  # 2 bits, narrow range


@pytest.mark.parametrize("exporter", [e for e in EXPORTERS if e.startswith("qcdq")])
@pytest.mark.parametrize("precision", ["w1a1", "w1a2"])
def test_qcdq_refuses_a_1_bit_quantizer(brevitas_export: Export, exporter: str, precision: str) -> None:
    assert Variant("tfc", precision, exporter).refused
    with pytest.raises(ExportRefused, match="Binary quant not supported"):
        brevitas_export("tfc", precision, exporter)


def test_variants_are_the_cfg_files_bnn_pynq_ships() -> None:
    found = {(v.network, v.precision) for v in variants(exporters=["qonnx"])}
    assert found == {(n, p) for n in ("cnv", "tfc", "sfc") for p in ("w1a1", "w1a2", "w2a2")} | {("lfc", "w1a1"),
                                                                                                 ("lfc", "w1a2")}
    assert len(variants()) == len(found) * len(EXPORTERS)


@pytest.mark.parametrize("network", ["cnv", "tfc"])
def test_user_inputs_are_8_bit_pixels_in_the_exported_shape(brevitas_export: Export, network: str) -> None:
    x = user_inputs(network, 5, seed=1)
    assert x.dtype == np.float32 and x.shape == (5, *INPUT_SHAPES[network])
    assert x.min() >= 0 and x.max() <= 1
    np.testing.assert_allclose(x * 255, np.round(x * 255), atol=1e-4)
    model = onnx.load(brevitas_export(network, "w1a1", "qonnx"))
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [1, *INPUT_SHAPES[network]]
    np.testing.assert_array_equal(x, user_inputs(network, 5, seed=1))


def test_batchnorm_thresholds_differ_per_channel_and_some_compare_downwards() -> None:
    import torch

    norms = [m for m in torch_network("cnv", "w1a1").modules() if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d)]
    assert len(norms) == 8
    for norm in norms:
        std = (norm.running_var + norm.eps).sqrt()
        threshold = (norm.running_mean - norm.bias * std / norm.weight).detach().numpy()
        assert len(np.unique(threshold)) == norm.num_features
        assert (norm.weight < 0).any() and (norm.weight > 0).any()


def test_exported_batchnorm_keeps_its_own_statistics(brevitas_export: Export) -> None:
    """The dynamo exporter merges equal constants: with torch's identity statistics a BatchNorm's
    mean would be its bias and its variance its scale; randomised statistics keep four tensors."""
    model = onnx.load(brevitas_export("tfc", "w1a1", "qonnx"))
    values = constants(model)
    norms = [node for node in model.graph.node if node.op_type == "BatchNormalization"]
    assert len(norms) == 3
    for node in norms:
        assert len(set(node.input[1:])) == 4
        assert all(len(np.unique(values[name])) == 64 for name in node.input[1:])


REFERENCE_CASES = [("tfc", "w1a1", "qonnx"), ("tfc", "w1a2", "qonnx-torchscript"), ("tfc", "w2a2", "qcdq"),
                   ("sfc", "w2a2", "qcdq-torchscript"), ("cnv", "w1a1", "qonnx"), ("cnv", "w2a2", "qcdq-torchscript")]


@pytest.mark.parametrize(("network", "precision", "exporter"), REFERENCE_CASES)
def test_reference_is_deterministic_and_equals_brevitas_forward(brevitas_export: Export, network: str,
                                                                precision: str, exporter: str) -> None:
    path = brevitas_export(network, precision, exporter)
    x = user_inputs(network, 6, seed=3)
    reference = run_reference(path, x)
    assert reference.shape == (6, 10)
    np.testing.assert_array_equal(reference, run_reference(path, x))
    # float tolerance: TensorNorm's sqrt is a Pow in the TorchScript export
    np.testing.assert_allclose(reference, run_torch(network, precision, x), rtol=1e-5, atol=1e-5)
    assert len({row.tobytes() for row in reference}) > 1, "every input gives the same logits"


def zoo_checksums() -> dict[str, str]:
    """The sha256 the README lists for each kept zoo file ("| `NAME` | ... | SHA256 |" rows)."""
    rows = re.findall(r"^\| `([^`]+\.onnx)` \|.*\| ([0-9a-f]{64}) \|$", (ZOO / "README.md").read_text(), re.M)
    return dict(rows)


def test_zoo_files_are_the_ones_the_readme_names() -> None:
    files = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in ZOO.glob("*.onnx")}
    assert files == zoo_checksums()


@pytest.mark.parametrize("name", ["TFC_1W1A.onnx", "TFC_1W2A.onnx", "TFC_2W2A.onnx"])
def test_zoo_tfc_runs_in_the_reference(name: str) -> None:
    """The trained files (PyTorch 1.7 era: opset 9, `onnx.brevitas` domain undeclared, a
    Shape/Gather/Concat flatten) run through the same cleanup and executor."""
    x = user_inputs("tfc", 4, seed=4)
    logits = run_reference(ZOO / name, x)
    assert logits.shape == (4, 10) and np.isfinite(logits).all()
    np.testing.assert_array_equal(logits, run_reference(ZOO / name, x))
