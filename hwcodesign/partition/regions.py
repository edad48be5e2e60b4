"""Which nodes of a quantized model run on the host CPU and which on the accelerator.

The split follows the quantization boundaries, as the papers this project implements do (ESDA's
GRU head on the host, CoDeNet's first layer on the ARM): the accelerator runs the integer core,
from the first activation quantizer to the last dequantizer; the host runs what comes before
(input normalisation, Brevitas's `2x-1`) and after (Softmax, ArgMax, an unquantized final layer,
a recurrent head). Three rules place a node:

1. Default host parts: a float node upstream of every activation quantizer whose results reach
   the accelerator only through quantizers is *before*; a float node downstream of the
   quantizers with none after it is *after* (the dequantizer right after the last quantizer
   stays on the accelerator, so the accelerator's outputs are its real values).
2. Assigned nodes (`HostOptions.host`, by node name or op type) and nodes of an op the
   accelerator has no lowering for go to the host too: *after* when no computing accelerator
   node follows them (everything downstream goes with them), else *before* when none precedes
   them (everything upstream goes with them). An assigned node with accelerator work on both
   sides would need the integer stream to leave the accelerator and come back: refused by name.
   An unassigned unsupported node in the middle stays, and the frontend refuses it by name.
3. Host parts made only of shape plumbing (Reshape, Flatten, ...) stay on the accelerator, whose
   frontend takes them as views: a model without float work outside its core splits into no host
   parts at all and compiles exactly as before.

Constants (initializers, Constant nodes, anything computed from constants only, such as a weight's
DequantizeLinear) are not placed: each part carries the constants it reads.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

import onnx

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.frontend.context import node_name
from hwcodesign.frontend.loader import QONNX_DOMAINS

BEFORE, ACCELERATOR, AFTER = "host (before)", "accelerator", "host (after)"

# Activation quantizers: a node of these types on a non-constant input starts the integer domain.
QUANTIZER_TYPES = ("QuantizeLinear", "Quant", "BipolarQuant", "MultiThreshold", "Trunc")
DEQUANTIZER_TYPE = "DequantizeLinear"
# Nodes that move or relabel values without computing: never the reason a part exists.
PLUMBING_TYPES = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Transpose", "Cast")


@dataclass(frozen=True)
class Placement:
    """Each non-constant node's place (by node name) in graph order, and why host nodes are there."""

    places: dict[str, str]
    reasons: dict[str, str]

    def nodes(self, place: str) -> list[str]:
        return [name for name, where in self.places.items() if where == place]

    @property
    def has_host_parts(self) -> bool:
        return any(where != ACCELERATOR for where in self.places.values())


class NodeGraph:
    """Producers, consumers and the constant tensors of an ONNX graph, by node index."""

    def __init__(self, model: onnx.ModelProto) -> None:
        graph = model.graph
        self.nodes = list(graph.node)
        self.names = [node_name(node, index) for index, node in enumerate(self.nodes)]
        self.outputs = {value.name for value in graph.output}
        self.producer: dict[str, int] = {}
        self.consumers: dict[str, list[int]] = {}
        constant = {init.name for init in graph.initializer}
        self.constant_nodes: set[int] = set()
        for index, node in enumerate(self.nodes):
            for tensor in node.output:
                if tensor:
                    self.producer[tensor] = index
            for tensor in node.input:
                if tensor:
                    self.consumers.setdefault(tensor, []).append(index)
            if all(not tensor or tensor in constant for tensor in node.input):
                self.constant_nodes.add(index)
                constant.update(tensor for tensor in node.output if tensor)
        self.constant = constant

    def successors(self, index: int) -> set[int]:
        return {c for t in self.nodes[index].output if t for c in self.consumers.get(t, ())} - self.constant_nodes

    def predecessors(self, index: int) -> set[int]:
        found = {self.producer[t] for t in self.nodes[index].input if t in self.producer}
        return found - self.constant_nodes

    def closure(self, start: Iterable[int], step: str) -> set[int]:
        """`start` with everything downstream (`step="successors"`) or upstream of it."""
        seen, stack = set(), list(start)
        neighbours = self.successors if step == "successors" else self.predecessors
        while stack:
            index = stack.pop()
            if index not in seen:
                seen.add(index)
                stack.extend(neighbours(index))
        return seen

    def is_quantizer(self, index: int) -> bool:
        node = self.nodes[index]
        standard = node.domain in ("", "ai.onnx") or node.domain in QONNX_DOMAINS
        return standard and node.op_type in QUANTIZER_TYPES and index not in self.constant_nodes

    def computes(self, index: int) -> bool:
        """Whether a node does arithmetic (not a quantizer, dequantizer or shape plumbing)."""
        return self.nodes[index].op_type not in (*QUANTIZER_TYPES, DEQUANTIZER_TYPE, *PLUMBING_TYPES)


def place_nodes(model: onnx.ModelProto, host: Collection[str], supported: Collection[str]) -> Placement:
    """Every non-constant node's place; `host` names nodes or op types for the host, `supported`
    is the op types the accelerator's lowering takes."""
    graph = NodeGraph(model)
    useful = graph.closure((graph.producer[t] for t in graph.outputs if t in graph.producer), "predecessors")
    live = [i for i in sorted(useful) if i not in graph.constant_nodes]  # dead nodes stay where the frontend drops them
    quantizers = [i for i in live if graph.is_quantizer(i)]
    if not quantizers:
        return Placement({graph.names[i]: ACCELERATOR for i in live}, {})
    after_quantizer = graph.closure(quantizers, "successors")
    before_quantizer = graph.closure(quantizers, "predecessors")
    reasons: dict[int, str] = {}
    before = default_before(graph, live, after_quantizer)
    reasons.update((i, "before the first quantizer") for i in before)
    after = {i for i in live if i in after_quantizer and i not in before_quantizer}
    reasons.update((i, "after the last dequantizer") for i in after)
    assigned = [i for i in live if graph.names[i] in host or graph.nodes[i].op_type in host]
    unknown = sorted(set(host) - {graph.names[i] for i in live} - {graph.nodes[i].op_type for i in live})
    if unknown:
        raise UnsupportedModelError(unknown[0], "host assignment", "names no node and no op type of the model "
                                    "(the ONNX node names, as Netron shows them, or op types such as GRU)")
    runs = {*supported, *QUANTIZER_TYPES, DEQUANTIZER_TYPE}
    unsupported = [i for i in live if graph.nodes[i].op_type not in runs and i not in before | after]
    for index in sorted(set(assigned) | set(unsupported)):
        side = host_side(graph, index, before, after)
        why = "assigned to the host" if index in assigned else f"{graph.nodes[index].op_type} has no accelerator lowering"
        if side is None:
            if index in assigned:
                raise split_error(graph, index, before, after)
            continue
        region = after if side == AFTER else before
        moving = graph.closure([index], "successors" if side == AFTER else "predecessors") - region
        unquantized = unquantized_crossing(graph, moving | region, side)
        if unquantized is not None:
            if index in assigned:
                raise unquantized_error(graph, index, unquantized, side)
            continue  # left on the accelerator: the frontend refuses the node by name, with what to do
        word = "after" if side == AFTER else "before"
        for moved in moving:
            region.add(moved)
            reasons[moved] = why if moved == index else f"{word} '{graph.names[index]}' ({why})"
    after -= {i for i in after if stays_as_output_dequantizer(graph, i, after)}
    if all(not graph.computes(i) for i in before):
        before = set()
    if all(not graph.computes(i) for i in after):
        after = set()
    places = {graph.names[i]: BEFORE if i in before else AFTER if i in after else ACCELERATOR for i in live}
    return Placement(places, {graph.names[i]: reasons[i] for i in before | after})


def default_before(graph: NodeGraph, live: list[int], after_quantizer: set[int]) -> set[int]:
    """Float nodes upstream of the quantizers whose every consumer is another such node or a
    quantizer reading it: what the accelerator's input quantizers turn into integers. (An
    active-site mask read by the sparse layers' Muls is not one of them: it is the accelerator's.)"""
    before: set[int] = set()
    for index in reversed(live):
        if index in after_quantizer or graph.is_quantizer(index):
            continue
        consumers = graph.successors(index)
        if all(c in before or graph.is_quantizer(c) for c in consumers):
            before.add(index)
    return before


def host_side(graph: NodeGraph, index: int, before: set[int], after: set[int]) -> str | None:
    """AFTER when no accelerator computation follows the node, BEFORE when none precedes it."""
    if index in after:
        return AFTER
    if index in before:
        return BEFORE
    downstream = graph.closure([index], "successors") - {index}
    if not any(graph.computes(i) and i not in after for i in downstream):
        return AFTER
    upstream = graph.closure([index], "predecessors") - {index}
    if not any(graph.computes(i) and i not in before for i in upstream):
        return BEFORE
    return None


def unquantized_crossing(graph: NodeGraph, region: set[int], side: str) -> str | None:
    """A tensor crossing between the accelerator and a host `region` without a quantizer, if any.

    The accelerator hands over quantized values only: a tensor entering the part after it must be
    written by a (de)quantizer, and one leaving the part before it must be read by a quantizer."""
    for index in sorted(region):
        node = graph.nodes[index]
        if side == AFTER:
            for tensor in node.input:
                producer = graph.producer.get(tensor)
                if producer is None or producer in region or producer in graph.constant_nodes:
                    continue
                if graph.nodes[producer].op_type != DEQUANTIZER_TYPE and not graph.is_quantizer(producer):
                    return tensor
        else:
            for tensor in node.output:
                readers = [c for c in graph.consumers.get(tensor, ()) if c not in region and c not in graph.constant_nodes]
                if any(not graph.is_quantizer(c) for c in readers):
                    return tensor
    return None


def unquantized_error(graph: NodeGraph, index: int, tensor: str, side: str) -> UnsupportedModelError:
    where = "leaves the accelerator into" if side == AFTER else "enters the accelerator from"
    return UnsupportedModelError(
        graph.names[index], graph.nodes[index].op_type,
        f"cannot run on the host: '{tensor}' {where} the host part without a quantizer; the accelerator takes "
        "and gives quantized values only (put a QuantizeLinear/DequantizeLinear pair at the cut, e.g. quantize "
        "the model with `hwcodesign quantize --host ...`)")


def stays_as_output_dequantizer(graph: NodeGraph, index: int, after: set[int]) -> bool:
    """A DequantizeLinear reading an accelerator quantizer is the accelerator's output stage."""
    node = graph.nodes[index]
    producer = graph.producer.get(node.input[0]) if node.input else None
    return node.op_type == DEQUANTIZER_TYPE and producer is not None and producer not in after and \
        graph.is_quantizer(producer)


def split_error(graph: NodeGraph, index: int, before: set[int], after: set[int]) -> UnsupportedModelError:
    upstream = [i for i in graph.closure([index], "predecessors") - {index} if graph.computes(i) and i not in before]
    downstream = [i for i in graph.closure([index], "successors") - {index} if graph.computes(i) and i not in after]
    return UnsupportedModelError(
        graph.names[index], graph.nodes[index].op_type,
        f"cannot run on the host: the accelerator computes before it ('{graph.names[max(upstream)]}') and after it "
        f"('{graph.names[min(downstream)]}'), so the integer stream would leave the accelerator and re-enter it; "
        "the design has one accelerator part between the host's parts before and after it (assign the layers "
        "after it to the host too, or none)")
