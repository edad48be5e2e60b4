"""Density-aware timing of sparse networks: a sparse layer's cycles follow the active sites of the
frame (at 5% density at most 15% of a fully active frame's, for kernels 1, 3 and 5, strides 1 and
2), the mapper sizes for design densities measured on sample frames, and the per-frame profile
puts each frame's latency beside the dense-equivalent latency of the same hardware."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from support.sparse_models import SparseCase, SparseLayer, event_frames, sparse_models

from hwcodesign.backends.dataflow import map_pipeline
from hwcodesign.boards import load_board
from hwcodesign.cli.commands import main
from hwcodesign.hardware.folding import Folding
from hwcodesign.mapper.cost import dataflow_of, stage_plan
from hwcodesign.ops import SubmanifoldConv
from hwcodesign.ops.sparse.dataflow import sparse_conv_cycles
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.sim.sparse_latency import sparse_profile
from hwcodesign.sim.sparsity import design_densities, measure_densities, row_counts, tensor_densities

S, G, F = SparseLayer, SparseLayer("gap"), SparseLayer("fc", 4)
EYE = dict(height=60, width=80)  # the eye-tracking frame size (AIS 2024 sensor / 8)


def sparse_graph(case: SparseCase, root: Path):
    masked, _ = sparse_models(case, event_frames(case, 0.3, 6, seed=1))
    path = root / f"{case.label}.onnx"
    onnx.save(masked, path)
    return optimize(load_onnx(path))


def layer_cycles(graph, op, folding: Folding, density: float, case: SparseCase) -> float:
    """The layer's cycles on a frame of exactly this density: its rows as the simulator runs them."""
    frames = graph.inputs[0].output.quantize(event_frames(case, density, 1, seed=int(density * 1000) + 3))
    counts = {name: rows[0] for name, rows in row_counts(graph, {graph.inputs[0].output.name: frames}).items()}
    inputs = graph.input_tensors(op)
    return sum(dataflow_of(op).sparse_row_cycles(op, inputs, folding, stage_plan(op, inputs, folding), counts))


@pytest.mark.parametrize("kernel, stride", [(1, 1), (3, 1), (5, 1), (3, 2)])
def test_cycles_at_5_percent_are_at_most_15_percent_of_dense(tmp_path: Path, kernel: int, stride: int) -> None:
    case = SparseCase((S("subm", 16, kernel, stride), G, F), channels=2, **EYE)
    graph = sparse_graph(case, tmp_path)
    op = next(o for o in graph if isinstance(o, SubmanifoldConv))
    folding = Folding(4, 2)
    curve = {d: layer_cycles(graph, op, folding, d, case) for d in (0.01, 0.05, 0.2, 0.5, 1.0)}
    assert list(curve.values()) == sorted(curve.values())
    if stride == 1:  # a strided layer's output is denser than its input: judged by its own density
        assert curve[0.05] <= 0.15 * curve[1.0], curve
    # the per-row model and the cost model's design-density formula agree on a fully active frame
    dense = sparse_conv_cycles(op, graph.input_tensors(op)[0], folding, 1.0, 1.0)
    assert abs(curve[1.0] - dense) <= 0.02 * dense


def test_mapper_sizes_for_the_measured_densities(tmp_path: Path) -> None:
    case = SparseCase((S("subm", 16, 3), S("subm", 16, 3, 2), S("subm", 16, 3), G, F), **EYE)
    graph = sparse_graph(case, tmp_path)
    name = graph.inputs[0].output.name
    samples = {name: graph.inputs[0].output.quantize(
        np.concatenate([event_frames(case, d, 4, seed=i) for i, d in enumerate((0.02, 0.04, 0.06))]))}
    measured = measure_densities(graph, samples, 95)
    per_frame = tensor_densities(graph, samples)
    for tensor, value in measured.items():
        assert value == pytest.approx(np.percentile(per_frame[tensor], 95))
    assert measured[name] == pytest.approx(0.06, abs=0.005)
    board = load_board("zcu102")
    sparse = map_pipeline(graph, board, densities=measured)
    dense = map_pipeline(graph, board)  # every site active: the worst case
    assert sparse.densities == measured and sparse.fps > 4 * dense.fps
    assert design_densities(graph, density=0.1) == {op.output.name: 0.1 for op in graph if op.output.sparse}
    with pytest.raises(ValueError, match=r"fraction in \(0, 1\]"):
        design_densities(graph, density=1.5)


def test_frame_latency_follows_the_frame_and_the_dense_equivalent_bounds_it(tmp_path: Path) -> None:
    case = SparseCase((S("subm", 16, 3), S("subm", 16, 3, 2), S("subm", 16, 3), SparseLayer("add", of=1), G, F), **EYE)
    graph = sparse_graph(case, tmp_path)
    name = graph.inputs[0].output.name
    densities = (0.01, 0.05, 0.2, 0.5)
    frames = np.concatenate([event_frames(case, d, 1, seed=9) for d in densities])
    samples = {name: graph.inputs[0].output.quantize(frames)}
    mapping = map_pipeline(graph, load_board("zcu102"), densities=measure_densities(graph, samples, 95))
    profile = sparse_profile(graph, mapping, samples)
    latencies = profile.latencies_ms
    assert [round(f.input_density, 3) for f in profile.frames] == list(densities)
    assert np.all(np.diff(latencies) > 0)
    assert latencies[-1] < profile.dense_latency_ms
    assert latencies[0] < 0.15 * profile.dense_latency_ms
    sparse_convs = [op.output.name for op in graph if isinstance(op, SubmanifoldConv)]
    assert all(profile.frames[0].active_sites[t] < profile.frames[-1].active_sites[t] for t in sparse_convs)


def test_simulate_cli_profiles_sample_frames(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = SparseCase((S("subm", 8, 3), S("subm", 8, 3, 2), G, F), **EYE)
    masked, _ = sparse_models(case, event_frames(case, 0.3, 6, seed=1))
    onnx.save(masked, tmp_path / "sparse.onnx")
    np.save(tmp_path / "frames.npy", event_frames(case, 0.05, 4, seed=2))
    out = tmp_path / "report"
    assert main(["simulate", str(tmp_path / "sparse.onnx"), "--board", "zcu102", "--inputs",
                 str(tmp_path / "frames.npy"), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "sparse: sized for design densities 5.0%" in printed
    assert "4 sample frames at input density 5.0%" in printed and "fully active frame" in printed
    assert (out / "report.json").is_file()
