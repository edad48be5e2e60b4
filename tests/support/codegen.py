"""Helpers for the code-generation tests: folding variants and parallel C-simulation builds."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx

from hwcodesign.backends.dataflow import map_pipeline
from hwcodesign.boards import Board
from hwcodesign.codegen.csim import build_library
from hwcodesign.codegen.project import Project
from hwcodesign.flows.compile import compile_model
from hwcodesign.hardware.folding import Folding
from hwcodesign.ir.graph import Graph
from hwcodesign.mapper.cost import candidate_foldings
from hwcodesign.mapper.ilp import Mapping, fixed_mapping
from hwcodesign.sim.golden import run_golden
from support.qdq_by_hand import conv_bn_relu_qdq

VARIANTS = ("serial", "parallel", "mapped")


def widest_folding(graph: Graph, op_name: str, mac: str = "dsp") -> Folding:
    """The fully parallel folding of a layer (most lanes, then most PEs)."""
    op = next(o for o in graph if o.name == op_name)
    options = [f for f in candidate_foldings(op, graph.input_tensors(op), max_candidates=10**6) if f.mac == mac]
    return max(options, key=lambda f: (f.pe * f.simd, f.pe))


def variant_mapping(graph: Graph, board: Board, variant: str) -> Mapping:
    """'serial': PE=1/SIMD=1 everywhere; 'parallel': every layer fully unrolled; 'mapped': the ILP."""
    if variant == "serial":
        return fixed_mapping(graph, board, {})
    if variant == "parallel":
        return fixed_mapping(graph, board, {op.name: widest_folding(graph, op.name) for op in graph})
    if variant == "mapped":
        return map_pipeline(graph, board)
    raise ValueError(variant)


def build_all(projects: Sequence[Project]) -> None:
    """Compile the projects' C-simulation libraries concurrently (g++ runs in subprocesses), as
    many at once as this test worker's share of the cores (pytest-xdist runs a worker per core)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    with ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 2) // workers)) as pool:
        list(pool.map(build_library, projects))


def random_frames(graph: Graph, count: int, seed: int) -> np.ndarray:
    """Uniform integers over the whole input type: hits the clamps and extreme products."""
    tensor = graph.inputs[0].output
    rng = np.random.default_rng(seed)
    return tensor.dtype.sample(rng, (count,) + tensor.shape[1:])


def assert_bit_exact(graph: Graph, project: Project, frames: np.ndarray, label: str) -> None:
    """C simulation and golden model agree on every element of every output."""
    golden = run_golden(graph, frames)
    simulated = project.csim(frames)
    assert simulated.keys() == golden.keys()
    for name, expected in golden.items():
        differing = int(np.count_nonzero(simulated[name] != expected))
        assert differing == 0, f"{label}: {differing} of {expected.size} elements of '{name}' differ"


def compile_small_project(root: Path) -> Path:
    """conv_bn_relu_qdq saved as root/small.onnx and compiled (dataflow, Ultra96-V2) into root/small;
    returns the project folder. The C simulation library is cached by content, so every module using
    this shares one build."""
    onnx.save(conv_bn_relu_qdq(), root / "small.onnx")
    return compile_model(root / "small.onnx", "ultra96v2", root / "small").project.root
