"""Sliding-window geometry of the line-buffered stages (templates/hls/layers/hwc_window.h): the
config entries describing a window over the input, and the pixel-by-pixel view of a frame."""

from __future__ import annotations

from hwcodesign.ir.types import Tensor


def window_constants(source: Tensor, out: Tensor, kernel: tuple[int, int], stride: tuple[int, int],
                     pads: tuple[int, int, int, int], dilation: tuple[int, int]) -> dict[str, int]:
    window_rows = (kernel[0] - 1) * dilation[0] + 1
    return {
        "IN_H": source.shape[2], "IN_W": source.shape[3], "IN_C": source.channels,
        "IN_PIXELS": source.shape[2] * source.shape[3], "IN_ZP": source.zero_point,
        "OUT_H": out.shape[2], "OUT_W": out.shape[3], "OUT_C": out.channels,
        "KH": kernel[0], "KW": kernel[1], "STRIDE_H": stride[0], "STRIDE_W": stride[1],
        "PAD_T": pads[0], "PAD_L": pads[1], "DIL_H": dilation[0], "DIL_W": dilation[1],
        "WINDOW_ROWS": window_rows, "RING_ROWS": window_rows + stride[0],
    }


def pixels_as_rows(tensor: Tensor) -> Tensor:
    """The same tensor viewed as H*W rows of one pixel (raster order is unchanged)."""
    n, c, h, w = tensor.shape
    return Tensor(tensor.name, (n, c, h * w, 1), tensor.dtype, tensor.scale, tensor.zero_point)

