"""Helpers for the layer-sequential engine tests: configurations and C-simulated projects."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from hwcodesign.backends import emit_project
from hwcodesign.boards import load_board
from hwcodesign.codegen.csim import engine_steps, run_engine
from hwcodesign.codegen.engine.program import EngineProgram, build_program, covering_program
from hwcodesign.codegen.engine.sources import engine_ports
from hwcodesign.codegen.engine_project import engine_project_files
from hwcodesign.codegen.project import Project, write_project
from hwcodesign.flows.compile import CompileResult, compile_model
from hwcodesign.hardware.engine.config import EngineConfig
from hwcodesign.ir.graph import Graph
from hwcodesign.mapper.engine_map import EngineMapping, fixed_engine_mapping
from hwcodesign.sim.golden import run_golden
from support.qdq_by_hand import conv_bn_relu_qdq

# Three engines that exercise different paths: one block and one output stage per lane (no
# stalls), one pixel at a time; 128-bit feature-map words (16 bytes a word, 16 lanes) with two
# shared output stages, four pixels at once and its weight memories and line buffer in UltraRAM
# (`board_for` gives it a board that has some); a weight memory so small that layers run in
# blocks and SIMD wider than PE with a single output stage, packed DSPs and two pixels at once.
CONFIGS = (
    EngineConfig(8, 8, 8, 8, 4096),
    EngineConfig(16, 16, 2, 2, 64, word_bits=128, pp=4, uram=("weights", "ring")),
    EngineConfig(8, 16, 1, 4, 64, packed_macs=True, pp=2),
)


def board_for(config: EngineConfig) -> str:
    """The board an engine test builds `config` for: the Ultra96-V2, or the KV260 when the
    configuration puts buffers in UltraRAM (the Ultra96-V2 has none)."""
    return "kv260" if config.uram else "ultra96v2"


def engine_project(graph: Graph, config: EngineConfig, root: Path, board: str | None = None) -> tuple[EngineMapping, Project]:
    mapping = fixed_engine_mapping(graph, load_board(board or board_for(config)), config)
    return mapping, emit_project(graph, mapping, root)


def check_engine(graph: Graph, project: Project, mapping: EngineMapping, inputs: np.ndarray | dict[str, np.ndarray],
                 label: str) -> None:
    """C simulation == golden model on every element, and the cost model's compute-loop trip
    counts == the loops the C simulation ran in its last run (the frames run `mapping.batch` to a
    run, so the last holds what is left: the model's run of that many frames, since a prefetching
    layer's frames share the next block's weights and so loop differently from fewer)."""
    golden = run_golden(graph, inputs)
    simulated = project.csim(inputs)
    for name, expected in golden.items():
        differing = int(np.count_nonzero(simulated[name] != expected))
        assert differing == 0, f"{label}: {differing} of {expected.size} elements of '{name}' differ"
    counted = engine_steps(project)
    frames = len(next(iter(inputs.values())) if isinstance(inputs, dict) else inputs)
    last = (frames - 1) % mapping.batch + 1
    run = mapping if last == mapping.batch else fixed_engine_mapping(graph, mapping.board, mapping.config,
                                                                      mapping.instances, last)
    modelled = [t.compute_iterations for t in run.timings]
    mismatched = [(t.name, m, c) for t, m, c in zip(mapping.timings, modelled, counted) if m != c]
    assert not mismatched, f"{label}: cost-model iterations differ from the C simulation: {mismatched[:3]}"


def compile_small_engine(root: Path, board: str = "ultra96v2") -> CompileResult:
    """The driver tests' model (conv_bn_relu_qdq) compiled by `compile_model` as a layer-sequential
    engine into root/small. Every module that needs an engine project uses this one, so the C
    simulation library (cached by the content of hls/) is compiled once per test session."""
    root.mkdir(parents=True, exist_ok=True)
    onnx.save(conv_bn_relu_qdq(), root / "small.onnx")
    return compile_model(root / "small.onnx", board, root / "small", architecture="sequential")


@dataclass(frozen=True)
class EngineCase:
    """One graph's program, to run on an engine built for it or for several (`SharedEngine`)."""

    graph: Graph
    mapping: EngineMapping
    program: EngineProgram


@dataclass(frozen=True)
class SharedEngine:
    """One C-simulation build of an engine that runs several programs (`covering_program`): each
    case runs from its own params and arena layout on buffers of the engine's sizes, as the board
    would run a second model's params.bin on the same bitstream."""

    project: Project
    program: EngineProgram  # the covering one: the buffer sizes

    def run(self, case: EngineCase, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Frames (N, C, H, W) per graph input -> the outputs, one engine run per frame."""
        ins, outs = engine_ports(case.graph, case.program)
        frames = len(next(iter(inputs.values())))
        params = np.zeros_like(self.program.params)
        params[:case.program.params.size] = case.program.params
        params_bytes = params.astype("<u8").view(np.uint8)
        results = {port.tensor.name: [] for port in outs}
        word_bytes = self.program.config.word_bytes  # of the feature maps (params words are 8 bytes)
        for frame in range(frames):
            arena = np.zeros(self.program.arena.words * word_bytes, np.uint8)
            for port, op in zip(ins, case.graph.inputs):
                packed = port.pack(inputs[op.name][frame:frame + 1])[0]
                arena[port.address * word_bytes:port.address * word_bytes + packed.size] = packed
            run_engine(self.project, arena, arena, arena, params_bytes, len(case.program.plans))
            for port in outs:
                start = port.address * word_bytes
                results[port.tensor.name].append(port.unpack(arena[None, start:start + port.frame_bytes]))
        return {name: np.concatenate(parts) for name, parts in results.items()}


def shared_engines(graphs: dict[str, Graph], config: EngineConfig, root: Path,
                   board: str | None = None) -> tuple[dict[str, EngineCase], dict[str, SharedEngine]]:
    """Every graph's program on `config`, and as few engine builds as run them all: one per
    weight storage and MAC operand width (`covering_widths` needs those to agree). Returns the
    cases and, by case, the engine that runs it (projects under root/engine<i>, not yet built)."""
    cases = {}
    for key, graph in graphs.items():
        mapping = fixed_engine_mapping(graph, load_board(board or board_for(config)), config)
        cases[key] = EngineCase(graph, mapping, build_program(graph, mapping.config))
    groups: dict[tuple, list[str]] = {}
    for key, case in cases.items():
        groups.setdefault((case.program.config, case.program.widths.weight_bits, case.program.widths.xm_bits),
                          []).append(key)
    engines: dict[str, SharedEngine] = {}
    for index, keys in enumerate(groups.values()):
        program = covering_program([cases[key].program for key in keys])
        longest = next(cases[key] for key in keys if cases[key].program.plans == program.plans)
        name = f"engine{index}"
        files = engine_project_files(longest.graph, longest.mapping, name, "shared engine", 1, 0, None, program=program)
        engine = SharedEngine(write_project(root / name, files, name), program)
        engines.update({key: engine for key in keys})
    return cases, engines


def check_engine_case(engine: SharedEngine, case: EngineCase, inputs: np.ndarray | dict[str, np.ndarray],
                      label: str) -> None:
    """`check_engine` for a case run on a shared engine: every output element == golden, and the
    cost model's compute-loop trip counts == the loops the C simulation ran (last frame)."""
    feeds = inputs if isinstance(inputs, dict) else {case.graph.inputs[0].name: inputs}
    golden = run_golden(case.graph, feeds)
    simulated = engine.run(case, feeds)
    for name, expected in golden.items():
        differing = int(np.count_nonzero(simulated[name] != expected))
        assert differing == 0, f"{label}: {differing} of {expected.size} elements of '{name}' differ"
    counted = engine_steps(engine.project, len(case.program.plans))
    modelled = [t.compute_iterations for t in case.mapping.timings]
    mismatched = [(t.name, m, c) for t, m, c in zip(case.mapping.timings, modelled, counted) if m != c]
    assert not mismatched, f"{label}: cost-model iterations differ from the C simulation: {mismatched[:3]}"
