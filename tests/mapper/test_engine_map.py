"""Sizing the layer-sequential engine: the candidate set, optimality against brute force over
`evaluate_config`, infeasibility that names the fps or the binding resource, the choice between
the dataflow pipeline and the engine, and when packed DSP products are kept."""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np
import onnx
import pytest
from support.deform_cases import DeformCase, deform_layer
from support.op_cases import build
from support.sparse_models import SparseCase, SparseLayer, event_frames, sparse_models

from hwcodesign.backends import ARCHITECTURES, map_to_board
from hwcodesign.boards import Board, load_board
from hwcodesign.errors import HwcodesignError
from hwcodesign.hardware.engine.config import EngineConfig, EngineUnsupported
from hwcodesign.hardware.folding import RESOURCES
from hwcodesign.ir import Graph, Input, IntType, Tensor, make_requant
from hwcodesign.mapper.engine.cost import memory_system
from hwcodesign.mapper.engine.program import instructions, plan
from hwcodesign.mapper.engine.widths import engine_widths, weight_storage_bits
from hwcodesign.mapper.engine_map import (
    ARENA_BUDGET_BYTES,
    MAX_BATCH,
    MAX_INSTANCES,
    SMALLEST_WEIGHT_DEPTH,
    EngineCandidate,
    EngineMapping,
    arena_bytes,
    candidate_configs,
    deepest_weights,
    engine_candidates,
    engine_word_widths,
    evaluate_config,
    fixed_engine_mapping,
    largest_batch,
    map_engine,
    uram_placements,
)
from hwcodesign.mapper.mapping import Mapping
from hwcodesign.mapper.table import MappingInfeasible, cycle_budget, resource_limits
from hwcodesign.ops import Conv
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.quantize import quantize_qdq

UINT8 = IntType(8, False)


def conv_chain(channels: list[int], size: int = 8, kernel: int = 3, weight_bits: int = 8, seed: int = 0) -> Graph:
    """Convs of `kernel` x `kernel` in a chain, built directly in the IR."""
    rng = np.random.default_rng(seed)
    ops = [Input("in", (), Tensor("t0", (1, channels[0], size, size), UINT8, 0.05, 0))]
    top = 2 ** (weight_bits - 1)
    for i, (c_in, c_out) in enumerate(zip(channels, channels[1:]), start=1):
        weight = rng.integers(-top, top, (c_out, c_in, kernel, kernel))
        out = Tensor(f"t{i}", (1, c_out, size, size), UINT8, 0.05, 0)
        ops.append(Conv(f"conv{i}", (f"t{i - 1}",), out, weight, IntType(weight_bits, True),
                        rng.integers(-100, 100, c_out), (1, 1), (kernel // 2,) * 4, (1, 1), 1,
                        make_requant(np.full(c_out, 0.001), 0, 0, 255)))
    return Graph.from_ops("chain", ops, [ops[-1].output.name])


@functools.cache
def op_case_graph(case: str) -> Graph:
    model, calibration = build(case)
    return optimize(load_onnx(quantize_qdq(model, calibration)))


@functools.cache
@functools.cache
def small_graph(name: str) -> Graph:
    """The graph called `name`, built once per module (the brute force is kept per graph)."""
    if name == "chain":
        return conv_chain([8, 16, 24], size=8)
    if name == "chain_blocks":  # deep enough for weight memories of 256 and 576 words (blocks or not)
        return conv_chain([32, 64, 64], size=6, seed=1)
    if name == "deform":
        return deform_layer(DeformCase(mask=True, weight_bits=4)).graph
    return op_case_graph(name)


SMALL_GRAPHS = ("residual_add", "flatten_gemm", "chain", "chain_blocks", "deform")


@functools.cache
def board(name: str) -> Board:
    return load_board(name)


# -- the candidate set ---------------------------------------------------------------------------


@pytest.mark.parametrize("word_bits", [32, 64, 128])
@pytest.mark.parametrize("deepest", [9, 256, 1000, 5000])
def test_candidate_configs_are_what_the_templates_support(word_bits: int, deepest: int) -> None:
    configs = candidate_configs(word_bits, deepest, packed_macs=True)
    word_bytes = word_bits // 8
    assert configs and len(set(configs)) == len(configs)
    for config in configs:
        assert config.word_bits == word_bits and config.packed_macs
        assert config.pe % word_bytes == 0 and config.simd % word_bytes == 0, str(config)
        assert 1 <= config.rq_units <= min(config.pe, config.simd), str(config)
        assert word_bytes % config.ew_lanes == 0, str(config)
    depths = {c.weight_depth for c in configs}
    assert deepest in depths  # the depth at which no layer runs in blocks
    # powers of two from the smallest memory, each below the no-blocking depth
    assert depths - {deepest} == {SMALLEST_WEIGHT_DEPTH << k for k in range(16) if SMALLEST_WEIGHT_DEPTH << k < deepest}
    # every combination is there once: lanes x lanes x output stages x pixel lanes x depths x
    # output pixels at once
    lanes = {c.pe for c in configs}
    assert lanes == {c.simd for c in configs} == {n for n in (8, 16, 32, 64) if n % word_bytes == 0}
    assert {c.pp for c in configs} == {1, 2, 4, 8}
    combos = sum(1 for pe in lanes for simd in lanes for rq in (1, 2, 4, 8) if rq <= min(pe, simd))
    assert len(configs) == combos * len({c.ew_lanes for c in configs}) * len(depths) * 4
    assert not any(c.packed_macs for c in candidate_configs(word_bits, deepest))


@pytest.mark.parametrize("name", SMALL_GRAPHS)
def test_the_deepest_candidate_runs_every_layer_in_one_block(name: str) -> None:
    graph = small_graph(name)
    deepest = deepest_weights(graph, 64)
    bits = weight_storage_bits(graph)
    program = instructions(graph)
    for config in candidate_configs(64, deepest):
        if config.weight_depth != deepest:
            continue
        plans = [plan(i, graph, config, bits) for i in program]
        assert all(p.blocks == 1 for p in plans), str(config)
        assert max(p.outer_per_block * p.sf for p in plans if p.load_pe) <= deepest
    # and at the narrowest lanes it is exactly the largest layer's need (no larger than useful)
    narrow = EngineConfig(8, 8, 1, 1, deepest)
    assert max(p.outer_per_block * p.sf for p in (plan(i, graph, narrow, bits) for i in program) if p.load_pe) == deepest


# -- optimality: brute force over evaluate_config ------------------------------------------------


_BRUTE_FORCE: dict[tuple[int, str, int], tuple[Graph, list[EngineCandidate]]] = {}


def brute_force_candidates(graph: Graph, target: Board, word_bits: int = 64) -> list[EngineCandidate]:
    """Every candidate configuration at every number of instances and every batch (powers of two,
    as `largest_batch` takes them) whose buffers fit the budget, evaluated one by one (the integer
    program chooses from fewer: it drops instances that cannot fit and runs only the largest batch,
    which this holds to being no slower). Evaluated once per graph and board in this module."""
    key = (id(graph), target.name, word_bits)
    if key not in _BRUTE_FORCE or _BRUTE_FORCE[key][0] is not graph:
        program = instructions(graph, word_bits)
        bits = weight_storage_bits(graph)
        widths = engine_widths(graph, [plan(i, graph, EngineConfig(8, 8, 1, 1, 1 << 40, word_bits), bits)
                                       for i in program])
        configs = [replace(c, uram=placement)
                   for c in candidate_configs(word_bits, deepest_weights(graph, word_bits), widths.packs_macs(target.ps_type))
                   for placement in uram_placements(target.resources.uram)]
        frame_bytes = arena_bytes(graph, word_bits)
        batches = [b for b in range(1, MAX_BATCH + 1) if b & (b - 1) == 0]
        found = [evaluate_config(graph, program, c, widths, bits, memory_system(target), instances=n, batch=b)
                 for c in configs for n in range(1, MAX_INSTANCES + 1) for b in batches
                 if n * b * frame_bytes <= ARENA_BUDGET_BYTES]
        _BRUTE_FORCE[key] = (graph, [c for c in found if c is not None])  # the graph kept: its id stays its own
    return _BRUTE_FORCE[key][1]


def fits(candidate: EngineCandidate, limits: dict[str, int]) -> bool:
    return all(candidate.cost.resource(r) <= limits[r] for r in RESOURCES)


def frugality(candidate: EngineCandidate, limits: dict[str, int]) -> float:
    """The tie-break the mapper uses: resources relative to their limits, summed."""
    return sum(candidate.cost.resource(r) / max(limits[r], 1) for r in RESOURCES)


def brute_force_best(candidates: list[EngineCandidate], limits: dict[str, int],
                     max_cycles: int | None = None) -> list[EngineCandidate]:
    """The fastest candidates within the limits, least resources first; [] when none fits."""
    fitting = [c for c in candidates if fits(c, limits) and (max_cycles is None or c.cost.cycles <= max_cycles)]
    if not fitting:
        return []
    fastest = min(c.cost.cycles for c in fitting)
    return sorted((c for c in fitting if c.cost.cycles == fastest), key=lambda c: frugality(c, limits))


def assert_matches_brute_force(mapping: EngineMapping, candidates: list[EngineCandidate],
                               limits: dict[str, int], max_cycles: int | None = None) -> None:
    best = brute_force_best(candidates, limits, max_cycles)
    assert best, "brute force finds no fitting configuration, but the mapper returned one"
    fastest = best[0].cost.cycles
    assert mapping.objective == fastest
    assert mapping.bottleneck_cycles == fastest
    assert mapping.limits == limits
    # the mapper offers (and times) only what fits: every configuration that fits alone, at every
    # number of instances that fits, each at the largest batch the budget allows
    largest = {n: max(c.batch for c in candidates if c.instances == n) for n in {c.instances for c in candidates}}
    assert mapping.candidates == sum(1 for c in candidates if c.batch == largest[c.instances] and fits(c, limits))
    picked = next(c for c in candidates
                  if (c.config, c.instances, c.batch) == (mapping.config, mapping.instances, mapping.batch))
    assert picked.cost == mapping.resources and picked.timings == mapping.timings
    assert mapping.batch == largest[mapping.instances]
    alone = next(c for c in candidates if (c.config, c.instances, c.batch) == (mapping.config, 1, mapping.batch))
    assert mapping.alone_cycles == alone.cost.depth <= mapping.frame_cycles  # sharing the DDR never speeds a run
    assert fits(picked, limits), {r: (mapping.total(r), limits[r]) for r in RESOURCES}
    # among configurations as fast, one using the fewest resources (relative to the limits)
    assert frugality(picked, limits) == pytest.approx(frugality(best[0], limits), rel=1e-9, abs=1e-12)


def caps_between(candidates: list[EngineCandidate], target: Board, rng: np.random.Generator) -> dict[str, float]:
    """Caps whose limits fall between the least and the most any candidate uses, so they bind."""
    available = target.resources.as_dict()
    caps = {}
    for r in RESOURCES:
        lo = min(c.cost.resource(r) for c in candidates)
        hi = max(c.cost.resource(r) for c in candidates)
        limit = lo + int((hi - lo) * rng.uniform(0.02, 0.5))
        if available[r]:  # (a board without URAM)
            caps[r] = (limit + 0.5) / available[r]  # resource_limits floors available * cap to `limit`
    return caps


@pytest.mark.parametrize("name", SMALL_GRAPHS)
def test_map_engine_picks_the_fastest_fitting_configuration(name: str) -> None:
    graph, target = small_graph(name), board("zcu104" if name == "deform" else "ultra96v2")
    candidates = brute_force_candidates(graph, target)
    assert len(candidates) > 100
    mapping = map_engine(graph, target, word_bits=64)
    assert isinstance(mapping, EngineMapping) and mapping.architecture == "sequential"
    assert_matches_brute_force(mapping, candidates, resource_limits(target))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("name", SMALL_GRAPHS)
def test_map_engine_matches_brute_force_under_binding_caps(name: str, seed: int) -> None:
    graph, target = small_graph(name), board("ultra96v2")
    candidates = brute_force_candidates(graph, target)
    caps = caps_between(candidates, target, np.random.default_rng(seed))
    limits = resource_limits(target, caps)
    if not brute_force_best(candidates, limits):
        with pytest.raises(MappingInfeasible, match="layer-sequential engine"):
            map_engine(graph, target, word_bits=64, caps=caps)
        return
    assert_matches_brute_force(map_engine(graph, target, word_bits=64, caps=caps), candidates, limits)


@pytest.mark.parametrize("name", ["flatten_gemm", "deform"])
def test_map_engine_matches_brute_force_with_ultraram(name: str) -> None:
    """On the KV260 the weight memories and the line buffer may also be UltraRAM, a fifth limit:
    under caps that bind one instance (so the LUTs and block RAM a buffer in UltraRAM saves are
    worth its blocks) the pick puts a buffer there, and it is still brute force's."""
    graph, target = small_graph(name), board("kv260")
    candidates = brute_force_candidates(graph, target)
    assert {c.config.uram for c in candidates} == {(), ("weights",), ("ring",), ("weights", "ring")}
    caps = caps_between([c for c in candidates if c.instances == 1], target, np.random.default_rng(0))
    limits = resource_limits(target, caps)
    mapping = map_engine(graph, target, word_bits=64, caps=caps)
    assert mapping.config.uram and 0 < mapping.total("uram") <= limits["uram"]
    assert_matches_brute_force(mapping, candidates, limits)


@pytest.mark.parametrize("name", ["residual_add", "chain"])
def test_a_cap_below_the_fastest_configuration_changes_the_pick(name: str) -> None:
    graph, target = small_graph(name), board("ultra96v2")
    candidates = brute_force_candidates(graph, target)
    free = map_engine(graph, target, word_bits=64)
    limits = resource_limits(target)
    fastest = [c for c in candidates if fits(c, limits) and c.cost.cycles == free.bottleneck_cycles]
    # one DSP fewer than every configuration as fast as the free pick
    dsp_limit = min(c.cost.dsp for c in fastest) - 1
    caps = {"dsp": (dsp_limit + 0.5) / target.resources.dsp}
    capped = map_engine(graph, target, word_bits=64, caps=caps)
    assert capped.limits["dsp"] == dsp_limit
    assert (capped.config, capped.instances) != (free.config, free.instances)
    assert capped.total("dsp") <= dsp_limit < free.total("dsp")
    assert capped.bottleneck_cycles > free.bottleneck_cycles
    assert_matches_brute_force(capped, candidates, resource_limits(target, caps))


def test_an_fps_floor_within_reach_is_met_and_one_beyond_it_names_the_fps() -> None:
    graph, target = small_graph("chain"), board("ultra96v2")
    candidates = brute_force_candidates(graph, target)
    free = map_engine(graph, target, word_bits=64)
    slower = int(free.fps * 0.5)
    mapping = map_engine(graph, target, word_bits=64, fps=slower)
    assert mapping.fps >= slower
    assert_matches_brute_force(mapping, candidates, resource_limits(target), cycle_budget(target, slower))
    beyond = int(free.fps) + 1
    with pytest.raises(MappingInfeasible) as error:
        map_engine(graph, target, word_bits=64, fps=beyond)
    message = str(error.value)
    assert f"short of {beyond:g} fps" in message
    assert f"{free.bottleneck_cycles:,} cycles per frame" in message  # what the fastest engine that fits does
    assert "ultra96v2" in message


@pytest.mark.parametrize(("resource", "label"), [("dsp", "DSP"), ("bram18k", "BRAM18K"), ("lut", "LUT")])
def test_a_cap_nothing_fits_names_the_binding_resource(resource: str, label: str) -> None:
    graph, target = small_graph("chain_blocks"), board("ultra96v2")  # (its weight blocks need block RAM)
    candidates = brute_force_candidates(graph, target)
    least = min(c.cost.resource(resource) for c in candidates)
    assert least > 0
    caps = {resource: (least - 1 + 0.5) / target.resources.as_dict()[resource]}
    with pytest.raises(MappingInfeasible) as error:
        map_engine(graph, target, word_bits=64, caps=caps)
    message = str(error.value)
    assert f"{label} needs at least {least:,} (the smallest engine) but ultra96v2 allows {least - 1:,}" in message
    assert message.startswith("model does not fit ultra96v2 as a layer-sequential engine")
    # only the resource that binds is named
    assert all(f"{other.upper()} needs" not in message for other in RESOURCES if other != resource)


def test_every_candidate_configuration_runs_the_model() -> None:
    """The smallest weight memory (256 words, or the model's need) holds one output fold of every
    layer, so no candidate is dropped as unable to run a layer."""
    graph, target = small_graph("flatten_gemm"), board("ultra96v2")
    candidates = engine_candidates(graph, target)
    configs = candidate_configs(64, deepest_weights(graph, 64), packed_macs=True)  # 8-bit weights pack
    assert [c.config for c in candidates if c.instances == 1] == configs
    assert [c.instances for c in candidates] == list(range(1, MAX_INSTANCES + 1)) * len(configs)  # no limits given
    assert all(c.cost.depth == sum(t.cycles for t in c.timings) > 0 for c in candidates)
    assert all(c.cost.cycles == -(-c.cost.depth // (c.instances * c.batch)) for c in candidates)


# -- architecture selection ----------------------------------------------------------------------


def test_auto_maps_a_tiny_model_as_a_dataflow_pipeline() -> None:
    graph, target = small_graph("residual_add"), board("ultra96v2")
    auto = map_to_board(graph, target)
    assert isinstance(auto, Mapping) and auto.architecture == "dataflow"
    assert set(auto.foldings) == {op.name for op in graph}
    explicit = map_to_board(graph, target, architecture="dataflow")
    assert isinstance(explicit, Mapping) and explicit.foldings == auto.foldings


def test_sequential_maps_the_engine() -> None:
    graph, target = small_graph("residual_add"), board("ultra96v2")
    mapping = map_to_board(graph, target, architecture="sequential")
    assert isinstance(mapping, EngineMapping) and mapping.architecture == "sequential"
    assert mapping.reason == ""  # asked for explicitly
    assert [t.name for t in mapping.timings] == [i.name for i in instructions(graph)]
    assert mapping.config == map_engine(graph, target).config


def test_an_unknown_architecture_lists_the_choices() -> None:
    with pytest.raises(HwcodesignError) as error:
        map_to_board(small_graph("residual_add"), board("ultra96v2"), architecture="systolic")
    message = str(error.value)
    assert "'systolic'" in message
    assert all(name in message for name in ARCHITECTURES)


@functools.cache
def wide_chain() -> Graph:
    """~2.4 MB of weights: far beyond the PYNQ-Z2's BRAM as a pipeline, easy for the engine."""
    return conv_chain([64, 256, 256, 256, 256], size=8, seed=3)


def test_auto_falls_back_to_the_engine_when_the_pipeline_does_not_fit() -> None:
    graph, target = wide_chain(), board("pynqz2")
    with pytest.raises(MappingInfeasible, match="BRAM18K needs at least"):
        map_to_board(graph, target, architecture="dataflow")
    mapping = map_to_board(graph, target)
    assert isinstance(mapping, EngineMapping)
    assert "dataflow pipeline does not fit" in mapping.reason and "BRAM18K" in mapping.reason
    assert all(mapping.total(r) <= mapping.limits[r] for r in RESOURCES)
    assert not mapping.config.packed_macs  # Zynq-7000's DSP48E1 is never packed
    assert mapping.config == map_engine(graph, target).config


def test_auto_explains_both_architectures_when_neither_fits() -> None:
    graph, target = wide_chain(), board("pynqz2")
    with pytest.raises(MappingInfeasible) as error:
        map_to_board(graph, target, caps={"bram18k": 0.01})
    message = str(error.value)
    pipeline, _, engine = message.partition("; as a layer-sequential engine: ")
    assert engine, message
    assert pipeline.startswith("model does not fit pynqz2: BRAM18K needs at least")
    assert "smallest board that fits" not in pipeline  # auto does not search the other boards
    assert engine.startswith("model does not fit pynqz2 as a layer-sequential engine: BRAM18K needs at least")



def test_a_sparse_network_is_refused_by_the_engine_with_the_reason(tmp_path) -> None:
    case = SparseCase((SparseLayer("subm", 16, 3), SparseLayer("gap"), SparseLayer("fc", 4)), height=12, width=16)
    masked, _ = sparse_models(case, event_frames(case, 0.3, 4, seed=1))
    onnx.save(masked, tmp_path / "sparse.onnx")
    graph = optimize(load_onnx(tmp_path / "sparse.onnx"))
    subm = next(op for op in graph if op.kind == "SubmanifoldConv")
    with pytest.raises(EngineUnsupported, match=rf"'{subm.name}' \(SubmanifoldConv\) is sparse.*dataflow pipeline"):
        map_to_board(graph, board("ultra96v2"), architecture="sequential")
    assert map_to_board(graph, board("ultra96v2")).architecture == "dataflow"


# -- packed DSP products -------------------------------------------------------------------------


@pytest.mark.parametrize(("weight_bits", "packed"), [(8, False), (4, True)])
def test_fixed_mapping_packs_only_where_the_deformable_datapath_allows(weight_bits: int, packed: bool) -> None:
    """Two products per DSP48E2 need 2 W + X + 1 <= 27 (`packs_two_products`): 17-bit bilinear
    samples pack with 4-bit weights (26 bits) but not with 8-bit ones (34 bits)."""
    graph = deform_layer(DeformCase(weight_bits=weight_bits)).graph
    config = EngineConfig(8, 8, 1, 4, 64, packed_macs=True)
    mapping = fixed_engine_mapping(graph, board("zcu104"), config)
    assert mapping.widths.xm_bits == 17 and mapping.widths.weight_bits == weight_bits
    assert mapping.config.packed_macs is packed
    assert mapping.config == EngineConfig(8, 8, 1, 4, 64, packed_macs=packed)
    unpacked = fixed_engine_mapping(graph, board("zcu104"), EngineConfig(8, 8, 1, 4, 64))
    assert unpacked.total("dsp") - mapping.total("dsp") == (32 if packed else 0)  # 64 lanes -> 32 DSPs


def test_fixed_mapping_drops_packing_on_zynq7() -> None:
    graph = small_graph("chain")  # 8-bit weights, 9-bit centred activations: packable on UltraScale+
    config = EngineConfig(8, 8, 2, 8, 256, packed_macs=True)
    assert fixed_engine_mapping(graph, board("ultra96v2"), config).config.packed_macs
    zynq7 = fixed_engine_mapping(graph, board("pynqz2"), config)
    assert not zynq7.config.packed_macs
    assert zynq7.total("dsp") == fixed_engine_mapping(graph, board("pynqz2"), EngineConfig(8, 8, 2, 8, 256)).total("dsp")


# -- several instances ---------------------------------------------------------------------------


def test_instances_share_the_ddr_but_not_the_hp_port() -> None:
    memory = memory_system(board("zcu102"))
    shared = memory.shared(4)
    assert shared.port_bytes == memory.port_bytes and shared.ddr_bytes == memory.ddr_bytes / 4
    # where the DDR share binds, a frame on one of four instances is slower than on one alone
    graph, target = small_graph("residual_add"), board("pynqz2")
    config = EngineConfig(8, 8, 8, 4, 9)
    one, four = (fixed_engine_mapping(graph, target, config, n) for n in (1, 4))
    assert four.frame_cycles > one.frame_cycles
    assert all(a.cycles <= b.cycles for a, b in zip(one.timings, four.timings, strict=True))
    assert four.fps < 4 * one.fps


@pytest.mark.parametrize("target_name", ["ultra96v2", "pynqz2"])
def test_throughput_takes_several_instances_and_latency_one(target_name: str) -> None:
    """Small engines: the fastest design runs several at once (frames in flight); the latency goal
    keeps one instance, the one with the shortest frame."""
    graph, target = small_graph("chain"), board(target_name)
    fastest = map_engine(graph, target, word_bits=64)
    assert 1 < fastest.instances <= MAX_INSTANCES
    assert fastest.bottleneck_cycles == -(-fastest.frame_cycles // (fastest.instances * fastest.batch))
    latency = map_engine(graph, target, word_bits=64, goal="latency")
    assert latency.instances == latency.batch == 1
    assert latency.frame_cycles <= fastest.frame_cycles
    assert latency.frame_cycles == min(c.cost.depth for c in brute_force_candidates(graph, target)
                                       if c.instances == c.batch == 1 and fits(c, resource_limits(target)))


def test_the_engine_takes_the_faster_feature_map_word_its_hp_port_allows() -> None:
    """Feature maps in 64- or 128-bit words on Zynq UltraScale+ (a 128-bit HP port), 64 on
    Zynq-7000; the params master stays 64 bits. Unpinned, the mapper takes the faster of the two
    (the least cycles of each width's own optimum); a width the board's port cannot carry is
    refused naming --word-bits."""
    graph, target = small_graph("chain"), board("zcu104")
    assert engine_word_widths(target) == (64, 128) and engine_word_widths(board("pynqz2")) == (64,)
    narrow, wide = (map_engine(graph, target, word_bits=w) for w in (64, 128))
    assert (narrow.config.word_bits, wide.config.word_bits) == (64, 128)
    assert wide.config.pe % 16 == wide.config.simd % 16 == 0  # lanes in whole 16-byte words
    either = map_engine(graph, target)
    assert either.bottleneck_cycles == min(narrow.bottleneck_cycles, wide.bottleneck_cycles)
    assert either.candidates == narrow.candidates + wide.candidates
    assert [t.name for t in either.timings] == [i.name for i in instructions(graph, either.config.word_bits)]
    with pytest.raises(EngineUnsupported, match="--word-bits 128: the layer-sequential engine's feature-map masters on "
                                                "pynqz2 are 64 bits wide"):
        map_engine(graph, board("pynqz2"), word_bits=128)
    with pytest.raises(EngineUnsupported, match="--word-bits 256"):
        map_engine(graph, target, word_bits=256)


def test_a_batch_loads_each_instructions_weights_once() -> None:
    """A run of B frames: every instruction's compute loops, MACs and feature-map traffic B times,
    its weights and records once, so the run is shorter than B single runs by the loads saved."""
    graph, target = small_graph("chain"), board("ultra96v2")
    config = EngineConfig(8, 8, 1, 1, 64)
    one, four = (fixed_engine_mapping(graph, target, config, batch=b) for b in (1, 4))
    assert four.batch == 4 and four.bottleneck_cycles < one.bottleneck_cycles
    assert one.frame_cycles < four.frame_cycles < 4 * one.frame_cycles
    for single, run in zip(one.timings, four.timings, strict=True):
        assert run.compute_iterations == 4 * single.compute_iterations and run.macs == 4 * single.macs
        assert single.ddr_bytes < run.ddr_bytes < 4 * single.ddr_bytes  # the weights and records once
    assert four.fps == pytest.approx(target.clock_mhz * 1e6 * 4 / four.frame_cycles)


def test_the_batch_keeps_the_feature_map_buffers_within_budget() -> None:
    assert largest_batch(1, 1 << 20) == MAX_BATCH
    assert largest_batch(4, 8 << 20) == 4  # 4 instances x 4 frames x 8 MiB = 128 MiB
    assert largest_batch(4, 200 << 20) == 1  # one frame at least, whatever its size
    assert largest_batch(1, 1 << 20, 6) == 6  # a user's cap, taken as it is when it fits
    assert largest_batch(4, 8 << 20, 6) == 4  # else the largest power of two below it that fits


def test_map_engine_runs_at_most_max_batch_frames() -> None:
    graph, target = small_graph("chain"), board("ultra96v2")
    capped = {b: map_engine(graph, target, word_bits=64, max_batch=b) for b in (1, 3, MAX_BATCH)}
    assert [capped[b].batch for b in (1, 3, MAX_BATCH)] == [1, 3, MAX_BATCH]
    assert capped[1].bottleneck_cycles > capped[3].bottleneck_cycles > capped[MAX_BATCH].bottleneck_cycles
    with pytest.raises(HwcodesignError, match="an engine run holds 1 to 8 frames, not 9"):
        map_engine(graph, target, word_bits=64, max_batch=9)
    with pytest.raises(ValueError, match="1 to 8 frames"):
        fixed_engine_mapping(small_graph("chain"), board("ultra96v2"), EngineConfig(8, 8, 1, 1, 64), batch=9)


def test_more_instances_than_hp_ports_are_refused() -> None:
    with pytest.raises(ValueError, match="1 to 4 instances"):
        fixed_engine_mapping(small_graph("chain"), board("ultra96v2"), EngineConfig(8, 8, 1, 1, 64), instances=5)
