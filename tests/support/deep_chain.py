"""A deep chain of small convs built directly in the IR: the mapper's integer program for it (goal
"latency", 80 layers on the Ultra96-V2) runs for minutes without proving optimality, while CBC
finds a good feasible mapping in a fraction of a second: the slow case for the time limit."""

from __future__ import annotations

import numpy as np

from hwcodesign.ir import Graph, Input, IntType, Tensor, make_requant
from hwcodesign.ops import Conv

UINT8, INT8 = IntType(8, False), IntType(8, True)


def deep_conv_chain(layers: int = 80, width: int = 8, size: int = 32, seed: int = 0) -> Graph:
    """`layers` convs alternating 3x3 and 1x1 at `size`x`size`, widths cycling 1..4 x `width`."""
    rng = np.random.default_rng(seed)
    ops: list = [Input("in", (), Tensor("x", (1, 3, size, size), UINT8, 0.02, 0))]
    source = ops[0].output
    for i in range(layers):
        channels = width * (1 + i % 4)
        k = 3 if i % 2 == 0 else 1
        out = Tensor(f"c{i}_out", (1, channels, size, size), UINT8, 0.02, 0)
        weight = rng.integers(-127, 128, (channels, source.channels, k, k), dtype=np.int64)
        ops.append(Conv(f"c{i}", (source.name,), out, weight, INT8, np.zeros(channels, np.int64), (1, 1),
                        (k // 2,) * 4, (1, 1), 1, make_requant(np.full(channels, 0.01), 0, 0, 255)))
        source = out
    return Graph.from_ops("deep_chain", ops, [source.name])
