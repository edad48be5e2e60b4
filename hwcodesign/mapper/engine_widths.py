"""Datapath widths of the layer-sequential engine, from bounds on the model's actual constants.

The engine runs every layer on one datapath, so each width is the largest any instruction of
the model needs: accumulators from |x - zp| * max|w| * row length + max|bias|, output-stage
products from accumulator bound * max|M| + max|offset| (as the dataflow backend sizes each stage,
`codegen/stages.py`), deformable sampling from the offset fraction bits. Nothing wraps, so the
engine agrees with the golden model bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from hwcodesign.ir.graph import Graph
from hwcodesign.ir.op import Op
from hwcodesign.ir.requant import Requant, signed_bits
from hwcodesign.ir.types import Tensor
from hwcodesign.mapper.engine import EngineUnsupported, InstructionPlan, weight_storage_bits
from hwcodesign.ops import Add, Concat, Conv, DeformConv, GlobalAvgPool, Linear, Pool

X_BITS = 9
"""A centred byte: x - zero point of an <= 8-bit type lies in [-255, 255]."""
MAX_PRODUCT_BITS = 64


def magnitude(tensor: Tensor) -> int:
    return max(tensor.zero_point - tensor.dtype.min, tensor.dtype.max - tensor.zero_point)


def largest(values: np.ndarray | None) -> int:
    return 0 if values is None else int(np.abs(values).max(initial=0))


@dataclass(frozen=True)
class EngineWidths:
    """Bit widths of the engine's datapath: the largest any instruction of the model needs."""

    weight_bits: int
    acc_bits: int  # MAC accumulators (bias included)
    ew_acc_bits: int  # pixel-unit and offset-conversion accumulators
    prod_bits: int  # accumulator x multiplier + offset, the widest output-stage product
    mult_bits: int
    off_bits: int
    bias_bits: int
    sample_bits: int
    blend_bits: int
    weight_fp_bits: int
    mask_bits: int
    xm_bits: int  # a MAC operand: a centred input, a sample, or a masked sample
    offset_fp_bits: int
    has_deform: bool
    has_mask: bool
    has_max_pool: bool
    has_add: bool
    has_resize: bool
    has_global_pool: bool

    @property
    def record_bits(self) -> int:
        """Bits of one on-chip record: bias, two multipliers, the shift, two offsets."""
        return self.bias_bits + 2 * self.mult_bits + 6 + 2 * self.off_bits

    def packs_macs(self, ps_type: str) -> bool:
        """Two products per DSP48E2 (WP486 generalised, `hwc_mul2`): the packed weight pair
        (2 W + X bits) fits its 27-bit port and the operand the 18-bit one. Zynq-7000's DSP48E1
        is not packed (as in the dataflow cost model)."""
        return ps_type == "zynq_ultrascale" and 2 * self.weight_bits + self.xm_bits <= 27 and self.xm_bits <= 18


def mac_accumulator_bound(op: Op, sources: list[Tensor]) -> int:
    x = sources[0]
    if isinstance(op, Pool):
        return max(magnitude(x), 1 << (X_BITS - 1)) * (op.kernel[0] * op.kernel[1] if op.mode == "avg" else 1)
    if isinstance(op, Linear):
        row = x.elements_per_frame
    elif isinstance(op, DeformConv):
        row = (x.channels // op.groups) * op.taps
        return deform_bounds(op, sources)["masked"] * largest(op.weight) * row + largest(op.bias)
    else:
        assert isinstance(op, Conv)
        row = (x.channels // op.groups) * op.kernel[0] * op.kernel[1]
    return magnitude(x) * largest(op.weight) * row + largest(op.bias)


def deform_bounds(op: DeformConv, sources: list[Tensor]) -> dict[str, int]:
    blend = magnitude(sources[0]) << (2 * op.frac_bits)
    sample = (blend >> op.sample_shift) + 1
    mask = magnitude(sources[2]) if op.has_mask else 1
    return {"blend": blend, "sample": max(sample, magnitude(sources[0])), "mask": mask, "masked": sample * mask}


def pixel_accumulator_bound(op: Op, sources: list[Tensor], part: int) -> int:
    if isinstance(op, Add):
        return sum(magnitude(t) * abs(m) for t, m in zip(sources, op.input_multipliers))
    if isinstance(op, GlobalAvgPool):
        return magnitude(sources[0]) * sources[0].shape[2] * sources[0].shape[3]
    if isinstance(op, Concat):
        return magnitude(sources[part])
    return magnitude(sources[0])


def product_bits(requant: Requant, acc_bound: int) -> int:
    multiplier = max(largest(requant.multiplier), largest(requant.negative_multiplier))
    offset = max(largest(requant.offset), largest(requant.negative_offset))
    return signed_bits(acc_bound * multiplier + offset)


def engine_widths(graph: Graph, plans: Iterable[InstructionPlan]) -> EngineWidths:
    acc, ew_acc, prod, mult, off, bias = 2, X_BITS + 1, 2, 2, 2, 2
    blend = sample = X_BITS
    frac = 0
    mask_bits, masked_bits, offset_fp = 2, 0, 2
    kinds: set[str] = set()
    for item in plans:
        op, part = item.instruction.op, item.instruction.part
        sources = list(graph.input_tensors(op))
        requants = [op.input_requants[part]] if isinstance(op, Concat) else list(op.requants())
        if item.instruction.is_mac:
            bound = mac_accumulator_bound(op, sources)
            acc = max(acc, signed_bits(bound))
        else:
            bound = pixel_accumulator_bound(op, sources, part)
            ew_acc = max(ew_acc, signed_bits(bound))
        for requant in requants:
            prod = max(prod, product_bits(requant, bound))
            mult = max(mult, requant.multiplier_bits)
            off = max(off, requant.offset_bits)
        if hasattr(op, "bias"):
            bias = max(bias, signed_bits(largest(op.bias)))
        if isinstance(op, DeformConv):
            kinds.add("deform")
            bounds = deform_bounds(op, sources)
            frac = max(frac, op.frac_bits)
            blend = max(blend, signed_bits(bounds["blend"]))
            sample = max(sample, signed_bits(bounds["sample"]))
            offset_magnitude = magnitude(sources[1])
            ew_acc = max(ew_acc, signed_bits(offset_magnitude))
            prod = max(prod, product_bits(op.offset_requant, offset_magnitude))
            mult = max(mult, op.offset_requant.multiplier_bits)
            off = max(off, op.offset_requant.offset_bits)
            offset_fp = max(offset_fp, signed_bits(max(abs(op.offset_requant.lo), abs(op.offset_requant.hi))))
            if op.has_mask:
                kinds.add("mask")
                mask_bits = max(mask_bits, signed_bits(bounds["mask"]))
                masked_bits = max(masked_bits, signed_bits(bounds["masked"]))
        if isinstance(op, Pool) and op.mode == "max":
            kinds.add("max_pool")
        kinds.add(type(op).__name__)
    if prod > MAX_PRODUCT_BITS:
        raise EngineUnsupported(f"an output stage needs a {prod}-bit product; the engine supports {MAX_PRODUCT_BITS}")
    xm = max(sample, masked_bits) if "mask" in kinds else sample
    return EngineWidths(
        weight_bits=weight_storage_bits(graph), acc_bits=acc, ew_acc_bits=ew_acc, prod_bits=prod, mult_bits=mult,
        off_bits=off, bias_bits=bias, sample_bits=sample, blend_bits=blend, weight_fp_bits=2 * frac + 2,
        mask_bits=mask_bits, xm_bits=xm, offset_fp_bits=offset_fp, has_deform="deform" in kinds,
        has_mask="mask" in kinds, has_max_pool="max_pool" in kinds, has_add="Add" in kinds,
        has_resize="Resize" in kinds, has_global_pool="GlobalAvgPool" in kinds,
    )
