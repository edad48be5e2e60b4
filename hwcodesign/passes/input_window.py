"""`pack-input-window`: the first convolution's window packed into the accelerator's input channels.

A Conv reading the frame directly with few channels (an RGB image's 3) uses C of the engine's
SIMD lanes. Rewritten, the accelerator's input is the im2col of the frame (`ir/input_window.py`,
done by the host where it quantizes the frame) and the Conv a 1x1 stride-1 one over C*Kh*Kw
channels with the same integer weights in the same (C, Kh, Kw) order: every accumulator sums the
same products (the padding is the input's zero point, a zero product, as before), so no output
integer changes. What it costs is input bytes: Kh*Kw/(stride_h*stride_w) times the frame's.
Whether that pays is decided by mapping the engine both ways (`flows.simulate.simulate_model`).
"""

from __future__ import annotations

import dataclasses

from hwcodesign.ir.graph import Graph
from hwcodesign.ir.input_window import InputWindow
from hwcodesign.ir.op import Input
from hwcodesign.ir.types import BipolarType
from hwcodesign.ops.conv.ir import Conv

MAX_FRAME_CHANNELS = 4  # an image's channels (RGB, RGBA); wider inputs already fill the lanes
MAX_WINDOW_CHANNELS = 256  # ResNet's 7x7x3 = 147; larger windows multiply the input bytes too much


def packable_first_conv(graph: Graph) -> tuple[Input, Conv] | None:
    """The graph's one input and the Conv that is its only reader, when the rewrite applies."""
    inputs = graph.inputs
    if len(inputs) != 1:
        return None
    source = inputs[0]
    tensor = source.output
    if source.window is not None or tensor.sparse or isinstance(tensor.dtype, BipolarType):
        return None
    if tensor.name in graph.outputs:
        return None
    readers = graph.consumers(tensor.name)
    if len(readers) != 1 or not isinstance(readers[0], Conv):
        return None
    conv = readers[0]
    kh, kw = conv.kernel
    pointwise = (kh, kw) == (1, 1) and conv.stride == (1, 1) and not any(conv.pads)
    if conv.groups != 1 or pointwise or tensor.channels > MAX_FRAME_CHANNELS:
        return None
    if tensor.channels * kh * kw > MAX_WINDOW_CHANNELS or conv.output.sparse:
        return None
    return source, conv


def pack_input_window(graph: Graph) -> Graph:
    """The graph with its first Conv's window packed into the input's channels (unchanged when
    `packable_first_conv` finds none)."""
    found = packable_first_conv(graph)
    if found is None:
        return graph
    source, conv = found
    tensor = source.output
    frame = (tensor.channels, tensor.shape[2], tensor.shape[3])
    window = InputWindow(frame, conv.kernel, conv.stride, conv.pads, conv.dilation, tensor.zero_point)
    packed_tensor = dataclasses.replace(tensor, shape=(tensor.shape[0], *window.shape))
    packed_input = dataclasses.replace(source, output=packed_tensor, window=window)
    weight = conv.weight.reshape(conv.out_channels, window.channels, 1, 1)
    pointwise = dataclasses.replace(conv, weight=weight, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1))
    replaced = {source.name: packed_input, conv.name: pointwise}
    return Graph.from_ops(graph.name, [replaced.get(op.name, op) for op in graph], graph.outputs)
