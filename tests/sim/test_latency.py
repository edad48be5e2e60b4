"""The pipeline simulator against timings worked out by hand, and its FIFO sizing."""

from __future__ import annotations

import numpy as np
import pytest

from hwcodesign.backends import simulate
from hwcodesign.backends.dataflow import map_pipeline
from hwcodesign.boards import load_board
from hwcodesign.hardware.folding import Folding, LayerCost
from hwcodesign.hardware.stream import dma_bytes_per_cycle
from hwcodesign.ir import Graph, Input, IntType, Requant, Tensor, make_requant
from hwcodesign.mapper.cost import layer_cost
from hwcodesign.mapper.ilp import Mapping
from hwcodesign.ops import Add, Conv
from hwcodesign.sim.latency import PipelineDeadlock

UINT8 = IntType(8, False)
H = W = 8


def tensor(name: str, channels: int, size: int = H) -> Tensor:
    return Tensor(name, (1, channels, size, size), UINT8, 0.1, 0)


def conv(name: str, source: str, out: str, channels: int, k: int = 1) -> Conv:
    return Conv(name, (source,), tensor(out, channels), np.ones((channels, channels, k, k), np.int64),
                IntType(8, True), np.zeros(channels, np.int64), (1, 1), (k // 2,) * 4, (1, 1), 1,
                make_requant(np.full(channels, 0.01), 0, 0, 255))


def fixed_mapping(graph: Graph, cycles: dict[str, int], board: str = "ultra96v2") -> Mapping:
    """A mapping with chosen cycles per layer, so timings can be predicted by hand."""
    target = load_board(board)
    rate = dma_bytes_per_cycle(target.ddr_bandwidth_gbps, target.clock_mhz)
    costs = {op.name: layer_cost(op, [], Folding(), target.ps_type, rate) if isinstance(op, Input)
             else LayerCost(cycles[op.name], 0, 0, 0, 0, 0) for op in graph}
    return Mapping(target, "throughput", {n: Folding() for n in costs}, costs, 0.0, 0.0)


def chain(k_first: int = 1) -> Graph:
    ops = [Input("in", (), tensor("x", 4)), conv("a", "x", "ya", 4, k_first), conv("b", "ya", "yb", 4)]
    return Graph.from_ops("chain", ops, ["yb"])


def test_two_stage_chain_matches_hand_timing() -> None:
    graph = chain()
    mapping = fixed_mapping(graph, {"a": 800, "b": 1600})  # about 100 and 200 cycles per row
    report = simulate(graph, mapping)
    dma = mapping.costs["in"].cycles / H
    # a's loops: the fill (input row 0, 8 pixels x 4 words), then per row 8 x 4 x 4 MAC steps and
    # a drain step; its 800 cycles are shared among its rows by those iterations
    a_row0 = 800 * (32 + 129) / (32 + 8 * 129)
    # first row: DMA row 0, a row 0, then b runs its 8 rows back to back (it is the slower stage)
    expected = dma + a_row0 + 1600
    # 4 uint8 channels fill half of a 64-bit word; every pixel starts a new word: 1 word/cycle
    dma_out = W * H
    assert report.first_frame_cycles == pytest.approx(expected + dma_out)
    assert report.interval_cycles == pytest.approx(1600)
    assert report.fps == pytest.approx(mapping.board.clock_mhz * 1e6 / 1600)
    assert report.bottleneck.name == "b"
    utilisation = {s.name: s.utilisation for s in report.stages}
    assert utilisation["b"] == pytest.approx(1.0) and utilisation["a"] == pytest.approx(0.5)


def test_window_waits_for_the_rows_it_needs() -> None:
    graph = chain(k_first=3)  # a is 3x3 with padding 1: output row 0 needs input rows 0 and 1
    mapping = fixed_mapping(graph, {"a": 800, "b": 800})
    report = simulate(graph, mapping)
    dma_row = mapping.costs["in"].cycles / H
    first = {s.name: s.first_output for s in report.stages}
    # a's loops: the fill (input rows 0 and 1 in 1-channel words), then per row 8 x 4 x 36 MAC
    # steps and a drain step
    a_row0 = 800 * (64 + 1153) / (64 + 8 * 1153)
    assert first["a"] == pytest.approx(2 * dma_row + a_row0)


def residual() -> Graph:
    ops = [
        Input("in", (), tensor("x", 4)),
        conv("main1", "x", "m1", 4, 3), conv("main2", "m1", "m2", 4, 3),
        Add("add", ("m2", "x"), tensor("y", 4), (1 << 10, 1 << 10),
            Requant(np.ones(1, np.int64), np.full(1, 10, np.int64), 0, 0, 255)),
    ]
    return Graph.from_ops("residual", ops, ["y"])


def test_fifo_depths_from_unbounded_run_remove_back_pressure_and_short_ones_deadlock() -> None:
    graph = residual()
    mapping = fixed_mapping(graph, {"main1": 800, "main2": 800, "add": 400})
    free = simulate(graph, mapping)
    shortcut = free.fifo_rows[("in", "add")]
    assert shortcut >= 2  # the shortcut waits while two 3x3 windows fill
    sized = simulate(graph, mapping, fifo_rows=free.fifo_rows)
    assert sized.first_frame_cycles == pytest.approx(free.first_frame_cycles)
    assert sized.interval_cycles == pytest.approx(free.interval_cycles)
    with pytest.raises(PipelineDeadlock, match="in -> add"):
        simulate(graph, mapping, fifo_rows={**free.fifo_rows, ("in", "add"): 1})


def test_chain_with_minimal_fifos_still_runs_at_the_bottleneck_rate() -> None:
    graph = chain(k_first=3)
    mapping = fixed_mapping(graph, {"a": 800, "b": 1600})
    tight = simulate(graph, mapping, fifo_rows={("in", "a"): 1, ("a", "b"): 1})
    assert tight.interval_cycles == pytest.approx(1600)


def test_real_mapping_interval_is_the_mapper_bottleneck() -> None:
    graph = residual()
    mapping = map_pipeline(graph, load_board("pynqz2"))
    report = simulate(graph, mapping)
    assert report.interval_cycles == pytest.approx(mapping.bottleneck_cycles)
    assert report.fps == pytest.approx(mapping.fps)
    assert report.first_frame_cycles >= report.interval_cycles


def test_a_channel_gate_made_from_its_map_needs_the_whole_map_queued() -> None:
    """Squeeze-excitation: the gate is the global pool of the map (then 1x1 convs), so the product
    can start only after the whole map passed the branch point. The plan asks a frame-deep FIFO
    for the map (and one row for the gate), the simulator measures at least that, one row less
    deadlocks, the cost model counts the frame as the producer's output FIFO, and the generated
    top declares a stream that deep."""
    from support.op_cases import build

    from hwcodesign.codegen.hls_top import build_top
    from hwcodesign.hardware.stream import stream_fifo_depth
    from hwcodesign.mapper.streams import default_fifo_rows, output_fifos, output_lanes
    from hwcodesign.passes import load_onnx, optimize
    from hwcodesign.quantize import quantize_qdq

    model, calibration = build("squeeze_excite")
    graph = optimize(load_onnx(quantize_qdq(model, calibration)))
    (mul,) = [op for op in graph if op.kind == "Mul"]
    features, gate = mul.inputs
    producer = graph.producer(features).name
    rows = mul.output.shape[2]
    assert default_fifo_rows(graph, mul.name, features) == rows
    assert default_fifo_rows(graph, mul.name, gate) == 1
    mapping = map_pipeline(graph, load_board("ultra96v2"))
    free = simulate(graph, mapping)
    assert free.fifo_rows[(producer, mul.name)] >= rows
    simulate(graph, mapping, fifo_rows=free.fifo_rows)
    with pytest.raises(PipelineDeadlock, match=f"{producer} -> {mul.name}"):
        simulate(graph, mapping, fifo_rows={**free.fifo_rows, (producer, mul.name): rows - 1})
    folding = mapping.foldings[producer]
    shallow = output_fifos(graph, producer, folding, {(producer, mul.name): 1})
    planned = output_fifos(graph, producer, folding)
    assert planned.bram18k > shallow.bram18k == 0  # the frame is block RAM, one row would be LUTs
    lanes = output_lanes(graph, graph.op(producer), folding)
    frame_words = stream_fifo_depth(rows, graph.tensor(features), lanes)
    queued = stream_fifo_depth(free.fifo_rows[(producer, mul.name)], graph.tensor(features), lanes)
    assert queued >= frame_words
    top = build_top(graph, mapping.foldings, free.fifo_rows, 64)
    assert queued in [stream.depth for stream in top.streams]
