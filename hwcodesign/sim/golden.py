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
from hwcodesign.sim.sparsity import active_mask, root_mask

CACHE_BYTES = 2**22
"""Bytes of a layer's int64 output computed at once: a chunk of frames that fits in a core's L2
cache, so that a layer's passes over its arrays (products, output stage, conversions) stay in
cache. Over a whole batch each pass went out to memory, and batched layers ran slower than frame
by frame (a CoDeNet depthwise conv: 4x)."""


def run_op(op: Op, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    """Execute one layer on integer inputs; the result is int64 in the output type's range."""
    return family_of(op).golden.run(op, args, tensors)  # every family has golden rules (OpFamily)


def run_op_in_chunks(op: Op, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    """`run_op` a few frames at a time (`CACHE_BYTES`): a layer's frames are independent (state
    between frames is the host's, fed back as an input), so the results are the same."""
    frames = args[0].shape[0] if args and args[0].ndim else 0
    chunk = max(1, CACHE_BYTES // (8 * max(1, int(np.prod(op.output.shape[1:])))))
    if frames <= chunk:
        return run_op(op, args, tensors)
    return np.concatenate([run_op(op, [a[i:i + chunk] for a in args], tensors) for i in range(0, frames, chunk)])


def run_golden(graph: Graph, inputs: np.ndarray | Mapping[str, np.ndarray],
               keep_intermediates: bool = False) -> dict[str, np.ndarray]:
    """Run the graph on integer inputs (one array for single-input graphs, else by Input name).

    Returns the graph outputs by tensor name (every tensor with `keep_intermediates`).
    """
    graph_inputs = graph.inputs
    if not isinstance(inputs, Mapping):
        if len(graph_inputs) != 1:
            raise ValueError(f"graph has {len(graph_inputs)} inputs; pass a dict by input name")
        inputs = {graph_inputs[0].name: inputs}
    values: dict[str, np.ndarray] = {}
    roots: dict[str, np.ndarray] = {}  # active sites of each sparse input
    for op in graph:
        if isinstance(op, Input):
            if op.name not in inputs:
                raise ValueError(f"missing input '{op.name}'")
            values[op.output.name] = run_op(op, [check_input(op.output, np.asarray(inputs[op.name]))], [op.output])
            if op.output.sparse:
                roots[op.output.name] = root_mask(values[op.output.name], op.output)
            continue
        args = [values[name] for name in op.inputs]
        result = run_op_in_chunks(op, args, graph.input_tensors(op))
        if op.output.active is not None:  # a sparse layer computes only its active sites
            mask = active_mask(op.output.active, roots)[:, None]
            result = np.where(mask, result, op.output.zero_point)
        values[op.output.name] = result
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
