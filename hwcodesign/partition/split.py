"""Cutting a model into its host parts and its accelerator part, each a standalone ONNX model.

The accelerator part is what the frontend lowers (its float inputs are what the input quantizers
read; its outputs are the dequantized values the host parts read); the host parts are float ONNX
models the generated driver runs with onnxruntime or its own numpy executor (in the standard ONNX
ops both run: `host_form` folds or rewrites the QONNX quantizers a part holds). A model with no
host parts is its own accelerator part, unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import onnx
from onnx import helper

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.frontend.loader import graph_inputs
from hwcodesign.partition.host_form import host_form
from hwcodesign.partition.qonnx_ops import is_qonnx_quantizer
from hwcodesign.partition.regions import (
    ACCELERATOR,
    AFTER,
    BEFORE,
    NodeGraph,
    Placement,
    place_nodes,
)
from hwcodesign.partition.shapes import fold_static_shapes, with_inferred_shapes
from hwcodesign.partition.state import StatePair, state_pairs, static_shape


@dataclass(frozen=True)
class HostOptions:
    """What the user puts on the host: node names or op types (`--host`), and state pairs
    (`--state INPUT=OUTPUT`) beyond those found on recurrent nodes."""

    host: tuple[str, ...] = ()
    state: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class Partition:
    """A model cut at its quantization boundaries.

    `pre` and `post` are the host's parts (None when empty); `accelerator` is the integer core.
    `inputs`/`outputs` are the model's own, without the `state` pairs the host carries.
    """

    model: onnx.ModelProto
    accelerator: onnx.ModelProto
    pre: onnx.ModelProto | None
    post: onnx.ModelProto | None
    placement: Placement
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    state: tuple[StatePair, ...] = field(default=())
    options: HostOptions = field(default=HostOptions())  # as given: `csim --model` splits the model the same way

    @property
    def has_host_parts(self) -> bool:
        return self.pre is not None or self.post is not None

    @property
    def accelerator_inputs(self) -> list[str]:
        return [value.name for value in self.accelerator.graph.input]

    @property
    def accelerator_outputs(self) -> list[str]:
        return [value.name for value in self.accelerator.graph.output]


def split_model(model: onnx.ModelProto, supported: Iterable[str], options: HostOptions = HostOptions()) -> Partition:
    """`model` cut into host and accelerator parts (`regions.place_nodes` says which node goes where).

    Placement and parts read the model with its shape arithmetic on static shapes folded
    (`shapes.fold_static_shapes`); `Partition.model` stays the model as given."""
    folded = fold_static_shapes(model)
    placement = place_nodes(folded, options.host, set(supported))
    state = tuple(state_pairs(model, options.state)) if placement.has_host_parts or options.state else ()
    state_names = {p.input for p in state} | {p.output for p in state}
    inputs = tuple(spec(value) for value in graph_inputs(model) if value.name not in state_names)
    outputs = tuple(spec(value) for value in model.graph.output if value.name not in state_names)
    if not placement.has_host_parts:
        return Partition(model, model, None, None, placement, inputs, outputs, state, options)
    inferred = with_inferred_shapes(folded)
    graph = NodeGraph(inferred)
    regions = {place: [i for i, name in enumerate(graph.names) if placement.places.get(name) == place]
               for place in (BEFORE, ACCELERATOR, AFTER)}
    if not any(graph.computes(i) or graph.is_quantizer(i) for i in regions[ACCELERATOR]):
        raise UnsupportedModelError(graph.names[0], graph.nodes[0].op_type, "with the host taking every float "
                                    "part, nothing is left for the accelerator (the model has no quantized layer)")
    check_host_domains(graph, regions[BEFORE] + regions[AFTER])
    crossing = {place: boundary(graph, regions[place]) for place in regions}
    accelerator_in = crossing[ACCELERATOR][0]
    check_quantized_entry(graph, accelerator_in, regions[ACCELERATOR])
    check_static_crossings(graph, inferred, [t for place in regions for side in crossing[place] for t in side])
    parts = {place: extract(inferred, model, *crossing[place]) if regions[place] else None for place in regions}
    elem_types = {value.name: value.type.tensor_type.elem_type
                  for value in (*inferred.graph.input, *inferred.graph.value_info)}
    pre, post = (None if parts[place] is None else host_form(parts[place], elem_types) for place in (BEFORE, AFTER))
    return Partition(model, parts[ACCELERATOR], pre, post, placement, inputs, outputs, state, options)


def boundary(graph: NodeGraph, region: Sequence[int]) -> tuple[list[str], list[str]]:
    """The non-constant tensors a region reads from outside it, and those it writes that are read
    outside it or are graph outputs; in graph order."""
    inside = set(region)
    produced = {t for i in region for t in graph.nodes[i].output if t}
    reads = [t for i in region for t in graph.nodes[i].input
             if t and t not in produced and t not in graph.constant]
    writes = [t for i in region for t in graph.nodes[i].output if t and (
        t in graph.outputs or any(c not in inside for c in graph.consumers.get(t, ())))]
    return list(dict.fromkeys(reads)), list(dict.fromkeys(writes))


def check_host_domains(graph: NodeGraph, host: Iterable[int]) -> None:
    """A host part runs on onnxruntime or numpy: standard ONNX ops only, and QONNX's quantizers,
    which `host_form` makes standard."""
    for index in host:
        node = graph.nodes[index]
        if node.domain not in ("", "ai.onnx") and not is_qonnx_quantizer(node):
            raise UnsupportedModelError(graph.names[index], f"{node.domain}.{node.op_type}", "would run on the host, "
                                        "which runs standard ONNX ops only (onnxruntime or the driver's numpy)")


def check_quantized_entry(graph: NodeGraph, accelerator_in: list[str], region: list[int]) -> None:
    """A float tensor the host computes enters the accelerator through a quantizer, nothing else."""
    inside = set(region)
    for tensor in accelerator_in:
        if tensor not in graph.producer:
            continue  # a graph input: the frontend's own conventions apply (quantizer, sparse mask)
        for consumer in graph.consumers.get(tensor, ()):
            if consumer in inside and not graph.is_quantizer(consumer):
                raise UnsupportedModelError(graph.names[consumer], graph.nodes[consumer].op_type,
                                            f"reads '{tensor}', which the host computes, without a quantizer: the "
                                            "accelerator takes host values only through a QuantizeLinear")


def extract(inferred: onnx.ModelProto, original: onnx.ModelProto, inputs: list[str], outputs: list[str]) -> onnx.ModelProto:
    """The sub-model from `inputs` to `outputs` (with the constants it reads), keeping the original's
    opsets, IR version, graph name and metadata (weight formats live there)."""
    values = {v.name: v for v in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output)}
    sub = onnx.utils.Extractor(without_annotations(inferred)).extract_model(inputs, outputs)
    graph = helper.make_graph(list(sub.graph.node), original.graph.name, [values[n] for n in inputs],
                              [values[n] for n in outputs], initializer=list(sub.graph.initializer))
    kept = {*inputs, *outputs, *(t for node in sub.graph.node for t in (*node.input, *node.output))}
    graph.quantization_annotation.extend(a for a in inferred.graph.quantization_annotation if a.tensor_name in kept)
    model = helper.make_model(graph, opset_imports=list(original.opset_import), ir_version=original.ir_version,
                              producer_name=original.producer_name, producer_version=original.producer_version)
    helper.set_model_props(model, {p.key: p.value for p in original.metadata_props})
    return model


def without_annotations(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` without its `quantization_annotation` (FINN's datatype per tensor, as qonnx and the
    QONNX model zoo write it), which onnx's Extractor refuses outright; `extract` gives each part
    back the annotations of the tensors it keeps."""
    if not model.graph.quantization_annotation:
        return model
    bare = onnx.ModelProto()
    bare.CopyFrom(model)
    del bare.graph.quantization_annotation[:]
    return bare


def check_static_crossings(graph: NodeGraph, inferred: onnx.ModelProto, crossing: Iterable[str]) -> None:
    """Every tensor passed between host and accelerator has a static shape: the driver's buffers
    and the accelerator's streams are sized by it. Refused by the node writing it (or, for a graph
    input, the first node reading it)."""
    values = {v.name: v for v in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output)}
    for tensor in dict.fromkeys(crossing):
        if has_static_shape(values.get(tensor)):
            continue
        index = graph.producer.get(tensor, min(graph.consumers.get(tensor, [0])))
        role = "output" if tensor in graph.producer else "input (a graph input)"
        raise UnsupportedModelError(graph.names[index], graph.nodes[index].op_type,
                                    f"its {role} '{tensor}' crosses between host and accelerator but its shape is "
                                    "not known statically (ONNX shape inference cannot infer it)")


def has_static_shape(value: onnx.ValueInfoProto | None) -> bool:
    return value is not None and static_shape(value) is not None


def spec(value: onnx.ValueInfoProto) -> TensorSpec:
    tensor = value.type.tensor_type
    shape = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in tensor.shape.dim)
    return TensorSpec(value.name, shape, helper.tensor_dtype_to_np_dtype(tensor.elem_type).name)
