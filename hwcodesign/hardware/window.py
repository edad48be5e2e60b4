"""Sliding-window geometry of the line-buffered stages (templates/hls/layers/hwc_window.h): the
config entries describing a window over the input, and the pixel-by-pixel view of a frame."""

from __future__ import annotations

from functools import lru_cache

from hwcodesign.ir.types import Tensor


def window_constants(source: Tensor, out: Tensor, kernel: tuple[int, int], stride: tuple[int, int],
                     pads: tuple[int, int, int, int], dilation: tuple[int, int], window_rows: int,
                     ring_rows: int) -> dict[str, int]:
    """Config entries of a window over `source` producing `out`; its rows and the ring's come from
    the stage plan."""
    return {
        "IN_H": source.shape[2], "IN_W": source.shape[3], "IN_C": source.channels,
        "IN_PIXELS": source.shape[2] * source.shape[3], "IN_ZP": source.zero_point,
        "OUT_H": out.shape[2], "OUT_W": out.shape[3], "OUT_C": out.channels,
        "KH": kernel[0], "KW": kernel[1], "STRIDE_H": stride[0], "STRIDE_W": stride[1],
        "PAD_T": pads[0], "PAD_L": pads[1], "DIL_H": dilation[0], "DIL_W": dilation[1],
        "WINDOW_ROWS": window_rows, "RING_ROWS": ring_rows,
    }


def pixels_as_rows(tensor: Tensor) -> Tensor:
    """The same tensor viewed as H*W rows of one pixel (raster order is unchanged)."""
    n, c, h, w = tensor.shape
    return Tensor(tensor.name, (n, c, h * w, 1), tensor.dtype, tensor.scale, tensor.zero_point)



def span_rows(kernel: int, dilation: int, reach: int = 0) -> int:
    """Input rows a window spans: (kernel - 1) * dilation + 1, and 2 * reach more when its taps may
    move `reach` rows up or down (a deformable conv's offsets)."""
    return (kernel - 1) * dilation + 2 * reach + 1


def rows_needed(out_row: int, out_rows: int, in_rows: int, stride: int, lead: int) -> int:
    """Input rows that must be in the ring before output row `out_row` starts (`hwc_rows_needed`
    in hwc_window.h): out_row * stride + lead, clamped to the image; every row after the last."""
    if out_row >= out_rows:
        return in_rows
    return max(0, min(in_rows, out_row * stride + lead))


@lru_cache(maxsize=4096)
def rows_added(out_rows: int, in_rows: int, stride: int, lead: int) -> tuple[int, tuple[int, ...]]:
    """The rows in the ring before the first output row, and the rows each output row adds for
    the next: the geometry every folding shares."""
    needed = [rows_needed(row, out_rows, in_rows, stride, lead) for row in range(out_rows + 1)]
    return needed[0], tuple(b - a for a, b in zip(needed, needed[1:], strict=False))


def window_loop(out_rows: int, in_rows: int, in_width: int, stride: int, lead: int, words_per_pixel: int,
                work_per_row: int) -> tuple[int, tuple[int, ...]]:
    """Iterations of a line-buffered stage's two II=1 loops (hwc_window.h) per frame: the `fill`
    loop before the first output row (the words of the rows output row 0 needs), and per output
    row its `steps` loop, max(work_per_row, words of the rows the next output row adds): it
    reads the next rows while it computes."""
    words_per_row = in_width * words_per_pixel
    first, added = rows_added(out_rows, in_rows, stride, lead)
    return first * words_per_row, tuple(max(work_per_row, rows * words_per_row) for rows in added)


@lru_cache(maxsize=4096)
def window_needs(out_rows: int, in_rows: int, stride: int, pad: int, span: int) -> tuple[int, ...]:
    """Per output row, the last input row its sliding window reads (clamped to the image):
    out_row * stride - pad + span, where span is (kernel - 1) * dilation plus any reach."""
    return tuple(max(0, min(in_rows - 1, row * stride - pad + span)) for row in range(out_rows))


def window_fill(rows: int, width: int, words_per_pixel: int) -> int:
    """Cycles before a window of `rows` rows can produce: (rows - 1) rows plus `rows` pixels."""
    return ((rows - 1) * width + rows) * words_per_pixel


def row_steps(out_width: int, steps_per_pixel: int, drain: int, stride: int, in_width: int, in_channels: int,
              lanes: int) -> int:
    """Iterations of a sliding-window stage's `steps` loop per output row (its LOOP_TRIPCOUNT,
    ROW_STEPS): the compute steps plus the shared output stages' drain, or the STRIDE rows' words
    read ahead if longer."""
    return max(out_width * steps_per_pixel + drain, stride * in_width * in_channels // lanes)
