"""Window geometry of an ONNX node (Conv, pools, a mask's MaxPool): its explicit or automatic pads."""

from __future__ import annotations

import onnx

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.ir.op import Shape


def window_pads(node: onnx.NodeProto, name: str, attrs: dict[str, object], shape: Shape,
                kernel: tuple[int, int], stride: tuple[int, ...], dilation: tuple[int, ...]) -> tuple[int, int, int, int]:
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    if auto_pad in ("NOTSET", ""):
        pads = tuple(int(p) for p in attrs.get("pads", (0, 0, 0, 0)))  # type: ignore[union-attr]
        if len(pads) != 4:
            raise UnsupportedModelError(name, node.op_type, f"pads {pads} are not 2-D")
        return pads  # type: ignore[return-value]
    if auto_pad == "VALID":
        return (0, 0, 0, 0)
    totals = []
    for size, k, s, d in zip(shape[2:], kernel, stride, dilation):
        out = -(-size // s)
        totals.append(max(0, (out - 1) * s + (k - 1) * d + 1 - size))
    if auto_pad == "SAME_UPPER":
        return (totals[0] // 2, totals[1] // 2, totals[0] - totals[0] // 2, totals[1] - totals[1] // 2)
    return (totals[0] - totals[0] // 2, totals[1] - totals[1] // 2, totals[0] // 2, totals[1] // 2)


def ceil_mode_pads(shape: Shape, kernel: tuple[int, ...], stride: tuple[int, ...],
                   pads: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """ceil_mode=1 as floor mode with extra bottom/right pads: one more window per axis where the
    floor formula drops a partial one, kept only if it starts inside the input or the top/left pad
    (ONNX and torch drop a window starting in the bottom/right pad)."""
    extra = []
    for axis in range(2):
        size, k, s = shape[2 + axis], kernel[axis], stride[axis]
        begin, end = pads[axis], pads[axis + 2]
        out = -(-(size + begin + end - k) // s) + 1
        if (out - 1) * s >= size + begin:
            out -= 1
        extra.append(max(0, (out - 1) * s + k - (size + begin + end)))
    return (pads[0], pads[1], pads[2] + extra[0], pads[3] + extra[1])
