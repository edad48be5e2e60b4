"""BatchNorm and activation folding: one IR layer, and still onnxruntime's answer."""

import numpy as np
from support.compare import compare_with_onnxruntime
from support.qdq_by_hand import conv_bn_relu_qdq

from hwcodesign.ops import Conv
from hwcodesign.passes import load_onnx, optimize


def test_batchnorm_and_relu_fold_into_one_conv_layer() -> None:
    graph = optimize(load_onnx(conv_bn_relu_qdq()))
    assert [op.kind for op in graph] == ["Input", "Conv"]
    conv = graph.op("conv")
    assert isinstance(conv, Conv)
    assert conv.requant.lo == conv.output.zero_point  # ReLU became the lower clamp
    assert conv.requant.multiplier[0] < 0 < conv.requant.multiplier[1]  # negative gamma kept its sign


def test_folded_batchnorm_matches_onnxruntime() -> None:
    model = conv_bn_relu_qdq()
    rng = np.random.default_rng(7)
    inputs = [rng.normal(0, 1, (1, 3, 10, 10)).astype(np.float32) for _ in range(20)]
    agreement = compare_with_onnxruntime(model, inputs)
    assert agreement.max_lsb <= 1, str(agreement)
    assert agreement.exact_fraction >= 0.99, str(agreement)
