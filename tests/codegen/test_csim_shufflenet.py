"""ShuffleNetV2's feature extractor (TorchScript export, quantize_static's defaults) mapped to the
Ultra96-V2 as a dataflow pipeline: its channel shuffles, splits and concatenations in C simulation
are bit-exact with the golden model."""

from __future__ import annotations

from pathlib import Path

from support.codegen import assert_bit_exact, build_all, random_frames
from support.shufflenet import shufflenet_features

from hwcodesign.backends import emit_project, map_to_board
from hwcodesign.boards import load_board
from hwcodesign.passes import load_onnx, optimize


def test_shufflenet_features_csim_equals_golden(tmp_path: Path) -> None:
    graph = optimize(load_onnx(shufflenet_features("torchscript")))
    mapping = map_to_board(graph, load_board("ultra96v2"))
    assert mapping.architecture == "dataflow"
    project = emit_project(graph, mapping, tmp_path / "shufflenet")
    build_all([project])
    assert_bit_exact(graph, project, random_frames(graph, 3, seed=19), "shufflenet_v2_x0_5 features")
