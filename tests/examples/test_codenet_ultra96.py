"""The CoDeNet-like example compiled for the Ultra96-V2 (issue 6): the dataflow pipeline does not
fit the ZU3EG, so compiling with architecture "auto" (the default) builds the layer-sequential
engine within the board's caps, and its C simulation of the whole detector is bit-exact with the
golden model, every instruction's loops running exactly the trip counts the cost model uses."""

from __future__ import annotations

import numpy as np
import pytest
from support.engine import check_engine
from support.layerwise import built_codenet

from hwcodesign.flows.compile import CompileResult, compile_model
from hwcodesign.mapper.engine_map import EngineMapping
from hwcodesign.report import format_summary
from hwcodesign.sim.golden import quantize_input

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> CompileResult:
    model = built_codenet(tmp_path_factory, seed=0)["w4a8"]
    return compile_model(model, "ultra96v2", tmp_path_factory.mktemp("codenet_ultra96") / "codenet")


def test_auto_builds_the_engine_within_the_ultra96_caps(compiled: CompileResult) -> None:
    mapping = compiled.mapping
    assert isinstance(mapping, EngineMapping) and compiled.project.architecture == "sequential"
    assert "dataflow pipeline does not fit" in mapping.reason and "BRAM18K needs at least" in mapping.reason
    for resource, entry in compiled.report["resources"].items():
        assert entry["used"] <= entry["limit"], resource
    summary = format_summary(compiled.report)  # what `hwcodesign compile/simulate` print
    for expected in ("fps at 200 MHz on ultra96v2", "latency:", "0.459 MB of weights", "DSP ", "BRAM18K ",
                     "layer-sequential engine"):
        assert expected in summary, expected


def test_the_detector_on_the_engine_is_bit_exact(compiled: CompileResult) -> None:
    scene = np.random.default_rng(4).uniform(0, 1, (1, 3, 256, 256)).astype(np.float32)
    graph = compiled.graph
    check_engine(graph, compiled.project, compiled.mapping, quantize_input(graph, scene), "codenet on ultra96v2")
