"""Density-aware timing of a sparse (event-camera) network: latency per frame from the frame's
own active sites, beside the dense-equivalent latency of the same hardware.

The pipeline simulator (`latency.simulate(..., inputs=...)`) runs each frame with its sparse
stages' rows costing what that frame's active sites cost; this module turns that into a profile:
per frame the latency and the active sites of every sparse layer, and the latency the same
foldings would have if every site were active (what a dense accelerator of this size spends).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from hwcodesign.ir.graph import Graph
from hwcodesign.mapper.mapping import Mapping as DataflowMapping
from hwcodesign.sim.latency import simulate
from hwcodesign.sim.sparsity import row_counts


@dataclass(frozen=True)
class FrameTiming:
    latency_ms: float
    input_density: float
    active_sites: dict[str, int]  # per sparse tensor


@dataclass(frozen=True)
class SparseProfile:
    frames: tuple[FrameTiming, ...]
    dense_latency_ms: float
    design_densities: dict[str, float]

    @property
    def latencies_ms(self) -> np.ndarray:
        return np.array([f.latency_ms for f in self.frames])

    def summary(self) -> dict[str, float]:
        latencies = self.latencies_ms
        densities = np.array([f.input_density for f in self.frames])
        return {
            "frames": len(self.frames), "latency_ms_median": float(np.median(latencies)),
            "latency_ms_p95": float(np.percentile(latencies, 95)), "latency_ms_max": float(latencies.max()),
            "input_density_mean": float(densities.mean()), "input_density_max": float(densities.max()),
            "dense_latency_ms": self.dense_latency_ms,
        }


def all_active(graph: Graph, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One frame per input in which every site of every sparse input is active (its zero point
    plus one, or minus one at the top of the range)."""
    frames = {}
    for op in graph.inputs:
        tensor = op.output
        value = tensor.zero_point + 1 if tensor.zero_point < tensor.dtype.max else tensor.zero_point - 1
        frames[tensor.name] = np.full((1,) + tensor.shape[1:], value, np.int64)
    return frames


def sparse_profile(graph: Graph, mapping: DataflowMapping, inputs: Mapping[str, np.ndarray],
                   fifo_rows: Mapping[tuple[str, str], int] | None = None) -> SparseProfile:
    """Simulate every frame of `inputs` (integer frames by input tensor name) on its own active
    sites, and one all-active frame for the dense equivalent, all with the FIFO depths of the
    hardware: `fifo_rows`, by default the plan a project of `mapping` is generated with (the
    simulator's plan for every site active; a sparse frame's rows carry fewer tokens, never more)."""
    clock_khz = mapping.board.clock_mhz * 1e3
    counts = row_counts(graph, inputs)
    root = next(op.output for op in graph.inputs if op.output.sparse)
    sites = root.shape[2] * root.shape[3]
    planned = simulate(graph, mapping).fifo_rows if fifo_rows is None else fifo_rows
    frames = []
    for frame in range(next(iter(inputs.values())).shape[0]):
        alone = {name: values[frame:frame + 1] for name, values in inputs.items()}  # latency of the frame alone
        cycles = simulate(graph, mapping, fifo_rows=planned, inputs=alone).frame_latencies[0]
        active = {name: int(rows[frame].sum()) for name, rows in counts.items()}
        frames.append(FrameTiming(cycles / clock_khz, active[root.name] / sites, active))
    dense = simulate(graph, mapping, fifo_rows=planned, inputs=all_active(graph, inputs))
    return SparseProfile(tuple(frames), dense.frame_latencies[0] / clock_khz, dict(mapping.densities))
