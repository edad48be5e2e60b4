"""The engine's program: where every tensor lives in DDR, one descriptor per instruction, and the
params buffer (descriptors, weights, per-channel records) the driver loads once.

Everything here is exact integer data derived from the graph and the engine configuration; the
C++ reads it back field by field (`templates/hls/engine/engine_layer.h.j2` is generated from
`DESCRIPTOR_FIELDS`, so the two layouts are one definition). Datapath widths (`EngineWidths`)
come from bounds on the actual weights and requantization constants, as in the dataflow
backend, so the engine's arithmetic is exact for every layer it runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from hwcodesign.hardware.engine.config import (
    MODES,
    PARAMS_WORD_BITS,
    EngineConfig,
    memory_words,
    words_per_pixel,
)
from hwcodesign.hardware.engine.descriptor import (
    DESCRIPTOR_FIELDS,
    DESCRIPTOR_WORDS,
    FLAGS,
    Arena,
    DescribeContext,
    ParamsWriter,
    tensor_fields,
)
from hwcodesign.hardware.engine.plan import InstructionPlan, Residual
from hwcodesign.hardware.engine.tables import padded_records, record_words
from hwcodesign.ir.graph import Graph
from hwcodesign.mapper.engine.facet import engine_facet
from hwcodesign.mapper.engine.program import buffer_sizes, most, plan_arena, plan_program
from hwcodesign.mapper.engine.widths import EngineWidths, covering_widths, engine_widths

# -- descriptors, weights, records --------------------------------------------------------------


def mac_weight_table(item: InstructionPlan, config: EngineConfig) -> np.ndarray:
    """(outer_total, sf, load_pe, SIMD) weights in the order the PE memories hold them."""
    weight = engine_facet(item.instruction.op).weights(item)
    kh, kw = item.kernel
    simd = config.simd
    if item.instruction.mode == "conv":
        out_c, in_c = weight.shape[:2]  # (O, C, kh, kw)
        padded = np.zeros((item.outer_total * config.pe, item.chunks * simd, kh, kw), np.int64)
        padded[:out_c, :in_c] = weight
        # step k = (ky*kw + kx)*chunks + chunk, lane s = channel chunk*SIMD + s, PE p = output fold*PE + p
        table = padded.reshape(item.outer_total, config.pe, item.chunks, simd, kh * kw)
        return table.transpose(0, 4, 2, 1, 3).reshape(item.outer_total, item.sf, config.pe, simd)
    padded = np.zeros((item.chunks * simd, kh * kw), np.int64)  # (C, taps)
    padded[: weight.shape[0]] = weight
    table = padded.reshape(item.chunks, simd, kh * kw).transpose(0, 2, 1)  # (chunk, tap, lane)
    return table.reshape(item.chunks, item.sf, 1, simd)


def pack_weight_words(table: np.ndarray, bits: int, words_per_memory_word: int) -> np.ndarray:
    """Memory words of SIMD `bits`-bit weights -> uint64 params words (little-endian fields)."""
    lead, simd = table.shape[:-1], table.shape[-1]
    flat = (table.reshape(-1, simd) & ((1 << bits) - 1)).astype(np.uint64)
    per_word = PARAMS_WORD_BITS // bits
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


def build_program(graph: Graph, config: EngineConfig) -> EngineProgram:
    """Plan every instruction on `config`, lay out DDR and write the params buffer."""
    plans = tuple(plan_program(graph, config))
    widths = engine_widths(graph, plans)
    arena = plan_arena(graph, config.word_bytes, [item.instruction for item in plans])
    writer = ParamsWriter(len(plans) * DESCRIPTOR_WORDS)
    descriptors = tuple(describe(item, graph, config, widths, arena, writer) for item in plans)
    params = np.concatenate(writer.blocks)
    for index, fields in enumerate(descriptors):
        params[index * DESCRIPTOR_WORDS:(index + 1) * DESCRIPTOR_WORDS] = descriptor_words(fields)
    return EngineProgram(config, widths, plans, descriptors, params, arena, engine_limits(plans, config, arena))


def covering_program(programs: Sequence[EngineProgram]) -> EngineProgram:
    """The program with the most instructions, on an engine that runs every one of `programs`
    (the same configuration): widths (`covering_widths`) and buffers the largest any needs, its
    params buffer and arena padded to the largest. The engine is programmable, so one build of
    this project runs each program from its own params on buffers of these sizes (the tests check
    many programs on one C-simulation build per configuration this way)."""
    if len({program.config for program in programs}) != 1:
        raise ValueError("programs for different engine configurations need different engines")
    program = max(programs, key=lambda p: len(p.plans))
    params = np.zeros(max(p.params.size for p in programs), np.uint64)
    params[:program.params.size] = program.params
    limits = {key: max(p.limits[key] for p in programs) for key in program.limits}
    arena = replace(program.arena, words=max(p.arena.words for p in programs))
    return replace(program, widths=covering_widths([p.widths for p in programs]), params=params, arena=arena,
                   limits=limits)


def descriptor_words(fields: dict[str, int]) -> np.ndarray:
    values = [int(fields.get(name, 0)) & 0xFFFFFFFF for name in DESCRIPTOR_FIELDS]
    values += [0] * (2 * DESCRIPTOR_WORDS - len(values))
    return np.array([values[2 * i] | (values[2 * i + 1] << 32) for i in range(DESCRIPTOR_WORDS)], np.uint64)


def describe(item: InstructionPlan, graph: Graph, config: EngineConfig, widths: EngineWidths, arena: Arena,
             writer: ParamsWriter) -> dict[str, int]:
    """The descriptor of one instruction (and its weights and records appended to params): the
    input, output and output stage every instruction has, the MAC unit's schedule, then what the
    family adds (`EngineFacet.describe`)."""
    op, mode = item.instruction.op, item.instruction.mode
    facet = engine_facet(op)
    word_bytes = config.word_bytes
    source, out = item.inputs[0], item.output
    fields: dict[str, int] = {"mode": MODES[mode], **tensor_fields("in", source, arena, word_bytes)}
    flags = FLAGS["in_signed"] if source.dtype.signed else 0
    requant = facet.output_requant(item.instruction)
    if requant.negative_multiplier is not None:
        flags |= FLAGS["negative"]
    # the writer's tensor: the output, or the tensor a MAC layer writes into (`Instruction.destination`)
    written = item.instruction.written
    fields.update(out_addr=arena.addresses[written.name], out_h=out.shape[2], out_w=out.shape[3], out_c=out.channels,
                  out_cw=words_per_pixel(written, word_bytes), out_word_offset=item.instruction.word_offset,
                  out_zp=requant.zero_point, out_lo=requant.lo, out_hi=requant.hi)
    if item.instruction.is_mac:
        describe_mac(item, config, widths, fields, writer)
        flags |= FLAGS["prefetch"] if item.prefetch else 0
    if item.instruction.residual is not None:
        flags |= describe_residual(item.instruction.residual, config, arena, fields, writer)
    flags |= facet.describe(item, fields, DescribeContext(graph, config, arena, writer))
    if not item.instruction.is_mac and item.table_entries:  # records for the channels the instruction writes
        fields["tables_addr"] = writer.append(padded_records(facet.records(item), item.table_entries))
    fields["flags"] = flags
    return fields


def describe_mac(item: InstructionPlan, config: EngineConfig, widths: EngineWidths, fields: dict[str, int],
                 writer: ParamsWriter) -> None:
    """The MAC unit's schedule, its weights block by block, and its output-stage records."""
    op = item.instruction.op
    facet = engine_facet(op)
    fields.update(
        kh=item.kernel[0], kw=item.kernel[1], stride_h=item.stride[0], stride_w=item.stride[1], pad_t=item.pads[0],
        pad_l=item.pads[1], dil_h=item.dilation[0], dil_w=item.dilation[1], reach=item.reach,
        window_rows=item.window_rows, ring_rows=item.ring_rows, slot0=item.slot0, bank_row_words=item.bank_row_words,
        chunks=item.chunks, pixels=item.pixels, inner=item.inner, sf=item.sf, sfx=item.sfx, lanes_out=item.lanes_out,
        outer_total=item.outer_total, outer_per_block=item.outer_per_block, blocks=item.blocks,
        load_pe=item.load_pe, chunks_per_group=item.chunks_per_group, block_weight_words=item.weight_words,
    )
    if item.load_pe:
        table = mac_weight_table(item, config)  # (outer_total, sf, load_pe, SIMD)
        words = pack_weight_words(table, widths.weight_bits, memory_words(config, widths.weight_bits))
        blocks = []
        for block in range(item.blocks):
            part = words[block * item.outer_per_block:(block + 1) * item.outer_per_block].reshape(-1)
            padded = np.zeros(item.weight_words, np.uint64)
            padded[: part.size] = part
            blocks.append(padded)
        fields["weights_addr"] = writer.append(np.concatenate(blocks))
    bias = facet.bias(op)
    bias = None if bias is None else np.asarray(bias, np.int64)
    entries = item.outer_total * item.lanes_out
    fields["tables_addr"] = writer.append(padded_records(record_words(op.requant, item.output.channels, bias), entries))


def describe_residual(residual: Residual, config: EngineConfig, arena: Arena, fields: dict[str, int],
                      writer: ParamsWriter) -> int:
    """A fused residual Add: the skip on the aux port, both multipliers, and the Add's output stage
    as the MAC layer's second (one record, `fuse_residual_adds` takes only uniform stages); returns
    its flags."""
    add, skip = residual.op.requant, residual.skip
    mult_conv, mult_skip = residual.multipliers
    fields.update(tensor_fields("aux", skip, arena, config.word_bytes))
    fields.update(mult_a=mult_conv, mult_b=mult_skip, stage2_zp=add.zero_point, stage2_lo=add.lo, stage2_hi=add.hi)
    # one record: the Add's stage is the same for every channel
    fields["stage2_tables_addr"] = writer.append(record_words(add, residual.op.output.channels)[:1])
    return FLAGS["residual"] | (FLAGS["aux_signed"] if skip.dtype.signed else 0)


def engine_limits(plans: tuple[InstructionPlan, ...], config: EngineConfig, arena: Arena) -> dict[str, int]:
    """Buffer sizes and loop maxima of the generated engine (its C++ config)."""
    word_bytes = config.word_bytes
    mac = [p for p in plans if p.instruction.is_mac]
    tensors = [t for p in plans for t in (*p.inputs, p.output)]
    return {
        **buffer_sizes(plans, config),
        "MAX_BLOCKS": most(p.blocks for p in mac),
        "MAX_ROWS": most(t.shape[2] for t in tensors),
        "MAX_PIXELS": most(t.shape[2] * t.shape[3] for t in tensors),
        "MAX_TENSOR_WORDS": most(arena.sizes.values()),
        "MAX_ROW_WORDS": most(p.output.shape[3] * words_per_pixel(t, word_bytes) for p in mac for t in p.sampling_inputs),
        "MAX_ROW_STEPS": most(max(p.groups * p.outer_per_block * p.sfx + p.sfx,
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
