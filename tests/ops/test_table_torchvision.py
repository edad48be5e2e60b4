"""MobileNetV3 (HardSwish, HardSigmoid) and EfficientNet (SiLU, Sigmoid) from torchvision, through
both of torch's exporters and quantize_static's defaults: every activation is a lookup table (the
default exporter's last HardSwish, which quantize_static leaves float before its ReduceMean, a
lookup mean), and each table, fed onnxruntime's input, gives onnxruntime's output exactly.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest
from support.torchvision_models import exported

from hwcodesign.ops import Lookup, LookupMean
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.reference import Reference
from hwcodesign.sim import quantize_input, run_golden

MODELS = ("mobilenet_v3_small", "efficientnet_b0")
EXPORTERS = ("dynamo", "torchscript")
GATES = ("Sigmoid", "HardSigmoid")


def producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {output: node for node in model.graph.node for output in node.output}


def quantized_tensor(model: onnx.ModelProto, tensor: str) -> str | None:
    """The quantized tensor a DequantizeLinear output reads."""
    node = producers(model).get(tensor)
    return node.input[0] if node is not None and node.op_type == "DequantizeLinear" else None


def gated_products(model: onnx.ModelProto) -> dict[str, tuple[int, str]]:
    """Squeeze-excitation products: Mul(features, gate) where the gate, read through its Q/DQ, is a
    Sigmoid or HardSigmoid of another tensor than the features; node name -> the features' input
    and the quantized gate."""
    made = producers(model)
    found = {}
    for node in model.graph.node:
        if node.op_type != "Mul" or len(node.input) != 2:
            continue
        for gate_index in (0, 1):
            quantized = quantized_tensor(model, node.input[gate_index])
            quantizer = made.get(quantized) if quantized else None
            gate = made.get(quantizer.input[0]) if quantizer is not None and quantizer.op_type == "QuantizeLinear" else None
            if gate is not None and gate.op_type in GATES and \
                    quantized_tensor(model, gate.input[0]) != quantized_tensor(model, node.input[1 - gate_index]):
                found[node.name] = (1 - gate_index, str(quantized))
    return found


def expected_tables(model: onnx.ModelProto) -> dict[str, int]:
    """The tables the model's activations make: each HardSwish, each squeeze-excitation gate, and
    each other Mul (x * sigmoid(x), SiLU)."""
    products = gated_products(model)
    gates = {gate for _, gate in products.values()}
    made = producers(model)
    counts: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type == "HardSwish" or node.op_type in GATES and any(
                made[gate].input[0] in node.output for gate in gates):
            function = node.op_type
        elif node.op_type == "Mul" and node.name not in products:
            function = "SiLU"
        else:
            continue
        counts[function] = counts.get(function, 0) + 1
    return counts


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", MODELS)
def test_every_activation_is_a_table_exact_on_onnxruntimes_inputs(name: str, exporter: str) -> None:
    model = exported(name, exporter).model
    assert gated_products(model), "the squeeze-excitation products are recognised"
    graph = optimize(load_onnx(model))
    functions = Counter(op.function for op in graph if isinstance(op, Lookup | LookupMean))
    assert functions == expected_tables(model)
    assert set(functions) == ({"HardSwish", "HardSigmoid"} if name.startswith("mobilenet") else {"SiLU", "Sigmoid"})
    means = [op for op in graph if isinstance(op, LookupMean)]
    assert len(means) == (1 if (name, exporter) == ("mobilenet_v3_small", "dynamo") else 0)
    tables = [op for op in graph if isinstance(op, Lookup)]
    names = {name for op in tables for name in (op.inputs[0], op.output.name)}
    reference = Reference(model, {name: 3 if graph.tensor(name).dtype.signed else 2 for name in names})
    image = exported(name, exporter).images[:1]
    expected = reference.run({reference.input_names[0]: image}, sorted(names))
    golden = run_golden(graph, quantize_input(graph, image), keep_intermediates=True)
    assert set(names) <= set(golden)
    for op in tables:
        # fed onnxruntime's input, the table gives onnxruntime's output exactly
        fed = expected[op.inputs[0]].astype(np.int64) - graph.tensor(op.inputs[0]).dtype.min
        assert np.array_equal(op.table[fed], expected[op.output.name].astype(np.int64)), op.name
