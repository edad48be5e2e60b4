"""The engine's program: where every tensor lives in DDR, one descriptor per instruction, and the
params buffer (descriptors, weights, per-channel records) the driver loads once.

Everything here is exact integer data derived from the graph and the engine configuration; the
C++ reads it back field by field (`templates/hls/engine/engine_layer.h.j2` is generated from
`DESCRIPTOR_FIELDS`, so the two layouts are one definition). Datapath widths (`EngineWidths`)
come from bounds on the actual weights and requantization constants, as in the dataflow
backend, so the engine's arithmetic is exact for every layer it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwcodesign.ir.graph import Graph
from hwcodesign.ir.requant import Requant
from hwcodesign.ir.types import Tensor
from hwcodesign.mapper.engine import (
    MODES,
    EngineConfig,
    InstructionPlan,
    buffer_sizes,
    memory_words,
    most,
    plan_program,
    words_per_pixel,
)
from hwcodesign.mapper.engine_widths import EngineWidths, engine_widths
from hwcodesign.ops import Add, Concat, Conv, DeformConv, Linear, Pool, Resize

DESCRIPTOR_FIELDS = (
    "mode", "flags",
    "in_addr", "in_h", "in_w", "in_c", "in_cw", "in_zp",
    "aux_addr", "aux_cw", "aux_c", "aux_zp",
    "mask_addr", "mask_cw", "mask_c", "mask_zp",
    "out_addr", "out_h", "out_w", "out_c", "out_cw", "out_word_offset", "out_zp", "out_lo", "out_hi",
    "kh", "kw", "stride_h", "stride_w", "pad_t", "pad_l", "dil_h", "dil_w",
    "reach", "window_rows", "ring_rows", "slot0", "bank_row_words",
    "chunks", "taps", "inner", "sf", "sfx", "lanes_out", "outer_total", "outer_per_block", "blocks", "load_pe",
    "chunks_per_group", "weights_addr", "block_weight_words", "tables_addr",
    "mult_a", "mult_b", "scale_h", "scale_w",
    "frac_bits", "sample_shift", "offset_tables_addr", "offset_zp", "offset_lo", "offset_hi",
    "pattern_cy", "pattern_cx",
)
DESCRIPTOR_WORDS = 32  # two 32-bit fields per 64-bit word, padded to a power of two
RECORD_WORDS = 4
FLAGS = {"in_signed": 1, "aux_signed": 2, "mask_signed": 4, "negative": 8, "mask": 16, "fixed_shape": 32,
         "deform": 64, "max_pool": 128}


# -- the DDR arena ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arena:
    """Word address and size of every tensor in the feature-map buffer."""

    addresses: dict[str, int]
    sizes: dict[str, int]
    words: int


def plan_arena(graph: Graph, word_bytes: int) -> Arena:
    """First-fit placement of every tensor, reusing the space of tensors no longer read.

    A tensor lives from the layer producing it to its last reader; graph inputs from the start
    (the host writes them all before the run) and outputs to the end (the host reads them after).
    A layer's output never overlaps its inputs: they are still live when it is placed.
    """
    order = [op for op in graph]
    position = {op.output.name: index for index, op in enumerate(order)}
    last_use = dict(position)
    for index, op in enumerate(order):
        for name in op.inputs:
            last_use[name] = max(last_use[name], index)
    for name in graph.outputs:
        last_use[name] = len(order)
    for op in graph.inputs:
        position[op.output.name] = -1
    sizes = {op.output.name: op.output.shape[2] * op.output.shape[3] * words_per_pixel(op.output, word_bytes)
             for op in order}
    live: list[tuple[int, int, str]] = []  # (address, size, tensor)
    addresses: dict[str, int] = {}
    top = 0
    # the host writes every input before the run, so all inputs are placed first (at -1), even
    # one that comes after other layers in the topological order
    for op in sorted(order, key=lambda op: position[op.output.name]):
        index = position[op.output.name]
        live = [block for block in live if last_use[block[2]] >= index]
        name = op.output.name
        size = sizes[name]
        address = 0
        for start, length, _ in sorted(live):
            if address + size <= start:
                break
            address = max(address, start + length)
        addresses[name] = address
        live.append((address, size, name))
        top = max(top, address + size)
    return Arena(addresses, sizes, top)


# -- descriptors, weights, records --------------------------------------------------------------


def record_words(requant: Requant, channels: int, bias: np.ndarray | None = None) -> np.ndarray:
    """(channels, 4) uint64 records: bias | shift << 48, m | nm << 32, offset, negative offset."""
    def per_channel(values: np.ndarray | None) -> np.ndarray:
        if values is None:
            return np.zeros(channels, np.int64)
        values = np.asarray(values, np.int64)
        return np.broadcast_to(values, (channels,)) if values.size == 1 else values

    bias = np.zeros(channels, np.int64) if bias is None else np.asarray(bias, np.int64)
    m, s = per_channel(requant.multiplier), per_channel(requant.shift)
    nm, off, noff = per_channel(requant.negative_multiplier), per_channel(requant.offset), per_channel(requant.negative_offset)
    mask48, mask32 = (1 << 48) - 1, (1 << 32) - 1
    rows = np.zeros((channels, RECORD_WORDS), np.uint64)
    for c in range(channels):
        rows[c, 0] = (int(bias[c]) & mask48) | (int(s[c]) << 48)
        rows[c, 1] = (int(m[c]) & mask32) | ((int(nm[c]) & mask32) << 32)
        rows[c, 2] = int(off[c]) & ((1 << 64) - 1)
        rows[c, 3] = int(noff[c]) & ((1 << 64) - 1)
    return rows


def padded_records(rows: np.ndarray, entries: int) -> np.ndarray:
    """Records for `entries` channels: the real ones, then zero records for the padding lanes."""
    out = np.zeros((entries, RECORD_WORDS), np.uint64)
    out[: min(entries, len(rows))] = rows[:entries]
    return out


def dense_weight(op: Conv | DeformConv | Linear, source: Tensor) -> np.ndarray:
    """(O, C, kh, kw) weights with groups expanded block-diagonally (a grouped conv is a dense one
    whose other groups' weights are zero); a Linear's (O, C, H, W) already is one."""
    weight = np.asarray(op.weight, np.int64)
    groups = getattr(op, "groups", 1)
    if groups == 1 or isinstance(op, Linear):
        return weight
    out_per, in_per = weight.shape[0] // groups, source.channels // groups
    dense = np.zeros((weight.shape[0], source.channels) + weight.shape[2:], np.int64)
    for g in range(groups):
        dense[g * out_per:(g + 1) * out_per, g * in_per:(g + 1) * in_per] = weight[g * out_per:(g + 1) * out_per]
    return dense


def mac_weight_table(item: InstructionPlan, config: EngineConfig) -> np.ndarray:
    """(outer_total, sf, load_pe, SIMD) weights in the order the PE memories hold them."""
    op = item.instruction.op
    source = item.inputs[0]
    kh, kw = item.kernel
    simd = config.simd
    if item.instruction.mode == "conv":
        weight = dense_weight(op, source)  # (O, C, kh, kw)
        out_c, in_c = weight.shape[:2]
        padded = np.zeros((item.outer_total * config.pe, item.chunks * simd, kh, kw), np.int64)
        padded[:out_c, :in_c] = weight
        # step k = (ky*kw + kx)*chunks + chunk, lane s = channel chunk*SIMD + s, PE p = output fold*PE + p
        table = padded.reshape(item.outer_total, config.pe, item.chunks, simd, kh * kw)
        return table.transpose(0, 4, 2, 1, 3).reshape(item.outer_total, item.sf, config.pe, simd)
    channels = item.chunks * simd
    if isinstance(op, Pool):
        per_channel = np.ones((source.channels, kh * kw), np.int64)
    else:
        per_channel = np.asarray(op.weight, np.int64).reshape(source.channels, kh * kw)
    padded = np.zeros((channels, kh * kw), np.int64)
    padded[: source.channels] = per_channel
    table = padded.reshape(item.chunks, simd, kh * kw).transpose(0, 2, 1)  # (chunk, tap, lane)
    return table.reshape(item.chunks, item.sf, 1, simd)


def pack_weight_words(table: np.ndarray, bits: int, word_bits: int, words_per_memory_word: int) -> np.ndarray:
    """Memory words of SIMD `bits`-bit weights -> uint64 DDR words (little-endian fields)."""
    lead, simd = table.shape[:-1], table.shape[-1]
    flat = (table.reshape(-1, simd) & ((1 << bits) - 1)).astype(np.uint64)
    per_word = word_bits // bits
    padded = np.zeros((flat.shape[0], words_per_memory_word * per_word), np.uint64)
    padded[:, :simd] = flat
    fields = padded.reshape(flat.shape[0], words_per_memory_word, per_word)
    shifts = (np.arange(per_word, dtype=np.uint64) * np.uint64(bits))
    words = np.bitwise_or.reduce(fields << shifts, axis=2)
    return words.reshape(*lead, words_per_memory_word)


@dataclass(frozen=True)
class EngineProgram:
    """What the engine runs: descriptors, the params buffer and the arena layout."""

    config: EngineConfig
    widths: EngineWidths
    plans: tuple[InstructionPlan, ...]
    descriptors: tuple[dict[str, int], ...]
    params: np.ndarray  # uint64 words: descriptors, then per instruction weights and records
    arena: Arena
    limits: dict[str, int]  # the C++ config's buffer sizes and loop maxima

    @property
    def params_bytes(self) -> int:
        return int(self.params.size * 8)


class _ParamsWriter:
    """Appends word blocks to the params buffer after the descriptor table."""

    def __init__(self, descriptor_words: int) -> None:
        self.blocks: list[np.ndarray] = [np.zeros(descriptor_words, np.uint64)]
        self.size = descriptor_words

    def append(self, words: np.ndarray) -> int:
        address = self.size
        flat = np.ascontiguousarray(words, dtype=np.uint64).reshape(-1)
        self.blocks.append(flat)
        self.size += flat.size
        return address


def build_program(graph: Graph, config: EngineConfig) -> EngineProgram:
    """Plan every instruction on `config`, lay out DDR and write the params buffer."""
    plans = tuple(plan_program(graph, config))
    widths = engine_widths(graph, plans)
    arena = plan_arena(graph, config.word_bytes)
    writer = _ParamsWriter(len(plans) * DESCRIPTOR_WORDS)
    descriptors = tuple(describe(item, graph, config, widths, arena, writer) for item in plans)
    params = np.concatenate(writer.blocks)
    for index, fields in enumerate(descriptors):
        params[index * DESCRIPTOR_WORDS:(index + 1) * DESCRIPTOR_WORDS] = descriptor_words(fields)
    return EngineProgram(config, widths, plans, descriptors, params, arena, engine_limits(plans, config, arena))


def descriptor_words(fields: dict[str, int]) -> np.ndarray:
    values = [int(fields.get(name, 0)) & 0xFFFFFFFF for name in DESCRIPTOR_FIELDS]
    values += [0] * (2 * DESCRIPTOR_WORDS - len(values))
    return np.array([values[2 * i] | (values[2 * i + 1] << 32) for i in range(DESCRIPTOR_WORDS)], np.uint64)


def tensor_fields(prefix: str, tensor: Tensor, arena: Arena, word_bytes: int) -> dict[str, int]:
    fields = {f"{prefix}_addr": arena.addresses[tensor.name], f"{prefix}_cw": words_per_pixel(tensor, word_bytes),
              f"{prefix}_zp": tensor.zero_point}
    if prefix == "in":
        fields.update(in_h=tensor.shape[2], in_w=tensor.shape[3], in_c=tensor.channels)
    else:
        fields[f"{prefix}_c"] = tensor.channels
    return fields


def describe(item: InstructionPlan, graph: Graph, config: EngineConfig, widths: EngineWidths, arena: Arena,
             writer: _ParamsWriter) -> dict[str, int]:
    """The descriptor of one instruction (and its weights and records appended to params)."""
    op, mode = item.instruction.op, item.instruction.mode
    word_bytes = config.word_bytes
    source, out = item.inputs[0], item.output
    fields: dict[str, int] = {"mode": MODES[mode], **tensor_fields("in", source, arena, word_bytes)}
    flags = FLAGS["in_signed"] if source.dtype.signed else 0
    requant: Requant = op.input_requants[item.instruction.part] if isinstance(op, Concat) else op.requant
    if requant.negative_multiplier is not None:
        flags |= FLAGS["negative"]
    fields.update(out_addr=arena.addresses[out.name], out_h=out.shape[2], out_w=out.shape[3], out_c=out.channels,
                  out_cw=words_per_pixel(out, word_bytes), out_zp=requant.zero_point, out_lo=requant.lo,
                  out_hi=requant.hi)
    if item.instruction.is_mac:
        flags |= describe_mac(item, config, widths, fields, writer)
        if isinstance(op, DeformConv):  # offsets, then the mask, on the aux port
            fields.update(tensor_fields("aux", item.inputs[1], arena, word_bytes))
            if op.has_mask:
                fields.update(tensor_fields("mask", item.inputs[2], arena, word_bytes))
    elif isinstance(op, Add):
        fields.update(tensor_fields("aux", item.inputs[1], arena, word_bytes))
        fields.update(mult_a=op.input_multipliers[0], mult_b=op.input_multipliers[1])
        flags |= FLAGS["aux_signed"] if item.inputs[1].dtype.signed else 0
    elif isinstance(op, Concat):
        before = graph.input_tensors(op)[: item.instruction.part]
        fields.update(out_c=source.channels, out_word_offset=sum(t.channels for t in before) // word_bytes)
    elif isinstance(op, Resize):
        fields.update(scale_h=op.scale[0], scale_w=op.scale[1])
    if not item.instruction.is_mac:
        real = source.channels if isinstance(op, Concat) else out.channels
        fields["tables_addr"] = writer.append(padded_records(record_words(requant, real), item.table_entries))
    fields["flags"] = flags
    return fields


def describe_mac(item: InstructionPlan, config: EngineConfig, widths: EngineWidths, fields: dict[str, int],
                 writer: _ParamsWriter) -> int:
    op = item.instruction.op
    flags = 0
    fields.update(
        kh=item.kernel[0], kw=item.kernel[1], stride_h=item.stride[0], stride_w=item.stride[1], pad_t=item.pads[0],
        pad_l=item.pads[1], dil_h=item.dilation[0], dil_w=item.dilation[1], reach=item.reach,
        window_rows=item.window_rows, ring_rows=item.ring_rows, slot0=item.slot0, bank_row_words=item.bank_row_words,
        chunks=item.chunks, taps=item.taps, inner=item.inner, sf=item.sf, sfx=item.sfx, lanes_out=item.lanes_out,
        outer_total=item.outer_total, outer_per_block=item.outer_per_block, blocks=item.blocks,
        load_pe=item.load_pe, chunks_per_group=item.chunks_per_group, block_weight_words=item.weight_words,
    )
    if isinstance(op, Pool) and op.mode == "max":
        flags |= FLAGS["max_pool"]
    if item.load_pe:
        table = mac_weight_table(item, config)  # (outer_total, sf, load_pe, SIMD)
        words = pack_weight_words(table, widths.weight_bits, config.word_bits, memory_words(config, widths.weight_bits))
        blocks = []
        for block in range(item.blocks):
            part = words[block * item.outer_per_block:(block + 1) * item.outer_per_block].reshape(-1)
            padded = np.zeros(item.weight_words, np.uint64)
            padded[: part.size] = part
            blocks.append(padded)
        fields["weights_addr"] = writer.append(np.concatenate(blocks))
    bias = np.asarray(op.bias, np.int64) if hasattr(op, "bias") else None
    channels = item.output.channels
    entries = item.outer_total * item.lanes_out
    fields["tables_addr"] = writer.append(padded_records(record_words(op.requant, channels, bias), entries))
    if isinstance(op, DeformConv):
        flags |= deform_fields(op, item, fields, writer)
    return flags


def deform_fields(op: DeformConv, item: InstructionPlan, fields: dict[str, int], writer: _ParamsWriter) -> int:
    """Offsets (and mask) on the aux port, their conversion records, the sampling constants."""
    flags = FLAGS["deform"]
    offset = item.inputs[1]
    fields.update(frac_bits=op.frac_bits, sample_shift=op.sample_shift, offset_zp=op.offset_requant.zero_point,
                  offset_lo=op.offset_requant.lo, offset_hi=op.offset_requant.hi,
                  pattern_cy=(op.kernel[0] - 1) // 2 * op.dilation[0], pattern_cx=(op.kernel[1] - 1) // 2 * op.dilation[1])
    flags |= FLAGS["aux_signed"] if offset.dtype.signed else 0
    if op.fixed_shape:
        flags |= FLAGS["fixed_shape"]
    if op.has_mask:
        flags |= FLAGS["mask"] | (FLAGS["mask_signed"] if item.inputs[2].dtype.signed else 0)
    fields["offset_tables_addr"] = writer.append(record_words(op.offset_requant, offset.channels))
    return flags


def engine_limits(plans: tuple[InstructionPlan, ...], config: EngineConfig, arena: Arena) -> dict[str, int]:
    """Buffer sizes and loop maxima of the generated engine (its C++ config)."""
    word_bytes = config.word_bytes
    mac = [p for p in plans if p.instruction.is_mac]
    deform = [p for p in mac if isinstance(p.instruction.op, DeformConv)]
    tensors = [t for p in plans for t in (*p.inputs, p.output)]
    return {
        **buffer_sizes(plans, config),
        "MAX_BLOCKS": most(p.blocks for p in mac),
        "MAX_ROWS": most(t.shape[2] for t in tensors),
        "MAX_PIXELS": most(t.shape[2] * t.shape[3] for t in tensors),
        "MAX_TENSOR_WORDS": most(arena.sizes.values()),
        "MAX_ROW_WORDS": most(p.output.shape[3] * words_per_pixel(t, word_bytes) for p in deform for t in p.inputs[1:]),
        "MAX_ROW_STEPS": most(max(p.output.shape[3] * p.outer_per_block * p.sfx + p.sfx,
                                  p.stride[0] * p.inputs[0].shape[3] * p.chunks) for p in mac),
        "MAX_LAYERS": len(plans),
        "ARENA_WORDS": arena.words,
    }


def describe_ports(graph: Graph, program: EngineProgram) -> dict[str, list[dict[str, object]]]:
    """Where the host writes each input and reads each output (word address, words)."""
    arena = program.arena
    ins = [{"tensor": op.output.name, "address": arena.addresses[op.output.name], "words": arena.sizes[op.output.name]}
           for op in graph.inputs]
    outs = [{"tensor": name, "address": arena.addresses[name], "words": arena.sizes[name]} for name in graph.outputs]
    return {"inputs": ins, "outputs": outs}
