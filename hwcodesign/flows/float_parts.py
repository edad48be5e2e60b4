"""Which nodes of a float model stay float when it is quantized for the accelerator, and why.

The hardware runs an integer core; around it a real model has parts that are float by nature and
run on the board's CPU (issue 18's host/accelerator partition), and structure that must not be
quantized:

* pre: input normalisation before the first Conv/Gemm/MatMul -- Sub/Div/Mul/Add with a constant,
  Reshape and friends, Brevitas's `2x - 1` -- which the partition runs on the host;
* post: heads the accelerator has no lowering for (Softmax, LogSoftmax, ArgMax, TopK, GRU/LSTM/RNN)
  and everything after them, and any tail of ops no lowering rule takes;
* the sparse active-site mask and its Muls (`hwcodesign/frontend/sparse.py`): structure, not data;
* the Clip(-R, R) on a DeformConv's offsets: it declares the bound (`flows/deform_grid.py`), and
  CoDeNet's integer square offsets, Clip(0, N) -> Round -> Mul(s, P): already integers;
* what the user assigns to the host by node name or op type.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import onnx

from hwcodesign.errors import HwcodesignError
from hwcodesign.flows.deform_grid import integer_offset_chain
from hwcodesign.frontend.sparse import mask_nodes
from hwcodesign.passes.lowering import handled_op_types

NORMALISE_OPS = ("Sub", "Div", "Mul", "Add")  # with a constant other operand
PRE_OPS = (*NORMALISE_OPS, "Reshape", "Flatten", "Transpose", "Cast", "Identity", "Unsqueeze", "Squeeze")
HEAD_OPS = ("Softmax", "LogSoftmax", "ArgMax", "ArgMin", "TopK", "GRU", "LSTM", "RNN")


@dataclass(frozen=True)
class FloatGroup:
    """Nodes left float for one reason (one line of `hwcodesign quantize`'s summary)."""

    reason: str
    nodes: tuple[str, ...]

    def __str__(self) -> str:
        shown = ", ".join(self.nodes[:6]) + (f" and {len(self.nodes) - 6} more" if len(self.nodes) > 6 else "")
        return f"{self.reason}: {shown}"


def constants(model: onnx.ModelProto) -> set[str]:
    return {i.name for i in model.graph.initializer} | {
        o for n in model.graph.node if n.op_type == "Constant" for o in n.output}


def pre_nodes(model: onnx.ModelProto, skip: Collection[str]) -> list[onnx.NodeProto]:
    """Nodes computing only from the graph inputs and constants through `PRE_OPS` (one data operand each)."""
    consts = constants(model)
    floats = {value.name for value in model.graph.input} - consts
    found = []
    for node in model.graph.node:
        data = [name for name in node.input if name and name not in consts]
        if node.name in skip or node.op_type not in PRE_OPS or not data or any(d not in floats for d in data):
            continue
        if node.op_type in NORMALISE_OPS and len(data) != 1:
            continue  # x - y of two inputs is not a normalisation
        found.append(node)
        floats.update(node.output)
    return found


def post_nodes(model: onnx.ModelProto, skip: Collection[str]) -> list[onnx.NodeProto]:
    """Heads (`HEAD_OPS`) and everything after them, then the tail of ops without a lowering."""
    graph_outputs = {o.name for o in model.graph.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    post: set[str] = set()
    after_head: set[str] = set()
    for node in model.graph.node:  # topological order: a node after a head is seen after it
        if node.op_type in HEAD_OPS or any(i in after_head for i in node.input):
            after_head.update(node.output)
            if node.name not in skip:
                post.add(node.name)
    supported = set(handled_op_types())
    for node in reversed(model.graph.node):
        if node.name in post or node.name in skip or node.op_type in supported:
            continue
        readers = [reader for output in node.output for reader in consumers.get(output, [])]
        if all(r.name in post or r.name in skip for r in readers) and (readers or set(node.output) & graph_outputs):
            post.add(node.name)
    return [node for node in model.graph.node if node.name in post]


def host_nodes(model: onnx.ModelProto, host: Sequence[str]) -> list[onnx.NodeProto]:
    """The nodes the user assigns to the host, by node name or op type; an unknown one is refused."""
    names = {node.name for node in model.graph.node}
    op_types = {node.op_type for node in model.graph.node}
    for item in host:
        if item not in names and item not in op_types:
            raise HwcodesignError(f"host: the model has no node or op type named '{item}' (its op types: "
                                  f"{', '.join(sorted(op_types))})")
    wanted = set(host)
    return [node for node in model.graph.node if node.name in wanted or node.op_type in wanted]


def deform_offset_clips(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    producer = {output: node for node in model.graph.node for output in node.output}
    clips = []
    for node in model.graph.node:
        if node.op_type == "DeformConv" and len(node.input) > 2:
            clip = producer.get(node.input[2])
            if clip is not None and clip.op_type == "Clip":
                clips.append(clip)
    return clips


def deform_integer_offsets(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The Clip -> Round -> Mul(d, P) of CoDeNet's integer square offsets (`integer_offset_chain`)."""
    producer = {output: node for node in model.graph.node for output in node.output}
    consts = constants(model)
    return [chain_node for node in model.graph.node if node.op_type == "DeformConv"
            for chain_node in integer_offset_chain(producer.get, node, consts)]


def float_groups(model: onnx.ModelProto, host: Sequence[str] = ()) -> list[FloatGroup]:
    """The groups of nodes `model` keeps float, each node in one group (the first that claims it).
    Nodes must be named (`hwcodesign.flows.quantize` names unnamed ones first)."""
    computing, applying = mask_nodes(model)
    user = host_nodes(model, host)
    claimed: set[str] = set()
    groups = []

    def group(reason: str, nodes: Sequence[onnx.NodeProto]) -> None:
        fresh = tuple(dict.fromkeys(n.name for n in nodes if n.name not in claimed))
        claimed.update(fresh)
        if fresh:
            groups.append(FloatGroup(reason, fresh))

    group("assigned to the host (--host)", user)
    group("sparse active-site mask (structure, not data)", computing)
    group("sparse mask Muls (they select active sites)", applying)
    group("DeformConv offset bounds Clip(-R, R) (they set the offset range)", deform_offset_clips(model))
    group("DeformConv integer square offsets Clip(0, N) -> Round -> Mul(s, P) (already integers)",
          deform_integer_offsets(model))
    group("float pre-processing before the first layer (runs on the host)", pre_nodes(model, claimed))
    group("float head and tail after the last layer (runs on the host)", post_nodes(model, claimed))
    return groups
