"""Where a stage's weight ROMs live (`Folding.weights`): block RAM or LUTRAM priced by UG573's
aspect ratios and ceil(depth/64) LUT6s a bit, offered where a real trade-off, and chosen by the
integer program against whichever resource binds."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hwcodesign.boards import available_boards, load_board
from hwcodesign.hardware.folding import RESOURCES, Folding, thin
from hwcodesign.hardware.memory import (
    LUTRAM_MAX_DEPTH,
    automatic_memory,
    bram_cost,
    lutram_cost,
    memory_cost,
    weight_memories,
    weight_memory_cost,
)
from hwcodesign.ir import Graph, Input, IntType, Tensor, make_requant
from hwcodesign.mapper.cost import candidate_foldings, layer_cost
from hwcodesign.mapper.ilp import candidate_table
from hwcodesign.mapper.table import solve_table
from hwcodesign.ops import Conv

UINT8, INT8 = IntType(8, False), IntType(8, True)


def conv_graph(c_in: int, c_out: int, size: int = 16) -> Graph:
    """An input stream and one 3x3 int8 conv."""
    weight = np.random.default_rng(0).integers(-128, 128, (c_out, c_in, 3, 3))
    ops = [Input("in", (), Tensor("x", (1, c_in, size, size), UINT8, 0.05, 0)),
           Conv("conv", ("x",), Tensor("y", (1, c_out, size, size), UINT8, 0.05, 0), weight, INT8,
                np.zeros(c_out, np.int64), (1, 1), (1,) * 4, (1, 1), 1, make_requant(np.full(c_out, 0.01), 0, 0, 255))]
    return Graph.from_ops("conv", ops, ["y"])


@pytest.mark.parametrize(("depth", "width", "copies", "luts"), [
    (64, 1, 1, 1), (65, 10, 3, 3 * 2 * 10), (256, 36, 1, 4 * 36), (1, 1500, 2, 2 * 1500), (144, 128, 4, 4 * 3 * 128),
])
def test_lutram_takes_a_lut6_per_64_words_and_bit(depth: int, width: int, copies: int, luts: int) -> None:
    assert lutram_cost(depth, width, copies) == weight_memory_cost("lutram", depth, width, copies)
    assert (lutram_cost(depth, width, copies).lut, lutram_cost(depth, width, copies).bram18k) == (luts, 0)


@pytest.mark.parametrize(("depth", "width", "copies", "blocks"), [
    (16384, 1, 1, 1),  # 16K x 1
    (2048, 9, 1, 1),  # 2K x 9
    (2049, 9, 1, 2),  # two 2K x 9 (4K x 4 takes three, 1K x 18 three)
    (1000, 40, 1, 3),  # 1K x 18, three wide
    (144, 128, 4, 4 * 4),  # 512 x 36, four wide, a copy per PE
    (1, 2304, 1, 64),  # 512 x 36, 64 wide: a word of 2,304 bits
])
def test_block_ram_takes_ug573s_best_aspect_ratio(depth: int, width: int, copies: int, blocks: int) -> None:
    assert bram_cost(depth, width, copies) == weight_memory_cost("bram", depth, width, copies)
    assert (bram_cost(depth, width, copies).bram18k, bram_cost(depth, width, copies).lut) == (blocks, 0)


@pytest.mark.parametrize(("depth", "width", "offered"), [
    (32, 32, ("lutram",)),  # 1 Kb: block RAM would be a sixteenth full
    (1, 2047, ("lutram",)),
    (256, 8, ("bram", "lutram")),  # 2 Kb
    (64, 64, ("bram", "lutram")),
    (257, 16, ("bram",)),  # deeper than four LUT6s and the slice's F7/F8 multiplexers
    (9216, 8, ("bram",)),
])
def test_lutram_is_offered_where_a_real_trade_off_and_the_automatic_memory_first(
        depth: int, width: int, offered: tuple[str, ...]) -> None:
    assert weight_memories(depth, width) == offered
    assert offered[0] == automatic_memory(depth, width)
    assert memory_cost(depth, width, 3) == weight_memory_cost(offered[0], depth, width, 3)


def test_a_block_lutram_saves_costs_fewer_luts_than_any_board_has_per_block() -> None:
    """The reason for LUTRAM_MAX_DEPTH: where both are offered LUTRAM takes at most 144 LUTs per
    BRAM18K it saves, and every board has more LUTs than that per BRAM18K."""
    worst = max(lutram_cost(depth, width).lut / bram_cost(depth, width).bram18k
                for depth in range(1, LUTRAM_MAX_DEPTH + 1) for width in range(1, 200)
                if weight_memories(depth, width) == ("bram", "lutram"))
    assert worst == 144
    assert all(b.resources.lut / b.resources.bram18k > worst for b in available_boards())


def test_a_stage_prices_the_memory_its_folding_names() -> None:
    """PE4 SIMD16 of a 32x32 3x3 int8 conv: four ROMs of 8 x 18 = 144 words of 128 bits, each four
    512 x 36 blocks or 3 x 128 LUTs; nothing else about the stage changes."""
    graph = conv_graph(32, 32)
    op = graph.op("conv")
    inputs = graph.input_tensors(op)
    bram = layer_cost(op, inputs, Folding(4, 16, weights="bram"))
    lutram = layer_cost(op, inputs, Folding(4, 16, weights="lutram"))
    assert bram.bram18k - lutram.bram18k == 4 * 4
    assert lutram.lut - bram.lut == 4 * 3 * 128
    assert (bram.cycles, bram.depth, bram.dsp, bram.ff) == (lutram.cycles, lutram.depth, lutram.dsp, lutram.ff)


def test_the_mapper_is_offered_both_memories_only_where_a_real_trade_off() -> None:
    """Every candidate has its ROM's automatic memory; LUTRAM besides block RAM only at most 256
    words deep; a layer whose ROMs are all below 2 Kb only in LUTRAM."""
    graph = conv_graph(32, 32)
    op = graph.op("conv")
    options = candidate_foldings(op, graph.input_tensors(op), max_candidates=10**6)
    by_shape: dict[tuple[int, int], set[str]] = {}
    for f in options:
        by_shape.setdefault((f.pe, f.simd), set()).add(f.weights)
    for (pe, simd), memories in by_shape.items():
        depth = 32 // pe * (288 // simd)
        assert memories == ({"bram", "lutram"} if depth <= LUTRAM_MAX_DEPTH else {"bram"})
    small = conv_graph(4, 4)  # 4 x 36 x 8 bits: at most 1,152 bits a ROM
    small_op = small.op("conv")
    assert {f.weights for f in candidate_foldings(small_op, small.input_tensors(small_op), 10**6)} == {"lutram"}


def test_the_memory_choice_costs_no_shape_resolution() -> None:
    """Thinning keeps the shapes it would keep without the choice: only the (MAC, output stage)
    implementations count towards the shapes a layer keeps."""
    graph = conv_graph(32, 32)
    op = graph.op("conv")
    options = candidate_foldings(op, graph.input_tensors(op), max_candidates=10**6)
    automatic = [f for f in options if f.weights == weight_memories(32 // f.pe * (288 // f.simd), f.simd * 8)[0]]
    for limit in (4, 16, 96):
        assert {(f.pe, f.simd) for f in thin(options, limit)} == {(f.pe, f.simd) for f in thin(automatic, limit)}
    lanes = [Folding(f.pe, f.simd, "lut") for f in options]
    assert len({(f.pe, f.simd) for f in thin(options + lanes, 16)}) == 8  # two MAC implementations: half


@pytest.mark.parametrize("binding", ["bram18k", "lut"])
def test_the_integer_program_moves_weights_to_lutram_when_block_ram_binds_and_back_when_luts_do(
        binding: str) -> None:
    """At PE8 SIMD16's frame rate a 32x32 conv's weights fit only in LUTRAM under a block RAM
    limit just above that design's, and only in block RAM under a LUT limit just above its own."""
    graph = conv_graph(32, 32)
    table = candidate_table(graph, load_board("zcu102"), max_candidates=10**6)
    layer = table.layers.index("conv")
    costs = dict(zip(table.foldings[layer], table.costs[layer]))
    wanted = "lutram" if binding == "bram18k" else "bram"
    target = costs[Folding(8, 16, weights=wanted)]
    stream = table.costs[table.layers.index("in")][0]
    limits = {r: 10**9 for r in RESOURCES}
    limits[binding] = stream.resource(binding) + target.resource(binding)
    other = costs[Folding(8, 16, weights="bram" if wanted == "lutram" else "lutram")]
    assert other.resource(binding) > target.resource(binding)
    solution = solve_table(table, limits, "resources", max_cycles=target.cycles)
    assert solution is not None
    chosen = table.foldings[layer][solution[0][layer]]
    assert chosen.weights == wanted
    assert costs[chosen].cycles <= target.cycles and costs[chosen].resource(binding) <= target.resource(binding)
    assert replace(chosen, weights="bram" if wanted == "lutram" else "lutram") in costs  # a choice it had
