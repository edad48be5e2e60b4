"""Lookup tables (every function of support/table_cases.py on one input, and the means over H, W
of three, uint8 and int8 activations): C simulation == golden model on every element, as dataflow stages fully folded
(PE=1) and fully parallel (a ROM per channel), and on the layer-sequential engine's pixel unit at
the engine tests' configurations (1, 2 and 4 cycles per word), with the cost model's loop counts
== the C simulation's; an engine without a table is built without the lookup mode."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from support.codegen import assert_bit_exact, build_all, random_frames, variant_mapping
from support.engine import CONFIGS, check_engine, engine_project
from support.op_cases import build
from support.table_cases import CASES, MEAN_CASES, all_tables_model

from hwcodesign.backends import emit_project
from hwcodesign.boards import load_board
from hwcodesign.check.synthesizable import synthesis_problems, synthesizable_files
from hwcodesign.codegen.project import Project
from hwcodesign.hardware.engine.tables import LOOKUP_ENTRIES
from hwcodesign.hardware.memory import memory_cost
from hwcodesign.ir.graph import Graph
from hwcodesign.mapper.engine.cost import engine_resources
from hwcodesign.mapper.engine.facet import engine_facet
from hwcodesign.mapper.engine.program import buffer_sizes, instructions
from hwcodesign.ops import Lookup, LookupMean
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.quantize import quantize_qdq

FRAMES = 10
VARIANTS = ("serial", "parallel")
ACTIVATIONS = {"uint8": False, "int8": True}


@pytest.fixture(scope="module")
def table_projects(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], tuple[Graph, Project]]:
    board = load_board("ultra96v2")
    root = tmp_path_factory.mktemp("tables")
    projects = {}
    for activations, symmetric in ACTIVATIONS.items():
        graph = optimize(load_onnx(all_tables_model(symmetric)))
        for variant in VARIANTS:
            mapping = variant_mapping(graph, board, variant)
            projects[(activations, variant)] = (graph, emit_project(graph, mapping, root / activations / variant))
    build_all([project for _, project in projects.values()])
    return projects


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("activations", ACTIVATIONS)
def test_csim_equals_golden(table_projects: dict[tuple[str, str], tuple[Graph, Project]], activations: str,
                            variant: str) -> None:
    graph, project = table_projects[(activations, variant)]
    assert sum(isinstance(op, Lookup) for op in graph) == len(CASES)
    assert sum(isinstance(op, LookupMean) for op in graph) == len(MEAN_CASES)
    assert_bit_exact(graph, project, random_frames(graph, FRAMES, seed=3), f"tables/{activations}/{variant}")


def test_table_stages_are_synthesizable(table_projects: dict[tuple[str, str], tuple[Graph, Project]]) -> None:
    """The lookup and lookup-mean stages (hwc_table.h, with the frame sums it includes)."""
    root = table_projects[("int8", "parallel")][1].root
    assert {"hls/layers/hwc_table.h", "hls/layers/hwc_elementwise.h"} <= \
        {path.relative_to(root).as_posix() for path in synthesizable_files(root)}
    problems = synthesis_problems(root)
    assert problems == [], "\n".join(problems)


@pytest.fixture(scope="module")
def engine_table_projects(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], tuple]:
    root = tmp_path_factory.mktemp("engine_tables")
    projects = {}
    for activations, symmetric in ACTIVATIONS.items():
        graph = optimize(load_onnx(all_tables_model(symmetric)))
        for index, config in enumerate(CONFIGS):
            mapping, project = engine_project(graph, config, root / activations / str(index))
            projects[(activations, index)] = (graph, mapping, project)
    build_all([project for _, _, project in projects.values()])
    return projects


@pytest.mark.parametrize("index", range(len(CONFIGS)), ids=[str(c).replace(" ", "_") for c in CONFIGS])
@pytest.mark.parametrize("activations", ACTIVATIONS)
def test_engine_csim_equals_golden(engine_table_projects: dict[tuple[str, int], tuple], activations: str,
                                   index: int) -> None:
    graph, mapping, project = engine_table_projects[(activations, index)]
    modes = [timing.kind for timing in mapping.timings]
    assert modes.count("lookup") == len(CASES) == sum(isinstance(op, Lookup) for op in graph)
    assert modes.count("global_pool") == len(MEAN_CASES) == sum(isinstance(op, LookupMean) for op in graph)
    check_engine(graph, project, mapping, random_frames(graph, FRAMES, seed=3), f"engine tables/{activations}/{index}")


def test_engine_table_load_is_costed(engine_table_projects: dict[tuple[str, int], tuple]) -> None:
    """A lookup layer loads its 256-byte table (32 words) instead of records, and the table memory
    (a copy per pixel lane) is in the engine's resources only when the program has a table."""
    graph, mapping, project = engine_table_projects[("uint8", 0)]
    program = instructions(graph)
    lookup = next(i for i in program if i.mode == "lookup")
    config = mapping.config
    item = engine_facet(lookup.op).plan(lookup, tuple(graph.input_tensors(lookup.op)), config, 8)
    assert (item.lookup_words, item.table_entries) == (LOOKUP_ENTRIES // config.word_bytes, 0)
    without = replace(mapping.widths, has_lookup=False)
    buffers = buffer_sizes([], config)
    grown = engine_resources(config, buffers, mapping.widths)
    base = engine_resources(config, buffers, without)
    table = memory_cost(LOOKUP_ENTRIES // config.word_bytes, 8, config.word_bytes * config.ew_lanes)
    assert (grown.bram18k - base.bram18k, grown.dsp - base.dsp) == (table.bram18k, 0)
    assert grown.lut - base.lut > table.lut > 0
    assert (project.root / "hls/engine/hwc_engine_lookup.h").is_file()
    assert "hwc_engine_run_lookup<hwc_engine_config>" in (project.root / "hls/top.cpp").read_text()


def test_engine_mean_table_is_costed(engine_table_projects: dict[tuple[str, int], tuple]) -> None:
    """A lookup mean runs as the global pool with its 16-bit table (64 words of 64 bits) loaded
    beside its records; the table memory is in the resources only when the program has one."""
    graph, mapping, _ = engine_table_projects[("uint8", 0)]
    mean = next(i for i in instructions(graph) if isinstance(i.op, LookupMean))
    config = mapping.config
    item = engine_facet(mean.op).plan(mean, tuple(graph.input_tensors(mean.op)), config, 8)
    assert mean.mode == "global_pool"
    assert item.lookup_words == LOOKUP_ENTRIES * 16 // config.word_bits and item.table_entries > 0
    buffers = buffer_sizes([], config)
    grown = engine_resources(config, buffers, mapping.widths)
    base = engine_resources(config, buffers, replace(mapping.widths, has_mean_table=False))
    table = memory_cost(LOOKUP_ENTRIES // 4, 16, 4 * config.ew_lanes)
    assert (grown.bram18k - base.bram18k, grown.dsp - base.dsp) == (table.bram18k, 0) and grown.lut > base.lut


def test_engine_lookup_sources_are_synthesizable(engine_table_projects: dict[tuple[str, int], tuple]) -> None:
    root = engine_table_projects[("int8", 1)][2].root
    assert "hls/engine/hwc_engine_lookup.h" in {path.relative_to(root).as_posix() for path in synthesizable_files(root)}
    problems = synthesis_problems(root)
    assert problems == [], "\n".join(problems)


def test_an_engine_without_tables_has_no_lookup_mode(tmp_path: Path) -> None:
    model, calibration = build("conv_relu")
    graph = optimize(load_onnx(quantize_qdq(model, calibration)))
    mapping, project = engine_project(graph, CONFIGS[0], tmp_path / "plain")
    assert not mapping.widths.has_lookup
    assert not (project.root / "hls/engine/hwc_engine_lookup.h").exists()
    top = (project.root / "hls/top.cpp").read_text()
    assert "lookup" not in top and "hwc_engine_run<hwc_engine_config>" in top
