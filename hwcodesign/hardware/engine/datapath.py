"""What one instruction needs of the engine's datapath: the bounds its family derives from the
model's actual constants, from which the engine sizes every width (the largest any needs)."""

from __future__ import annotations

from dataclasses import dataclass

from hwcodesign.ir.requant import Requant
from hwcodesign.ir.types import Tensor

X_BITS = 9
"""A centred byte: x - zero point of an <= 8-bit type lies in [-255, 255]."""


def magnitude(tensor: Tensor) -> int:
    """The largest |x - zero point| of `tensor`'s type."""
    return max(tensor.zero_point - tensor.dtype.min, tensor.dtype.max - tensor.zero_point)


@dataclass(frozen=True)
class Sampling:
    """A deformable window's bounds: the sampling blend, the sample, the offsets and the mask."""

    frac_bits: int
    blend: int  # |blend| before the sample shift
    sample: int  # |sample| (or the centred input, if larger)
    offsets: int  # |offset - zero point|, what the offset conversion accumulates
    offset_requant: Requant
    mask: int | None = None  # |mask - zero point|, None without a mask
    masked: int = 0  # |sample x mask|


@dataclass(frozen=True)
class Datapath:
    """One instruction's needs: the accumulator bound of its unit, the output stages that convert
    it, its largest |bias|, and the deformable sampling and max pooling it may use."""

    bound: int
    requants: tuple[Requant, ...]
    bias: int = 0
    sampling: Sampling | None = None
    max_pool: bool = False
    mean_table: bool = False  # a global pool that reads its input through a table (LookupMean)
