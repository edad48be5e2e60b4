"""Hardware-aware mixed-precision search: every layer's weight format and folding in one ILP.

Per weight layer (Conv, Gemm/MatMul) and candidate format f (int8, int4, dybit4, ...):
- a **sensitivity** s[l, f]: the error the model's output takes when only layer l is given
  format f, measured with the golden model on calibration frames (mean squared difference of
  the dequantized outputs from the uniform-int8 model's, relative to their mean square). The
  sum over layers is the accuracy proxy (additive, as HAWQ-style searches assume);
- for each of its candidate foldings, the layer's cycles and resources in that format (the
  mapper's cost model: the code's storage width, the decoded value's multipliers, DyBit's
  decoders; `mapper/cost.py`).

The integer program (binaries x[l, (f, folding)], one per layer; T >= every layer's cycles):
    min  sum s[l, f] x            s.t. resources <= board limits, T <= cycle budget (--fps)
and its reverse (fastest mapping within a sensitivity budget). `pareto_front` sweeps the cycle
budget over the cycle counts the candidates can have and keeps, for each, the least-sensitive
mapping (then the fastest among those): the front is monotone by construction, and CBC proves
each point optimal for the cost model (`mapper.precision`: the program and its front). FIFO
depths are the mapper's defaults here; compiling the chosen formats re-runs the full mapper
(stream planning included). This flow measures the sensitivities and drives the program.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import onnx

from hwcodesign.boards import Board
from hwcodesign.errors import HwcodesignError
from hwcodesign.frontend.formats import weight_nodes, with_weight_formats
from hwcodesign.hardware.stream import dma_bytes_per_cycle
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.op import Op
from hwcodesign.mapper.cost import candidate_foldings, layer_cost
from hwcodesign.mapper.precision import (
    FRONT_POINTS,
    Candidate,
    SearchInfeasible,
    SearchResult,
    SearchSpace,
    only_format,
    pareto_front,
    solve,
)
from hwcodesign.mapper.solver import DEFAULT_TIME_LIMIT, Deadline
from hwcodesign.mapper.streams import output_fifos, with_output_fifos
from hwcodesign.mapper.table import cost_vector, cycle_budget, limits_text, non_dominated, resource_limits
from hwcodesign.ops import Conv, Linear
from hwcodesign.partition import load_partitioned
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.quant.formats import INT8, WeightFormat
from hwcodesign.sim.golden import dequantize_outputs, run_golden

DEFAULT_FORMATS = ("int8", "int4", "dybit4", "dybit3", "dybit2")


def calibration_frames(graph: Graph, frames: np.ndarray | None, count: int = 16, seed: int = 0) -> np.ndarray:
    """Integer input frames for the sensitivities: the given float (quantized here) or integer
    frames, else `count` frames uniform over the input's quantized range (a data-free proxy)."""
    tensor = graph.inputs[0].output
    if frames is None:
        rng = np.random.default_rng(seed)
        return tensor.dtype.sample(rng, (count,) + tensor.shape[1:])
    frames = np.asarray(frames)
    frames = frames[None] if frames.ndim == 3 else frames
    return tensor.quantize(frames) if np.issubdtype(frames.dtype, np.floating) else frames.astype(np.int64)


def output_error(graph: Graph, frames: np.ndarray, reference: Mapping[str, np.ndarray]) -> float:
    """Mean squared difference of `graph`'s dequantized outputs from `reference`, relative to
    the reference's mean square (summed over outputs)."""
    outputs = dequantize_outputs(graph, run_golden(graph, frames))
    return float(sum(np.mean((outputs[n] - r) ** 2) / max(np.mean(r ** 2), 1e-12) for n, r in reference.items()))


def check_weight_layers(graph: Graph, node_names: Sequence[str]) -> None:
    """The weight layers must keep their node names in the IR (the frontend keeps them unless
    two nodes share one): formats are written by node name and costed by IR layer."""
    ir_names = {op.name for op in graph if isinstance(op, Conv | Linear)}
    missing = [n for n in node_names if n not in ir_names]
    if missing:
        raise HwcodesignError(f"weight layers {', '.join(missing)} do not appear under their node names in the "
                              "lowered graph; give the model's Conv/Gemm/MatMul nodes unique names")


def build_space(model: onnx.ModelProto, board: Board, formats: Sequence[WeightFormat],
                frames: np.ndarray | None = None, max_candidates: int = 96,
                progress: Callable[[str], None] | None = None) -> SearchSpace:
    """Sensitivities and costs of every (layer, format, folding) of `model` on `board`."""
    load_onnx(model)  # the model as given must be valid: its weights are re-quantized below, hiding their types
    nodes = sorted(weight_nodes(model))
    if not nodes:
        raise HwcodesignError("the model has no named Conv/Gemm/MatMul node: nothing to choose formats for")
    base_model = with_weight_formats(model, {n: INT8 for n in nodes})
    base = optimize(load_onnx(base_model))
    check_weight_layers(base, nodes)
    calibration = calibration_frames(base, frames)
    reference = dequantize_outputs(base, run_golden(base, calibration))
    sensitivities: dict[str, dict[str, float]] = {n: {} for n in nodes}
    typed_ops: dict[tuple[str, str], Op] = {}  # (layer, format) -> the layer's op in that format
    for count, node in enumerate(nodes, 1):
        if progress:
            progress(f"sensitivity of layer {count}/{len(nodes)} ({node}) to {', '.join(map(str, formats))}")
        for fmt in formats:
            graph = base if fmt == INT8 else optimize(load_onnx(with_weight_formats(base_model, {node: fmt})))
            typed_ops[(node, fmt.name)] = graph.op(node)
            sensitivities[node][fmt.name] = 0.0 if fmt == INT8 else output_error(graph, calibration, reference)
    rate = dma_bytes_per_cycle(board.ddr_bandwidth_gbps, board.clock_mhz)
    layers, candidates = [], []
    for op in base:
        inputs = base.input_tensors(op)
        options: list[Candidate] = []
        variants = [(fmt, typed_ops[(op.name, fmt.name)]) for fmt in formats] if op.name in sensitivities \
            else [(None, op)]
        for fmt, typed in variants:
            sensitivity = sensitivities[op.name][fmt.name] if fmt is not None else 0.0
            for folding in candidate_foldings(typed, inputs, max_candidates):
                cost = with_output_fifos(layer_cost(typed, inputs, folding, board.ps_type, rate),
                                         output_fifos(base, op.name, folding))
                options.append(Candidate(fmt, folding, cost, sensitivity))
        layers.append(op.name)
        kept = non_dominated([(*cost_vector(c.cost), c.sensitivity) for c in options])
        candidates.append(tuple(options[i] for i in kept))
    return SearchSpace(base, tuple(layers), tuple(candidates), sensitivities)


def search(model: onnx.ModelProto, board: Board, formats: Sequence[WeightFormat] | None = None,
           fps: float | None = None, max_sensitivity: float | None = None, frames: np.ndarray | None = None,
           caps: dict[str, float] | None = None, max_candidates: int = 96, points: int = FRONT_POINTS,
           progress: Callable[[str], None] | None = None,
           time_limit: float | None = DEFAULT_TIME_LIMIT) -> SearchResult:
    """Front and chosen formats: the least-sensitive mapping reaching `fps` (default: the
    fastest mapping within `max_sensitivity`, else the least-sensitive one). Every integer
    program shares `time_limit` seconds (None: no limit; `mapper.solver`). A model with float parts
    around its integer core is searched on its accelerator part (`partition`): the host's layers
    stay float whatever the formats."""
    start = time.perf_counter()
    model = load_partitioned(model)[0].accelerator
    formats = list(formats or [WeightFormat.parse(f) for f in DEFAULT_FORMATS])
    if INT8 not in formats:
        formats.insert(0, INT8)
    space = build_space(model, board, formats, frames, max_candidates, progress)
    limits = resource_limits(board, caps)
    if progress:
        progress(f"solving the joint ILP ({sum(len(c) for c in space.candidates)} choices over {len(space.layers)} layers)")
    deadline = Deadline(time_limit)
    front = pareto_front(space, limits, points, deadline)
    if not front:
        raise SearchInfeasible(f"model does not fit {board.name} in any format and folding "
                               f"(even {min(map(str, formats))} everywhere at minimum folding) within "
                               f"{limits_text(limits, caps)}")
    if fps is not None:
        chosen = solve(space, limits, "sensitivity", max_cycles=cycle_budget(board, fps), deadline=deadline)
        if chosen is None:
            raise SearchInfeasible(f"no choice of formats {', '.join(map(str, formats))} reaches {fps:g} fps on "
                                   f"{board.name}: the fastest is {front[0].fps(board):.1f} fps")
    elif max_sensitivity is not None:
        chosen = solve(space, limits, "cycles", max_sensitivity=max_sensitivity, deadline=deadline)
        if chosen is None:
            raise SearchInfeasible(f"no mapping on {board.name} keeps the sensitivity within {max_sensitivity:g}")
    else:
        chosen = front[-1]
    uniform = solve(only_format(space, INT8), limits, "cycles", deadline=deadline)
    return SearchResult(board, space, front, chosen, uniform, fps, time.perf_counter() - start, deadline.note)
