"""The dataflow top: which stage reads and writes which stream, in what order, how deep.

Each layer's stages (config structs, tables, calls) come from its family's dataflow facet
(`family_of(op).dataflow.stage`), which reads the layer's stage plan like the cost model and
the simulator do; this module only wires them.

A tensor read by several stages (a residual shortcut, an output that is also consumed) gets a
chain of two-way fan-out stages: DATAFLOW requires exactly one reader per stream. FIFO depths
are the pipeline simulator's stall-free occupancies (in rows, turned into pixels) plus one row
of slack, because the generated stages read slightly earlier than the row-level model assumes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping as MappingType
from dataclasses import dataclass

from hwcodesign.codegen.project_format import BoundaryPort
from hwcodesign.codegen.render import static_file
from hwcodesign.hardware.ctext import (
    CodegenError,
    Stage,
    axis_adapter,
    c_type,
    identifier,
    max_sites,
    token_type,
    vec_type,
)
from hwcodesign.hardware.folding import Folding
from hwcodesign.hardware.stream import input_words, stream_fifo_depth
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.op import Op
from hwcodesign.ir.types import Tensor
from hwcodesign.mapper.cost import dataflow_of, stage_plan
from hwcodesign.mapper.streams import output_lanes, stream_readers
from hwcodesign.ops.facets.dataflow import StageWiring


@dataclass(frozen=True)
class StreamDecl:
    """An internal FIFO between two stages (`hls::stream` with its DATAFLOW depth), not a port."""

    name: str
    type: str
    depth: int


@dataclass(frozen=True)
class DataflowTop:
    inputs: tuple[BoundaryPort, ...]
    outputs: tuple[BoundaryPort, ...]
    stages: tuple[Stage, ...]
    streams: tuple[StreamDecl, ...]
    calls: tuple[str, ...]

    @property
    def layer_headers(self) -> list[str]:
        """The layer headers the stages use and those they include (templates/hls/layers)."""
        return sorted(with_included({"hwc_common.h", "hwc_window.h", "hwc_axis.h"} | {s.template for s in self.stages}))


LOCAL_INCLUDE = re.compile(r'^#include "(hwc_\w+\.h)"', re.MULTILINE)


def with_included(headers: set[str]) -> set[str]:
    """`headers` and every layer header they include, directly or not."""
    found, pending = set(), list(headers)
    while pending:
        header = pending.pop()
        if header not in found:
            found.add(header)
            pending += LOCAL_INCLUDE.findall(static_file(f"hls/layers/{header}"))
    return found


def build_top(graph: Graph, foldings: MappingType[str, Folding], fifo_rows: MappingType[tuple[str, str], int],
              word_bits: int) -> DataflowTop:
    """Walk the graph in dataflow order and wire every stage to its streams.

    A stream carries its producer's words (`output_lanes`); where a reader takes words of another
    width (`input_lanes`), a re-folding stage converts them. The deep FIFO an edge needs sits on
    the producer side; converters and fan-outs get the minimum depth.
    """
    idents = {op.name: identifier(op.name, index) for index, op in enumerate(graph)}
    inputs = tuple(BoundaryPort.stream(f"in{i}", op.output, word_bits, op.window) for i, op in enumerate(graph.inputs))
    outputs = tuple(BoundaryPort.stream(f"out{i}", graph.tensor(name), word_bits) for i, name in enumerate(graph.outputs))
    streams: list[StreamDecl] = []
    stages: list[Stage] = []
    calls: list[str] = []
    reader_stream: dict[tuple[str, str], str] = {}  # (tensor, reader key) -> stream name
    ports = {port.tensor.name: port.port for port in outputs}

    def folding_of(name: str) -> Folding:
        return foldings.get(name, Folding())

    def declare(name: str, tensor: Tensor, lanes: int, depth_rows: int) -> str:
        element = token_type(tensor) if tensor.sparse else vec_type(tensor, lanes)  # tokens: one per active site
        streams.append(StreamDecl(name, element, stream_fifo_depth(depth_rows, tensor, lanes)))
        return name

    def wire_output(op: Op) -> tuple[str, list[str]]:
        """Declare the streams `op` feeds; return the one it writes and the fan-out/refold calls."""
        tensor = op.output
        ident = idents[op.name]
        lanes = output_lanes(graph, op, folding_of(op.name))
        words = input_words(tensor, lanes)
        readers = stream_readers(graph, foldings, tensor.name, ports)
        if not readers:
            raise CodegenError(f"layer '{op.name}': output '{tensor.name}' is never read")
        plumbing, firsts = [], []
        for reader in readers:
            rows = fifo_rows.get((op.name, reader.key.split("#")[0]), 0)
            stream = declare(f"s_{ident}_to_{len(reader_stream)}", tensor, lanes, rows)
            firsts.append(stream)
            if reader.needs_refold:
                wanted = reader.reader_lanes
                refolded = declare(f"{stream}_w{wanted}", tensor, wanted, 0)
                plumbing.append(f"hwc_refold<{c_type(tensor.dtype)}, {lanes}, {wanted}, {words}, "
                                f"{refold_steps(words, lanes, wanted)}>({stream}, {refolded});")
                stream = refolded
            reader_stream[(tensor.name, reader.key)] = stream
        if len(readers) == 1:
            return firsts[0], plumbing
        fanout_calls = []
        source = declare(f"s_{ident}", tensor, lanes, 0)
        current = source
        for index in range(len(readers) - 1):
            last_pair = index == len(readers) - 2
            following = firsts[-1] if last_pair else declare(f"s_{ident}_fan{index}", tensor, lanes, 0)
            if tensor.sparse:
                fanout_calls.append(f"hwc_token_fanout2<{c_type(tensor.dtype)}, {tensor.channels}, {max_sites(tensor)}>("
                                    f"{current}, {firsts[index]}, {following});")
            else:
                fanout_calls.append(f"hwc_fanout2<{c_type(tensor.dtype)}, {lanes}, {words}>("
                                    f"{current}, {firsts[index]}, {following});")
            current = following
        return source, fanout_calls + plumbing

    input_ports = {port.tensor.name: port.port for port in inputs}
    for op in graph:
        out_stream, plumbing_calls = wire_output(op)
        in_streams = [reader_stream[(name, f"{op.name}#{slot}")] for slot, name in enumerate(op.inputs)]
        if op.output.name in input_ports:  # an input reads its AXI4-Stream port
            in_streams = [input_ports[op.output.name]]
        sources = graph.input_tensors(op)
        folding = folding_of(op.name)
        facet = dataflow_of(op)
        plan = stage_plan(op, sources, folding)
        wiring = StageWiring(idents[op.name], tuple(sources), tuple(in_streams), out_stream, word_bits)
        code = facet.stage(op, wiring, folding, plan)
        for name, tensor in code.links:
            declare(name, tensor, folding.pe, 0)
        stages.extend(code.stages)
        calls.extend(code.calls)
        calls.extend(plumbing_calls)
    for port in outputs:
        if port.tensor.sparse:
            raise CodegenError(f"output '{port.tensor.name}' is sparse; a sparse network ends in its dense tail "
                               "(a GlobalAveragePool) before leaving the accelerator")
        calls.append(f"{axis_adapter('hwc_pixels_to_axis', port.tensor, word_bits)}"
                     f"({reader_stream[(port.tensor.name, port.port)]}, {port.port});")
    return DataflowTop(inputs, outputs, tuple(stages), tuple(streams), tuple(calls))


def refold_steps(words_in: int, lanes_in: int, lanes_out: int) -> int:
    """Loop iterations `hwc_refold` needs for a frame: its schedule (emit a complete word, then
    take a word if it fits), run here with the same rule."""
    held = taken = written = steps = 0
    words_out = words_in * lanes_in // lanes_out
    while written < words_out:
        steps += 1
        if held >= lanes_out:
            held -= lanes_out
            written += 1
        if taken < words_in and held + lanes_in <= lanes_in + lanes_out:
            held += lanes_in
            taken += 1
    return steps
