"""A <= 4-bit output computed by comparators instead of a multiplier (FINN's thresholding, the
`thresholds` output of a folding): no DSP in the stage and bit-exact in C simulation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from support.codegen import assert_bit_exact, random_frames
from support.qonnx_by_hand import qonnx_two_convs

from hwcodesign.backends.choose import emit_project
from hwcodesign.boards import load_board
from hwcodesign.hardware.folding import Folding
from hwcodesign.mapper.cost import candidate_foldings
from hwcodesign.mapper.ilp import fixed_mapping
from hwcodesign.ops import Conv
from hwcodesign.passes import load_onnx, optimize


def test_two_bit_convolutions_with_threshold_output_stages_run_bit_exact(tmp_path: Path) -> None:
    graph = optimize(load_onnx(qonnx_two_convs(2)))
    convs = [op for op in graph if isinstance(op, Conv)]
    for op in convs:
        assert {f.output for f in candidate_foldings(op, graph.input_tensors(op))} == {"multiply", "thresholds"}
    foldings = {op.name: Folding(2, 1, "lut", "thresholds") for op in convs}
    mapping = fixed_mapping(graph, load_board("pynqz2"), foldings)
    assert all(mapping.costs[op.name].dsp == 0 for op in convs)  # LUT MACs and comparators
    project = emit_project(graph, mapping, tmp_path / "thresholds")
    params = "".join(path.read_text() for path in (project.root / "hls" / "params").glob("*.h"))
    assert params.count("hwc_thresholds<3,") >= len(convs)  # 4 output levels: 3 comparisons
    assert_bit_exact(graph, project, random_frames(graph, 6, seed=3), "thresholds")
    assert np.all([mapping.foldings[op.name].output == "thresholds" for op in convs])
