"""Weight formats a layer can be given: symmetric integers or DyBit codes, and how real weights
are rounded to each.

Both kinds are a set of integer levels times a per-output-channel scale, so one procedure
quantizes either: per channel, the scale of least squared error (`fit_scale`, the same search
for both kinds, so comparisons between them are fair), then nearest level. Integer formats are
symmetric (-(2**(n-1) - 1) .. 2**(n-1) - 1, zero exactly representable, as ONNX symmetric
weight quantization does); DyBit levels are in `dybit.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from hwcodesign.ir import dybit
from hwcodesign.ir.types import DyBitType, IntType, WeightType

KINDS = ("int", "dybit")
NAME = re.compile(r"^(int|dybit)([0-9]+)$")
SCALE_GRID = 160  # scales tried per channel (geometric)
CLIP_SPAN = 8  # the smallest scale tried clips the largest weight to 1/8 of it


@dataclass(frozen=True)
class WeightFormat:
    """`int8`, `int4`, `dybit4`, ...: a weight format by kind and width."""

    kind: str
    bits: int

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown weight format kind '{self.kind}'; choose int or dybit")
        if self.kind == "int" and not 2 <= self.bits <= 8:
            raise ValueError(f"integer weight formats are 2..8 bits, got {self.bits}")
        if self.kind == "dybit" and not dybit.MIN_BITS <= self.bits <= dybit.MAX_BITS:
            raise ValueError(f"DyBit formats are {dybit.MIN_BITS}..{dybit.MAX_BITS} bits, got {self.bits}")

    @staticmethod
    def parse(text: str) -> WeightFormat:
        match = NAME.match(text.strip().lower())
        if not match:
            raise ValueError(f"weight format '{text}' is not one of intN or dybitN (e.g. int8, int4, dybit4)")
        return WeightFormat(match.group(1), int(match.group(2)))

    @property
    def name(self) -> str:
        return f"{self.kind}{self.bits}"

    def __str__(self) -> str:
        return self.name

    @property
    def weight_type(self) -> WeightType:
        return DyBitType(self.bits) if self.kind == "dybit" else IntType(self.bits, True)

    @property
    def max_level(self) -> int:
        return dybit.max_level(self.bits) if self.kind == "dybit" else (1 << (self.bits - 1)) - 1

    def round(self, units: np.ndarray) -> np.ndarray:
        """Values in units of the scale -> nearest level (ties toward zero for DyBit, to even
        for integers as QuantizeLinear does; both saturate)."""
        if self.kind == "dybit":
            return dybit.round_to_levels(units, self.bits)
        return np.clip(np.rint(units), -self.max_level, self.max_level).astype(np.int64)

    def fit_scale(self, x: np.ndarray) -> float:
        """The scale of least squared error for the values `x`: a grid search over the scales
        that put the largest |x| anywhere from CLIP_SPAN times the top level (hard clipping) down
        to level 2. DyBit's wide formats do best with the peak far below their top level (their
        largest levels are far apart), integers with a little clipping."""
        x = np.asarray(x, dtype=np.float64).ravel()
        peak = float(np.abs(x).max(initial=0.0))
        if peak == 0.0:
            return 1.0
        scales = np.geomspace(peak / (self.max_level * CLIP_SPAN), peak / min(2, self.max_level), SCALE_GRID)
        errors = [(float(np.mean((x - self.round(x / s) * s) ** 2)), float(s)) for s in scales]
        return min(errors)[1]

    def quantize(self, weight: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (along `axis`) levels and scales of a real weight tensor."""
        weight = np.asarray(weight, dtype=np.float64)
        moved = np.moveaxis(weight, axis, 0)
        scales = np.array([self.fit_scale(channel) for channel in moved])
        shape = (-1,) + (1,) * (moved.ndim - 1)
        levels = self.round(moved / scales.reshape(shape))
        return np.moveaxis(levels, 0, axis), scales

    def squared_error(self, x: np.ndarray) -> float:
        """Mean squared error of `x` rounded to this format at its best per-tensor scale."""
        x = np.asarray(x, dtype=np.float64)
        scale = self.fit_scale(x)
        return float(np.mean((x - self.round(x / scale) * scale) ** 2))


INT8 = WeightFormat("int", 8)
