"""The IR op of this family: a per-element lookup table.

Shapes and constant checks live on the op (`Graph.check()` calls them); every other facet of the
family (lowering, golden arithmetic, plans, costs, code) is registered in this package's __init__.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from hwcodesign.ir.op import Op, Shape
from hwcodesign.ir.types import Tensor


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
        (source,) = input_tensors
        levels = source.dtype.max - source.dtype.min + 1
        problems = []
        if self.table.shape != (levels,):
            problems.append(f"table has shape {list(self.table.shape)}; a {source.dtype} input has {levels} levels")
        if self.table.size and (self.table.min() < self.output.dtype.min or self.table.max() > self.output.dtype.max):
            problems.append(f"table entries outside the {self.output.dtype} output range")
        return problems

    def weight_bits(self) -> int:
        """One copy of the table (the dataflow stage holds one per PE lane)."""
        return int(self.table.size) * self.output.dtype.bits
