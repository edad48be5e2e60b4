"""The dataflow top: which stage reads and writes which stream, in what order, how deep.

A tensor read by several stages (a residual shortcut, an output that is also consumed) gets a
chain of two-way fan-out stages: DATAFLOW requires exactly one reader per stream. FIFO depths
are the pipeline simulator's stall-free occupancies (in rows, turned into pixels) plus one row
of slack, because the generated stages read slightly earlier than the row-level model assumes.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingType
from dataclasses import dataclass

from hwcodesign.codegen.packing import StreamLayout, layout_of
from hwcodesign.codegen.stages import (
    CodegenError,
    Stage,
    act_stage,
    add_stage,
    c_type,
    channelwise_stage,
    concat_stages,
    conv_stage,
    deform_stage,
    global_pool_stage,
    identifier,
    resize_stage,
    vec_type,
)
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.ops import (
    Act,
    Add,
    Concat,
    Conv,
    DeformConv,
    DepthwiseConv,
    GlobalAvgPool,
    Input,
    Linear,
    Op,
    Pool,
    Resize,
)
from hwcodesign.ir.types import Tensor
from hwcodesign.mapper.cost import Folding
from hwcodesign.sim.latency import stream_fifo_depth


@dataclass(frozen=True)
class Port:
    """A tensor crossing the accelerator boundary on its own AXI4-Stream."""

    port: str
    tensor: Tensor
    layout: StreamLayout

    def as_template(self) -> dict[str, object]:
        n, c, h, w = self.tensor.shape
        return {
            "port": self.port, "tensor": self.tensor.name, "shape_text": f"{c}x{h}x{w} (CxHxW)",
            "dtype": str(self.tensor.dtype), "words": self.layout.words_per_frame,
            "bytes": self.layout.bytes_per_frame,
        }


@dataclass(frozen=True)
class StreamDecl:
    name: str
    type: str
    depth: int


@dataclass(frozen=True)
class DataflowTop:
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    stages: tuple[Stage, ...]
    streams: tuple[StreamDecl, ...]
    calls: tuple[str, ...]

    @property
    def layer_headers(self) -> list[str]:
        headers = {"hwc_common.h", "hwc_window.h", "hwc_axis.h"} | {s.template for s in self.stages}
        return sorted(headers)


def build_top(graph: Graph, foldings: MappingType[str, Folding], fifo_rows: MappingType[tuple[str, str], int],
              word_bits: int) -> DataflowTop:
    """Walk the graph in dataflow order and wire every stage to its streams."""
    idents = {op.name: identifier(op.name, index) for index, op in enumerate(graph)}
    inputs = tuple(Port(f"in{i}", op.output, layout_of(op.output.shape, op.output.dtype, word_bits))
                   for i, op in enumerate(graph.inputs))
    outputs = tuple(Port(f"out{i}", graph.tensor(name), layout_of(graph.tensor(name).shape, graph.tensor(name).dtype, word_bits))
                    for i, name in enumerate(graph.outputs))
    streams: list[StreamDecl] = []
    stages: list[Stage] = []
    calls: list[str] = []
    reader_stream: dict[tuple[str, str], str] = {}  # (tensor, reader key) -> stream name

    def declare(name: str, tensor: Tensor, depth_rows: int) -> str:
        depth = stream_fifo_depth(depth_rows, tensor)
        streams.append(StreamDecl(name, vec_type(tensor), depth))
        return name

    def readers_of(tensor: str) -> list[str]:
        keys = [f"{consumer.name}#{slot}" for consumer in graph.consumers(tensor)
                for slot, name in enumerate(consumer.inputs) if name == tensor]
        keys += [port.port for port in outputs if port.tensor.name == tensor]
        return sorted(set(keys), key=keys.index)

    def wire_output(op: Op) -> tuple[str, list[str]]:
        """Declare the streams `op` feeds; return the one it writes and the fan-out calls."""
        tensor = op.output
        ident = idents[op.name]
        readers = readers_of(tensor.name)
        if not readers:
            raise CodegenError(f"layer '{op.name}': output '{tensor.name}' is never read")
        for key in readers:
            consumer = key.split("#")[0]
            rows = fifo_rows.get((op.name, consumer), 0)
            reader_stream[(tensor.name, key)] = declare(f"s_{ident}_to_{len(reader_stream)}", tensor, rows)
        if len(readers) == 1:
            return reader_stream[(tensor.name, readers[0])], []
        fanout_calls = []
        source = declare(f"s_{ident}", tensor, 0)
        current = source
        pixels = tensor.shape[2] * tensor.shape[3]
        for index, key in enumerate(readers[:-1]):
            last_pair = index == len(readers) - 2
            following = reader_stream[(tensor.name, readers[-1])] if last_pair else declare(f"s_{ident}_fan{index}", tensor, 0)
            fanout_calls.append(f"hwc_fanout2<{c_type(tensor.dtype)}, {tensor.channels}, {pixels}>("
                                f"{current}, {reader_stream[(tensor.name, key)]}, {following});")
            current = following
        return source, fanout_calls

    for op in graph:
        out_stream, fanout_calls = wire_output(op)
        in_streams = [reader_stream[(name, f"{op.name}#{slot}")] for slot, name in enumerate(op.inputs)]
        sources = graph.input_tensors(op)
        ident = idents[op.name]
        folding = foldings.get(op.name, Folding())
        if isinstance(op, Input):
            port = next(p for p in inputs if p.tensor.name == op.output.name)
            pixels = op.output.shape[2] * op.output.shape[3]
            calls.append(f"hwc_axis_to_pixels<{word_bits}, {c_type(op.output.dtype)}, {op.output.channels}, {pixels}>"
                         f"({port.port}, {out_stream});")
        else:
            new_stages, links = layer_stages(op, ident, sources, folding, in_streams, out_stream)
            for name, tensor in links:
                declare(name, tensor, 0)
            stages.extend(new_stages)
            calls.extend(stage.call for stage in new_stages)
        calls.extend(fanout_calls)
    for port in outputs:
        pixels = port.tensor.shape[2] * port.tensor.shape[3]
        calls.append(f"hwc_pixels_to_axis<{word_bits}, {c_type(port.tensor.dtype)}, {port.tensor.channels}, {pixels}>"
                     f"({reader_stream[(port.tensor.name, port.port)]}, {port.port});")
    return DataflowTop(inputs, outputs, tuple(stages), tuple(streams), tuple(calls))


def layer_stages(op: Op, ident: str, sources: list[Tensor], folding: Folding, in_streams: list[str],
                 out_stream: str) -> tuple[list[Stage], list[tuple[str, Tensor]]]:
    """The stage(s) implementing `op`, and any intermediate streams they add."""
    if isinstance(op, DeformConv):
        return [deform_stage(op, ident, sources, folding, in_streams, out_stream)], []
    if isinstance(op, DepthwiseConv | Pool):
        return [channelwise_stage(op, ident, sources[0], folding, in_streams[0], out_stream)], []
    if isinstance(op, Conv | Linear):
        return [conv_stage(op, ident, sources[0], folding, in_streams[0], out_stream)], []
    if isinstance(op, Act):
        return [act_stage(op, ident, sources[0], folding, in_streams[0], out_stream)], []
    if isinstance(op, Add):
        return [add_stage(op, ident, sources, folding, in_streams, out_stream)], []
    if isinstance(op, GlobalAvgPool):
        return [global_pool_stage(op, ident, sources[0], folding, in_streams[0], out_stream)], []
    if isinstance(op, Resize):
        return [resize_stage(op, ident, sources[0], folding, in_streams[0], out_stream)], []
    if isinstance(op, Concat):
        return concat_stages(op, ident, sources, folding, in_streams, out_stream)
    raise CodegenError(f"layer '{op.name}': no HLS stage for {op.kind}")
