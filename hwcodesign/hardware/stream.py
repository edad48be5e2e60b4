"""Stream words between stages and across the accelerator boundary: words per frame at a lane
width, FIFO depths, the DMA's transfer rate, and a sparse tensor's tokens.

Streams between stages are folded as in FINN: a stage writes words of its output lanes and reads
words of its own input lanes. The boundary is a 64-bit AXI4-Stream fed by an AXI DMA, in the
words of `ir/stream_layout.py` (narrow pixels several to a word, wider ones word-aligned); its
adapters move a word, or a pixel where pixels share words, per cycle. A sparse tensor streams one token per active site
(all channels), its density d the active fraction of its H x W sites.
"""

from __future__ import annotations

from collections.abc import Mapping

from hwcodesign.ir.stream_layout import layout_of
from hwcodesign.ir.types import Tensor

STREAM_WORD_BITS = 64  # the AXI4-Stream between the AXI DMA and the accelerator
STREAM_BYTES_PER_CYCLE = STREAM_WORD_BITS // 8
MIN_FIFO_DEPTH = 2


def dma_bytes_per_cycle(ddr_bandwidth_gbps: float, clock_mhz: float) -> float:
    """Input/output transfer rate: the DDR bandwidth or the stream width, whichever is lower."""
    return min(ddr_bandwidth_gbps * 1e9 / (clock_mhz * 1e6), STREAM_BYTES_PER_CYCLE)


def frame_bytes(tensor: Tensor) -> float:
    """Bytes of one frame on the stream: its words (`ir/stream_layout.py`), padding included."""
    return float(layout_of(tensor.shape, tensor.dtype, STREAM_WORD_BITS).bytes_per_frame)


def stream_cycles(tensor: Tensor, dma_rate: float) -> int:
    """Cycles to move one frame across the boundary: the adapter's loop (a word per cycle, or a
    pixel per cycle where narrow pixels share words), or the DMA's transfer of the frame's words
    if that is slower."""
    steps = layout_of(tensor.shape, tensor.dtype, STREAM_WORD_BITS).adapter_steps
    return max(steps, int(-(-frame_bytes(tensor) // dma_rate)))


def input_words(source: Tensor, lanes: int) -> int:
    """Stream words of one frame of `source` at `lanes` channels per word."""
    return source.shape[2] * source.shape[3] * -(-source.channels // lanes)


def stream_fifo_depth(rows: int, tensor: Tensor, lanes: int) -> int:
    """Words the FIFO of an edge holds: `rows` rows of the tensor in words of `lanes` channels
    (0 rows: the minimum, for fan-out links, converters and output ports)."""
    words_per_row = tensor.shape[3] * -(-tensor.channels // lanes)
    return max(MIN_FIFO_DEPTH, rows * words_per_row)


def density_of(tensor: Tensor, densities: Mapping[str, float] | None) -> float:
    """The design density of a sparse tensor (1.0, the dense worst case, unless measured)."""
    if not tensor.sparse:
        return 1.0
    return float((densities or {}).get(tensor.name, 1.0))


def sites(tensor: Tensor, density: float) -> float:
    """Active sites of a frame of `tensor` at `density`."""
    return density * tensor.shape[2] * tensor.shape[3]


def token_words(tensor: Tensor, density: float, word_bits: int = STREAM_WORD_BITS) -> float:
    """AXI4-Stream words of a sparse input frame: a header and the pixel's words per active site,
    and the end-of-frame header (`hwc_axis_to_tokens`)."""
    per_site = 1 + layout_of(tensor.shape, tensor.dtype, word_bits).words_per_pixel
    return sites(tensor, density) * per_site + 1
