"""The engine's program as data: the DDR arena (no two live tensors overlap), descriptors,
per-channel records and packed weights decoded back bit by bit, every instruction's plan, and
the layers the engine refuses (with the layer named)."""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np
import pytest
from support.deform_cases import GRID, DeformCase, deform_layer
from support.engine import CONFIGS
from support.op_cases import CASES, ENGINE_ONLY_CASES, build

from hwcodesign.codegen.engine.program import (
    build_program,
    covering_program,
    descriptor_words,
    mac_weight_table,
    pack_weight_words,
    plan_arena,
)
from hwcodesign.hardware.engine.config import (
    EngineConfig,
    EngineUnsupported,
    group_pixels,
    memory_words,
    words_per_pixel,
)
from hwcodesign.hardware.engine.descriptor import DESCRIPTOR_FIELDS, DESCRIPTOR_WORDS, FLAGS, Arena
from hwcodesign.hardware.engine.plan import InstructionPlan
from hwcodesign.hardware.engine.tables import RECORD_WORDS, record_words
from hwcodesign.ir import Graph, Input, IntType, Requant, Tensor, identity_requant, make_requant
from hwcodesign.ir.op import Op
from hwcodesign.mapper.engine.program import instructions, plan, plan_program
from hwcodesign.mapper.engine.widths import weight_storage_bits
from hwcodesign.ops import Add, Concat, Conv, DeformConv
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.quantize import quantize_qdq

UINT8, INT8 = IntType(8, False), IntType(8, True)


def signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def conv(name: str, source: Tensor, out: Tensor, kernel: int = 1, seed: int = 0, weight_bits: int = 8) -> Conv:
    rng = np.random.default_rng(seed)
    top = 2 ** (weight_bits - 1)
    return Conv(name, (source.name,), out,
                rng.integers(-top, top, (out.channels, source.channels, kernel, kernel)), IntType(weight_bits, True),
                rng.integers(-100, 100, out.channels), (1, 1), (kernel // 2,) * 4, (1, 1), 1,
                make_requant(np.full(out.channels, 0.01), out.zero_point, out.dtype.min, out.dtype.max))


def tensor(name: str, channels: int, size: int = 6, dtype: IntType = UINT8, zero_point: int = 0) -> Tensor:
    return Tensor(name, (1, channels, size, size), dtype, 0.05, zero_point)


@functools.cache
def op_case_graph(case: str) -> Graph:
    model, calibration = build(case)
    return optimize(load_onnx(quantize_qdq(model, calibration)))


def chain_graph(layers: int, channels: int = 12, size: int = 6) -> Graph:
    ops: list = [Input("in", (), tensor("t0", channels, size))]
    for i in range(1, layers + 1):
        ops.append(conv(f"conv{i}", ops[-1].output, tensor(f"t{i}", channels, size), kernel=3, seed=i))
    return Graph.from_ops("chain", ops, [ops[-1].output.name])


def late_input_graph() -> Graph:
    """A second graph input that comes after two layers in the topological order (its
    QuantizeLinear late in the ONNX file): the host still writes it before the run."""
    a, b = tensor("a", 8), tensor("b", 8)
    t1, t2, y = tensor("t1", 8), tensor("t2", 8), tensor("y", 8)
    ops = [Input("a", (), a), conv("c1", a, t1), conv("c2", t1, t2, seed=1), Input("b", (), b),
           Add("add", ("t2", "b"), y, (3, 5), make_requant(np.array([0.125]), 0, 0, 255))]
    graph = Graph.from_ops("late_input", ops, ["y"])
    assert [op.name for op in graph] == ["a", "c1", "c2", "b", "add"]
    return graph


def arena_graph(name: str) -> Graph:
    if name == "chain":
        return chain_graph(10)
    if name == "deform":
        return deform_layer(DeformCase(mask=True)).graph  # x, offset and mask: three graph inputs
    if name == "late_input":
        return late_input_graph()
    return op_case_graph(name)


# -- the DDR arena --------------------------------------------------------------------------------


def live_ranges(graph: Graph) -> dict[str, tuple[int, int]]:
    """(first, last) step each tensor is live: from the op producing it (graph inputs from the
    start, -1) to its last reader (graph outputs to the end)."""
    order = list(graph)
    ranges = {op.output.name: (-1 if isinstance(op, Input) else index, index) for index, op in enumerate(order)}
    for index, op in enumerate(order):
        for name in op.inputs:
            ranges[name] = (ranges[name][0], max(ranges[name][1], index))
    for name in graph.outputs:
        ranges[name] = (ranges[name][0], len(order))
    return ranges


def assert_no_live_overlap(graph: Graph, arena: Arena) -> None:
    ranges = live_ranges(graph)
    names = sorted(ranges)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            (a_first, a_last), (b_first, b_last) = ranges[a], ranges[b]
            if a_first > b_last or b_first > a_last:
                continue  # never live at the same time
            a_end, b_end = arena.addresses[a] + arena.sizes[a], arena.addresses[b] + arena.sizes[b]
            assert a_end <= arena.addresses[b] or b_end <= arena.addresses[a], (
                f"'{a}' [{arena.addresses[a]}, {a_end}) and '{b}' [{arena.addresses[b]}, {b_end}) overlap while both live")


@pytest.mark.parametrize("word_bytes", [8, 16])
@pytest.mark.parametrize("name", ["residual_add", "concat", "flatten_gemm", "chain", "deform", "late_input"])
def test_the_arena_never_overlaps_two_live_tensors(name: str, word_bytes: int) -> None:
    graph = arena_graph(name)
    arena = plan_arena(graph, word_bytes)
    tensors = {op.output.name: op.output for op in graph}
    assert set(arena.addresses) == set(arena.sizes) == set(tensors)
    for tensor_name, t in tensors.items():
        assert arena.sizes[tensor_name] == t.shape[2] * t.shape[3] * -(-t.channels // word_bytes)
        assert 0 <= arena.addresses[tensor_name] and arena.addresses[tensor_name] + arena.sizes[tensor_name] <= arena.words
    assert arena.words <= sum(arena.sizes.values())
    assert_no_live_overlap(graph, arena)


def test_a_long_chain_reuses_the_arena() -> None:
    graph = chain_graph(10)
    arena = plan_arena(graph, 8)
    size = 6 * 6 * 2  # 12 channels are two 8-byte words per pixel
    assert set(arena.sizes.values()) == {size}
    assert arena.words < sum(arena.sizes.values())
    assert arena.words == 2 * size  # each layer reads one tensor and writes the other slot
    assert {arena.addresses[f"t{i}"] for i in range(11)} == {0, size}


def test_inputs_after_other_layers_are_not_overwritten() -> None:
    """Regression: an input late in the order used to be placed where an earlier layer's output
    (still to be written) or the other input lived, so the host's write was clobbered."""
    graph = late_input_graph()
    arena = plan_arena(graph, 8)
    spans = {name: set(range(arena.addresses[name], arena.addresses[name] + arena.sizes[name]))
             for name in ("a", "b", "t1")}
    assert not spans["a"] & spans["b"]
    assert not spans["b"] & spans["t1"]  # t1 is written (by c1) before b is read (by add)


# -- descriptors ----------------------------------------------------------------------------------


def decode_descriptor(words: np.ndarray) -> dict[str, int]:
    """Two signed 32-bit fields per 64-bit word, the low half first, in DESCRIPTOR_FIELDS order."""
    values = []
    for word in words.tolist():
        values += [signed(word, 32), signed(word >> 32, 32)]
    assert all(v == 0 for v in values[len(DESCRIPTOR_FIELDS):])  # the padding
    return dict(zip(DESCRIPTOR_FIELDS, values))


def test_descriptor_words_round_trip_including_negative_fields() -> None:
    rng = np.random.default_rng(0)
    fields = {name: int(rng.integers(-2**31, 2**31)) for name in DESCRIPTOR_FIELDS}
    fields.update(in_zp=-128, out_zp=-3, stage2_lo=-2048, stage2_hi=2048, aux_zp=-1, mode=3,
                  in_addr=2**31 - 1, out_addr=0, pad_t=-(2**31))
    words = descriptor_words(fields)
    assert words.dtype == np.uint64 and words.shape == (DESCRIPTOR_WORDS,)
    assert len(DESCRIPTOR_FIELDS) <= 2 * DESCRIPTOR_WORDS
    assert decode_descriptor(words) == fields
    # fields left out are zero
    sparse = {"mode": 1, "out_zp": -7, "pattern_cx": 2}
    assert decode_descriptor(descriptor_words(sparse)) == {name: sparse.get(name, 0) for name in DESCRIPTOR_FIELDS}


def test_the_params_buffer_starts_with_every_instructions_descriptor() -> None:
    layer = deform_layer(DeformCase(mask=True))
    program = build_program(layer.graph, CONFIGS[0])
    (descriptor,) = program.descriptors
    assert descriptor["stage2_lo"] < 0 < descriptor["stage2_hi"]  # a negative field on the way
    decoded = decode_descriptor(program.params[:DESCRIPTOR_WORDS])
    assert decoded == {name: descriptor.get(name, 0) for name in DESCRIPTOR_FIELDS}
    source, out = tensor("x", 8, dtype=INT8, zero_point=-7), tensor("y", 8, dtype=INT8, zero_point=-3)
    signed_graph = Graph.from_ops("signed", [Input("x", (), source), conv("c", source, out)], ["y"])
    program = build_program(signed_graph, CONFIGS[0])
    decoded = decode_descriptor(program.params[:DESCRIPTOR_WORDS])
    assert (decoded["in_zp"], decoded["out_zp"], decoded["out_lo"], decoded["out_hi"]) == (-7, -3, -128, 127)
    assert decoded["flags"] & 1  # FLAGS["in_signed"]
    graph = op_case_graph("residual_add")
    program = build_program(graph, CONFIGS[1])
    assert len(program.descriptors) == len(instructions(graph)) == 2  # the Add runs in its conv's output stage
    for index, fields in enumerate(program.descriptors):
        words = program.params[index * DESCRIPTOR_WORDS:(index + 1) * DESCRIPTOR_WORDS]
        assert decode_descriptor(words) == {name: fields.get(name, 0) for name in DESCRIPTOR_FIELDS}
        assert fields["out_addr"] == program.arena.addresses[program.plans[index].instruction.written.name]


# -- per-channel records --------------------------------------------------------------------------


def decode_records(rows: np.ndarray) -> dict[str, list[int]]:
    """bias (bits 0..47, signed) | shift (48..53); m (low 32, signed) | nm (high 32, signed);
    offset and negative offset (signed 64)."""
    words = [[int(w) for w in row] for row in rows]
    assert all(row[0] >> 54 == 0 for row in words)  # nothing above the shift
    return {
        "bias": [signed(row[0], 48) for row in words],
        "shift": [(row[0] >> 48) & 63 for row in words],
        "m": [signed(row[1], 32) for row in words],
        "nm": [signed(row[1] >> 32, 32) for row in words],
        "offset": [signed(row[2], 64) for row in words],
        "negative_offset": [signed(row[3], 64) for row in words],
    }


def test_records_of_a_per_tensor_requant_are_broadcast() -> None:
    requant = Requant(np.array([-1234567]), np.array([37]), -5, -128, 127, negative_multiplier=np.array([-(2**31)]),
                      offset=np.array([-(2**40)]), negative_offset=np.array([2**62 + 3]))
    bias = np.array([-(2**47), -1, 0, 1, 2**47 - 1])
    rows = record_words(requant, 5, bias)
    assert rows.dtype == np.uint64 and rows.shape == (5, RECORD_WORDS)
    assert decode_records(rows) == {
        "bias": bias.tolist(), "shift": [37] * 5, "m": [-1234567] * 5, "nm": [-(2**31)] * 5,
        "offset": [-(2**40)] * 5, "negative_offset": [2**62 + 3] * 5,
    }


def test_records_of_a_per_channel_requant() -> None:
    multiplier = np.array([2**31 - 1, -(2**31), -1, 8388608])
    shift = np.array([0, 62, 1, 24])
    negative = np.array([-3, 2**30, 0, -(2**31)])
    offset = np.array([-(2**63), 2**63 - 1, -17, 0])
    negative_offset = np.array([5, -6, 7, -(2**35)])
    requant = Requant(multiplier, shift, 0, 0, 255, negative, offset, negative_offset)
    bias = np.array([123456789012, -987654321098, 0, -1])
    assert decode_records(record_words(requant, 4, bias)) == {
        "bias": bias.tolist(), "shift": shift.tolist(), "m": multiplier.tolist(), "nm": negative.tolist(),
        "offset": offset.tolist(), "negative_offset": negative_offset.tolist(),
    }
    # without a bias, a negative multiplier or offsets those fields are zero
    plain = decode_records(record_words(make_requant(np.array([0.3, -0.2, 0.7]), 0, 0, 255), 3))
    assert plain["bias"] == plain["nm"] == plain["offset"] == plain["negative_offset"] == [0, 0, 0]
    assert plain["m"][1] < 0 < plain["m"][0]


def test_the_params_buffer_holds_each_layers_records() -> None:
    graph = op_case_graph("conv_leaky")  # conv (bias, product offsets), then LeakyReLU (negative multiplier)
    program = build_program(graph, CONFIGS[1])
    (conv_plan, act_plan), (conv_fields, act_fields) = program.plans, program.descriptors

    def records(item: InstructionPlan, fields: dict[str, int], entries: int) -> tuple[np.ndarray, dict]:
        start = fields["tables_addr"]
        rows = program.params[start:start + entries * RECORD_WORDS].reshape(entries, RECORD_WORDS)
        return rows, decode_records(rows)

    op = conv_plan.instruction.op
    channels = op.output.channels
    rows, decoded = records(conv_plan, conv_fields, conv_plan.outer_total * conv_plan.lanes_out)
    assert decoded["bias"][:channels] == op.bias.tolist()
    assert decoded["m"][:channels] == np.broadcast_to(op.requant.multiplier, channels).tolist()
    assert decoded["shift"][:channels] == np.broadcast_to(op.requant.shift, channels).tolist()
    assert decoded["offset"][:channels] == op.requant.offset.tolist()
    assert min(decoded["offset"]) < 0 < max(decoded["offset"])
    assert not rows[channels:].any()  # padding lanes get zero records
    act = act_plan.instruction.op
    rows, decoded = records(act_plan, act_fields, act_plan.table_entries)
    assert decoded["m"][:channels] == np.broadcast_to(act.requant.multiplier, channels).tolist()
    assert decoded["nm"][:channels] == np.broadcast_to(act.requant.negative_multiplier, channels).tolist()
    assert act_fields["flags"] & 8  # FLAGS["negative"]
    assert not rows[channels:].any()


# -- weights --------------------------------------------------------------------------------------


def unpack_weight_words(words: np.ndarray, bits: int, word_bits: int, simd: int) -> np.ndarray:
    """Memory words of DDR words -> SIMD signed weights (little-endian `bits`-bit fields)."""
    per_word = word_bits // bits
    lead, count = words.shape[:-1], words.shape[-1]
    flat = [[int(w) for w in row] for row in words.reshape(-1, count)]
    lanes = []
    for row in flat:
        assert all(w >> word_bits == 0 for w in row)  # nothing beyond the DDR word
        fields = [signed(w >> (k * bits), bits) for w in row for k in range(per_word)]
        assert all(f == 0 for f in fields[simd:])  # unused fields of the last word are zero
        lanes.append(fields[:simd])
    return np.array(lanes, np.int64).reshape(*lead, simd)


@pytest.mark.parametrize("word_bits", [64, 128])
@pytest.mark.parametrize("simd", [16, 64])
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_packed_weight_words_unpack_to_the_table(bits: int, simd: int, word_bits: int) -> None:
    """Weights go into 64-bit params words whatever the feature maps' word (`word_bits`)."""
    rng = np.random.default_rng(bits * simd)
    table = rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), (3, 5, 8, simd))
    table[0, 0, 0] = -(2 ** (bits - 1))  # the extremes
    table[0, 0, 1] = 2 ** (bits - 1) - 1
    per_memory_word = memory_words(EngineConfig(16, simd, 1, 1, 256, word_bits), bits)
    assert per_memory_word == -(-simd * bits // 64)
    words = pack_weight_words(table, bits, per_memory_word)
    assert words.dtype == np.uint64 and words.shape == (3, 5, 8, per_memory_word)
    np.testing.assert_array_equal(unpack_weight_words(words, bits, 64, simd), table)


def test_the_weight_table_follows_the_pe_memories_order() -> None:
    """Conv weights (O, C, kh, kw) -> (fold, step, PE, lane): PE p of fold f holds output
    channel f * PE + p; step (ky * kw + kx) * chunks + chunk, lane s input channel chunk * SIMD + s;
    channels beyond the layer's are zero."""
    source, out = tensor("x", 12), tensor("y", 20)
    op = conv("conv", source, out, kernel=3)
    graph = Graph.from_ops("conv", [Input("x", (), source), op], ["y"])
    config = EngineConfig(8, 8, 2, 8, 4096)
    (instruction,) = instructions(graph)
    item = plan(instruction, graph, config, 8)
    table = mac_weight_table(item, config)
    assert table.shape == (3, 9 * 2, 8, 8)  # 20 outputs in 3 folds, 9 taps x 2 chunks of 12 channels
    for fold in range(3):
        for step in range(item.sf):
            tap, chunk = divmod(step, item.chunks)
            ky, kx = divmod(tap, 3)
            for p in range(8):
                for s in range(8):
                    o, c = fold * 8 + p, chunk * 8 + s
                    expected = op.weight[o, c, ky, kx] if o < 20 and c < 12 else 0
                    assert table[fold, step, p, s] == expected
    # and the params buffer holds it packed, block by block
    program = build_program(graph, config)
    fields = program.descriptors[0]
    count = item.blocks * item.weight_words
    words = program.params[fields["weights_addr"]:fields["weights_addr"] + count]
    per_memory_word = memory_words(config, 8)
    unpacked = unpack_weight_words(words.reshape(-1, per_memory_word), 8, 64, 8)
    np.testing.assert_array_equal(unpacked.reshape(table.shape), table)


# -- plans ----------------------------------------------------------------------------------------


OP_CASES = sorted([*CASES, *ENGINE_ONLY_CASES])
DEFORM_CASES = [case for case in GRID if case.offset_groups == 1]


def assert_plan_invariants(item: InstructionPlan, config: EngineConfig, label: str) -> None:
    out = item.output
    if not item.instruction.is_mac:
        assert item.table_entries == words_per_pixel(out, config.word_bytes) * config.word_bytes >= out.channels
        return
    source = item.inputs[0]
    assert item.ring_rows % 2 == 0, label
    assert item.window_rows + item.stride[0] <= item.ring_rows <= item.window_rows + item.stride[0] + 1, label
    assert item.window_rows == (item.kernel[0] - 1) * item.dilation[0] + 1 + 2 * item.reach, label
    assert item.chunks * config.simd >= source.channels > (item.chunks - 1) * config.simd, label
    assert item.outer_per_block * item.blocks >= item.outer_total > item.outer_per_block * (item.blocks - 1), label
    assert item.sfx >= item.sf, label
    # the output stages keep up with a group's pixels, and so does the unpacker
    assert item.sfx * config.rq_units >= item.pixels * item.lanes_out, label
    assert item.sfx * config.word_bytes >= item.pixels * item.lanes_out, label
    assert 1 <= item.pixels <= config.pp and item.col_banks == config.col_banks, label
    if item.sampling_inputs:
        assert item.pixels == 1, label  # a deformable layer's pixels read anywhere
    assert item.taps == item.kernel[0] * item.kernel[1], label
    if item.load_pe:  # a block fits the memories, two when it prefetches (a layer in blocks, halves that hold one)
        assert item.weight_buffer_words <= config.weight_depth, label
        if item.prefetch:  # a layer in blocks even in the whole memories, whose halves hold an output's weights
            assert item.outer_total * item.sf > config.weight_depth >= 2 * item.sf and item.blocks > 1, label
    if item.instruction.mode == "conv":
        assert item.lanes_out == config.pe and item.outer_total * config.pe >= out.channels, label
        assert item.sf == item.taps * item.chunks, label
    else:
        assert item.lanes_out == config.simd and item.outer_total == item.chunks and item.sf == item.taps, label
    assert item.table_entries == item.outer_per_block * item.lanes_out, label
    assert 0 <= item.slot0 < item.ring_rows, label


@pytest.mark.parametrize("pp", [1, 2, 4, 8])
def test_a_groups_pixels_read_different_ring_banks(pp: int) -> None:
    """Every tap of a group reads its pixels `stride` columns apart from consecutive bank
    positions: they must fall in different column banks (one read port each), and the group is as
    large as that allows."""
    config = EngineConfig(8, 8, 1, 1, 256, pp=pp)
    banks = config.col_banks
    for stride in range(1, 9):
        pixels = group_pixels(config, stride, sampled=False)
        for first in range(-3, 2 * banks):
            used = {(first + p * stride) % banks for p in range(pixels)}
            assert len(used) == pixels, (pp, stride, first)
        larger = min(pp, pixels * 2)
        if larger > pixels:  # one more power of two would collide
            assert len({(p * stride) % banks for p in range(larger)}) < larger, (pp, stride)
        assert group_pixels(config, stride, sampled=True) == 1


def read_through(graph: Graph, op: Op, routed: set[str]) -> bool:
    """Every reader of `op`'s output reads its producer's sources instead (`compose_gathers`)."""
    readers = graph.consumers(op.output.name)
    return bool(readers) and all(reader.name in routed for reader in readers)


@pytest.mark.parametrize("index", range(len(CONFIGS)))
def test_plan_invariants_over_every_op_case(index: int) -> None:
    config = CONFIGS[index]
    modes = set()
    for case in OP_CASES:
        graph = op_case_graph(case)
        plans = plan_program(graph, config)
        fused = [p.instruction.residual.op.name for p in plans if p.instruction.residual is not None]
        # a gather every reader of whose output reads through it (`compose_gathers`) is dropped
        routed = {p.instruction.op.name for p in plans if p.instruction.route is not None}
        assert [p.instruction.op.name for p in plans] == [
            op.name for op in graph if not isinstance(op, Input) and op.name not in fused
            and not read_through(graph, op, routed)]
        modes.update("residual" for _ in fused)
        for item in plans:
            modes.add(item.instruction.mode)
            assert_plan_invariants(item, config, f"{case}/{item.instruction.name}/{config}")
    assert modes == {"conv", "channelwise", "add", "mul", "requant", "resize", "global_pool", "residual", "gather"}


@pytest.mark.parametrize("index", range(len(CONFIGS)))
def test_plan_invariants_over_deformable_layers(index: int) -> None:
    config = CONFIGS[index]
    for case in DEFORM_CASES:
        graph = deform_layer(case).graph
        (item,) = plan_program(graph, config)
        assert isinstance(item.instruction.op, DeformConv) and item.reach == case.offset_range
        assert_plan_invariants(item, config, f"{case.label}/{config}")


def test_plan_invariants_hold_for_layers_in_weight_blocks() -> None:
    """The op cases have at most 10 output channels, one or two folds that fit even CONFIGS'
    64-word memories; 16 -> 64 channels at 3x3 run in blocks there."""
    x, hidden, out = tensor("x", 16), tensor("hidden", 64), tensor("y", 24)
    graph = Graph.from_ops("blocks", [Input("x", (), x), conv("wide", x, hidden, kernel=3),
                                      conv("narrow", hidden, out, kernel=1, seed=1)], ["y"])
    blocks = {}
    for config in CONFIGS:
        plans = plan_program(graph, config)
        for item in plans:
            assert_plan_invariants(item, config, f"blocks/{item.instruction.name}/{config}")
        blocks[str(config)] = [p.blocks for p in plans]
    # 4 folds of 9 words (SIMD 16) fit 64 words; 8 folds of 9 (PE 8, SIMD 16) do not: 2 blocks (the
    # halves' 3 blocks time slower on the program's reference run)
    assert list(blocks.values()) == [[1, 1], [1, 1], [2, 1]]


# -- what the engine refuses ---------------------------------------------------------------------


def test_activations_wider_than_a_byte_are_refused_naming_the_layer() -> None:
    int16 = IntType(16, True)
    x, wide = tensor("x", 8), tensor("wide", 8, dtype=int16)
    graph = Graph.from_ops("wide", [Input("x", (), x), conv("widen", x, wide)], ["wide"])
    with pytest.raises(EngineUnsupported, match=r"layer 'widen': tensor 'wide' is int16.*up to 8 bits"):
        instructions(graph)
    x16 = tensor("x16", 8, dtype=int16)
    graph = Graph.from_ops("wide_input", [Input("x16", (), x16), conv("narrow", x16, tensor("y", 8))], ["y"])
    with pytest.raises(EngineUnsupported, match=r"layer 'x16': tensor 'x16' is int16"):
        instructions(graph)


def test_weights_wider_than_a_byte_are_refused_naming_the_layer() -> None:
    x = tensor("x", 8)
    graph = Graph.from_ops("w12", [Input("x", (), x), conv("heavy", x, tensor("y", 8), weight_bits=12)], ["y"])
    with pytest.raises(EngineUnsupported, match=r"layer 'heavy' \(Conv\): 12-bit weights.*up to 8 bits"):
        instructions(graph)
    assert weight_storage_bits(Graph.from_ops("w3", [Input("x", (), x), conv("c", x, tensor("y", 8), weight_bits=3)],
                                              ["y"])) == 4


def concat_graph(first: int, second: int, copies: bool = False, outputs: tuple[str, ...] = ("cat",),
                 third: int = 0) -> Graph:
    """Two convs (three with `third` channels) joined by a Concat; its parts copy them unchanged
    when `copies` (identity output stages), else the first part is rescaled (a multiplier of 3/4)."""
    x = tensor("x", 4)
    left, right = tensor("left", first), tensor("right", second)
    out = tensor("cat", first + second + third)
    rescale = Requant(np.full(first, 3, np.int64), np.full(first, 2, np.int64), 0, 0, 255)
    parts = (identity_requant(first, 0, 0, 255) if copies else rescale, identity_requant(second, 0, 0, 255))
    ops = [Input("x", (), x), conv("a", x, left), conv("b", x, right, seed=1)]
    names = ("left", "right")
    if third:
        ops.append(conv("c", x, tensor("more", third), seed=2))
        names, parts = (*names, "more"), (*parts, identity_requant(third, 0, 0, 255))
    ops.append(Concat("join", names, out, parts))
    return Graph.from_ops("concat", ops, list(outputs))


def test_a_concat_of_parts_not_whole_words_is_one_gather() -> None:
    """Two parts that do not fill whole words (ShuffleNetV2's 58 + 58) are one gather of both
    pixels: part 1's channels at its held words' byte positions, each part's records its own;
    three such parts are refused, naming the layer."""
    program = instructions(concat_graph(5, 8))
    assert [(i.name, i.mode) for i in program] == [("a", "conv"), ("b", "conv"), ("join", "gather")]
    built = build_program(concat_graph(5, 8), CONFIGS[0])
    gather = built.descriptors[2]
    assert (gather["in_cw"], gather["aux_cw"], gather["out_c"]) == (1, 1, 13)
    order = built.params[gather["weights_addr"]:gather["weights_addr"] + 4]
    positions = [(int(word) >> (16 * k)) & 0xFFFF for word in order for k in range(4)][:13]
    assert positions == [0, 1, 2, 3, 4, *range(8, 16)]
    multipliers = [(int(built.params[gather["tables_addr"] + 4 * c + 1]) & 0xFFFFFFFF) for c in range(13)]
    assert multipliers == [3] * 5 + [1] * 8
    with pytest.raises(EngineUnsupported, match=r"layer 'join' \(Concat\): part 0 has 5 channels.*multiple of 8 "
                                                r"channels \(or the Concat has at most 2 parts"):
        instructions(concat_graph(5, 8, third=8))
    with pytest.raises(EngineUnsupported, match=r"part 0 has 8 channels.*multiple of 16 channels"):
        instructions(concat_graph(8, 8, third=8), word_bits=128)


def test_a_concat_of_whole_word_parts_copies_each_part() -> None:
    # the last part may end anywhere: each part is its own instruction, copied at its word offset
    # (the second part only copies its conv's output: that conv writes there itself)
    program = instructions(concat_graph(8, 5))
    assert [i.name for i in program] == ["a", "b", "join#part0"]
    assert program[2].mode == "requant" and program[1].destination.word_offset == 1
    built = build_program(concat_graph(16, 5), CONFIGS[0])
    assert [d["out_word_offset"] for d in built.descriptors[1:]] == [2, 0]
    assert [d["out_c"] for d in built.descriptors[1:]] == [5, 16]


def test_a_conv_whose_output_a_concat_only_copies_writes_into_the_concat() -> None:
    """Identity parts (SqueezeNet's fire modules): each conv writes its words straight into its
    place in the concatenation's pixels and the copies are gone; the concatenation is live (in the
    arena) from the first conv on, and the convs' own outputs take no space."""
    graph = concat_graph(16, 5, copies=True)
    program = instructions(graph)
    assert [i.name for i in program] == ["a", "b"]
    assert [(i.destination.tensor.name, i.word_offset) for i in program] == [("cat", 0), ("cat", 2)]
    built = build_program(graph, CONFIGS[0])
    arena = built.arena
    cat = arena.addresses["cat"]
    assert [d["out_addr"] for d in built.descriptors] == [cat, cat]
    assert [d["out_word_offset"] for d in built.descriptors] == [0, 2]
    assert [d["out_cw"] for d in built.descriptors] == [3, 3]  # the concatenation's pixels: 21 channels
    assert [d["out_c"] for d in built.descriptors] == [16, 5]  # each conv's own channels
    assert arena.sizes["left"] == arena.sizes["right"] == 0
    x, size = arena.addresses["x"], arena.sizes["x"]
    assert cat >= x + size or cat + arena.sizes["cat"] <= x  # live while conv a still reads x
    # not when the conv's output must exist: a graph output, or read by another layer too
    assert [i.name for i in instructions(concat_graph(16, 5, copies=True, outputs=("cat", "right")))] == \
        ["a", "b", "join#part1"]
    # and a part that rescales stays a pixel-unit instruction
    assert [i.name for i in instructions(concat_graph(16, 5))] == ["a", "b", "join#part0"]


def test_a_covering_program_sizes_one_engine_for_every_program() -> None:
    """The engine the shared C-simulation builds use: each width and buffer the largest any program
    needs, each unit any uses, params and arena as large as the largest; the program is the longest."""
    graphs = {case: optimize(load_onnx(quantize_qdq(*build(case)))) for case in ("conv_relu", "squeeze_excite")}
    programs = [build_program(graph, CONFIGS[0]) for graph in graphs.values()]
    covering = covering_program(programs)
    assert covering.plans == max(programs, key=lambda p: len(p.plans)).plans
    assert covering.widths.has_mul and covering.widths.acc_bits == max(p.widths.acc_bits for p in programs)
    assert covering.params.size == max(p.params.size for p in programs)
    assert covering.arena.words == max(p.arena.words for p in programs)
    assert all(covering.limits[key] >= p.limits[key] for p in programs for key in p.limits)
    with pytest.raises(ValueError, match="different engine configurations"):
        covering_program([programs[0], build_program(graphs["conv_relu"], CONFIGS[1])])


def test_a_residual_add_runs_in_its_convs_output_stage_only_when_it_can() -> None:
    """residual_add's Add (relu(conv a) + conv b of it) runs in conv b's output stage: conv b's
    output is read by the Add alone, the skip exists before conv b runs. It stays on the pixel
    unit when its output stage differs by channel (the residual stage holds one record), and
    residual_add_shared's Adds, whose addends are read twice, stay too."""
    graph = op_case_graph("residual_add")
    (add,) = [op for op in graph if op.kind == "Add"]
    program = instructions(graph)
    (fused,) = [i for i in program if i.residual is not None]
    assert fused.residual.op is add and fused.destination.tensor is add.output and fused.name.endswith("+" + add.name)
    assert fused.residual.skip.name in add.inputs and fused.op.output.name in add.inputs
    built = build_program(graph, CONFIGS[1])
    assert built.arena.sizes[fused.op.output.name] == 0  # the conv's own output never exists
    (fields,) = [d for d, p in zip(built.descriptors, built.plans) if p.instruction == fused]
    assert fields["flags"] & FLAGS["residual"] and fields["aux_addr"] == built.arena.addresses[fused.residual.skip.name]
    assert (fields["mult_a"], fields["mult_b"]) == fused.residual.multipliers
    channels = add.output.channels
    per_channel = replace(add.requant, multiplier=np.arange(1, channels + 1) * add.requant.multiplier[0],
                          shift=np.full(channels, add.requant.shift[0]))
    ops = [replace(op, requant=per_channel) if op is add else op for op in graph]
    unfused = Graph.from_ops(graph.name, ops, graph.outputs)
    assert [i.mode for i in instructions(unfused)].count("add") == 1
    assert [i.mode for i in instructions(op_case_graph("residual_add_shared"))].count("add") == 2


def test_routing_gathers_compose_where_a_stage_copies() -> None:
    """`compose_gathers` on two ShuffleNetV2-like units: a split of a shuffle reads the conv before
    the shuffle, through its own ReLU (the shuffle copies) or copying; the second shuffle reads the
    Concat's two parts through their output stages (the shuffle copies); a half that copies reads
    those parts too; a half through a ReLU of the rescaled parts keeps reading the shuffle (neither
    stage copies), so that shuffle stays and the Concat is dropped. Bit-exact in C simulation:
    tests/codegen/test_engine_csim.py runs the case."""
    graph = op_case_graph("shuffle_units")
    program = instructions(graph)
    routes = {i.op.name: ([t.name for t in i.route.sources], i.route.copies) if i.route else None
              for i in program if i.mode == "gather"}
    conv, parts = "conv3_QuantizeLinear_Output", ["relu12_QuantizeLinear_Output", "relu16_QuantizeLinear_Output"]
    assert routes == {"split9_node": ([conv], False), "split9_node_2": ([conv], True),
                      "reshape22_node": (parts, False), "split23_node": (parts, False), "split23_node_2": None,
                      "concat27_node": None}
    dropped = {op.name for op in graph} - {i.op.name for i in program}
    assert dropped == {"input", "reshape8_node", "concat17_node"}
    # the records a composed half takes: the Concat's stages for the channels it picks
    built = build_program(graph, CONFIGS[0])
    names = [item.instruction.op.name for item in built.plans]
    half = built.descriptors[names.index("split23_node")]
    concat = graph.op("concat17_node")
    own = np.concatenate([record_words(requant, 5) for requant in concat.input_requants])
    order = [0, 5, 1, 6, 2]  # the shuffle's first five: part 0's 0, part 1's 0, part 0's 1, ...
    records = built.params[half["tables_addr"]:half["tables_addr"] + 4 * 5].reshape(5, 4)
    assert np.array_equal(records, own[order])
    assert not np.array_equal(own[:5], own[5:])  # the parts' stages differ: the check has teeth
