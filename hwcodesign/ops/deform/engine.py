"""Deformable convolutions on the engine: the MAC unit samples its window at the converted
offsets (bilinear, from the ring's row- and column-parity banks), optionally masks the samples, then
runs the conv mode (or the channelwise mode, for a depthwise one). Offsets and mask arrive on
the aux port and are converted row by row with their own records."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hwcodesign.hardware.engine.config import EngineConfig, EngineUnsupported
from hwcodesign.hardware.engine.datapath import Datapath, Sampling, magnitude
from hwcodesign.hardware.engine.descriptor import FLAGS, DescribeContext
from hwcodesign.hardware.engine.plan import Instruction, InstructionPlan, Window, mac_plan
from hwcodesign.hardware.engine.tables import grouped_to_dense, record_words
from hwcodesign.ir.op import Op
from hwcodesign.ir.requant import largest
from hwcodesign.ir.types import Tensor
from hwcodesign.ops.deform.ir import DeformConv
from hwcodesign.ops.facets.engine import EngineFacet, window_bound


def sample_bounds(op: DeformConv, sources: Sequence[Tensor]) -> dict[str, int]:
    """|blend| before the shift, |sample|, |mask| and |masked sample| of the sampling datapath."""
    blend = magnitude(sources[0]) << (2 * op.frac_bits)
    sample = (blend >> op.sample_shift) + 1
    mask = magnitude(sources[2]) if op.has_mask else 1
    return {"blend": blend, "sample": max(sample, magnitude(sources[0])), "mask": mask, "masked": sample * mask}


class DeformEngine(EngineFacet):
    def mode(self, op: Op) -> str:
        return "channelwise" if op.depthwise else "conv"

    def instructions(self, op: Op, inputs: Sequence[Tensor], word_bits: int) -> tuple[Instruction, ...]:
        if op.offset_requant.negative_multiplier is not None:
            raise EngineUnsupported(f"layer '{op.name}' (DeformConv): offsets with a two-sided conversion")
        return (Instruction(op, self.mode(op)),)

    def plan(self, instruction: Instruction, inputs: Sequence[Tensor], config: EngineConfig,
             weight_bits: int) -> InstructionPlan:
        op = instruction.op
        chunks_per_group = None
        if op.offset_groups > 1:
            per_group = inputs[0].channels // op.offset_groups
            if per_group % config.simd:
                raise EngineUnsupported(f"layer '{op.name}' (DeformConv): {op.offset_groups} offset groups of "
                                        f"{per_group} channels; SIMD={config.simd} lanes must not straddle two groups")
            chunks_per_group = per_group // config.simd
        window = Window(op.kernel, op.stride, op.pads[:2], op.dilation, op.offset_range)
        return mac_plan(instruction, inputs, config, weight_bits, window, chunks_per_group=chunks_per_group)

    def accumulator_bound(self, item: InstructionPlan) -> int:
        op = item.instruction.op
        masked = sample_bounds(op, item.inputs)["masked"]
        return window_bound(item, masked, op.weight, op.bias, op.groups, op.taps)

    def bias(self, op: Op) -> np.ndarray | None:
        return op.bias

    def datapath(self, item: InstructionPlan) -> Datapath:
        op = item.instruction.op
        bounds = sample_bounds(op, item.inputs)
        sampling = Sampling(op.frac_bits, bounds["blend"], bounds["sample"], magnitude(item.inputs[1]),
                            op.offset_requant, bounds["mask"] if op.has_mask else None, bounds["masked"])
        return Datapath(self.accumulator_bound(item), op.requants(), largest(op.bias), sampling)

    def describe(self, item: InstructionPlan, fields: dict[str, int], context: DescribeContext) -> int:
        """Offsets (and mask) on the aux port, their conversion records, the sampling constants."""
        op = item.instruction.op
        flags = FLAGS["deform"]
        offset = item.inputs[1]
        fields.update(frac_bits=op.frac_bits, sample_shift=op.sample_shift, stage2_zp=op.offset_requant.zero_point,
                      stage2_lo=op.offset_requant.lo, stage2_hi=op.offset_requant.hi,
                      pattern_cy=(op.kernel[0] - 1) // 2 * op.dilation[0],
                      pattern_cx=(op.kernel[1] - 1) // 2 * op.dilation[1])
        flags |= FLAGS["aux_signed"] if offset.dtype.signed else 0
        if op.fixed_shape:
            flags |= FLAGS["fixed_shape"]
        if op.has_mask:
            flags |= FLAGS["mask"] | (FLAGS["mask_signed"] if item.inputs[2].dtype.signed else 0)
        fields["stage2_tables_addr"] = context.writer.append(record_words(op.offset_requant, offset.channels))
        fields.update(context.tensor_fields("aux", offset))
        if op.has_mask:
            fields.update(context.tensor_fields("mask", item.inputs[2]))
        return flags

    def weights(self, item: InstructionPlan) -> np.ndarray:
        op, source = item.instruction.op, item.inputs[0]
        if item.instruction.mode == "conv":
            return grouped_to_dense(op.weight, op.groups, source)
        return np.asarray(op.weight, np.int64).reshape(source.channels, item.taps)


FACET = DeformEngine()
