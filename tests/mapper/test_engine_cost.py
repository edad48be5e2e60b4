"""Cost model of the layer-sequential engine against hand calculations and its expected trends:
parallelism buys cycles with DSPs and BRAM, packed products halve the MAC array, weight blocks
trade BRAM for re-reading the input, DDR-bound instructions follow the board's bandwidth."""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np
import pytest

from hwcodesign.boards import HP_PORTS, Board, load_board
from hwcodesign.codegen.render import static_file
from hwcodesign.hardware.engine.config import EngineConfig, memory_words
from hwcodesign.hardware.engine.descriptor import DESCRIPTOR_WORDS
from hwcodesign.hardware.engine.plan import InstructionPlan, prefetching
from hwcodesign.hardware.engine.tables import RECORD_WORDS
from hwcodesign.hardware.folding import LayerCost
from hwcodesign.hardware.units import PIPELINE_RAMP
from hwcodesign.ir import Graph, Input, IntType, Tensor, make_requant, shared_shift
from hwcodesign.mapper.engine.cost import (
    DDR_LATENCY,
    HP_PORT_BYTES,
    InstructionTiming,
    MemorySystem,
    mac_compute,
    mac_timing,
    mac_timings,
    memory_system,
    pixel_timing,
    roofline,
)
from hwcodesign.mapper.engine.facet import engine_facet
from hwcodesign.mapper.engine.program import blocking_run, instructions, plan
from hwcodesign.mapper.engine.widths import engine_widths, weight_storage_bits
from hwcodesign.mapper.engine_map import EngineCandidate, evaluate_config
from hwcodesign.ops import Add, Conv

UINT8 = IntType(8, False)
UNBLOCKED = 1 << 20  # a weight memory deep enough for any layer here


def conv_graph(c_in: int, c_out: int, size: int, kernel: int = 3, seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    x = Tensor("x", (1, c_in, size, size), UINT8, 0.05, 3)
    y = Tensor("y", (1, c_out, size, size), UINT8, 0.05, 0)
    op = Conv("conv", ("x",), y, rng.integers(-127, 128, (c_out, c_in, kernel, kernel)), IntType(8, True),
              rng.integers(-500, 500, c_out), (1, 1), (kernel // 2,) * 4, (1, 1), 1,
              make_requant(np.full(c_out, 0.0005), 0, 0, 255))
    return Graph.from_ops("conv", [Input("x", (), x), op], ["y"])


def add_graph(channels: int, size: int) -> Graph:
    """A residual Add of two graph inputs: a pixel instruction that only moves data."""
    a = Tensor("a", (1, channels, size, size), UINT8, 0.05, 3)
    b = Tensor("b", (1, channels, size, size), UINT8, 0.04, 5)
    y = Tensor("y", (1, channels, size, size), UINT8, 0.08, 7)
    multipliers, shift = shared_shift([0.05 / 0.08, 0.04 / 0.08])
    op = Add("add", ("a", "b"), y, tuple(multipliers), make_requant(np.array([2.0 ** -shift]), 7, 0, 255))
    return Graph.from_ops("add", [Input("a", (), a), Input("b", (), b), op], ["y"])


@functools.cache
def ultra96() -> Board:
    return load_board("ultra96v2")


@functools.cache
def heavy_conv() -> Graph:
    return conv_graph(64, 64, 16)


def evaluate(graph: Graph, config: EngineConfig, target: Board | None = None) -> EngineCandidate:
    program = instructions(graph, config.word_bits)
    bits = weight_storage_bits(graph)
    widths = engine_widths(graph, [plan(i, graph, config, bits) for i in program])
    candidate = evaluate_config(graph, program, config, widths, bits, memory_system(target or ultra96()))
    assert candidate is not None
    return candidate


def only_plan(graph: Graph, config: EngineConfig) -> InstructionPlan:
    (instruction,) = instructions(graph, config.word_bits)
    return plan(instruction, graph, config, weight_storage_bits(graph))


# -- parallelism -------------------------------------------------------------------------------


def test_more_lanes_make_a_heavy_conv_faster_and_larger() -> None:
    lanes = [(8, 8), (16, 8), (16, 16), (32, 16), (32, 32), (64, 64)]
    costs = [evaluate(heavy_conv(), EngineConfig(pe, simd, 8, 8, UNBLOCKED)).cost for pe, simd in lanes]
    cycles = [c.cycles for c in costs]
    assert cycles == sorted(cycles, reverse=True) and len(set(cycles)) == len(cycles), cycles
    for resource in ("dsp", "bram18k", "lut", "ff"):
        used = [c.resource(resource) for c in costs]
        assert used == sorted(used), (resource, used)
    dsps, brams = [c.dsp for c in costs], [c.bram18k for c in costs]
    assert len(set(dsps)) == len(dsps), dsps  # every step adds MAC lanes
    assert brams[-1] > 4 * brams[0], brams  # wider rings and weight memories
    # compute bound: the 8x8 engine needs at least MACs / 64 cycles, and is within 2x of it
    macs = 16 * 16 * 64 * 64 * 9
    assert macs // 64 <= cycles[0] < 2 * macs // 64
    timing = evaluate(heavy_conv(), EngineConfig(8, 8, 8, 8, UNBLOCKED)).timings[0]
    assert timing.macs == macs and 0.5 < timing.mac_utilisation(EngineConfig(8, 8, 8, 8, UNBLOCKED)) <= 1


@pytest.mark.parametrize(("pe", "simd"), [(8, 8), (16, 16), (32, 8)])
def test_packed_products_halve_the_mac_arrays_dsps(pe: int, simd: int) -> None:
    plain = evaluate(heavy_conv(), EngineConfig(pe, simd, 4, 8, UNBLOCKED))
    packed = evaluate(heavy_conv(), EngineConfig(pe, simd, 4, 8, UNBLOCKED, packed_macs=True))
    lanes = pe * simd
    assert plain.cost.dsp - packed.cost.dsp == lanes // 2  # lanes DSPs -> lanes / 2, the rest alike
    assert (plain.cost.cycles, plain.cost.bram18k) == (packed.cost.cycles, packed.cost.bram18k)
    assert plain.timings == packed.timings


# -- weight blocks -------------------------------------------------------------------------------


def test_a_weight_memory_smaller_than_a_layer_runs_it_in_blocks() -> None:
    """64 -> 64 channels, 3x3, at PE = SIMD = 8: 8 folds of 9 taps x 8 chunks = 72 weight words
    each, 576 per PE memory in all. A smaller memory runs the layer in blocks, each re-reading the
    whole input: 288 words hold 2 folds, 4 blocks... The halves of the memory (`prefetching`) hold
    half as many folds and load each block's weights under the previous block's compute: faster
    than loading them between the same blocks, the same bytes; 72 words cannot be halved."""
    whole = EngineConfig(8, 8, 8, 8, 576)
    (instruction,) = instructions(heavy_conv(), whole.word_bits)
    bits, memory = weight_storage_bits(heavy_conv()), memory_system(load_board("ultra96v2"))
    inputs = tuple(heavy_conv().input_tensors(instruction.op))
    item = only_plan(heavy_conv(), whole)
    assert (item.sf, item.outer_total, item.outer_per_block, item.blocks, item.prefetch) == (72, 8, 8, 1, False)
    assert prefetching(item, whole) is None  # one block: nothing to prefetch
    one = evaluate(heavy_conv(), whole)
    for depth, blocks, halves in [(288, 2, 4), (144, 4, 8), (72, 8, None)]:
        config = replace(whole, weight_depth=depth)
        item = engine_facet(instruction.op).plan(instruction, inputs, config, bits)  # in the whole memories
        assert (item.outer_per_block, item.blocks, item.prefetch) == (8 // blocks, blocks, False)
        assert item.weight_buffer_words == item.outer_per_block * item.sf <= depth
        timing = mac_timing(item, config, bits, memory)
        assert timing.cycles > mac_timing(only_plan(heavy_conv(), whole), whole, bits, memory).cycles
        in_bytes = 16 * 16 * 64  # 64 channels = 8 words of 8 bytes per pixel
        assert timing.ddr_bytes - one.timings[0].ddr_bytes == (blocks - 1) * in_bytes
        split = prefetching(item, config)
        if halves is None:
            assert split is None
        else:
            assert (split.blocks, split.prefetch) == (halves, True)
            assert split.weight_buffer_words == 2 * split.outer_per_block * split.sf <= depth
            assert split.weight_words == split.outer_per_block * split.sf * split.load_pe * memory_words(config, bits)
            assert split.table_entries == split.outer_per_block * split.lanes_out
            prefetched = mac_timing(split, config, bits, memory)
            loaded = mac_timing(replace(split, prefetch=False), config, bits, memory)
            assert prefetched.cycles < loaded.cycles and prefetched.ddr_bytes == loaded.ddr_bytes
        # the program takes the faster of the two on its reference run
        options = [item] + ([split] if split else [])
        fastest = min(options, key=lambda p: mac_timings(p, config, bits, (blocking_run(config),))[0].cycles)
        assert only_plan(heavy_conv(), config) == fastest
        assert evaluate(heavy_conv(), config).cost.bram18k < one.cost.bram18k  # shallower PE weight memories


# -- the memory system --------------------------------------------------------------------------


def test_memory_cycles_are_bound_by_the_slower_of_ddr_and_the_hp_port() -> None:
    ddr_bound = MemorySystem(ddr_bytes=4, port_bytes=16)
    assert ddr_bound.cycles((1000,), 1000) == 500  # 2000 bytes over a 4-byte DDR; the port needs 62.5
    port_bound = MemorySystem(ddr_bytes=32, port_bytes=8)
    assert port_bound.cycles((800,), 160) == 100  # the read port: 800 / 8; DDR needs 960 / 32 = 30
    assert port_bound.cycles((160,), 800) == 100  # the write port, likewise
    assert port_bound.cycles((800,), 800) == 100  # each direction has its own channel
    both = MemorySystem(ddr_bytes=16, port_bytes=16)
    assert both.cycles((1600,), 1600) == 200  # DDR (3200 / 16) binds once both directions are busy
    assert both.cycles((1600,), 0) == 100
    assert MemorySystem(8, 8).cycles((), 0) == 0


def test_masters_on_their_own_hp_ports_read_side_by_side() -> None:
    """One port: the feature-map, aux and params reads share its read channel. Four ports (a lone
    engine's): each read master has its own, so the slowest master binds, within the DDR."""
    reads = (1600, 800, 160)  # feature map, aux (a fused residual's skip), params
    one, four = MemorySystem(ddr_bytes=64, port_bytes=16), MemorySystem(ddr_bytes=64, port_bytes=16, ports=4)
    assert one.cycles(reads, 800) == 2560 // 16
    assert four.cycles(reads, 800) == 1600 // 16
    assert MemorySystem(ddr_bytes=32, port_bytes=16, ports=4).cycles(reads, 800) == 3360 // 32  # the DDR binds
    assert (one.peak_bytes, four.peak_bytes) == (32, 64)
    assert four.shared(1) == four and four.shared(2) == MemorySystem(32, 16)  # side by side: a port each


@pytest.mark.parametrize(("name", "ddr", "port"), [("ultra96v2", 32.0, 16), ("pynqz2", 16.0, 8), ("zcu104", 57.6, 16)])
def test_memory_system_of_a_board(name: str, ddr: float, port: int) -> None:
    board = load_board(name)
    system = memory_system(board)
    assert system.ddr_bytes == pytest.approx(ddr)  # GB/s over the PL clock
    assert system.port_bytes == port == HP_PORT_BYTES[board.ps_type] and system.ports == HP_PORTS


def test_a_memory_bound_add_slows_down_in_proportion_to_the_ddr_bandwidth() -> None:
    graph = add_graph(64, 32)
    config = EngineConfig(8, 8, 8, 8, 256)
    item = only_plan(graph, config)
    words = 32 * 32 * 8  # per input and for the output: 64 channels are 8 words per pixel
    reads, write_bytes = (words * 8, words * 8), words * 8  # the two inputs on the in and aux masters
    read_bytes = sum(reads)

    def timing(gbps: float) -> tuple[InstructionTiming, int]:
        board = replace(ultra96(), ddr_bandwidth_gbps=gbps)
        return pixel_timing(item, config, memory_system(board)), memory_system(board).cycles(reads, write_bytes)

    fast, fast_memory = timing(ultra96().ddr_bandwidth_gbps)
    # at 6.4 GB/s the DDR (32 bytes a cycle at 200 MHz) binds the 192 KiB the two readers and the
    # writer move, each on its own HP port: 6144 cycles, fewer than the compute loop's 8192
    assert fast_memory == (read_bytes + write_bytes) // 32 < fast.compute_iterations == words
    slow = [timing(gbps) for gbps in (0.8, 0.4, 0.2)]  # 4, 2, 1 bytes per cycle
    for (t, memory), bytes_per_cycle in zip(slow, (4, 2, 1)):
        assert memory == (read_bytes + write_bytes) // bytes_per_cycle  # DDR-bound now
        assert t.compute_iterations == fast.compute_iterations  # the loops do not change
    # the latencies stay; the descriptor and record loads (a word a cycle at full bandwidth) and
    # the streaming part follow 1 / bandwidth
    latencies = 3 * DDR_LATENCY + 4 * PIPELINE_RAMP
    loads = DESCRIPTOR_WORDS + item.table_entries * RECORD_WORDS
    assert [t.cycles - memory - latencies for t, memory in slow] == [loads * 8 // b for b in (4, 2, 1)]
    assert fast.cycles == latencies + loads + words + PIPELINE_RAMP  # at full bandwidth the loops bind
    (quarter, _), (half, _), (slowest, _) = slow
    assert slowest.cycles - latencies == 2 * (half.cycles - latencies) == 4 * (quarter.cycles - latencies)
    assert fast.cycles < quarter.cycles / 5
    assert fast.ddr_bytes == slowest.ddr_bytes  # the same traffic, only slower


def test_a_compute_bound_conv_barely_notices_the_ddr_bandwidth() -> None:
    config = EngineConfig(8, 8, 8, 8, UNBLOCKED)
    fast = evaluate(heavy_conv(), config).cost.cycles
    slow = evaluate(heavy_conv(), config, replace(ultra96(), ddr_bandwidth_gbps=1.6)).cost.cycles
    assert fast <= slow < 1.01 * fast


# -- the compute loop by hand --------------------------------------------------------------------


@pytest.mark.parametrize(("simd", "cycles"), [(8, 44), (64, 60)])
def test_mac_compute_of_a_1x1_conv_on_a_2x2_image(simd: int, cycles: int) -> None:
    """A 1x1 conv, SIMD input channels (one chunk) -> 8 output channels, on a 2x2 image, at
    PE = 8 and RQ = 8, 64-bit words (8 bytes).

    Plan: window 1 row, ring 2 rows, chunks 1, sf = 1 tap x 1 chunk, lanes_out = PE = 8,
    sfx = max(sf 1, 8 lanes / 8 stages, 8 lanes / 8 bytes) = 1, one output fold.
    Per output row: work = out_w (2) x outers (1) x sfx (1) = 2 steps, drain = 8 / 8 = 1.

    Iterations (the docstring's loops): the fill loop reads the first input row, 2 pixels x 1
    chunk = 2 ring words; row 0 runs max(work + drain = 3, ahead = the next row's 2 words) = 3
    steps; row 1 max(3, 0 words left) = 3 steps: 2 + 3 + 3 = 8, at every SIMD.

    Cycles: each loop pays PIPELINE_RAMP (12) after it. With SIMD = 8 the packer turns one DDR
    word into one ring word per cycle (word j ready at j + 1), never behind compute:
    (2 + 12) + (3 + 12) + (3 + 12) = 44.
    With SIMD = 64 a ring word takes 8 DDR words, word j is ready at 8 (j + 1): the fill waits
    until 16 (+12 -> 28); row 0 reads the ahead words 2 and 3 during its first 2 steps but word
    3 is ready only at 32, so row 0 ends at 32 + its last step = 33 (+12 -> 45); row 1 needs no
    words: 45 + 3 + 12 = 60.
    """
    x = Tensor("x", (1, simd, 2, 2), UINT8, 0.05, 0)
    y = Tensor("y", (1, 8, 2, 2), UINT8, 0.05, 0)
    op = Conv("conv", ("x",), y, np.ones((8, simd, 1, 1), np.int64), IntType(8, True), np.zeros(8, np.int64),
              (1, 1), (0,) * 4, (1, 1), 1, make_requant(np.full(8, 0.01), 0, 0, 255))
    graph = Graph.from_ops("one_by_one", [Input("x", (), x), op], ["y"])
    config = EngineConfig(8, simd, 8, 8, 256)
    item = only_plan(graph, config)
    assert (item.window_rows, item.ring_rows, item.chunks, item.sf, item.sfx, item.outer_total) == (1, 2, 1, 1, 1, 1)
    assert PIPELINE_RAMP == 12
    assert mac_compute(item, config, item.outer_per_block) == (cycles, 8, 8)
    # the instruction's compute iterations are the block's (one block)
    timing = mac_timing(item, config, 8, memory_system(ultra96()))
    assert timing.compute_iterations == 8 and timing.blocks == 1
    assert timing.macs == 2 * 2 * 8 * simd
    assert timing.cycles > cycles  # plus descriptor, weights, records and the writer


def test_engine_cost_is_a_layer_cost_with_frame_cycles() -> None:
    candidate = evaluate(heavy_conv(), EngineConfig(16, 16, 4, 8, UNBLOCKED))
    assert isinstance(candidate.cost, LayerCost)
    assert candidate.cost.cycles == candidate.cost.depth == sum(t.cycles for t in candidate.timings)


# -- the roofline ---------------------------------------------------------------------------------


@pytest.mark.parametrize("target_name", ["ultra96v2", "pynqz2", "zcu102"])
@pytest.mark.parametrize("config", [EngineConfig(8, 8, 8, 8, UNBLOCKED), EngineConfig(32, 16, 4, 8, 256, packed_macs=True)],
                         ids=str)
@pytest.mark.parametrize("instances", [1, 3])
def test_no_instruction_beats_its_roofs(target_name: str, config: EngineConfig, instances: int) -> None:
    """Every instruction takes at least its MACs over the lanes and its DDR bytes over the peak
    bytes a cycle of its instance (port and DDR share): the cost model never beats the roofline."""
    target = load_board(target_name)
    memory = memory_system(target).shared(instances)
    for graph in (heavy_conv(), conv_graph(64, 256, 14, kernel=1), add_graph(64, 12)):
        program = instructions(graph, config.word_bits)
        bits = weight_storage_bits(graph)
        widths = engine_widths(graph, [plan(i, graph, config, bits) for i in program])
        candidate = evaluate_config(graph, program, config, widths, bits, memory_system(target), instances=instances)
        assert candidate is not None
        for timing in candidate.timings:
            roof = roofline(timing, config, memory)
            assert roof.compute_cycles == timing.macs / (config.pe * config.simd)
            assert roof.memory_cycles == pytest.approx(timing.ddr_bytes / memory.peak_bytes)
            assert 0 < roof.floor_fraction <= 1, (timing.name, roof)
            assert roof.mac_utilisation <= 1 and roof.ddr_utilisation <= 1


def test_the_roofline_names_what_binds() -> None:
    """On 64 x 64 MAC lanes, a 3x3 conv of 64 channels at 32x32 is compute-bound (576 MACs per
    input byte); a pointwise conv to 256 channels (a ResNet bottleneck's expansion: 64 MACs per
    byte written) and a residual Add (no MACs) are memory-bound."""
    config, memory = EngineConfig(64, 64, 8, 8, UNBLOCKED, packed_macs=True), memory_system(ultra96())
    bounds = []
    for graph in (conv_graph(64, 64, 32), conv_graph(64, 256, 14, kernel=1), add_graph(64, 12)):
        [timing] = evaluate(graph, config).timings
        bounds.append(roofline(timing, config, memory).bound)
    assert bounds == ["compute", "memory", "memory"]
    assert memory.peak_bytes == min(memory.ddr_bytes, 2 * memory.port_bytes)


def test_buffers_in_ultraram_trade_block_ram_for_urams_and_change_no_cycle() -> None:
    """A URAM288 is 4K x 72 bits: PE16 x SIMD16 8-bit weights (128 bits, 144 words deep) take two
    per PE; the ring's 2 x PP banks of SIMD16 centred 9-bit values (144 bits) two per bank."""
    config = EngineConfig(16, 16, 4, 8, UNBLOCKED, pp=2)
    base = evaluate(heavy_conv(), config)
    weights = evaluate(heavy_conv(), replace(config, uram=("weights",)))
    both = evaluate(heavy_conv(), replace(config, uram=("weights", "ring")))
    assert base.timings == weights.timings == both.timings
    assert (base.cost.uram, weights.cost.uram, both.cost.uram) == (0, 16 * 2, 16 * 2 + 4 * 2)
    assert base.cost.bram18k - weights.cost.bram18k == 16 * 4  # 144 x 128 bits: four 512 x 36 blocks a PE
    assert weights.cost.bram18k > both.cost.bram18k
    with pytest.raises(ValueError, match="in that order"):
        replace(config, uram=("ring", "weights"))


def test_the_engine_stream_fifos_are_the_lutram_the_templates_bind() -> None:
    """The units' DDR-side word FIFOs are bound to LUTRAM in the templates (BIND_STORAGE
    impl=lutram), so they cost LUTs, not block RAM: a small engine whose other memories are all
    below the LUTRAM threshold takes no BRAM18K."""
    for header, names in (("hwc_engine_mac.h", ("words_in", "words_aux", "words_skip", "words_mac", "words_out",
                                              "next_weights")),
                          ("hwc_engine_pixel.h", ("words_a", "words_b", "words_out"))):
        text = static_file(f"hls/engine/{header}")
        assert all(f"BIND_STORAGE variable={name} type=fifo impl=lutram" in text for name in names)
    small = evaluate(conv_graph(8, 8, 4), EngineConfig(8, 8, 8, 8, UNBLOCKED))
    assert small.cost.bram18k == 0
    wide = evaluate(conv_graph(16, 16, 4), EngineConfig(16, 16, 8, 8, UNBLOCKED, word_bits=128))
    assert wide.cost.bram18k == 0 and wide.cost.lut > small.cost.lut
