"""Finding the nodes no lowering rule takes, before the walk, and saying what to use instead."""

from __future__ import annotations

from collections.abc import Collection, Iterable

import onnx

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.frontend.context import LAYOUT_OPS, node_name
from hwcodesign.frontend.loader import QONNX_DOMAINS
from hwcodesign.frontend.quantizers import QUANTIZERS
from hwcodesign.frontend.sparse import SPARSE_DOMAIN

NEVER_FOLDED = ("Loop", "Scan", "If", "SequenceMap")  # control flow: folding it could run for ever
QONNX_OPS = ("Quant", "BipolarQuant", "MultiThreshold", "Trunc")  # the QONNX-domain ops a rule takes (the plumbing's, the channelwise family's)


def unsupported_nodes(model: onnx.ModelProto, handled: Collection[str],
                      fold_constants: bool = True) -> list[tuple[onnx.NodeProto, UnsupportedModelError]]:
    """Every node of an unsupported op, found before lowering starts, whatever its position.

    Any op is fine on constants only (it is folded, unless `fold_constants` is off); a tensor is
    constant when it is an initializer, a Constant node's output, a Shape, or computed from
    constants alone. A layout op (Transpose, Reshape, ...) is fine on quantized weights, which
    are a quantizer's (or a QCDQ Clip's) output on constants: it is folded too.
    """
    found = []
    constant = {init.name for init in model.graph.initializer}
    quantized: set[str] = set()
    for index, node in enumerate(model.graph.node):
        in_standard_domain = node.domain in ("", "ai.onnx")
        operands_constant = all(not name or name in constant for name in node.input[1:])
        folds = fold_constants and in_standard_domain and node.op_type not in QUANTIZERS + NEVER_FOLDED and all(
            not name or name in constant for name in node.input
        )
        if node.op_type in ("Constant", "Shape") and in_standard_domain or folds:
            constant.update(node.output)
            continue
        on_weights = bool(node.input) and node.input[0] in constant | quantized and operands_constant
        if on_weights and node.op_type in (*QUANTIZERS, "Clip"):
            quantized.update(node.output)
        elif on_weights and fold_constants and in_standard_domain and node.op_type in LAYOUT_OPS and \
                node.input[0] in quantized:
            quantized.update(node.output)
            continue
        qonnx_op = node.domain in QONNX_DOMAINS and node.op_type in QONNX_OPS and node.op_type in handled
        sparse_conv = node.domain == SPARSE_DOMAIN and node.op_type == "SubmConv"
        if qonnx_op or sparse_conv or (in_standard_domain and node.op_type in handled and node.op_type != "SubmConv"):
            continue
        op_type = node.op_type if in_standard_domain else f"{node.domain}.{node.op_type}"
        hint = op_hint(node)
        reason = f"op not supported; {hint}" if hint else "op not supported"
        found.append((node, UnsupportedModelError(node_name(node, index), op_type, reason)))
    return found


def op_hint(node: onnx.NodeProto) -> str | None:
    """What to use instead of an unsupported node, where a supported equivalent exists."""
    if node.op_type == "Sum" and len(node.input) == 2:
        return "a Sum of two tensors is an Add: export it as Add"
    if node.op_type in ("HardSigmoid", "HardSwish", "Sigmoid", "Tanh", "Elu", "Selu", "Gelu", "Mish"):
        return ("retrain with an activation from the supported ops listed below, or run it on the board's "
                f"CPU: --host {node.op_type} (with the layers after it)")
    return None


def supported_ops_text(op_types: Iterable[str]) -> str:
    """The op types the lowering handles (the registry's families, the plumbing and the enabled
    patterns, so a new op or a disabled pass shows here without editing a list)."""
    return "supported ops: " + ", ".join(op_types) + " (plus any op on constants, which is folded)"
