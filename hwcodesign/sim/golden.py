"""The golden model: the lowered graph executed in exact integer arithmetic.

This is the single definition of what the hardware computes: this module walks the graph and
each op's family gives its arithmetic (`hwcodesign/ops/<family>/golden.py`, interface and shared
helpers in `hwcodesign/ops/facets/golden.py`). Every layer subtracts its input zero point,
accumulates integer products exactly, and applies its `Requant` output stage. The C simulation of
generated HLS code must match it bit for bit; onnxruntime on the source model must match it to
within one LSB (the only differences being the fixed-point requantization multiplier and
round-half-up versus round-half-to-even on exact ties).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hwcodesign.ir.graph import Graph
from hwcodesign.ir.op import Input, Op
from hwcodesign.ir.types import Tensor
from hwcodesign.ops import family_of
from hwcodesign.ops.facets.golden import frame_chunks
from hwcodesign.sim.sparsity import active_mask, root_mask

CHUNK_BYTES = 2**23
"""Bytes of the largest int64 tensor of a chunk of frames the graph runs at once. Within a chunk
every layer's arrays stay small enough to be reused from the allocator's heap and mostly to stay
in cache; over a whole batch of 16 each layer's passes went out to memory and every large array
was fresh pages from the kernel. Measured per frame, one thread, against the whole batch at once:
CoDeNet a 95 -> 54 ms, MobileNetV2 96x96 14.2 -> 11.4 ms; ResNet-18 96x96, whose time is large
matrix products that batching helps, 23.1 -> 25.5 ms (4 MB chunks: 30 ms)."""


def run_op(op: Op, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    """Execute one layer on integer inputs; the result is int64 in the output type's range."""
    return family_of(op).golden.run(op, args, tensors)  # every family has golden rules (OpFamily)


def run_golden(graph: Graph, inputs: np.ndarray | Mapping[str, np.ndarray],
               keep_intermediates: bool = False) -> dict[str, np.ndarray]:
    """Run the graph on integer inputs (one array for single-input graphs, else by Input name).

    Returns the graph outputs by tensor name (every tensor with `keep_intermediates`). The frames
    run a chunk at a time (`CHUNK_BYTES`): each frame is independent (state between frames is the
    host's, fed back as an input), so the integers are the same.
    """
    graph_inputs = graph.inputs
    if not isinstance(inputs, Mapping):
        if len(graph_inputs) != 1:
            raise ValueError(f"graph has {len(graph_inputs)} inputs; pass a dict by input name")
        inputs = {graph_inputs[0].name: inputs}
    frames = {}
    for op in graph_inputs:
        if op.name not in inputs:
            raise ValueError(f"missing input '{op.name}'")
        frames[op.name] = check_input(op.output, np.asarray(inputs[op.name]))
    count = next(iter(frames.values())).shape[0] if frames else 0
    largest = max(int(np.prod(op.output.shape[1:])) for op in graph)
    chunks = frame_chunks(count, 8 * largest, CHUNK_BYTES)
    if len(chunks) <= 1:
        return run_frames(graph, frames, keep_intermediates)
    parts = [run_frames(graph, {name: value[chunk] for name, value in frames.items()}, keep_intermediates)
             for chunk in chunks]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def run_frames(graph: Graph, frames: Mapping[str, np.ndarray], keep_intermediates: bool) -> dict[str, np.ndarray]:
    """`run_golden` on checked input frames, in one pass over the graph. A tensor no later layer
    reads is dropped as soon as its last reader has run (unless every tensor is kept)."""
    values: dict[str, np.ndarray] = {}
    roots: dict[str, np.ndarray] = {}  # active sites of each sparse input
    last_reader = {name: index for index, op in enumerate(graph) for name in op.inputs}
    kept = set(graph.outputs)
    for index, op in enumerate(graph):
        if isinstance(op, Input):
            values[op.output.name] = run_op(op, [frames[op.name]], [op.output])
            if op.output.sparse:
                roots[op.output.name] = root_mask(values[op.output.name], op.output)
            continue
        args = [values[name] for name in op.inputs]
        result = run_op(op, args, graph.input_tensors(op))
        if op.output.active is not None:  # a sparse layer computes only its active sites
            mask = active_mask(op.output.active, roots)[:, None]
            result = np.where(mask, result, op.output.zero_point)
        values[op.output.name] = result
        if not keep_intermediates:
            for name in set(op.inputs):
                if last_reader[name] == index and name not in kept:
                    del values[name]
    if keep_intermediates:
        return values
    return {name: values[name] for name in graph.outputs}


def check_input(tensor: Tensor, x: np.ndarray) -> np.ndarray:
    """Inputs must already be integers of the input type and the declared shape."""
    expected = tensor.shape[1:]
    if x.ndim == 3:
        x = x[None]
    if tuple(x.shape[1:]) != expected:
        raise ValueError(f"input '{tensor.name}' must be (N, {', '.join(map(str, expected))}), got {x.shape}")
    if not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"input '{tensor.name}' must be integers; quantize it with quantize_input()")
    if not tensor.dtype.contains(x):
        raise ValueError(f"input '{tensor.name}' has values outside {tensor.dtype}")
    return x.astype(np.int64)


def quantize_input(graph: Graph, x: np.ndarray, input_name: str | None = None) -> np.ndarray:
    """Float frames -> the integers the accelerator takes (QuantizeLinear semantics, then the
    input's window packed into channels where the graph has one: `Input.from_frames`)."""
    inputs = graph.inputs
    op = inputs[0] if input_name is None else next(i for i in inputs if i.name == input_name)
    integers = op.output.quantize(x)
    return op.from_frames(integers if integers.ndim == 4 else integers[None]) if op.window else integers


def dequantize_outputs(graph: Graph, outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: graph.tensor(name).dequantize(q) for name, q in outputs.items()}
