"""Lowering of channel re-routing: Split and Slice along channels (contiguous ranges, step 1), a
Gather of channels with constant indices, and the channel shuffle.

Each output is a pending layer on its input's grid (a passthrough, as a nearest Resize): the
QuantizeLinear onnxruntime writes after it, on the same grid, makes its requantization the
identity; another grid makes it a real output stage.

The channel shuffle is three nodes, Reshape (N, C, H, W) -> (N, g, C/g, H, W), Transpose
(0, 2, 1, 3, 4), Reshape -> (N, C, H, W), with onnxruntime's QuantizeLinear/DequantizeLinear
pairs between them (quantize_static puts them around every node). `recognize-channel-shuffle`
checks the whole chain from its first Reshape (each tensor on it read by the next node only) and
lowers that Reshape to the permutation; the Transpose and the last Reshape of a recognised chain
pass their input on (their Q/DQ pairs see a 4-D tensor on one grid). Any other Transpose is
refused by name.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType

import numpy as np
import onnx

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.frontend.context import LoweringContext
from hwcodesign.frontend.values import Activation, FinalStage, OutputQuantizer, Pending
from hwcodesign.ir.op import Op
from hwcodesign.ir.types import Tensor
from hwcodesign.ops.facets.lowering import FamilyLowering, Pattern
from hwcodesign.ops.route.ir import ChannelPermute, ChannelSlice, shuffle_order

SHUFFLE_PERM = [0, 2, 1, 3, 4]
QDQ = ("QuantizeLinear", "DequantizeLinear")


def channel_input(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> Tensor:
    x = ctx.activation(node, name, 0)
    if x.flat:
        raise UnsupportedModelError(name, node.op_type, "re-routes channels of a flattened tensor")
    return x.tensor


def axis_of(node: onnx.NodeProto, name: str, axis: int, rank: int = 4) -> int:
    normal = axis + rank if axis < 0 else axis
    if not 0 <= normal < rank:
        raise UnsupportedModelError(name, node.op_type, f"axis {axis} of a rank-{rank} tensor")
    return normal


def route_pending(ctx: LoweringContext, node: onnx.NodeProto, name: str, x: Tensor, channels: int,
                  make: Callable[[str, Tensor, FinalStage], Op]) -> Pending:
    """A re-routing layer of `channels` output channels on x's grid, finished by its quantizer."""
    layer_name = ctx.unique(name)

    def build(stage: FinalStage) -> Op:
        return make(layer_name, stage.output, stage)

    shape = (x.shape[0], channels, x.shape[2], x.shape[3])
    return Pending(name, node.op_type, shape, np.full(1, x.scale), build, has_bias=False,
                   passthrough=OutputQuantizer.of(x))


def channel_range(ctx: LoweringContext, node: onnx.NodeProto, name: str, out: str, x: Tensor, start: int,
                  stop: int) -> None:
    """Output `out` is channels [start, stop) of x (all of them: x itself)."""
    if stop <= start:
        raise UnsupportedModelError(name, node.op_type, f"selects no channels ([{start}, {stop}))")
    if (start, stop) == (0, x.channels):
        ctx.values[out] = Activation(x)
        return
    ctx.values[out] = route_pending(
        ctx, node, name, x, stop - start,
        lambda layer, output, stage: ChannelSlice(layer, (x.name,), output, start, stage.requant()))


def split(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    attrs = ctx.attrs(node)
    x = channel_input(ctx, node, name)
    if axis_of(node, name, int(attrs.get("axis", 0))) != 1:  # type: ignore[call-overload]
        raise UnsupportedModelError(name, node.op_type, f"split along axis {attrs.get('axis', 0)}; only channels "
                                    "(axis 1)")
    outputs = list(node.output)
    if ctx.optional(node, 1) is not None:
        sizes = [int(s) for s in ctx.constant(node, name, 1, "split sizes").reshape(-1)]
    elif "split" in attrs:
        sizes = [int(s) for s in attrs["split"]]  # type: ignore[union-attr]
    else:
        parts = int(attrs.get("num_outputs", len(outputs)))  # type: ignore[call-overload]
        size = -(-x.channels // parts)
        sizes = [min(size, x.channels - i * size) for i in range(parts)]
    if len(sizes) != len(outputs) or sum(sizes) != x.channels or min(sizes) < 1:
        raise UnsupportedModelError(name, node.op_type, f"split sizes {sizes} do not cut {x.channels} channels "
                                    f"into {len(outputs)} outputs")
    start = 0
    for out, size in zip(outputs, sizes):
        if out:
            channel_range(ctx, node, name, out, x, start, start + size)
        start += size


def slice_channels(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    x = channel_input(ctx, node, name)
    starts = ctx.constant(node, name, 1, "starts").astype(np.int64).reshape(-1)
    ends = ctx.constant(node, name, 2, "ends").astype(np.int64).reshape(-1)
    axes = (ctx.constant(node, name, 3, "axes").astype(np.int64).reshape(-1) if ctx.optional(node, 3) is not None
            else np.arange(starts.size))
    steps = (ctx.constant(node, name, 4, "steps").astype(np.int64).reshape(-1) if ctx.optional(node, 4) is not None
             else np.ones(starts.size, np.int64))
    start, stop = 0, x.channels
    for begin, end, axis, step in zip(starts.tolist(), ends.tolist(), axes.tolist(), steps.tolist()):
        axis = axis_of(node, name, axis)
        size = x.shape[axis]
        begin = min(max(begin + size if begin < 0 else begin, 0), size)
        end = min(max(end + size if end < 0 else end, 0), size)
        if axis != 1:
            if (begin, end, step) != (0, size, 1):
                raise UnsupportedModelError(name, node.op_type, f"slices axis {axis}; only a channel range "
                                            "(axis 1, step 1) is a stream re-routing")
            continue
        if step != 1:
            raise UnsupportedModelError(name, node.op_type, f"channel step {step}; only contiguous channel "
                                        "ranges (step 1) are supported")
        start, stop = begin, end
    channel_range(ctx, node, name, node.output[0], x, start, stop)


def gather_channels(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    """A Gather of channels by constant 1-D indices: a permutation or a contiguous range."""
    x = channel_input(ctx, node, name)
    if axis_of(node, name, int(ctx.attrs(node).get("axis", 0))) != 1:  # type: ignore[call-overload]
        raise UnsupportedModelError(name, node.op_type, "gathers along an axis other than channels (axis 1)")
    indices = ctx.constant(node, name, 1, "indices").astype(np.int64)
    if indices.ndim != 1:
        raise UnsupportedModelError(name, node.op_type, f"indices of rank {indices.ndim}; only a 1-D list of "
                                    "channels keeps the tensor 4-D")
    order = [int(i) + x.channels if i < 0 else int(i) for i in indices.tolist()]
    if order and order == list(range(order[0], order[0] + len(order))):
        channel_range(ctx, node, name, node.output[0], x, order[0], order[0] + len(order))
        return
    if sorted(order) != list(range(x.channels)):
        raise UnsupportedModelError(name, node.op_type, "indices neither permute the channels nor select a "
                                    "contiguous range of them")
    ctx.values[node.output[0]] = route_pending(
        ctx, node, name, x, x.channels,
        lambda layer, output, stage: ChannelPermute(layer, (x.name,), output, tuple(order), stage.requant()))


# -- the channel shuffle ----------------------------------------------------------------------------


def consumers_of(model: onnx.ModelProto, tensor: str) -> list[onnx.NodeProto]:
    return [node for node in model.graph.node if tensor in node.input]


def producer_of(model: onnx.ModelProto, tensor: str) -> onnx.NodeProto | None:
    return next((node for node in model.graph.node if tensor in node.output), None)


def next_node(model: onnx.ModelProto, tensor: str) -> onnx.NodeProto | None:
    """The one node reading `tensor`, past QuantizeLinear/DequantizeLinear nodes; None if any tensor
    on the way has another reader (or is a graph output)."""
    outputs = {value.name for value in model.graph.output}
    while True:
        readers = consumers_of(model, tensor)
        if len(readers) != 1 or tensor in outputs:
            return None
        if readers[0].op_type not in QDQ:
            return readers[0]
        tensor = readers[0].output[0]


def previous_node(model: onnx.ModelProto, tensor: str) -> onnx.NodeProto | None:
    """The node making `tensor`, past QuantizeLinear/DequantizeLinear nodes."""
    node = producer_of(model, tensor)
    while node is not None and node.op_type in QDQ:
        node = producer_of(model, node.input[0])
    return node


def reshaped(ctx: LoweringContext, node: onnx.NodeProto, shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The shape a Reshape node makes of `shape` (None: its target is not a constant)."""
    if len(node.input) < 2:
        return None
    target = ctx.constant_ahead(node.input[1])
    if target is None:
        return None
    allow_zero = int(ctx.attrs(node).get("allowzero", 0))  # type: ignore[call-overload]
    dims = [shape[i] if d == 0 and not allow_zero and i < len(shape) else int(d)
            for i, d in enumerate(target.astype(np.int64).reshape(-1).tolist())]
    if dims.count(-1) == 1:
        known = int(np.prod([d for d in dims if d != -1]))
        dims[dims.index(-1)] = int(np.prod(shape)) // max(known, 1)
    return tuple(dims) if int(np.prod(dims)) == int(np.prod(shape)) else None


def shuffle_chain(ctx: LoweringContext, first: onnx.NodeProto,
                  shape: tuple[int, ...]) -> tuple[int, onnx.NodeProto, onnx.NodeProto] | None:
    """(groups, Transpose, last Reshape) when the Reshape `first` of a 4-D `shape` starts a channel
    shuffle; None otherwise."""
    if first.op_type != "Reshape" or len(shape) != 4:
        return None
    n, c, h, w = shape
    grouped = reshaped(ctx, first, shape)
    if grouped is None or len(grouped) != 5 or grouped[0] != n or grouped[3:] != (h, w) or grouped[1] < 2:
        return None
    transpose = next_node(ctx.model, first.output[0])
    if transpose is None or transpose.op_type != "Transpose" or \
            list(ctx.attrs(transpose).get("perm", [])) != SHUFFLE_PERM:  # type: ignore[call-overload]
        return None
    last = next_node(ctx.model, transpose.output[0])
    if last is None or last.op_type != "Reshape":
        return None
    if reshaped(ctx, last, (n, grouped[2], grouped[1], h, w)) != (n, c, h, w):
        return None
    return grouped[1], transpose, last


def value_shape(ctx: LoweringContext, tensor: str) -> tuple[int, ...] | None:
    value = ctx.values.get(tensor)
    if isinstance(value, Activation) and not value.flat:
        return value.tensor.shape
    if isinstance(value, Pending) and not value.flat:
        return value.shape
    return None


def chain_start(ctx: LoweringContext, node: onnx.NodeProto) -> tuple[onnx.NodeProto, tuple[int, ...]] | None:
    """The first Reshape of the shuffle chain `node` (its Transpose or last Reshape) belongs to."""
    transpose = node if node.op_type == "Transpose" else previous_node(ctx.model, node.input[0])
    if transpose is None or transpose.op_type != "Transpose":
        return None
    first = previous_node(ctx.model, transpose.input[0])
    if first is None or first.op_type != "Reshape":
        return None
    shape = value_shape(ctx, first.input[0])
    if shape is None:
        return None
    found = shuffle_chain(ctx, first, shape)
    if found is None or node not in found[1:]:
        return None
    return first, shape


def recognize_shuffle(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> bool:
    """`recognize-channel-shuffle`: the Reshape starting a channel shuffle passes its input on (the
    (N, g, C/g, H, W) view and the Transpose move nothing yet); the chain's last Reshape is the
    permutation, so the layer's output is named after the quantizer of the shuffled (N, C, H, W)
    tensor, as every other layer is named after the quantizer that fixes its grid."""
    start = chain_start(ctx, node)
    if start is not None:  # the chain's last Reshape
        first, shape = start
        found = shuffle_chain(ctx, first, shape)
        assert found is not None  # chain_start found it
        x = channel_input(ctx, node, name)
        order = shuffle_order(x.channels, found[0])
        ctx.values[node.output[0]] = route_pending(
            ctx, node, name, x, x.channels,
            lambda layer, output, stage: ChannelPermute(layer, (x.name,), output, order, stage.requant()))
        return True
    shape = value_shape(ctx, node.input[0])
    if shape is None or shuffle_chain(ctx, node, shape) is None:
        return False
    ctx.values[node.output[0]] = ctx.value(node, name, 0)
    return True


def transpose(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> None:
    """The Transpose of a recognised channel shuffle (its first Reshape did the permutation)."""
    if chain_start(ctx, node) is None:
        raise UnsupportedModelError(
            name, node.op_type, "only the Transpose(0, 2, 1, 3, 4) of a channel shuffle (Reshape to (N, g, C/g, H, "
            "W), Transpose, Reshape back to (N, C, H, W), pattern 'recognize-channel-shuffle') is supported")
    ctx.values[node.output[0]] = ctx.value(node, name, 0)


LOWERING = FamilyLowering(
    rules=MappingProxyType({"Split": split, "Slice": slice_channels, "Gather": gather_channels, "Transpose": transpose}),
    patterns=(Pattern("recognize-channel-shuffle", ("Reshape",), recognize_shuffle,
                      "Reshape (N, g, C/g, H, W) -> Transpose(0, 2, 1, 3, 4) -> Reshape (N, C, H, W): a channel "
                      "permutation"),),
)
