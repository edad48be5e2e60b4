"""The structural ops torch's exporters write around torchvision's classifiers (issue 19), each
quantized by onnxruntime's quantizer and held to onnxruntime (golden within 1 LSB):

- ReduceMean over H, W is a global average pool (axes as attribute or input, keepdims 0 or 1);
- MaxPool ceil_mode=1 is floor mode plus end pads, with ONNX's output shape;
- an explicit constant Pad folds into the Conv/pool after it, or is refused naming the Pad;
- a constant quantized twice (the TorchScript exporter's shared BatchNorm weights) is requantized;
- the TorchScript exporter's Shape/Gather/Unsqueeze/Concat arithmetic folds before a Reshape.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from support.compare import compare_with_onnxruntime
from support.layerwise import isolated_differences, quantized_tensors
from support.onnx_models import GraphBuilder

from hwcodesign.errors import HwcodesignError
from hwcodesign.ops.channelwise.ir import GlobalAvgPool, Pool
from hwcodesign.ops.conv.ir import Conv
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.quantize import quantize_qdq
from hwcodesign.reference import Reference


def samples(shape: tuple[int, ...], count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 1, shape).astype(np.float32) for _ in range(count)]


def quantized(b: GraphBuilder, out: str, shape: tuple[int, ...], opset: int = 17) -> onnx.ModelProto:
    return quantize_qdq(b.model([out], opset=opset), samples(shape, 8, 1))


def assert_matches_onnxruntime(model: onnx.ModelProto, shape: tuple[int, ...]) -> None:
    """The output within 1 LSB, and every layer fed onnxruntime's own inputs within 1 LSB."""
    inputs = samples(shape, 10, 2)
    agreement = compare_with_onnxruntime(model, inputs)
    assert agreement.max_lsb <= 1, str(agreement)
    assert agreement.exact_fraction >= 0.9, str(agreement)
    graph = optimize(load_onnx(model))
    reference = quantized_tensors(model, [{model.graph.input[0].name: x} for x in inputs])
    for op in graph:  # onnxruntime's (N, C) after a flattening head, ours (N, C, 1, 1)
        if op.output.name in reference:
            reference[op.output.name] = reference[op.output.name].reshape((-1, *op.output.shape[1:]))
    worst = max(isolated_differences(graph, reference), key=lambda d: d.max_lsb)
    assert worst.max_lsb <= 1, worst.row()


# --------------------------------------------------------------------------- ReduceMean
@pytest.mark.parametrize(("opset", "keepdims", "axes"), [(17, 1, [2, 3]), (17, 0, [-1, -2]), (18, 1, [2, 3]),
                                                         (18, 0, [3, 2])])
def test_reduce_mean_over_h_w_is_a_global_average_pool(opset: int, keepdims: int, axes: list[int]) -> None:
    shape = (1, 4, 9, 7)
    b = GraphBuilder(3)
    x = b.node("Relu", [b.conv(b.input(shape), 4, 8, pads=[1, 1, 1, 1])])
    if opset >= 18:
        mean = b.node("ReduceMean", [x, b.const(np.array(axes, np.int64))], keepdims=keepdims)
    else:
        mean = b.node("ReduceMean", [x], axes=axes, keepdims=keepdims)
    head = b.gemm(mean if not keepdims else b.node("Flatten", [mean]), 8, 5)
    model = quantized(b, head, shape, opset)
    graph = optimize(load_onnx(model))
    assert [type(op) for op in graph][-2] is GlobalAvgPool
    assert_matches_onnxruntime(model, shape)


def test_reduce_mean_reshape_gemm_head_as_dynamo_writes_it() -> None:
    """ReduceMean(keepdims=1) -> Reshape to (N, C) -> Gemm, the default exporter's classifier head."""
    shape = (1, 4, 8, 8)
    b = GraphBuilder(4)
    x = b.node("Relu", [b.conv(b.input(shape), 4, 8)])
    mean = b.node("ReduceMean", [x, b.const(np.array([-2, -1], np.int64))], keepdims=1)
    flat = b.node("Reshape", [mean, b.const(np.array([1, 8], np.int64))], allowzero=1)
    model = quantized(b, b.gemm(flat, 8, 5), shape, 18)
    graph = optimize(load_onnx(model))
    assert [op.kind for op in graph][-2:] == ["GlobalAvgPool", "Linear"]
    assert_matches_onnxruntime(model, shape)


def test_reduce_mean_over_channels_is_refused_with_the_reason() -> None:
    shape = (1, 4, 6, 6)
    b = GraphBuilder(5)
    mean = b.node("ReduceMean", [b.conv(b.input(shape), 4, 8)], axes=[1], keepdims=1)
    with pytest.raises(HwcodesignError, match=r"ReduceMean.*axes \[1\]: only a mean over H and W"):
        load_onnx(quantized(b, mean, shape))


# --------------------------------------------------------------------------- MaxPool ceil_mode
CEIL_CASES = {  # size, kernel, stride, pads: ceil_mode adds a window, or keeps floor's count
    "squeezenet": (13, 3, 2, [0, 0, 0, 0]),
    "googlenet": (16, 3, 2, [0, 0, 0, 0]),
    "padded": (12, 3, 2, [1, 1, 1, 1]),
    "window-in-end-pad-dropped": (12, 2, 2, [0, 0, 1, 1]),
    "asymmetric": (11, 3, 3, [1, 0, 0, 1]),
    "exact-fit": (9, 3, 2, [0, 0, 0, 0]),
}


@pytest.mark.parametrize("case", sorted(CEIL_CASES))
def test_max_pool_ceil_mode_has_onnx_shape_and_values(case: str) -> None:
    size, kernel, stride, pads = CEIL_CASES[case]
    shape = (1, 4, size, size + 1)
    b = GraphBuilder(6)
    x = b.node("Relu", [b.conv(b.input(shape), 4, 4, pads=[1, 1, 1, 1])])
    out = b.node("MaxPool", [x], kernel_shape=[kernel, kernel], strides=[stride, stride], pads=pads, ceil_mode=1)
    model = quantized(b, out, shape)
    graph = optimize(load_onnx(model))
    expected = Reference(model).first(samples(shape, 1, 0)[0]).shape
    assert graph.output_tensors()[0].shape == tuple(expected)
    assert_matches_onnxruntime(model, shape)


def test_average_pool_ceil_mode_with_a_partial_window_is_refused_with_the_reason() -> None:
    shape = (1, 4, 12, 12)
    b = GraphBuilder(7)
    out = b.node("AveragePool", [b.conv(b.input(shape), 4, 4)], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    with pytest.raises(HwcodesignError, match="ceil_mode=1 adds a partial window"):
        load_onnx(quantized(b, out, shape))


@pytest.mark.parametrize("count_include_pad", [0, 1])
def test_average_pool_count_include_pad(count_include_pad: int) -> None:
    """Unpadded (DenseNet's transitions) both values are the same mean; padded, only 1 is a fixed divisor."""
    shape = (1, 4, 10, 10)
    for pads, accepted in (([0, 0, 0, 0], True), ([1, 1, 1, 1], bool(count_include_pad))):
        b = GraphBuilder(8)
        out = b.node("AveragePool", [b.node("Relu", [b.conv(b.input(shape), 4, 4)])], kernel_shape=[2, 2],
                     strides=[2, 2], pads=pads, count_include_pad=count_include_pad)
        model = quantized(b, out, shape)
        if accepted:
            assert_matches_onnxruntime(model, shape)
        else:
            with pytest.raises(HwcodesignError, match="count_include_pad=0 with padding"):
                load_onnx(model)


# --------------------------------------------------------------------------- explicit Pad
def pad_node(b: GraphBuilder, x: str, pads: list[int], value: float | None = None, opset: int = 17,
             **attrs: object) -> str:
    inputs = [x, b.const(np.array(pads, np.int64))]
    if value is not None:
        inputs.append(b.const(np.float32(value)))
    return b.node("Pad", inputs, **attrs)


@pytest.mark.parametrize("consumer", ["Conv", "DepthwiseConv", "AveragePool", "MaxPool"])
def test_pad_folds_into_the_window_after_it(consumer: str) -> None:
    shape = (1, 4, 10, 10)
    b = GraphBuilder(9)
    x = b.node("Relu", [b.conv(b.input(shape), 4, 4)])
    if consumer == "MaxPool":  # after a ReLU, real 0 quantizes to the type's minimum: never above the max
        padded = pad_node(b, x, [0, 0, 1, 2, 0, 0, 2, 1], 0.0)
        out = b.node("MaxPool", [padded], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    else:
        padded = pad_node(b, x, [0, 0, 1, 2, 0, 0, 2, 1], 0.0 if consumer == "Conv" else None)
        if consumer == "AveragePool":
            out = b.node("AveragePool", [padded], kernel_shape=[3, 3], strides=[1, 1], count_include_pad=0)
        else:
            out = b.conv(padded, 4, 4, groups=4 if consumer == "DepthwiseConv" else 1, pads=[1, 0, 0, 1])
    model = quantized(b, out, shape)
    graph = optimize(load_onnx(model))
    window = [op for op in graph if isinstance(op, Conv | Pool)][-1]
    own = [1, 1, 1, 1] if consumer == "MaxPool" else [1, 0, 0, 1] if "Conv" in consumer else [0, 0, 0, 0]
    assert window.pads == (own[0] + 1, own[1] + 2, own[2] + 2, own[3] + 1)
    assert_matches_onnxruntime(model, shape)


def test_pad_with_axes_input_at_opset_18_folds() -> None:
    shape = (1, 4, 8, 8)
    b = GraphBuilder(10)
    x = b.node("Relu", [b.conv(b.input(shape), 4, 4)])
    padded = b.node("Pad", [x, b.const(np.array([1, 1, 1, 1], np.int64)), "", b.const(np.array([2, 3], np.int64))])
    model = quantized(b, b.conv(padded, 4, 4), shape, 18)
    assert_matches_onnxruntime(model, shape)


@pytest.mark.parametrize(("pads", "value", "mode", "reason"), [
    ([0, 1, 0, 0, 0, 1, 0, 0], None, "constant", "pad the batch or channel axis"),
    ([0, 0, 1, 1, 0, 0, 1, 1], 0.5, "constant", "pads with the integer"),
    ([0, 0, 1, 1, 0, 0, 1, 1], None, "reflect", "mode 'reflect'"),
])
def test_pad_that_cannot_fold_is_refused_naming_the_pad(pads: list[int], value: float | None, mode: str,
                                                        reason: str) -> None:
    shape = (1, 4, 8, 8)
    b = GraphBuilder(11)
    x = b.node("Relu", [b.conv(b.input(shape), 4, 4)])
    padded = pad_node(b, x, pads, value, mode=mode)
    channels = 6 if pads[1] else 4
    model = quantized(b, b.conv(padded, channels, 4), shape)
    with pytest.raises(HwcodesignError, match=rf"node '{padded}_node' \(op Pad\).*{reason}"):
        load_onnx(model)


def test_zero_pad_before_a_max_pool_of_signed_values_is_refused_naming_the_pad() -> None:
    """Without a ReLU, real 0 is above the type's minimum: padding with it could win the max."""
    shape = (1, 4, 8, 8)
    b = GraphBuilder(15)
    padded = pad_node(b, b.conv(b.input(shape), 4, 4), [0, 0, 1, 1, 0, 0, 1, 1], 0.0)
    out = b.node("MaxPool", [padded], kernel_shape=[2, 2], strides=[2, 2])
    with pytest.raises(HwcodesignError, match=rf"node '{padded}_node' \(op Pad\).*the type's minimum"):
        load_onnx(quantized(b, out, shape))


def test_pad_read_by_an_add_is_refused_naming_the_pad() -> None:
    shape = (1, 4, 8, 8)
    b = GraphBuilder(12)
    x = b.node("Relu", [b.conv(b.input(shape), 4, 4, pads=[1, 1, 1, 1])])
    padded = pad_node(b, x, [0, 0, 1, 1, 0, 0, 1, 1])
    out = b.node("Add", [padded, b.conv(x, 4, 4, pads=[2, 2, 2, 2])])
    with pytest.raises(HwcodesignError, match=rf"node '{padded}_node' \(op Pad\).*folds only into the Conv"):
        load_onnx(quantized(b, out, shape))


# --------------------------------------------------------------------------- constants and shapes
def test_a_batch_norm_weight_quantized_twice_is_requantized_as_onnxruntime_does() -> None:
    """TorchScript shares equal initializers: BN 2's weight is Identity(BN 1's weight), and
    quantize_static quantizes BN 1's DequantizeLinear output again (DenseNet-121). BN 1 follows
    a Concat, so it is a standalone per-channel affine."""
    shape = (1, 4, 8, 8)
    b = GraphBuilder(13)
    x = b.input(shape)
    cat = b.node("Concat", [b.node("Relu", [b.conv(x, 4, 4, pads=[1, 1, 1, 1])]),
                            b.node("Relu", [b.conv(x, 4, 4, k=1)])], axis=1)
    gamma = b.const(b.rng.uniform(0.5, 1.5, 8).astype(np.float32))
    params = [b.const(p.astype(np.float32)) for p in (b.rng.normal(0, 0.2, 8), b.rng.normal(0, 0.2, 8),
                                                      b.rng.uniform(0.5, 2, 8))]
    first = b.node("Relu", [b.node("BatchNormalization", [cat, gamma, *params])])
    second = b.node("BatchNormalization", [b.conv(first, 8, 8, k=1), b.node("Identity", [gamma]), *params])
    model = quantized(b, b.conv(b.node("Relu", [second]), 8, 4, k=1), shape)
    requantized = [n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0].startswith("identity")]
    assert requantized, "the quantizer no longer writes the pattern this test is about"
    assert_matches_onnxruntime(model, shape)


def test_torchscript_shape_arithmetic_folds_before_the_reshape() -> None:
    """x.view(x.size(0), -1) as TorchScript writes it: Shape -> Gather(0) -> Unsqueeze -> Concat
    with [-1] -> Reshape, lowered as the Flatten the default exporter writes."""
    shape = (1, 4, 8, 8)
    b = GraphBuilder(14)
    pooled = b.node("GlobalAveragePool", [b.node("Relu", [b.conv(b.input(shape), 4, 8)])])
    batch = b.node("Gather", [b.node("Shape", [pooled]), b.const(np.array(0, np.int64))], axis=0)
    target = b.node("Concat", [b.node("Unsqueeze", [batch, b.const(np.array([0], np.int64))]),
                               b.const(np.array([-1], np.int64))], axis=0)
    flat = b.node("Reshape", [pooled, target])
    model = quantized(b, b.gemm(flat, 8, 5), shape)
    graph = optimize(load_onnx(model))
    assert [op.kind for op in graph][-2:] == ["GlobalAvgPool", "Linear"]
    assert_matches_onnxruntime(model, shape)
