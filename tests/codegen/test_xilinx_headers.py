"""C simulation built against Xilinx's own ap_int.h/hls_stream.h (the open-source
HLS_arbitrary_Precision_Types, as Vitis compiles the sources) stays bit-exact with the golden
model, for one project of each family: dataflow pipeline, layer-sequential engine, deformable,
sparse and DyBit. The shim is held to the same frames, so both builds are compared on one
footing; each build's g++ time is printed (pytest -s) for the record.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from support.codegen import compile_small_project, random_frames, variant_mapping
from support.deform_cases import GRID, deform_layer, random_inputs
from support.engine import compile_small_engine
from support.onnx_models import quantize_qdq
from support.op_cases import build
from support.sparse_models import SparseCase, SparseLayer, event_frames, sparse_models
from support.xilinx_headers import xilinx_headers

from hwcodesign.boards import load_board
from hwcodesign.codegen.csim import build_library
from hwcodesign.codegen.project import Project, emit_project
from hwcodesign.frontend import load_onnx
from hwcodesign.frontend.formats import weight_nodes, with_weight_formats
from hwcodesign.ir.graph import Graph
from hwcodesign.mapper.ilp import map_dataflow
from hwcodesign.passes import optimize
from hwcodesign.quant.formats import WeightFormat
from hwcodesign.sim.golden import run_golden

Case = tuple[Graph, Project, np.ndarray | dict[str, np.ndarray]]


def pipeline(root: Path) -> Case:
    project = Project(compile_small_project(root))
    graph = optimize(load_onnx(root / "small.onnx"))
    return graph, project, random_frames(graph, 4, seed=1)


def engine(root: Path) -> Case:
    project = compile_small_engine(root).project
    graph = optimize(load_onnx(root / "small.onnx"))
    return graph, project, random_frames(graph, 4, seed=2)


def deformable(root: Path) -> Case:
    layer = deform_layer(GRID[0])
    project = emit_project(layer.graph, variant_mapping(layer.graph, load_board("zcu104"), "mapped"), root / "deform")
    return layer.graph, project, random_inputs(layer, frames=4, seed=3)


def sparse(root: Path) -> Case:
    case = SparseCase((SparseLayer("subm", 6, 3), SparseLayer("subm", 6, 3, 2), SparseLayer("gap"), SparseLayer("fc", 4)))
    masked, _ = sparse_models(case, event_frames(case, 0.3, 8, seed=1))
    onnx.save(masked, root / "sparse.onnx")
    graph = optimize(load_onnx(root / "sparse.onnx"))
    project = emit_project(graph, map_dataflow(graph, load_board("ultra96v2")), root / "sparse")
    return graph, project, graph.inputs[0].output.quantize(event_frames(case, 0.2, 3, seed=4))


def dybit(root: Path) -> Case:
    model, calibration = build("conv_relu")
    qdq = quantize_qdq(model, calibration)
    written = with_weight_formats(qdq, {name: WeightFormat.parse("dybit4") for name in weight_nodes(qdq)})
    graph = optimize(load_onnx(written))
    project = emit_project(graph, map_dataflow(graph, load_board("ultra96v2")), root / "dybit")
    return graph, project, random_frames(graph, 4, seed=5)


FAMILIES: dict[str, Callable[[Path], Case]] = {
    "pipeline": pipeline, "engine": engine, "deformable": deformable, "sparse": sparse, "dybit": dybit,
}


@pytest.mark.parametrize("family", FAMILIES)
def test_bit_exact_against_xilinx_headers(family: str, tmp_path: Path) -> None:
    headers = xilinx_headers()
    graph, project, frames = FAMILIES[family](tmp_path)
    golden = run_golden(graph, frames)
    for label, folder in (("shim", None), ("xilinx", headers)):
        start = time.perf_counter()
        build_library(project, folder)
        built = time.perf_counter() - start
        simulated = project.csim(frames, folder)
        print(f"{family}/{label}: g++ build {built:.2f} s (0 when cached)")
        assert simulated.keys() == golden.keys()
        for name, expected in golden.items():
            differing = int(np.count_nonzero(simulated[name] != expected))
            assert differing == 0, f"{family} against {label}: {differing} of {expected.size} elements of '{name}' differ"
