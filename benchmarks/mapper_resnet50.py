"""ILP solve time on a ResNet-50-sized graph (53 convs, real channel counts) and DSP efficiency.

Targets from the issue: solve < 5 s on 2 cores for ZCU102; DSP efficiency >= 85% on
compute-bound layers, where efficiency = useful MACs per cycle / (MAC DSPs x MACs per DSP).
The cost model has no stall cycles, so that efficiency only measures packing waste (odd lane
counts on paired DSPs); measured efficiency needs the HLS co-simulation of later issues.
The graph is synthetic (random int8 weights) with ResNet-50's 53 convs, kernels, strides and
spatial sizes at 224x224, but a quarter of its channel widths: full ResNet-50 has 25 M weights
(200 Mbit at 8 bits) and no Zynq holds them on chip (ZCU102: 32 Mbit of BRAM), so a weights-on-
chip dataflow design for it does not exist; the ILP says so (see the last line printed).
"""

from __future__ import annotations

import time

import numpy as np

from hwcodesign.backends.dataflow import map_pipeline
from hwcodesign.boards import load_board
from hwcodesign.errors import HwcodesignError
from hwcodesign.hardware.units import macs_per_dsp
from hwcodesign.ir import Graph, Input, IntType, Tensor, make_requant
from hwcodesign.ops import Conv

UINT8, INT8 = IntType(8, False), IntType(8, True)


def resnet50_convs(width_divisor: int = 4) -> Graph:
    rng = np.random.default_rng(0)
    ops: list = [Input("in", (), Tensor("x", (1, 3, 224, 224), UINT8, 0.02, 0))]

    def conv(name: str, source: Tensor, c_out: int, k: int, stride: int) -> Tensor:
        size = (source.shape[2] + 2 * (k // 2) - k) // stride + 1
        out = Tensor(name + "_out", (1, c_out, size, size), UINT8, 0.02, 0)
        weight = rng.integers(-127, 128, (c_out, source.channels, k, k), dtype=np.int64)
        ops.append(Conv(name, (source.name,), out, weight, INT8, np.zeros(c_out, np.int64), (stride, stride),
                        (k // 2,) * 4, (1, 1), 1, make_requant(np.full(c_out, 0.01), 0, 0, 255)))
        return out

    x = conv("stem", ops[0].output, 64 // width_divisor, 7, 2)
    x = conv("stem_reduce", x, 64 // width_divisor, 1, 2)  # stands in for the max pool's 2x downsampling
    for stage, (blocks, full_width) in enumerate([(3, 64), (4, 128), (6, 256), (3, 512)]):
        width = full_width // width_divisor
        for block in range(blocks):
            stride = 2 if block == 0 and stage > 0 else 1
            y = conv(f"s{stage}b{block}_a", x, width, 1, 1)
            y = conv(f"s{stage}b{block}_b", y, width, 3, stride)
            x = conv(f"s{stage}b{block}_c", y, width * 4, 1, 1)
    return Graph.from_ops("resnet50_convs", ops, [x.name])


def main() -> None:
    graph = resnet50_convs()
    board = load_board("zcu102")
    start = time.perf_counter()
    mapping = map_pipeline(graph, board, "throughput", max_candidates=96)
    seconds = time.perf_counter() - start
    print(f"ResNet-50-depth graph (quarter width): {len(graph) - 1} conv stages")
    print(f"ILP on ZCU102: {seconds:.2f} s (target < 5 s, ratio {seconds / 5:.2f}); "
          f"simulated {mapping.fps:.1f} fps at {board.clock_mhz:g} MHz; DSP {mapping.total('dsp')}/{mapping.limits['dsp']}")
    bottleneck = mapping.bottleneck_cycles
    mac_only, with_requant = [], []
    for op in graph:
        if not isinstance(op, Conv):
            continue
        cost = mapping.costs[op.name]
        if cost.cycles < 0.9 * bottleneck:
            continue  # not compute-bound: idles by design waiting for the bottleneck
        macs_per_cycle = op.macs([t.shape for t in graph.input_tensors(op)]) / cost.cycles
        per_dsp = macs_per_dsp(op.weight_type.bits, graph.input_tensors(op)[0].dtype.bits, board.ps_type)
        folding = mapping.foldings[op.name]
        mac_dsps = -(-folding.pe * folding.simd // per_dsp)
        mac_only.append(macs_per_cycle / (mac_dsps * per_dsp))
        with_requant.append(macs_per_cycle / (cost.dsp * per_dsp))
    print(f"DSP efficiency on {len(mac_only)} compute-bound layers (target >= 85%): "
          f"MAC DSPs {100 * np.mean(mac_only):.1f}% mean / {100 * np.min(mac_only):.1f}% min; "
          f"counting the requantization DSPs too {100 * np.mean(with_requant):.1f}% mean / "
          f"{100 * np.min(with_requant):.1f}% min")
    full = resnet50_convs(width_divisor=1)
    try:
        map_pipeline(full, board)
    except HwcodesignError as error:
        print(f"full-width ResNet-50: {error}")
    start = time.perf_counter()
    unbounded = map_pipeline(full, board, "throughput", caps={"bram18k": 100.0})
    print(f"full-width ResNet-50 with the BRAM row lifted (weights assumed off chip): ILP {time.perf_counter() - start:.2f} s "
          f"(target < 5 s), {unbounded.fps:.1f} fps by the compute model")


if __name__ == "__main__":
    main()
