"""Submanifold sparse networks in ONNX: the convention the frontend reads (README "Sparse
event-camera networks"); the sparse family's lowering (`hwcodesign/ops/sparse/lowering.py`)
recognises it.

A sparse conv computes only at active sites. ONNX has no such op, so a model states it in one of
two ways, both lowered to `SubmanifoldConv`:

1. Masked dense (onnxruntime runs it as the reference): the active sites of the network input
   x are a float mask
       active = Cast(Greater(ReduceMax(Abs(x), axes=[1], keepdims=1), 0), to=FLOAT)
   (ReduceSum in place of ReduceMax, and x before or after its QuantizeLinear/DequantizeLinear,
   are accepted), a strided level's mask is a MaxPool of the previous level's by one of the two
   downsampling rules (`hwcodesign.ops.sparse.ir.DOWNSAMPLINGS`): kernel = strides = the conv's
   strides, ceil_mode=1 where the conv's output covers a partial block (ESDA's block rule), or
   the conv's own kernel, strides and pads (spconv's window rule); a sparse layer is Conv
   (+BatchNorm, Relu/Clip) followed by Mul with the mask of its level, before or after the
   conv's quantizer.
2. A custom node `SubmConv` in domain "hwcodesign" with Conv's inputs and attributes, whose
   output keeps its input's active sites (stride 1) or downsamples them (stride > 1) by its
   string attribute `downsampling`, "block" (the default) or "window".
Elementwise layers (Relu, Add of two tensors of one level) keep a tensor sparse; a
GlobalAveragePool ends the sparse part (inactive sites are zero and add nothing).
"""

from __future__ import annotations

import onnx

SPARSE_DOMAIN = "hwcodesign"
MASK_OPS = ("Abs", "ReduceMax", "ReduceSum", "Greater", "Cast")
CONVENTION = ("see the README's sparse convention: active = Cast(Greater(ReduceMax(Abs(x), axes=[1]), 0)) "
              "of the network input, MaxPool of it per strided layer (kernel = strides = the conv's strides, "
              "or the conv's own window), Mul(conv output, active)")


def sparse_roots(model: onnx.ModelProto) -> set[str]:
    """Graph inputs that are sparse: those an active-site mask (Abs) or a SubmConv starts from,
    directly or through their QuantizeLinear/DequantizeLinear."""
    producer = {output: node for node in model.graph.node for output in node.output}
    inputs = {value.name for value in model.graph.input}

    def graph_input_of(tensor: str) -> str | None:
        while tensor not in inputs:
            node = producer.get(tensor)
            if node is None or node.op_type not in ("QuantizeLinear", "DequantizeLinear", "Quant"):
                return None
            tensor = node.input[0]
        return tensor

    roots = set()
    for node in model.graph.node:
        starts_mask = node.op_type == "Abs" and node.domain in ("", "ai.onnx")
        if starts_mask or (node.domain == SPARSE_DOMAIN and node.op_type == "SubmConv"):
            root = graph_input_of(node.input[0])
            if root is not None:
                roots.add(root)
    return roots


def mask_nodes(model: onnx.ModelProto) -> tuple[list[onnx.NodeProto], list[onnx.NodeProto]]:
    """(the nodes computing active-site masks, the Muls applying one), in graph order: the mask
    starts at an Abs of a sparse input (`sparse_roots`, through its Q/DQ pair if any), continues
    through `MASK_OPS` and MaxPool of a mask; a Mul with a mask operand applies it.

    This is the structure a quantizer must leave float (`hwcodesign.flows.quantize`)."""
    roots = sparse_roots(model)
    producer = {output: node for node in model.graph.node for output in node.output}

    def from_root(tensor: str) -> bool:
        while tensor not in roots:
            node = producer.get(tensor)
            if node is None or node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
                return False
            tensor = node.input[0]
        return True

    masks: set[str] = set()
    computing, applying = [], []
    for node in model.graph.node:  # ONNX graphs are topologically sorted
        reads_mask = any(name in masks for name in node.input)
        if node.op_type == "Mul" and reads_mask:
            applying.append(node)
        elif (node.op_type == "Abs" and from_root(node.input[0])) or (
                reads_mask and node.op_type in (*MASK_OPS, "MaxPool")):
            computing.append(node)
            masks.update(node.output)
    return computing, applying
