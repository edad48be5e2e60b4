"""Nearest-neighbour upsampling on the engine's pixel unit: each input row is held once and
emitted scale_h times, each pixel scale_w times, through the output stages."""

from __future__ import annotations

from hwcodesign.hardware.engine.config import EngineConfig, words_per_pixel
from hwcodesign.hardware.engine.descriptor import DescribeContext
from hwcodesign.hardware.engine.plan import InstructionPlan, PixelLoops
from hwcodesign.ir.op import Op
from hwcodesign.ops.facets.engine import PixelFacet


class ResizeEngine(PixelFacet):
    def mode(self, op: Op) -> str:
        return "resize"

    def describe(self, item: InstructionPlan, fields: dict[str, int], context: DescribeContext) -> int:
        scale = item.instruction.op.scale
        fields.update(scale_h=scale[0], scale_w=scale[1])
        return 0

    def pixel_loops(self, item: InstructionPlan, config: EngineConfig) -> PixelLoops:
        """A row is read (while the previous one is emitted), then emitted scale_h times."""
        source, out = item.inputs[0], item.output
        subs = config.word_bytes // config.ew_lanes
        row_words = source.shape[3] * words_per_pixel(source, config.word_bytes)
        out_cw = words_per_pixel(out, config.word_bytes)
        emit = item.instruction.op.scale[0] * out.shape[3] * out_cw * subs
        rows = source.shape[2]
        iterations = row_words + sum(max(emit, row_words if iy + 1 < rows else 0) for iy in range(rows))
        return PixelLoops(iterations, rows + 1, out.shape[2] * out.shape[3] * out_cw, 1)


FACET = ResizeEngine()
