"""Golden semantics of the accelerator's input: the frame passes through unchanged.

`sim/golden.py` checks the frame (integers of the input type, the declared shape) before this
rule sees it; what the hardware receives is exactly those integers.
"""

from __future__ import annotations

import numpy as np

from hwcodesign.ir.op import Input
from hwcodesign.ir.types import Tensor
from hwcodesign.ops.facets.golden import GoldenRules


def pass_frame(op: Input, args: list[np.ndarray], tensors: list[Tensor]) -> np.ndarray:
    return args[0]


GOLDEN = GoldenRules({Input: pass_frame})
