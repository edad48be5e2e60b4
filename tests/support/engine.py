"""Helpers for the layer-sequential engine tests: configurations and C-simulated projects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from hwcodesign.backends import emit_project
from hwcodesign.boards import load_board
from hwcodesign.codegen.csim import engine_steps
from hwcodesign.codegen.project import Project
from hwcodesign.flows.compile import CompileResult, compile_model
from hwcodesign.hardware.engine.config import EngineConfig
from hwcodesign.ir.graph import Graph
from hwcodesign.mapper.engine_map import EngineMapping, fixed_engine_mapping
from hwcodesign.sim.golden import run_golden
from support.qdq_by_hand import conv_bn_relu_qdq

# Three engines that exercise different paths: one block and one output stage per lane (no
# stalls), PE wider than SIMD with two shared output stages, a weight memory so small that
# layers run in blocks and SIMD wider than PE with a single output stage and packed DSPs.
CONFIGS = (
    EngineConfig(8, 8, 8, 8, 4096),
    EngineConfig(16, 8, 2, 2, 64),
    EngineConfig(8, 16, 1, 4, 64, packed_macs=True),
)


def engine_project(graph: Graph, config: EngineConfig, root: Path, board: str = "ultra96v2") -> tuple[EngineMapping, Project]:
    mapping = fixed_engine_mapping(graph, load_board(board), config)
    return mapping, emit_project(graph, mapping, root)


def check_engine(graph: Graph, project: Project, mapping: EngineMapping, inputs: np.ndarray | dict[str, np.ndarray],
                 label: str) -> None:
    """C simulation == golden model on every element, and the cost model's compute-loop trip
    counts == the loops the C simulation ran (for the last frame)."""
    golden = run_golden(graph, inputs)
    simulated = project.csim(inputs)
    for name, expected in golden.items():
        differing = int(np.count_nonzero(simulated[name] != expected))
        assert differing == 0, f"{label}: {differing} of {expected.size} elements of '{name}' differ"
    counted = engine_steps(project)
    modelled = [t.compute_iterations for t in mapping.timings]
    mismatched = [(t.name, m, c) for t, m, c in zip(mapping.timings, modelled, counted) if m != c]
    assert not mismatched, f"{label}: cost-model iterations differ from the C simulation: {mismatched[:3]}"


def compile_small_engine(root: Path, board: str = "ultra96v2") -> CompileResult:
    """The driver tests' model (conv_bn_relu_qdq) compiled by `compile_model` as a layer-sequential
    engine into root/small. Every module that needs an engine project uses this one, so the C
    simulation library (cached by the content of hls/) is compiled once per test session."""
    root.mkdir(parents=True, exist_ok=True)
    onnx.save(conv_bn_relu_qdq(), root / "small.onnx")
    return compile_model(root / "small.onnx", board, root / "small", architecture="sequential")
