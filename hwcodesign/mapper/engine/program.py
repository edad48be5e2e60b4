"""The layer-sequential engine: its program, and how each instruction is scheduled on it.

The dataflow architecture gives every layer its own hardware and keeps all weights, line
buffers and FIFOs on chip; a network that is deep, wide or high-resolution outgrows a small
part that way (the CoDeNet-like detector needs ~94% of the ZU3EG's BRAM as a pipeline). The
engine is the other classic architecture (CoDeNet, Angel-Eye, the Xilinx DPU): one set of
units, sized once, runs the network layer by layer; feature maps and weights live in DDR and
each layer is an instruction (a descriptor the compiler writes beside the weights). Resources
no longer grow with the network; time is the sum of the layers' times instead of the slowest.

Units (templates/hls/engine/): a MAC unit with PE output lanes x SIMD input lanes x PP output
pixels, a line buffer of whole input rows (banks by column, and by row parity where a bilinear
sample reads its four neighbours at once), RQ_UNITS shared output stages and a residual stage; and
a pixel unit with EW_LANES output stages. Every tensor sits in a DDR arena in NHWC bytes, pixels
padded to whole words.

What a layer is to the engine (its instructions, window, weights, bounds, descriptor fields)
is its op family's engine facet (`hwcodesign.ops.<family>.engine`); this module checks what
every layer must satisfy (storage widths), orders the program and sizes the shared buffers. The
cost model (`cost.py`) times the plans and the program generator
(`codegen/engine/program.py`) writes them into descriptors, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from hwcodesign.hardware.engine.config import (
    MAX_BATCH,
    SPARSE_REFUSAL,
    STORAGE_BITS,
    WEIGHT_STORAGE_BITS,
    EngineConfig,
    EngineUnsupported,
    words_per_pixel,
)
from hwcodesign.hardware.engine.descriptor import Arena
from hwcodesign.hardware.engine.gather import copies_bytes
from hwcodesign.hardware.engine.plan import (
    Destination,
    Instruction,
    InstructionPlan,
    Residual,
    Route,
    prefetching,
)
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.requant import Requant
from hwcodesign.ir.types import DyBitType, Tensor
from hwcodesign.mapper.engine.cost import EngineRun, MemorySystem, mac_runs
from hwcodesign.mapper.engine.facet import engine_facet
from hwcodesign.mapper.engine.widths import weight_storage_bits
from hwcodesign.ops.facets.engine import GatherFacet


def instructions(graph: Graph, word_bits: int = 64) -> list[Instruction]:
    """The engine program of `graph`, in execution order; refuses what the engine cannot run."""
    program: list[Instruction] = []
    for op in graph:
        check_storage(op.output, op.name)
        weight_type = getattr(op, "weight_type", None)
        if isinstance(weight_type, DyBitType):
            raise EngineUnsupported(f"layer '{op.name}' ({op.kind}): {weight_type} weights; the layer-sequential "
                                    "engine runs integer weights only; DyBit networks are built as the dataflow pipeline")
        if weight_type is not None and weight_type.bits > max(WEIGHT_STORAGE_BITS):
            raise EngineUnsupported(f"layer '{op.name}' ({op.kind}): {weight_type.bits}-bit weights; the engine "
                                    f"stores weights of up to {max(WEIGHT_STORAGE_BITS)} bits")
        if any(requant.thresholds is not None for requant in op.requants()):
            raise EngineUnsupported(f"layer '{op.name}' ({op.kind}): a threshold output stage (MultiThreshold); the "
                                    "engine's output unit multiplies and shifts; thresholded networks are built as the "
                                    "dataflow pipeline")
        facet = engine_facet(op)
        steps = facet.instructions(op, graph.input_tensors(op), word_bits)
        if steps and op.output.sparse:
            raise EngineUnsupported(f"layer '{op.name}' ({op.kind}) {SPARSE_REFUSAL}")
        program += steps
    program = compose_gathers(fuse_residual_adds(program, graph), graph, word_bits // 8)
    return write_copies_in_place(program, graph, word_bits // 8)


def instruction_inputs(instruction: Instruction, graph: Graph) -> tuple[Tensor, ...]:
    """The tensors an instruction reads: its op's inputs, or its route's sources (`compose_gathers`)."""
    route = instruction.route
    return route.sources if route is not None else tuple(graph.input_tensors(instruction.op))


def compose_gathers(program: list[Instruction], graph: Graph, word_bytes: int) -> list[Instruction]:
    """A one-input gather reading a tensor another gather wrote reads that gather's sources itself
    (`Route`), in the composed order: ShuffleNetV2's Concat, shuffle and Split become one gather
    per half of the next unit (two passes over the pixels instead of four). Their output stages
    compose when either is a byte copy (the other's records then serve). The first gather is
    dropped when every reader of its output reads through it this way and the output is not a
    graph output. Not for a gather of two inputs (the pixel unit holds at most two tensors)."""
    position = {instruction.op.output.name: k for k, instruction in enumerate(program)}
    kept = list(program)
    composed: dict[int, int] = {}  # producer index -> readers now reading its sources
    for k, instruction in enumerate(program):
        second = engine_facet(instruction.op).gather(instruction)
        inputs = instruction_inputs(instruction, graph)
        if second is None or len(inputs) != 1 or inputs[0].name in graph.outputs:
            continue
        j = position.get(inputs[0].name)
        first = engine_facet(kept[j].op).gather(kept[j]) if j is not None else None
        if first is None or kept[j].destination is not None:
            continue
        route = composed_route(kept[j], first, instruction, second, graph, word_bytes)
        if route is not None:
            kept[k] = replace(instruction, route=route)
            composed[j] = composed.get(j, 0) + 1
    dropped = {j for j, count in composed.items()
               if count == sum(op.inputs.count(program[j].op.output.name) for op in graph.consumers(program[j].op.output.name))}
    return [instruction for k, instruction in enumerate(kept) if k not in dropped]


def composed_route(first: Instruction, first_facet: GatherFacet, second: Instruction, second_facet: GatherFacet,
                   graph: Graph, word_bytes: int) -> Route | None:
    """`second` (one input, `first`'s output; not composed itself yet) reading `first`'s sources;
    None when neither output stage is a byte copy."""
    sources, (middle,) = instruction_inputs(first, graph), instruction_inputs(second, graph)
    first_item = InstructionPlan(first, sources, first.op.output)
    second_item = InstructionPlan(second, (middle,), second.op.output)
    order = first_facet.held_order(first, sources, word_bytes)
    picks = list(second_facet.held_order(second, (middle,), word_bytes))  # positions of one input: its channels
    first_copies = first.route.copies if first.route is not None else first_facet.copies(first, sources)
    stage = second_facet.output_requant(second)
    second_copies = copies_bytes(stage, middle)
    if second_copies:
        records, stage = first_facet.records(first_item)[picks], first_facet.output_requant(first)
    elif first_copies:
        records = second_facet.records(second_item)
    else:
        return None
    requants = (*first_facet.datapath(first_item).requants, *second_facet.datapath(second_item).requants)
    return Route(sources, tuple(order[p] for p in picks), records, stage, requants, first_copies and second_copies)


def uniform(requant: Requant) -> bool:
    """The output stage is the same for every channel (one record serves them all)."""
    return all(values is None or np.unique(np.asarray(values)).size == 1
               for values in (requant.multiplier, requant.shift, requant.offset))


def fuse_residual_adds(program: list[Instruction], graph: Graph) -> list[Instruction]:
    """A MAC instruction whose output only an Add reads, the Add's other input (the skip) being in
    DDR by then, runs the Add itself on its output (`Residual`) and writes the Add's output; the
    Add is dropped: the pixel unit's pass over three tensors (a quarter of ResNet-50's frame on
    the ZCU102) becomes a read of the skip beside the MAC layer's write. Not for a deformable
    layer (its aux port reads offsets), an output also written elsewhere or read by another layer,
    a broadcasting Add, or an Add whose output stage is per channel or has a second (negative)
    multiplier (the residual stage holds one record: an Add's output scale is per tensor as
    onnxruntime and Brevitas quantize it)."""
    position = {instruction.op.output.name: k for k, instruction in enumerate(program)}
    kept = list(program)
    dropped: set[int] = set()
    for k, instruction in enumerate(program):
        op = instruction.op
        if instruction.mode != "add" or op.requant.negative_multiplier is not None or not uniform(op.requant):
            continue
        first, second = op.inputs
        for source, skip, conv_first in ((first, second, True), (second, first, False)):
            writer = position.get(source)
            if writer is None or writer in dropped or not kept[writer].is_mac:
                continue
            mac = kept[writer]
            tensors = graph.input_tensors(mac.op)
            readers = [name for reader in graph.consumers(source) for name in reader.inputs if name == source]
            if (len(tensors) > 1 or mac.destination is not None or len(readers) != 1 or source in graph.outputs
                    or graph.tensor(source).shape != op.output.shape or graph.tensor(skip).shape != op.output.shape
                    or position.get(skip, -1) >= writer):
                continue
            kept[writer] = replace(mac, residual=Residual(op, graph.tensor(skip), conv_first),
                                   destination=Destination(op.output, 0))
            dropped.add(k)
            break
    return [instruction for k, instruction in enumerate(kept) if k not in dropped]


WRITES_IN_PLACE = ("conv", "channelwise", "gather")
"""The modes whose writer can store a layer's words at an offset into each pixel of a wider tensor."""


def write_copies_in_place(program: list[Instruction], graph: Graph, word_bytes: int) -> list[Instruction]:
    """A MAC or gather instruction whose output is read only by an instruction that copies it
    unchanged into part of another tensor (`EngineFacet.copied_into`: a Concat part whose output
    stage is the identity) writes it there itself, and the copy is dropped: one pass of the pixel
    unit over the tensor saved (one part of each SqueezeNet fire module as onnxruntime quantizes
    it; ShuffleNetV2's pass-through half). Not when the output is also a graph output or read by
    another layer (it must exist)."""
    producer = {instruction.op.output.name: k for k, instruction in enumerate(program)
                if instruction.mode in WRITES_IN_PLACE and instruction.destination is None}
    kept = list(program)
    dropped: set[int] = set()
    for k, instruction in enumerate(program):
        if instruction.is_mac:
            continue
        copy = engine_facet(instruction.op).copied_into(instruction, graph.input_tensors(instruction.op), word_bytes)
        if copy is None:
            continue
        source, destination = copy
        writer = producer.get(source.name)
        readers = [name for op in graph.consumers(source.name) for name in op.inputs if name == source.name]
        if writer is None or len(readers) != 1 or source.name in graph.outputs:
            continue
        kept[writer] = replace(kept[writer], destination=destination)
        dropped.add(k)
    return [instruction for k, instruction in enumerate(kept) if k not in dropped]


def check_storage(tensor: Tensor, layer: str) -> None:
    if tensor.dtype.bits > STORAGE_BITS:
        raise EngineUnsupported(f"layer '{layer}': tensor '{tensor.name}' is {tensor.dtype}; the engine stores "
                                f"activations of up to {STORAGE_BITS} bits, one byte each")


def plan(instruction: Instruction, graph: Graph, config: EngineConfig, weight_bits: int,
         inputs: tuple[Tensor, ...] | None = None) -> InstructionPlan:
    """The schedule of one instruction on `config` (`inputs`: its input tensors, when the caller
    has them, as the mapper does for every configuration it tries); EngineUnsupported when it
    cannot fit: its `whole_plan` with the `chosen_blocking`."""
    return chosen_blocking(whole_plan(instruction, graph, config, weight_bits, inputs), config, weight_bits)


def whole_plan(instruction: Instruction, graph: Graph, config: EngineConfig, weight_bits: int,
               inputs: tuple[Tensor, ...] | None = None) -> InstructionPlan:
    """The schedule of one instruction on `config`, a MAC layer's blocks in the whole memories
    (`chosen_blocking` may take their halves instead); EngineUnsupported when it cannot fit. Apart
    from `plan`, so that the mapper plans a MAC layer fused with a residual Add once for all the
    pixel lanes: neither its family's plan nor the Add's reads them (only the choice of blocking,
    which times the Add's stage, does)."""
    op = instruction.op
    inputs = instruction_inputs(instruction, graph) if inputs is None else inputs
    item = engine_facet(op).plan(instruction, inputs, config, weight_bits)
    if instruction.residual is not None:
        add = instruction.residual.op
        item = replace(item, residual=engine_facet(add).plan(Instruction(add, "add"), tuple(graph.input_tensors(add)),
                                                             config, weight_bits))
    return item


def chosen_blocking(item: InstructionPlan, config: EngineConfig, weight_bits: int) -> InstructionPlan:
    """`item` (a `whole_plan`), or where it runs in blocks, its blocks in the memories' halves
    prefetching (`prefetching`) if that times faster on `blocking_run`: a choice of the layer and
    the configuration alone, so the program and every run of it agree."""
    halves = prefetching(item, config)
    if halves is None:
        return item
    reference = (blocking_run(config),)
    faster = mac_runs(halves, config, weight_bits, reference)[0][0] < mac_runs(item, config, weight_bits, reference)[0][0]
    return halves if faster else item


def blocking_run(config: EngineConfig) -> EngineRun:
    """The run `plan` times a layer's two blockings on: MAX_BATCH frames, a word each way a cycle."""
    return EngineRun(MemorySystem(2 * config.word_bytes, config.word_bytes), MAX_BATCH)


def plan_program(graph: Graph, config: EngineConfig) -> list[InstructionPlan]:
    bits = weight_storage_bits(graph)
    return [plan(instruction, graph, config, bits) for instruction in instructions(graph, config.word_bits)]


def most(values: Iterable[int], floor: int = 1) -> int:
    return max([floor, *values])


BUFFERS = ("ROW_BANKS", "BANK_DEPTH", "MAX_OUTERS", "WBUF_DEPTH", "TABLE_DEPTH", "EW_TABLE_DEPTH", "OFFSET_C_MAX",
           "MASK_C_MAX", "MAX_DEFORM_W", "MAX_RESIZE_ROW_WORDS", "MAX_GATHER_WORDS")
"""The on-chip buffers `buffer_sizes` sizes, in the generated C++ config's order."""


def buffer_sizes(plans: Iterable[InstructionPlan], config: EngineConfig) -> dict[str, int]:
    """The engine's on-chip buffers (`BUFFERS`), each sized for the instruction that needs the
    most: the MAC unit's (`mac_buffer_sizes`) and the pixel unit's (`pixel_buffer_sizes`)."""
    plans = list(plans)
    return unit_buffer_sizes(mac_buffer_sizes(p for p in plans if p.instruction.is_mac),
                             pixel_buffer_sizes((p for p in plans if not p.instruction.is_mac), config))


def unit_buffer_sizes(mac: dict[str, int], pixel: dict[str, int]) -> dict[str, int]:
    """Both units' buffer sizes in the generated config's order (`BUFFERS`). Apart, so that the
    mapper sizes the pixel unit's once for all the configurations with its lanes."""
    sizes = {**mac, **pixel}
    return {name: sizes[name] for name in BUFFERS}


def mac_buffer_sizes(plans: Iterable[InstructionPlan]) -> dict[str, int]:
    """The MAC unit's buffers for its instructions' `plans`: ring words per bank, the unpacker's
    outers per group, weight words per PE memory, records, sampling offsets and mask per row."""
    mac = list(plans)
    sampling = [p for p in mac if p.sampling_inputs]
    sampled = [p.sampling_inputs for p in sampling]
    row_banks = 2 if sampled else 1
    return {
        # the ring's banks: by row parity only where a bilinear sample reads two rows at once
        "ROW_BANKS": row_banks,
        "BANK_DEPTH": most(p.ring_rows // row_banks * p.bank_row_words for p in mac),
        # the unpacker's group buffer: a block's outers for every pixel of a group (none at PP 1)
        "MAX_OUTERS": most(p.outer_per_block for p in mac if p.pixels > 1),
        "WBUF_DEPTH": most(p.weight_buffer_words for p in mac if p.load_pe),
        "TABLE_DEPTH": most(p.table_entries for p in mac),
        "OFFSET_C_MAX": most(aux[0].channels for aux in sampled),
        "MASK_C_MAX": most(aux[1].channels for aux in sampled if len(aux) > 1),
        "MAX_DEFORM_W": most(p.output.shape[3] for p in sampling),
    }


def pixel_buffer_sizes(plans: Iterable[InstructionPlan], config: EngineConfig) -> dict[str, int]:
    """The pixel unit's buffers for its instructions' `plans`: records, resize row words, a
    channel gather's held pixel."""
    pixel = list(plans)
    resize = [p for p in pixel if p.instruction.mode == "resize"]
    gather = [p for p in pixel if p.instruction.mode == "gather"]
    return {
        "EW_TABLE_DEPTH": most((p.table_entries for p in pixel), config.word_bytes),
        "MAX_RESIZE_ROW_WORDS": most(p.inputs[0].shape[3] * words_per_pixel(p.inputs[0], config.word_bytes) for p in resize),
        # a channel gather's held pixel (of each of its inputs), a copy per pixel lane
        "MAX_GATHER_WORDS": most(sum(words_per_pixel(t, config.word_bytes) for t in p.inputs) for p in gather),
    }


def plan_arena(graph: Graph, word_bytes: int, program: Iterable[Instruction] = ()) -> Arena:
    """First-fit placement of every tensor, reusing the space of tensors no longer read.

    A tensor lives from the layer producing it to its last reader; graph inputs from the start
    (the host writes them all before the run) and outputs to the end (the host reads them after).
    A layer's output never overlaps its inputs: they are still live when it is placed. An
    instruction of `program` that writes into another tensor (`Instruction.destination`) makes
    that tensor live from its own layer on, and its own output takes no space.
    """
    program = list(program)
    order = [op for op in graph]
    position = {op.output.name: index for index, op in enumerate(order)}
    in_place = [i for i in program if i.destination is not None]
    for instruction in in_place:
        name = instruction.destination.tensor.name
        position[name] = min(position[name], position[instruction.op.output.name])
    last_use = dict(position)
    for index, op in enumerate(order):
        for name in op.inputs:
            last_use[name] = max(last_use[name], index)
    for instruction in program:  # a composed gather reads its route's sources, at its own layer
        for source in instruction_inputs(instruction, graph) if instruction.route is not None else ():
            last_use[source.name] = max(last_use[source.name], position[instruction.op.output.name])
    for name in graph.outputs:
        last_use[name] = len(order)
    for op in graph.inputs:
        position[op.output.name] = -1
    sizes = {op.output.name: op.output.shape[2] * op.output.shape[3] * words_per_pixel(op.output, word_bytes)
             for op in order}
    sizes.update({instruction.op.output.name: 0 for instruction in in_place})
    if program:  # a layer no instruction writes (a gather composed away) takes no space
        written = {instruction.written.name for instruction in program} | {op.output.name for op in graph.inputs}
        sizes.update({name: 0 for name in sizes if name not in written})
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
