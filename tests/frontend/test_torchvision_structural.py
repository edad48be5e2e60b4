"""torchvision classifiers that only needed the structural ops of issue 19 (ReduceMean as a global
pool, MaxPool ceil_mode, a doubly quantized BatchNorm weight), as torch exports them and
quantize_static quantizes them: `load_partitioned` accepts them whole on the accelerator, and the
layers of those ops are within 1 LSB of onnxruntime fed onnxruntime's inputs.

Each export takes 1-25 s; `torchvision_models.exported` caches them for the process.
"""

from __future__ import annotations

import numpy as np
import pytest
from support.layerwise import isolated_differences, quantized_tensors
from support.torchvision_models import exported

from hwcodesign.partition.load import load_partitioned

pytest.importorskip("torch")

# (model, exporter) -> the op of issue 19 its export writes
ACCEPTED = {
    ("resnet18", "dynamo"): "ReduceMean",
    ("mobilenet_v2", "dynamo"): "ReduceMean",
    ("regnet_x_400mf", "dynamo"): "ReduceMean",
    ("densenet121", "dynamo"): "ReduceMean",
    ("densenet121", "torchscript"): "QuantizeLinear of a DequantizeLinear",
    ("squeezenet1_1", "dynamo"): "MaxPool ceil_mode",
    ("squeezenet1_1", "torchscript"): "MaxPool ceil_mode",
    ("googlenet", "dynamo"): "MaxPool ceil_mode",
    ("googlenet", "torchscript"): "MaxPool ceil_mode",
}
LAYERWISE = [("resnet18", "dynamo"), ("squeezenet1_1", "dynamo"), ("googlenet", "torchscript"),
             ("densenet121", "torchscript")]


def writes(model: object, op: str) -> bool:
    nodes = list(model.graph.node)  # type: ignore[attr-defined]
    if op == "MaxPool ceil_mode":
        return any(n.op_type == "MaxPool" and any(a.name == "ceil_mode" and a.i for a in n.attribute) for n in nodes)
    if op == "QuantizeLinear of a DequantizeLinear":  # through the TorchScript exporter's shared-weight Identity
        producer = {out: n for n in nodes for out in n.output}
        return any(n.op_type == "QuantizeLinear" and n.input[0] in producer and producer[n.input[0]].op_type
                   == "Identity" for n in nodes)
    return any(n.op_type == op for n in nodes)


@pytest.mark.parametrize(("name", "exporter"), sorted(ACCEPTED))
def test_load_partitioned_accepts_it_on_the_accelerator(name: str, exporter: str) -> None:
    model = exported(name, exporter).model
    assert writes(model, ACCEPTED[(name, exporter)]), "the export no longer writes the op this test is about"
    partition, graph = load_partitioned(model)
    assert partition.pre is None
    if (name, exporter) == ("squeezenet1_1", "dynamo"):  # quantize_static leaves its last mean float: the host's
        assert [node.op_type for node in partition.post.graph.node] == ["ReduceMean", "Reshape"]
    else:
        assert partition.post is None
        assert [op.kind for op in graph][-1] in ("Linear", "GlobalAvgPool")


@pytest.mark.parametrize(("name", "exporter"), LAYERWISE)
def test_every_layer_within_one_lsb_of_onnxruntime(name: str, exporter: str) -> None:
    case = exported(name, exporter)
    _, graph = load_partitioned(case.model)
    feeds = [{case.model.graph.input[0].name: case.images[i:i + 1]} for i in range(2)]
    reference = quantized_tensors(case.model, feeds)
    for op in graph:  # onnxruntime's (N, C) after the flattening head, ours (N, C, 1, 1)
        if op.output.name in reference:
            reference[op.output.name] = reference[op.output.name].reshape((-1, *op.output.shape[1:]))
    differences = isolated_differences(graph, reference)
    worst = max(differences, key=lambda d: d.max_lsb)
    assert worst.max_lsb <= 1, worst.row()
    assert np.mean([d.differing for d in differences]) < 0.05
