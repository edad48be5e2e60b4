"""The compiler's choice of `pack-input-window`: the engine is mapped both ways and the faster
design kept, with its graph; the pipeline and `pack_input=False` keep the frame."""

from __future__ import annotations

from support.qdq_by_hand import conv_bn_relu_qdq

from hwcodesign.boards import load_board
from hwcodesign.flows.simulate import simulate_model
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.report.summary import format_summary


def test_the_engine_keeps_the_faster_input_layout() -> None:
    graph = optimize(load_onnx(conv_bn_relu_qdq()))
    board = load_board("ultra96v2")
    frame = simulate_model(graph, board, architecture="sequential", pack_input=False)
    chosen = simulate_model(graph, board, architecture="sequential")
    assert frame.graph is graph and frame.graph.inputs[0].window is None
    window = chosen.graph.inputs[0].window
    assert window is not None and chosen.graph.inputs[0].output.shape[1] == 27  # the 3x3x3 window
    assert chosen.mapping.objective < frame.mapping.objective
    assert chosen.report["engine"]["input_windows"]["xq"]["kernel"] == [3, 3]
    assert "packs the first layer's 3x3 window of its 3-channel frame into 27 channels" in format_summary(chosen.report)


def test_the_pipeline_keeps_the_frame() -> None:
    graph = optimize(load_onnx(conv_bn_relu_qdq()))
    pipeline = simulate_model(graph, load_board("ultra96v2"), architecture="dataflow")
    assert pipeline.graph is graph
