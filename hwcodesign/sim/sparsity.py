"""Active sites of sparse tensors: the one definition the golden model, the density measurement
and the density-aware latency simulator share.

A sparse network's root input is active where any channel differs from its zero point (an event
happened there); each strided sparse layer's output is active where any site of its window is
(`ActiveSet.steps`). Densities (active fraction of H x W sites) per tensor and frame drive the
sparse stages' cycles.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from hwcodesign.ir.graph import Graph
from hwcodesign.ir.types import ActiveSet, Tensor


def root_mask(values: np.ndarray, tensor: Tensor) -> np.ndarray:
    """(N, H, W) bool: sites of the root input where any channel differs from its zero point."""
    return np.any(np.asarray(values) != tensor.zero_point, axis=1)


def downsample_mask(mask: np.ndarray, step: tuple[int, ...]) -> np.ndarray:
    """The next level's active sites: any active site in the window (padding inactive)."""
    kh, kw, sh, sw, top, left, bottom, right = step
    padded = np.pad(mask, ((0, 0), (top, bottom), (left, right)), constant_values=False)
    windows = sliding_window_view(padded, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]
    return windows.any(axis=(3, 4))


def active_mask(active: ActiveSet, roots: Mapping[str, np.ndarray]) -> np.ndarray:
    """(N, H, W) bool active sites of `active`, given each root's root mask."""
    mask = roots[active.root]
    for step in active.steps:
        mask = downsample_mask(mask, step)
    return mask


def root_masks(graph: Graph, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Root masks of the graph's sparse inputs, from integer inputs keyed by input tensor name."""
    return {op.output.name: root_mask(inputs[op.output.name], op.output) for op in graph.inputs if op.output.sparse}


def tensor_densities(graph: Graph, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Active fraction of every sparse tensor, per frame (inputs keyed by input tensor name)."""
    roots = root_masks(graph, inputs)
    densities = {}
    for op in graph:
        if op.output.sparse:
            mask = active_mask(op.output.active, roots)  # type: ignore[arg-type]
            densities[op.output.name] = mask.reshape(mask.shape[0], -1).mean(axis=1)
    return densities


def row_counts(graph: Graph, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """(N, H) active sites per row of every sparse tensor (inputs keyed by input tensor name)."""
    roots = root_masks(graph, inputs)
    counts = {}
    for op in graph:
        if op.output.sparse:
            counts[op.output.name] = active_mask(op.output.active, roots).sum(axis=2)  # type: ignore[arg-type]
    return counts


def measure_densities(graph: Graph, samples: Mapping[str, np.ndarray], percentile: float = 95.0) -> dict[str, float]:
    """Design densities for the mapper: each sparse tensor's active fraction at `percentile` over
    sample frames (integer inputs keyed by input tensor name), e.g. the 95th: the hardware then
    keeps up with 95% of frames at the planned rate."""
    return {name: float(np.percentile(values, percentile)) for name, values in tensor_densities(graph, samples).items()}


def design_densities(graph: Graph, samples: Mapping[str, np.ndarray] | None = None, density: float | None = None,
                     percentile: float = 95.0) -> dict[str, float] | None:
    """What the mapper sizes sparse layers for: measured on `samples` (their `percentile`), or
    one `density` for every sparse tensor, or None (every site active, the worst case)."""
    if not any(op.output.sparse for op in graph):
        return None
    if samples is not None:
        return measure_densities(graph, samples, percentile)
    if density is not None:
        if not 0 < density <= 1:
            raise ValueError(f"a design density is a fraction in (0, 1], not {density}")
        return {op.output.name: float(density) for op in graph if op.output.sparse}
    return None
