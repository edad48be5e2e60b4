"""ShuffleNetV2 as both of torch's exporters write it, quantized by quantize_static's defaults: its
channel shuffles (Reshape-Transpose-Reshape), its Split (dynamo) and its Slices with Shape/Gather/
Div/Mul bounds (TorchScript) lower to ChannelPermute and ChannelSlice layers. What the model still
needs is its ReduceMean head (another op family); the feature extractor up to it is checked
against onnxruntime."""

from __future__ import annotations

import pytest
from support.compare import compare_with_onnxruntime
from support.shufflenet import features
from support.torchvision_models import EXPORTERS, exported

from hwcodesign.errors import UnsupportedModelError, UnsupportedNodesError
from hwcodesign.passes import load_onnx, optimize


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_shufflenet_is_refused_only_for_its_reduce_mean(exporter: str) -> None:
    """Every node but the ReduceMean head lowers (the walk reports every refusal at once); once
    ReduceMean lowers too, the whole model does, shuffles and splits included."""
    model = exported("shufflenet_v2_x0_5", exporter).model
    try:
        graph = load_onnx(model)
    except UnsupportedModelError as refusal:
        problems = refusal.problems if isinstance(refusal, UnsupportedNodesError) else [refusal]
        assert {problem.op_type for problem in problems} == {"ReduceMean"}, str(refusal)
    else:
        assert {"ChannelPermute", "ChannelSlice"} <= {op.kind for op in graph}


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_shufflenet_features_match_onnxruntime(exporter: str) -> None:
    case = exported("shufflenet_v2_x0_5", exporter)
    model = features(case.model)
    graph = optimize(load_onnx(model))
    kinds = [op.kind for op in graph]
    # 4 + 8 + 4 blocks, each ending in a shuffle; every block but a stage's first splits its input in two
    assert kinds.count("ChannelPermute") == 16
    assert kinds.count("ChannelSlice") == 2 * (16 - 3)
    routes = [op for op in graph if op.kind in ("ChannelPermute", "ChannelSlice")]
    assert all(op.requant.is_identity() for op in routes)  # quantize_static keeps one grid: integers copied
    agreement = compare_with_onnxruntime(model, list(case.images[:, None]), graph=graph)
    assert agreement.max_lsb == 0, str(agreement)  # measured: every element of the last feature map exact
