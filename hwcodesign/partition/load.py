"""Reading a whole model: split it into host and accelerator parts, lower the accelerator's.

`load_partitioned` is what `compile`, `simulate` and `inspect` call; `passes.load_onnx` stays the
loader of a model that is all accelerator (the partition hands it the accelerator part).
"""

from __future__ import annotations

from pathlib import Path

import onnx

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.frontend.context import node_name
from hwcodesign.frontend.loader import origin_of, read_model, type_error
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.op import Input
from hwcodesign.partition.split import HostOptions, Partition, split_model
from hwcodesign.passes import PassOptions
from hwcodesign.passes.lowering import handled_op_types
from hwcodesign.passes.pipeline import lower, lower_checked


def load_partitioned(source: str | Path | onnx.ModelProto, options: PassOptions | None = None,
                     host: HostOptions | None = None) -> tuple[Partition, Graph]:
    """The model's partition and its accelerator part's (unoptimized) IR.

    A model the checker's full check refuses is refused as `load_onnx` refuses it, before any
    split: the split reads inferred shapes, which such a model does not have.
    """
    options = options or PassOptions()
    model = read_model(source)
    origin = origin_of(source)
    if type_error(model, origin) is not None:
        lower_checked(model, origin, options)  # raises, in the lowering's words where it has some
    partition = split_model(model, handled_op_types(), host or HostOptions())
    graph = lower(partition.accelerator, options)  # a part of a checked model: checked
    if partition.has_host_parts and all(isinstance(op, Input) for op in graph):
        reasons = partition.placement.reasons
        names = {node_name(node, index): node.op_type for index, node in enumerate(model.graph.node)}
        first = next((name for name in reasons if name in names), "")
        raise UnsupportedModelError(first, names.get(first, "model"), f"runs on the host ({reasons.get(first, '')}), "
                                    "and so does every other node that computes: the accelerator part would hold no "
                                    "layer; quantize the layers' inputs (Quant, QuantizeLinear, an integer datatype) "
                                    "so that they run on the accelerator")
    return partition, graph
