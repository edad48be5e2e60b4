"""The streams between stages: their word widths, FIFO depths, and re-folding converters.

A producer writes words of `output_lanes` channels; each reader (a consumer's input slot, or
an output port, which takes whole pixels) reads words of its own width (`input_lanes`). Where
the two differ the generated top places an `hwc_refold` converter (templates/hls/layers/
hwc_axis.h), whose buffer of L_in + L_out elements costs registers and a write multiplexer.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingType
from dataclasses import dataclass

from hwcodesign.hardware.folding import Folding, LayerCost
from hwcodesign.hardware.memory import MemoryCost, fifo_cost
from hwcodesign.hardware.stream import stream_fifo_depth
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.op import Op
from hwcodesign.ir.types import Tensor
from hwcodesign.mapper.cost import input_lanes, output_lanes
from hwcodesign.ops import Conv, DeformConv, Linear, Pool, Resize


def default_fifo_rows(consumer: Op) -> int:
    """Rows a FIFO holds unless the pipeline simulation plans otherwise (`sim.latency.simulate`):
    none beyond the minimum in front of a stage whose ring already reads the next rows ahead
    (conv, pool, deformable conv, resize), one row in front of a per-pixel stage."""
    return 0 if isinstance(consumer, Conv | Pool | DeformConv | Resize) and not isinstance(consumer, Linear) else 1


def output_fifos(graph: Graph, op_name: str, folding: Folding,
                 fifo_rows: MappingType[tuple[str, str], int] | None = None) -> MemoryCost:
    """The FIFOs `op_name` writes into, one per consuming layer, `fifo_rows` rows deep (default
    `default_fifo_rows`), in its own word width: a stage's folding decides how well they pack."""
    op = graph.op(op_name)
    tensor = op.output
    lanes = output_lanes(op, folding)
    bram = lut = 0
    for consumer in dict.fromkeys(c.name for c in graph.consumers(tensor.name)):
        rows = (fifo_rows or {}).get((op_name, consumer), default_fifo_rows(graph.op(consumer)))
        memory = fifo_cost(stream_fifo_depth(rows, tensor, lanes), lanes * tensor.dtype.bits)
        bram, lut = bram + memory.bram18k, lut + memory.lut
    return MemoryCost(bram, lut)


def with_output_fifos(cost: LayerCost, fifos: MemoryCost) -> LayerCost:
    """A stage's cost including the FIFOs it writes into (how the mapper and reports count them)."""
    return LayerCost(cost.cycles, cost.depth, cost.dsp, cost.bram18k + fifos.bram18k, cost.lut + fifos.lut, cost.ff)


@dataclass(frozen=True)
class StreamReader:
    """One reader of a tensor: `key` is "consumer#slot" or an output port name."""

    key: str
    tensor: Tensor
    producer_lanes: int
    reader_lanes: int

    @property
    def needs_refold(self) -> bool:
        return self.producer_lanes != self.reader_lanes

    def refold_cost(self) -> tuple[int, int]:
        """LUTs and FFs of the converter: its buffer's bits, each with a write multiplexer."""
        if not self.needs_refold:
            return 0, 0
        bits = (self.producer_lanes + self.reader_lanes) * self.tensor.dtype.bits
        return bits, bits


def stream_readers(graph: Graph, foldings: MappingType[str, Folding], tensor: str,
                   output_ports: MappingType[str, str]) -> list[StreamReader]:
    """The readers of `tensor` in a fixed order (consumers' slots, then output ports);
    `output_ports` maps an output tensor to its port name."""
    producer = graph.producer(tensor)
    lanes = output_lanes(producer, foldings.get(producer.name, Folding()))
    value = graph.tensor(tensor)
    readers: list[StreamReader] = []
    seen: set[str] = set()
    for consumer in graph.consumers(tensor):
        for slot, name in enumerate(consumer.inputs):
            key = f"{consumer.name}#{slot}"
            if name != tensor or key in seen:
                continue
            seen.add(key)
            wanted = input_lanes(consumer, foldings.get(consumer.name, Folding()), slot, graph.input_tensors(consumer))
            readers.append(StreamReader(key, value, lanes, wanted))
    if tensor in output_ports:
        readers.append(StreamReader(output_ports[tensor], value, lanes, value.channels))
    return readers


def refold_cost(graph: Graph, foldings: MappingType[str, Folding]) -> tuple[int, int]:
    """LUTs and FFs of every converter the generated top will contain."""
    ports = {name: f"out{i}" for i, name in enumerate(graph.outputs)}
    lut = ff = 0
    for op in graph:
        for reader in stream_readers(graph, foldings, op.output.name, ports):
            extra_lut, extra_ff = reader.refold_cost()
            lut, ff = lut + extra_lut, ff + extra_ff
    return lut, ff
