"""The IR ops of this family: a per-element lookup table, and the mean over H, W of one.

Shapes and constant checks live on the op (`Graph.check()` calls them); every other facet of the
family (lowering, golden arithmetic, plans, costs, code) is registered in this package's __init__.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from hwcodesign.ir.op import Op, Shape
from hwcodesign.ir.requant import Requant
from hwcodesign.ir.types import Tensor

MEAN_TABLE_BITS = 16
"""A `LookupMean` table's entries: signed 16-bit values of the float function on a fine grid."""


@dataclass(frozen=True, eq=False)
class Lookup(Op):
    """y = table[x - x.dtype.min]: any function of one quantized tensor, per element.

    A b-bit input has 2**b levels, so a float function between a DequantizeLinear and a
    QuantizeLinear (Sigmoid, HardSwish, x * sigmoid(x), GELU, ...) is exactly this table of its
    outputs, computed once per level as onnxruntime computes it (`table/evaluate.py`).
    `function` names it for `inspect` and code generation only.
    """

    function: str
    table: np.ndarray  # int64, one entry per input level, in the output type's range

    kind: ClassVar[str] = "Lookup"

    def summary(self) -> str:
        return f"{self.kind} {self.function}"

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        return input_shapes[0]

    def input_problems(self, input_tensors: list[Tensor]) -> list[str]:
        problems = table_shape_problems(self.table, input_tensors[0])
        if self.table.size and (self.table.min() < self.output.dtype.min or self.table.max() > self.output.dtype.max):
            problems.append(f"table entries outside the {self.output.dtype} output range")
        return problems

    def weight_bits(self) -> int:
        """One copy of the table (the dataflow stage holds one per PE lane)."""
        return int(self.table.size) * self.output.dtype.bits


@dataclass(frozen=True, eq=False)
class LookupMean(Op):
    """The mean over H and W of a float function of one quantized tensor, quantized once after the
    mean (what onnxruntime's `quantize_static` leaves of `ReduceMean(HardSwish(x))` when it does not
    quantize the function's output): acc = sum over H, W of table[x - x.dtype.min], then `requant`.

    `table` holds the function's value on each input level on a fine grid (signed
    `MEAN_TABLE_BITS`-bit entries, the finest power-of-two scale they fit: `evaluate.fine_table`),
    so the sum is exact to half a fine step per element, far below one output LSB.
    """

    function: str
    table: np.ndarray  # int64, one entry per input level, |entry| < 2**(MEAN_TABLE_BITS - 1)
    requant: Requant

    kind: ClassVar[str] = "LookupMean"

    def summary(self) -> str:
        return f"{self.kind} {self.function}"

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        n, c, _, _ = input_shapes[0]
        return (n, c, 1, 1)

    def input_problems(self, input_tensors: list[Tensor]) -> list[str]:
        problems = table_shape_problems(self.table, input_tensors[0])
        if self.table.size and int(np.abs(self.table).max()) >= 1 << (MEAN_TABLE_BITS - 1):
            problems.append(f"table entries outside signed {MEAN_TABLE_BITS} bits")
        return problems

    def requants(self) -> tuple[Requant, ...]:
        return (self.requant,)

    def weight_bits(self) -> int:
        return int(self.table.size) * MEAN_TABLE_BITS


def table_shape_problems(table: np.ndarray, source: Tensor) -> list[str]:
    """A table needs one entry per level of its input's type."""
    levels = source.dtype.max - source.dtype.min + 1
    if table.shape != (levels,):
        return [f"table has shape {list(table.shape)}; a {source.dtype} input has {levels} levels"]
    return []
