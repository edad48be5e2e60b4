"""Small edits of an ONNX graph: the one editor the example quantizers and the tests write QDQ models with.

Writing a quantized model by hand means the same few moves every time: find a tensor's producer
and consumers, make fresh names that collide with nothing, add initializers (int4 included) and
Q/DQ nodes, rewire consumers to a new tensor, put the nodes back in topological order and drop
the initializers nobody reads; and, to compare layer by layer, expose inner tensors as graph
outputs. `GraphEdit` does these on one model in place; the functions take or return a model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# Initializer element types onnx.numpy_helper cannot write from a numpy array.
PACKED_TYPES = (TensorProto.INT4, TensorProto.UINT4)


def fresh_name(base: str, taken: set[str]) -> str:
    """`base`, or `base_2`, `base_3`...: the first name not in `taken`, which it joins."""
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name)
    return name


class GraphEdit:
    """Producer/consumer look-ups, fresh names, initializers and nodes over one graph being edited."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.graph = model.graph
        self.inits = {i.name: i for i in self.graph.initializer}
        self.names = {n.name for n in self.graph.node} | set(self.inits) | {i.name for i in self.graph.input}
        self.names |= {o for n in self.graph.node for o in n.output}

    def producer(self, tensor: str) -> onnx.NodeProto | None:
        return next((n for n in self.graph.node if tensor in n.output), None)

    def consumers(self, tensor: str) -> list[onnx.NodeProto]:
        return [n for n in self.graph.node if tensor in n.input]

    def const(self, name: str) -> np.ndarray:
        return numpy_helper.to_array(self.inits[name])

    def fresh(self, base: str) -> str:
        """`base`, or `base_2`, `base_3`... : the first name nothing in the graph uses yet."""
        return fresh_name(base, self.names)

    def add_init(self, base: str, value: np.ndarray, data_type: int | None = None) -> str:
        """A new initializer under a fresh name from `base`; `data_type` INT4/UINT4 packs 4-bit values."""
        name = self.fresh(base)
        value = np.asarray(value)
        if data_type in PACKED_TYPES:
            tensor = helper.make_tensor(name, data_type, value.shape, value.astype(np.int64).ravel().tolist())
        else:
            tensor = numpy_helper.from_array(value, name)
        self.graph.initializer.append(tensor)
        self.inits[name] = tensor
        return name

    def make_node(self, op: str, inputs: Sequence[str], output: str, name_base: str | None = None,
                  **attrs: object) -> onnx.NodeProto:
        """A node writing `output` (a name the caller made fresh), not yet placed in the graph."""
        return helper.make_node(op, list(inputs), [output], name=self.fresh(name_base or f"{output}_node"), **attrs)

    def add_node(self, op: str, inputs: Sequence[str], output_base: str, name_base: str, **attrs: object) -> str:
        """Append a node writing a fresh tensor named from `output_base`; returns that tensor's name."""
        output = self.fresh(output_base)
        self.graph.node.append(self.make_node(op, inputs, output, name_base, **attrs))
        return output

    def rewire(self, old: str, new: str, skip: Iterable[onnx.NodeProto] = ()) -> None:
        """Every node but `skip` that reads `old` reads `new` instead."""
        skipped = [id(node) for node in skip]
        for node in self.graph.node:
            if id(node) not in skipped:
                node.input[:] = [new if name == old else name for name in node.input]

    def remove(self, *nodes: onnx.NodeProto) -> None:
        for node in nodes:
            self.graph.node.remove(node)

    def set_nodes(self, nodes: Sequence[onnx.NodeProto]) -> None:
        """Replace the graph's node list by `nodes`, in that order."""
        ordered = list(nodes)
        del self.graph.node[:]
        self.graph.node.extend(ordered)

    def finish(self) -> None:
        """Topologically sort the nodes (stable) and drop unused initializers."""
        available = {i.name for i in self.graph.input} | set(self.inits)
        self.set_nodes(topological_order(self.graph.node, available))
        drop_unused_initializers(self.graph)


def topological_order(nodes: Iterable[onnx.NodeProto], available: Iterable[str]) -> list[onnx.NodeProto]:
    """`nodes` in waves of those whose inputs are all `available` (or made by an earlier wave),
    each wave in the given order; a cycle or an input nobody makes is a ValueError."""
    pending = list(nodes)
    known = set(available) | {""}
    ordered: list[onnx.NodeProto] = []
    while pending:
        ready = [n for n in pending if all(i in known for i in n.input)]
        if not ready:
            raise ValueError(f"graph has a cycle or a dangling input near {pending[0].name}")
        for node in ready:
            ordered.append(node)
            known.update(node.output)
        pending = [n for n in pending if n not in ready]
    return ordered


def inline_constants(model: onnx.ModelProto) -> None:
    """Constant nodes -> initializers; `Identity(initializer)` -> a copy of the initializer.

    torch's TorchScript exporter shares byte-identical initializers through Identity nodes (the
    same square pattern in three CoDeNet stages): a pass that asks whether an input is a constant
    initializer should see each as its own."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    keep = []
    for node in graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            source = node.attribute[0].t
        elif node.op_type == "Identity" and node.input[0] in inits:
            source = inits[node.input[0]]
        else:
            keep.append(node)
            continue
        tensor = onnx.TensorProto()
        tensor.CopyFrom(source)
        tensor.name = node.output[0]
        graph.initializer.append(tensor)
        inits[tensor.name] = tensor
    del graph.node[:]
    graph.node.extend(keep)


def drop_unused_initializers(graph: onnx.GraphProto) -> None:
    """Keep the initializers a node reads or the graph outputs."""
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def expose_outputs(model: onnx.ModelProto, names: Iterable[str],
                   types: Mapping[str, int] | None = None) -> onnx.ModelProto:
    """A copy of `model` with the tensors `names` also graph outputs (float unless `types` says
    otherwise); graph inputs and existing outputs are left as they are."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    existing = {o.name for o in probe.graph.output} | {i.name for i in probe.graph.input}
    for name in names:
        if name not in existing:
            elem_type = (types or {}).get(name, TensorProto.FLOAT)
            probe.graph.output.append(helper.make_tensor_value_info(name, elem_type, None))
            existing.add(name)
    return probe


def quantizer_outputs(model: onnx.ModelProto) -> dict[str, int]:
    """Every QuantizeLinear output, in graph order, with its element type (its zero point's; uint8 without one)."""
    types = {i.name: i.data_type for i in model.graph.initializer}
    outputs = {}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear":
            zero_point = node.input[2] if len(node.input) > 2 else ""
            outputs[node.output[0]] = types.get(zero_point, TensorProto.UINT8)
    return outputs


def keep_used_opsets(model: onnx.ModelProto, always: Iterable[str] = ("",)) -> None:
    """Drop the opset imports of domains no node uses (`always` are kept regardless);
    onnxruntime's `quant_pre_process` leaves one for every domain it knows."""
    used = {n.domain for n in model.graph.node} | set(always)
    kept = [o for o in model.opset_import if o.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(kept)
