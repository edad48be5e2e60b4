"""Submanifold sparse networks in ONNX: the convention the frontend reads (README "Sparse
event-camera networks").

A sparse conv computes only at active sites. ONNX has no such op, so a model states it in one of
two ways, both lowered to `SubmanifoldConv`:

1. Masked dense (onnxruntime runs it as the reference): the active sites of the network input
   x are a float mask
       active = Cast(Greater(ReduceMax(Abs(x), axes=[1], keepdims=1), 0), to=FLOAT)
   (ReduceSum in place of ReduceMax, and x before or after its QuantizeLinear/DequantizeLinear,
   are accepted), a strided level's mask is MaxPool(previous mask) with that layer's kernel,
   stride and pads, and a sparse layer is Conv (+BatchNorm, Relu/Clip) followed by Mul with the
   mask of its level, before or after the conv's quantizer.
2. A custom node `SubmConv` in domain "hwcodesign" with Conv's inputs and attributes, whose
   output keeps its input's active sites (stride 1) or downsamples them (stride > 1).
Elementwise layers (Relu, Add of two tensors of one level) keep a tensor sparse; a
GlobalAveragePool ends the sparse part (inactive sites are zero and add nothing).
"""

from __future__ import annotations

import numpy as np
import onnx

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.frontend.values import Activation, ActiveMask, Constant, FloatInput, MaskStep, Pending, Value
from hwcodesign.ir.types import ActiveSet
from hwcodesign.ops import Conv, DepthwiseConv, SubmanifoldConv

SPARSE_DOMAIN = "hwcodesign"
MASK_OPS = ("Abs", "ReduceMax", "ReduceSum", "Greater", "Cast")
CONVENTION = ("see the README's sparse convention: active = Cast(Greater(ReduceMax(Abs(x), axes=[1]), 0)) "
              "of the network input, MaxPool of it per strided layer, Mul(conv output, active)")


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


class SparseLowering:
    """The sparse part of `Lowering` (mixed in): mask values, masking Muls, SubmConv."""

    values: dict[str, Value]
    input_tensor_of: dict[str, str]
    ops: list

    # ----------------------------------------------------------- the mask subgraph
    def mask_root(self, value: Value | None) -> str | None:
        """The sparse input a mask starts from: a float graph input or its quantized tensor."""
        if isinstance(value, FloatInput):
            return value.name
        if isinstance(value, Activation) and value.tensor.active is not None and not value.tensor.active.steps \
                and value.tensor.active.root == value.tensor.name:
            return value.tensor.name
        return None

    def mask_abs(self, node: onnx.NodeProto, name: str) -> None:
        root = self.mask_root(self.values.get(node.input[0]))
        if root is None:
            raise UnsupportedModelError(name, node.op_type, "Abs is supported as the first step of the active-site "
                                                            f"mask of a sparse network input; {CONVENTION}")
        self.values[node.output[0]] = MaskStep(root, "abs")

    def mask_reduce(self, node: onnx.NodeProto, name: str) -> None:
        source = self.mask_step(node, name, "abs")
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        axes = attrs.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            value = self.values.get(node.input[1])
            axes = value.array.reshape(-1).tolist() if isinstance(value, Constant) else None
        if [int(a) for a in (axes or [])] not in ([1], [-3]) or not int(attrs.get("keepdims", 1)):
            raise UnsupportedModelError(name, node.op_type, f"the active-site mask reduces over the channels only "
                                                            f"(axes=[1], keepdims=1), not axes={axes}")
        self.values[node.output[0]] = MaskStep(source.root, "reduced")

    def mask_greater(self, node: onnx.NodeProto, name: str) -> None:
        source = self.mask_step(node, name, "reduced")
        threshold = self.values.get(node.input[1])
        if not isinstance(threshold, Constant) or np.any(threshold.array != 0):
            raise UnsupportedModelError(name, node.op_type, "the active-site mask compares with 0 (a site is active "
                                                            "when any channel is nonzero)")
        self.values[node.output[0]] = MaskStep(source.root, "bool")

    def mask_cast(self, node: onnx.NodeProto, name: str) -> None:
        source = self.mask_step(node, name, "bool")
        self.values[node.output[0]] = ActiveMask(source.root)

    def mask_step(self, node: onnx.NodeProto, name: str, stage: str) -> MaskStep:
        value = self.values.get(node.input[0])
        if not isinstance(value, MaskStep) or value.stage != stage:
            raise UnsupportedModelError(name, node.op_type, f"{node.op_type} is supported only inside the active-site "
                                                            f"mask of a sparse network; {CONVENTION}")
        return value

    def mask_pool(self, node: onnx.NodeProto, name: str, mask: ActiveMask) -> None:
        """MaxPool of a mask: the next level's active sites after a strided sparse layer."""
        if node.op_type != "MaxPool":
            raise UnsupportedModelError(name, node.op_type, f"a mask is downsampled by MaxPool; {CONVENTION}")
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        kernel = tuple(int(k) for k in attrs["kernel_shape"])
        stride = tuple(int(s) for s in attrs.get("strides", (1, 1)))
        shape = self.mask_shape(mask)
        pads = self.window_pads(node, name, attrs, shape, kernel, stride, (1, 1))  # type: ignore[attr-defined]
        step = (*kernel, *stride, *pads)
        self.values[node.output[0]] = ActiveMask(mask.root, mask.steps + (step,))  # type: ignore[arg-type]

    def mask_shape(self, mask: ActiveMask) -> tuple[int, int, int, int]:
        from hwcodesign.ir.op import window_output_size

        n, _, h, w = self.active_set_tensor(mask.root).shape
        for kh, kw, sh, sw, top, left, bottom, right in mask.steps:
            h = window_output_size(h, kh, sh, top + bottom, 1)
            w = window_output_size(w, kw, sw, left + right, 1)
        return (n, 1, h, w)

    def active_set_tensor(self, root: str):
        """The quantized sparse input tensor a mask's root names."""
        tensor_name = self.input_tensor_of.get(root, root)
        for value in self.values.values():
            if isinstance(value, Activation) and value.tensor.name == tensor_name:
                return value.tensor
        raise UnsupportedModelError(root, "active-site mask", "its sparse input is never quantized")

    def active_set(self, mask: ActiveMask) -> ActiveSet:
        return ActiveSet(self.active_set_tensor(mask.root).name, mask.steps)

    # --------------------------------------------------------------- applying a mask
    def mask_mul(self, node: onnx.NodeProto, name: str) -> bool:
        """Mul by an active-site mask makes the conv before it sparse; False if not a mask Mul."""
        a, b = self.values.get(node.input[0]), self.values.get(node.input[1])
        if isinstance(a, ActiveMask):
            a, b = b, a
        if not isinstance(b, ActiveMask):
            if isinstance(a, MaskStep | ActiveMask):
                raise UnsupportedModelError(name, node.op_type, f"a mask multiplies a conv's output; {CONVENTION}")
            return False
        active = self.active_set(b)
        out = node.output[0]
        if isinstance(a, Pending):
            self.values[out] = self.sparse_pending(a, active, name)
        elif isinstance(a, Activation) and a.tensor.active == active:
            self.values[out] = a  # already sparse on this level: the mask changes nothing
        elif isinstance(a, Activation):
            self.values[out] = Activation(self.make_producer_sparse(a.tensor.name, active, name), a.flat)
        else:
            raise UnsupportedModelError(name, node.op_type, f"masks '{node.input[0]}', which is not a conv's output")
        return True

    def sparse_pending(self, pending: Pending, active: ActiveSet, name: str) -> Pending:
        window = pending.window
        if window is None:
            raise UnsupportedModelError(name, "Mul", f"masks the output of '{pending.node}' ({pending.op_type}); only a "
                                                     "conv (with its BatchNorm and activation) becomes a sparse layer")
        expected = self.expected_active(window.source_active, window.kernel, window.stride, window.pads, name,
                                        pending.node)
        if expected != active:
            raise UnsupportedModelError(
                name, "Mul", f"applies the mask {active} to '{pending.node}', whose active sites are {expected}: a "
                             "stride-1 sparse conv keeps its input's, a strided one needs MaxPool(mask) with its own "
                             "kernel, stride and pads")
        return pending.with_changes(active=active, passthrough=None)

    @staticmethod
    def expected_active(source: ActiveSet | None, kernel: tuple[int, int], stride: tuple[int, int],
                        pads: tuple[int, int, int, int], name: str, layer: str) -> ActiveSet:
        if source is None:
            raise UnsupportedModelError(name, "Mul", f"'{layer}' reads a dense tensor; a sparse conv reads the sparse "
                                                     f"network input or another sparse layer's output")
        return source if stride == (1, 1) else source.downsampled(kernel, stride, pads)

    def make_producer_sparse(self, tensor_name: str, active: ActiveSet, name: str):
        """A mask applied after the conv's quantizer: turn that conv (already emitted) into the
        sparse conv it stands for."""
        index = next((i for i, op in enumerate(self.ops) if op.output.name == tensor_name), None)
        op = self.ops[index] if index is not None else None
        if not isinstance(op, Conv):
            raise UnsupportedModelError(name, "Mul", f"masks '{tensor_name}', which no conv produces; {CONVENTION}")
        source = next(o.output for o in self.ops if o.output.name == op.inputs[0])
        expected = self.expected_active(source.active, op.kernel, op.stride, op.pads, name, op.name)
        if expected != active:
            raise UnsupportedModelError(name, "Mul", f"applies the mask {active} to '{op.name}', whose active sites "
                                                     f"are {expected}")
        tensor = op.output.with_active(active)
        self.ops[index] = SubmanifoldConv(op.name, op.inputs, tensor, op.weight, op.weight_type, op.bias, op.stride,
                                          op.pads, op.dilation, op.groups, op.requant)
        for key, value in list(self.values.items()):
            if isinstance(value, Activation) and value.tensor.name == tensor_name:
                self.values[key] = Activation(tensor, value.flat)
        return tensor

    # ------------------------------------------------------------------ SubmConv
    def subm_conv(self, node: onnx.NodeProto, name: str) -> None:
        """hwcodesign.SubmConv: a Conv whose output has the active sites its input implies."""
        self.conv(node, name)  # type: ignore[attr-defined]
        pending = self.values[node.output[0]]
        assert isinstance(pending, Pending) and pending.window is not None
        window = pending.window
        active = self.expected_active(window.source_active, window.kernel, window.stride, window.pads, name, name)
        self.values[node.output[0]] = pending.with_changes(active=active, passthrough=None)


def sparse_conv_kind(sparse: bool, depthwise: bool) -> type:
    """The IR op a conv's builder makes: sparse when its output has an active set."""
    if sparse:
        return SubmanifoldConv
    return DepthwiseConv if depthwise else Conv
