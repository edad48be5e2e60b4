"""Datapath widths of the layer-sequential engine, from bounds on the model's actual constants.

The engine runs every layer on one datapath, so each width is the largest any instruction of
the model needs: accumulators from |x - zp| * max|w| * row length + max|bias|, output-stage
products from accumulator bound * max|M| + max|offset| (as the dataflow backend sizes each stage,
`codegen/stages.py`), deformable sampling from the offset fraction bits. Each instruction's
bounds come from its family (`EngineFacet.datapath`). Nothing wraps, so the engine agrees with
the golden model bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace

from hwcodesign.hardware.engine.config import WEIGHT_STORAGE_BITS, EngineUnsupported
from hwcodesign.hardware.engine.datapath import X_BITS
from hwcodesign.hardware.engine.plan import InstructionPlan
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.requant import Requant, largest, signed_bits
from hwcodesign.mapper.engine.facet import engine_facet

MAX_PRODUCT_BITS = 64


def weight_storage_bits(graph: Graph) -> int:
    """The engine's weight width: the narrowest storage width holding every layer's weights."""
    widest = max((op.weight_type.bits for op in graph if hasattr(op, "weight_type")), default=2)
    return next(bits for bits in WEIGHT_STORAGE_BITS if bits >= widest)


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
    has_lookup: bool = False  # the pixel unit's lookup mode and its table memory
    has_mul: bool = False  # the pixel unit's products of two activations and its gate buffer
    has_mean_table: bool = False  # the global pool's input table (a lookup mean) and its memory
    has_residual: bool = False  # a MAC layer's fused residual Add (`Residual`) and its records
    has_gather: bool = False  # the pixel unit's channel gather: its pixel copies and order table

    @property
    def record_bits(self) -> int:
        """Bits of one on-chip record: bias, two multipliers, the shift, two offsets."""
        return self.bias_bits + 2 * self.mult_bits + 6 + 2 * self.off_bits

    def packs_macs(self, ps_type: str) -> bool:
        """Two products per DSP48E2 (`hwc_mul2`), on UltraScale+ where the operands allow
        (`packs_two_products`). Zynq-7000's DSP48E1 is not packed (as in the dataflow cost model)."""
        return ps_type == "zynq_ultrascale" and packs_two_products(self.weight_bits, self.xm_bits)


def packs_two_products(weight_bits: int, x_bits: int) -> bool:
    """Whether `hwc_mul2` (WP486 generalised) gives both products a * x and b * x of W-bit weights
    and an X-bit operand exactly. The pre-adder forms a * 2^(W+X) + b, which spans 2 W + X + 1
    bits when both weights are negative, in the 27-bit port; x goes in the 18-bit one.
    tests/codegen/test_engine_csim.py checks every pair this admits, and that the first it refuses
    would go wrong."""
    return 2 * weight_bits + x_bits + 1 <= 27 and x_bits <= 18


def product_bits(requant: Requant, acc_bound: int) -> int:
    multiplier = max(largest(requant.multiplier), largest(requant.negative_multiplier))
    offset = max(largest(requant.offset), largest(requant.negative_offset))
    return signed_bits(acc_bound * multiplier + offset)


def engine_widths(graph: Graph, plans: Iterable[InstructionPlan]) -> EngineWidths:
    acc, ew_acc, prod, mult, off, bias = 2, X_BITS + 1, 2, 2, 2, 2
    blend = sample = X_BITS
    frac = 0
    mask_bits, masked_bits, offset_fp = 2, 0, 2
    # a fused residual Add runs on the MAC unit's output as the pixel unit would: its own needs
    plans = list(plans)
    fused = [item.residual for item in plans if item.residual is not None]
    kinds = {"residual"} if fused else set()
    for index, item in enumerate([*plans, *fused]):
        needs = engine_facet(item.instruction.op).datapath(item)
        if item.instruction.is_mac:
            acc = max(acc, signed_bits(needs.bound))
        else:
            ew_acc = max(ew_acc, signed_bits(needs.bound))
        for requant in needs.requants:
            prod = max(prod, product_bits(requant, needs.bound))
            mult = max(mult, requant.multiplier_bits)
            off = max(off, requant.offset_bits)
        bias = max(bias, signed_bits(needs.bias))
        sampling = needs.sampling
        if sampling is not None:
            kinds.add("deform")
            frac = max(frac, sampling.frac_bits)
            blend = max(blend, signed_bits(sampling.blend))
            sample = max(sample, signed_bits(sampling.sample))
            ew_acc = max(ew_acc, signed_bits(sampling.offsets))
            converter = sampling.offset_requant
            prod = max(prod, product_bits(converter, sampling.offsets))
            mult = max(mult, converter.multiplier_bits)
            off = max(off, converter.offset_bits)
            offset_fp = max(offset_fp, signed_bits(max(abs(converter.lo), abs(converter.hi))))
            if sampling.mask is not None:
                kinds.add("mask")
                mask_bits = max(mask_bits, signed_bits(sampling.mask))
                masked_bits = max(masked_bits, signed_bits(sampling.masked))
        if needs.max_pool:
            kinds.add("max_pool")
        if needs.mean_table:
            kinds.add("mean_table")
        if index < len(plans):  # (a fused Add needs no pixel-unit ADD)
            kinds.add(item.instruction.mode)
    if prod > MAX_PRODUCT_BITS:
        raise EngineUnsupported(f"an output stage needs a {prod}-bit product; the engine supports {MAX_PRODUCT_BITS}")
    xm = max(sample, masked_bits) if "mask" in kinds else sample
    return EngineWidths(
        weight_bits=weight_storage_bits(graph), acc_bits=acc, ew_acc_bits=ew_acc, prod_bits=prod, mult_bits=mult,
        off_bits=off, bias_bits=bias, sample_bits=sample, blend_bits=blend, weight_fp_bits=2 * frac + 2,
        mask_bits=mask_bits, xm_bits=xm, offset_fp_bits=offset_fp, has_deform="deform" in kinds,
        has_mask="mask" in kinds, has_max_pool="max_pool" in kinds, has_add="add" in kinds,
        has_resize="resize" in kinds, has_global_pool="global_pool" in kinds, has_lookup="lookup" in kinds,
        has_mul="mul" in kinds, has_mean_table="mean_table" in kinds, has_residual="residual" in kinds,
        has_gather="gather" in kinds,
    )


def covering_widths(needs: Sequence[EngineWidths]) -> EngineWidths:
    """One datapath for several programs: each width the largest any needs, each unit present if
    any uses it. Larger widths compute the same exact values, so every program stays bit-exact.
    The weight storage and the MAC operand width must agree (they fix the weight words' layout
    and whether two products share a DSP): ValueError otherwise."""
    first = needs[0]
    for other in needs[1:]:
        if (other.weight_bits, other.xm_bits) != (first.weight_bits, first.xm_bits):
            raise ValueError(f"engines with {first.weight_bits}-bit weights and {first.xm_bits}-bit operands cannot "
                             f"run programs needing {other.weight_bits} and {other.xm_bits}")
    merged = {f.name: (any if isinstance(getattr(first, f.name), bool) else max)(getattr(w, f.name) for w in needs)
              for f in fields(EngineWidths)}
    return replace(first, **merged)
