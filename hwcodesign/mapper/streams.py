"""The streams between stages: their word widths, FIFO depths, and re-folding converters.

A producer writes words of its plan's `output_lanes` channels; each reader (a consumer's input
slot, or an output port, which takes whole pixels) reads words of its own width (the consumer's
`input_lanes`). Where the two differ the generated top places an `hwc_refold` converter
(templates/hls/layers/hwc_axis.h), whose buffer of L_in + L_out elements costs registers and a
write multiplexer.
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
from hwcodesign.mapper.cost import stage_plan


def default_fifo_rows(graph: Graph, consumer: str, tensor: str | None = None) -> int:
    """Rows a FIFO holds unless the pipeline simulation plans otherwise (`sim.latency.simulate`):
    the consumer's plan says (none beyond the minimum in front of a stage whose ring already
    reads the next rows ahead, one row in front of a per-pixel stage, a whole frame in front of
    a stage whose other input is computed from this one: `input_fifo_rows` per slot, for the
    FIFO carrying `tensor`); it does not depend on the folding."""
    op = graph.op(consumer)
    plan = stage_plan(op, graph.input_tensors(op), Folding())
    if tensor is not None and plan.input_fifo_rows:
        return max(rows for name, rows in zip(op.inputs, plan.input_fifo_rows, strict=True) if name == tensor)
    return plan.fifo_rows


def output_lanes(graph: Graph, op: Op, folding: Folding) -> int:
    """Channels per word of the stream `op` writes (its plan's `output_lanes`)."""
    return stage_plan(op, graph.input_tensors(op), folding).output_lanes


def output_fifos(graph: Graph, op_name: str, folding: Folding,
                 fifo_rows: MappingType[tuple[str, str], int] | None = None) -> MemoryCost:
    """The FIFOs `op_name` writes into, one per consuming layer, `fifo_rows` rows deep (default
    `default_fifo_rows`), in its own word width: a stage's folding decides how well they pack."""
    op = graph.op(op_name)
    tensor = op.output
    lanes = output_lanes(graph, op, folding)
    bram = lut = 0
    for consumer in dict.fromkeys(c.name for c in graph.consumers(tensor.name)):
        rows = (fifo_rows or {}).get((op_name, consumer), default_fifo_rows(graph, consumer, tensor.name))
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
    lanes = output_lanes(graph, producer, foldings.get(producer.name, Folding()))
    value = graph.tensor(tensor)
    readers: list[StreamReader] = []
    seen: set[str] = set()
    for consumer in graph.consumers(tensor):
        plan = stage_plan(consumer, graph.input_tensors(consumer), foldings.get(consumer.name, Folding()))
        for slot, name in enumerate(consumer.inputs):
            key = f"{consumer.name}#{slot}"
            if name != tensor or key in seen:
                continue
            seen.add(key)
            readers.append(StreamReader(key, value, lanes, plan.input_lanes[slot]))
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
