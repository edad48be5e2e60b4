"""A packed input window in a project: recorded on the input port of project.json (both
architectures' schemas), read back by `Project`, and applied to the sample frames the driver ships."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.qdq_by_hand import conv_bn_relu_qdq

from hwcodesign.backends import emit_project, map_to_board
from hwcodesign.boards import load_board
from hwcodesign.codegen.project import Project
from hwcodesign.ir.input_window import im2col
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.passes.input_window import pack_input_window


@pytest.mark.parametrize("architecture", ["dataflow", "sequential"])
def test_the_window_is_recorded_and_applied_to_the_samples(tmp_path: Path, architecture: str) -> None:
    graph = pack_input_window(optimize(load_onnx(conv_bn_relu_qdq())))
    window = graph.inputs[0].window
    mapping = map_to_board(graph, load_board("ultra96v2"), architecture=architecture)
    emit_project(graph, mapping, tmp_path / architecture)
    port = Project(tmp_path / architecture).inputs[0]  # read back through the schema check
    assert port.window == window and port.frame_shape == (3, 10, 10) and port.tensor.shape == (1, 27, 10, 10)
    sample = np.load(tmp_path / architecture / "driver" / "sample.npz")
    assert sample["input"].shape[1:] == (3, 10, 10)
    assert np.array_equal(sample["input_q"], im2col(graph.inputs[0].output.quantize(sample["input"]), window))
