"""State a host part carries from frame to frame: the hidden state of a recurrent head.

ESDA's eye tracker runs a GRU on the host that keeps its hidden state across event frames. A model
exported for one step has the state as an extra input and output (torch: `forward(x, h) -> (y,
h)`). The pair is found on the recurrent node itself (a GRU/RNN's `initial_h` read straight from a
graph input and its `Y_h` written straight to a graph output; an LSTM's `initial_c`/`Y_c` too,
through shape plumbing), or named by the user as `input=output`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import onnx

from hwcodesign.errors import UnsupportedModelError

RECURRENT = {"GRU": ((5, 1),), "RNN": ((5, 1),), "LSTM": ((5, 1), (6, 2))}  # (state input, state output) indices
PASS_THROUGH = ("Identity", "Squeeze", "Unsqueeze", "Reshape", "Cast")


@dataclass(frozen=True)
class StatePair:
    """A graph input fed, on the next frame, with the graph output of the same shape."""

    input: str
    output: str
    shape: tuple[int, ...]
    dtype: str


def state_pairs(model: onnx.ModelProto, named: Sequence[tuple[str, str]] = ()) -> list[StatePair]:
    """The recurrent nodes' state pairs, then the named ones; each input and output once."""
    graph = model.graph
    inputs = {value.name: value for value in graph.input}
    outputs = {value.name: value for value in graph.output}
    producer = {t: node for node in graph.node for t in node.output if t}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for tensor in node.input:
            consumers.setdefault(tensor, []).append(node)
    found: list[tuple[str, str]] = []
    for node in graph.node:
        for state_in, state_out in RECURRENT.get(node.op_type, ()):
            if len(node.input) <= state_in or len(node.output) <= state_out:
                continue
            source = upstream_input(node.input[state_in], producer, inputs)
            sink = downstream_output(node.output[state_out], consumers, outputs)
            if source and sink:
                found.append((source, sink))
    found.extend(named)
    pairs: list[StatePair] = []
    for state_in, state_out in dict.fromkeys(found):
        if state_in not in inputs:
            raise UnsupportedModelError(state_in, "state", "is not a graph input of the model")
        if state_out not in outputs:
            raise UnsupportedModelError(state_out, "state", "is not a graph output of the model")
        shape_in, shape_out = static_shape(inputs[state_in]), static_shape(outputs[state_out])
        if shape_in != shape_out or shape_in is None:
            raise UnsupportedModelError(state_in, "state", f"input shape {shape_in} and output '{state_out}' shape "
                                        f"{shape_out} must be equal and static to carry the state across frames")
        dtype = onnx.helper.tensor_dtype_to_np_dtype(inputs[state_in].type.tensor_type.elem_type).name
        pairs.append(StatePair(state_in, state_out, shape_in, dtype))
    for attribute in ("input", "output"):
        names = [getattr(pair, attribute) for pair in pairs]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise UnsupportedModelError(repeated[0], "state", f"is the {attribute} of two state pairs")
    return pairs


def upstream_input(tensor: str, producer: dict[str, onnx.NodeProto], inputs: dict) -> str | None:
    while tensor not in inputs:
        node = producer.get(tensor)
        if node is None or node.op_type not in PASS_THROUGH:
            return None
        tensor = node.input[0]
    return tensor


def downstream_output(tensor: str, consumers: dict[str, list[onnx.NodeProto]], outputs: dict) -> str | None:
    while tensor not in outputs:
        following = consumers.get(tensor, [])
        if len(following) != 1 or following[0].op_type not in PASS_THROUGH:
            return None
        tensor = following[0].output[0]
    return tensor


def static_shape(value: onnx.ValueInfoProto) -> tuple[int, ...] | None:
    dims = value.type.tensor_type.shape.dim
    if not value.type.tensor_type.HasField("shape") or any(not d.HasField("dim_value") for d in dims):
        return None
    return tuple(d.dim_value for d in dims)
