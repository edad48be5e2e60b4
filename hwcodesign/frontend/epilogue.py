"""The float epilogue of a pending layer: constants added or multiplied after it (bias adds,
BatchNorm, scalar gains) fold into its output stage instead of becoming layers.
"""

from __future__ import annotations

import numpy as np
import onnx

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.frontend.values import Constant, Pending, QuantizedConstant, Value


def add_bias(pending: Pending, bias: np.ndarray, node: onnx.NodeProto) -> Pending:
    if not np.any(bias):
        return pending
    if pending.activation != "none":
        raise UnsupportedModelError(
            node.name or node.op_type, node.op_type, f"adds a constant after the activation of '{pending.node}'; cannot fold"
        )
    if not pending.has_bias:
        raise UnsupportedModelError(
            node.name or node.op_type, node.op_type, f"'{pending.node}' ({pending.op_type}) has no bias to fold a constant into"
        )
    unit = pending.gain * pending.acc_scale
    if np.any(unit == 0):
        raise UnsupportedModelError(node.name or node.op_type, node.op_type, "a zero scale makes the bias unfoldable")
    return pending.with_changes(bias=pending.bias + bias / unit)


def scale_pending(pending: Pending, gain: np.ndarray, node: onnx.NodeProto, name: str) -> Pending:
    if pending.activation != "none":
        raise UnsupportedModelError(
            name, node.op_type, f"scales the output of '{pending.node}' after its activation; cannot fold into the layer"
        )
    if np.any(gain == 0):
        raise UnsupportedModelError(name, node.op_type, "a zero scale factor cannot be folded")
    if not pending.has_bias and np.unique(gain).size > 1:
        raise UnsupportedModelError(
            name, node.op_type, f"per-channel scaling of '{pending.node}' ({pending.op_type}) cannot be folded"
        )
    return pending.with_changes(gain=pending.gain * gain, passthrough=None)


def channel_vector(array: np.ndarray, channels: int, name: str, node: onnx.NodeProto) -> np.ndarray:
    """A constant that broadcasts per channel over NCHW (shape (C,1,1), (1,C,1,1), scalar...)."""
    squeezed = np.asarray(array, dtype=np.float64)
    if squeezed.size in (1, channels):
        trailing = squeezed.shape[-2:] if squeezed.ndim >= 3 else ()
        if squeezed.size == 1 or all(d == 1 for d in trailing):
            return np.broadcast_to(squeezed.reshape(-1), (channels,))
    raise UnsupportedModelError(
        name, node.op_type, f"constant of shape {array.shape} is not per-channel for {channels} channels"
    )


def real_constant(value: Value) -> np.ndarray | None:
    """The real value of a (possibly quantized) constant operand, else None."""
    if isinstance(value, Constant):
        return value.array.astype(np.float64)
    if isinstance(value, QuantizedConstant):
        return (value.q - value.zero_point) * value.scale
    return None
