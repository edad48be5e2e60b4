"""The first layer's window packed into channels: the accelerator's input as the im2col of a frame.

A first convolution over a frame of few channels (an RGB image: 3) fills only 3 of the engine's
SIMD lanes. When the host hands the accelerator every output pixel's whole KhxKwxC window as
its channels instead, that convolution becomes a 1x1 stride-1 one over C*Kh*Kw channels with
the same weights (`passes/input_window.py`), and the lanes fill.

`InputWindow` is the record of that input layout on the accelerator's `Input`; `im2col` is the
one definition of the transform. The golden model's input path (`sim.golden.quantize_input`),
the C-simulation vectors and the driver (which copies this source, as it does the stream
packing) all apply it, so host, board and simulation cannot disagree. Numpy only: the
standalone driver runs it on the board.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hwcodesign.ir.types import Tensor


@dataclass(frozen=True)
class InputWindow:
    """Where each accelerator input channel comes from: frame channel c, window offset (ky, kx)
    is channel (c * Kh + ky) * Kw + kx (the weights' own (C, Kh, Kw) order), at the output pixel
    whose window it is; outside the frame it is `pad_value`, the input's zero point (a real 0)."""

    frame: tuple[int, int, int]  # the frame the host quantizes: (C, H, W)
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads: tuple[int, int, int, int]  # top, left, bottom, right
    dilation: tuple[int, int]
    pad_value: int

    @property
    def channels(self) -> int:
        return self.frame[0] * self.kernel[0] * self.kernel[1]

    @property
    def output_size(self) -> tuple[int, int]:
        """(OH, OW): the window positions, the ONNX Conv formula (floor mode)."""
        _, h, w = self.frame
        top, left, bottom, right = self.pads
        sizes = []
        for size, kernel, stride, pad, dilation in ((h, self.kernel[0], self.stride[0], top + bottom, self.dilation[0]),
                                                    (w, self.kernel[1], self.stride[1], left + right, self.dilation[1])):
            sizes.append((size + pad - (kernel - 1) * dilation - 1) // stride + 1)
        return sizes[0], sizes[1]

    @property
    def shape(self) -> tuple[int, int, int]:
        """The accelerator's input, (C*Kh*Kw, OH, OW)."""
        return (self.channels, *self.output_size)

    def to_json(self) -> dict[str, list[int] | int]:
        """The record as project.json and the driver's port spec keep it."""
        return {"frame": list(self.frame), "kernel": list(self.kernel), "stride": list(self.stride),
                "pads": list(self.pads), "dilation": list(self.dilation), "pad_value": self.pad_value}

    @classmethod
    def from_json(cls, data: dict) -> InputWindow:
        return cls(tuple(data["frame"]), tuple(data["kernel"]), tuple(data["stride"]), tuple(data["pads"]),
                   tuple(data["dilation"]), int(data["pad_value"]))


def im2col(frames: np.ndarray, window: InputWindow) -> np.ndarray:
    """(N, C, H, W) integer frames -> (N, C*Kh*Kw, OH, OW): every output pixel's window as channels."""
    frames = np.asarray(frames)
    c, h, w = window.frame
    if frames.ndim != 4 or tuple(frames.shape[1:]) != (c, h, w):
        raise ValueError(f"an input whose first-layer window is packed takes frames (N, {c}, {h}, {w}), "
                         f"got {frames.shape}")
    count = frames.shape[0]
    kh, kw = window.kernel
    (sh, sw), (dh, dw) = window.stride, window.dilation
    top, left, bottom, right = window.pads
    oh, ow = window.output_size
    padded = np.full((count, c, h + top + bottom, w + left + right), window.pad_value, dtype=frames.dtype)
    padded[:, :, top:top + h, left:left + w] = frames
    columns = np.empty((count, c, kh, kw, oh, ow), dtype=frames.dtype)
    for ky in range(kh):
        for kx in range(kw):
            rows = slice(ky * dh, ky * dh + (oh - 1) * sh + 1, sh)
            cols = slice(kx * dw, kx * dw + (ow - 1) * sw + 1, sw)
            columns[:, :, ky, kx] = padded[:, :, rows, cols]
    return columns.reshape(count, window.channels, oh, ow)


class FramedInput:
    """What the accelerator's input (`ir.op.Input`) and a project's input port (`BoundaryPort`)
    share: frames of `frame_tensor` come in, `from_frames` makes them what the hardware reads."""

    window: InputWindow | None

    @property
    def boundary_tensor(self) -> Tensor:
        """The tensor the hardware reads."""
        raise NotImplementedError

    @property
    def frame_tensor(self) -> Tensor:
        """The frames the host quantizes: the boundary tensor, or for a windowed input its frame's shape."""
        tensor = self.boundary_tensor
        return replace(tensor, shape=(tensor.shape[0], *self.window.frame)) if self.window else tensor

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one frame."""
        _, c, h, w = self.frame_tensor.shape
        return c, h, w

    def from_frames(self, integers: np.ndarray) -> np.ndarray:
        """Quantized (N, C, H, W) frames -> what the hardware reads on this input."""
        return integers if self.window is None else im2col(integers, self.window)
