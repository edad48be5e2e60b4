"""ShuffleNetV2's feature extractor (torchvision's, through either exporter, quantize_static's
defaults): the model up to its ReduceMean head, which another op family lowers."""

from __future__ import annotations

import onnx

from support.torchvision_models import exported


def features(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model up to the input of its ReduceMean (the global average pool)."""
    index, mean = next((i, node) for i, node in enumerate(model.graph.node) if node.op_type == "ReduceMean")
    cut = onnx.ModelProto()
    cut.CopyFrom(model)
    del cut.graph.node[index:]
    del cut.graph.output[:]
    inferred = onnx.shape_inference.infer_shapes(model).graph.value_info
    cut.graph.output.append(next(info for info in inferred if info.name == mean.input[0]))
    return cut


def shufflenet_features(exporter: str) -> onnx.ModelProto:
    return features(exported("shufflenet_v2_x0_5", exporter).model)
