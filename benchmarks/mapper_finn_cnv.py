"""Sanity against a published figure: FINN's CNV network on the ZC706 (Zynq-7045).

Published: Umuroglu et al., "FINN: A Framework for Fast, Scalable Binarized Neural Network
Inference", FPGA 2017 (arXiv:1612.07119): CNV on CIFAR-10, ZC706 at 200 MHz, 21,906 frames/s,
283 us latency, binarized weights and activations (XNOR-popcount in LUTs, no DSPs).

What is compared: the same topology (3x32x32 input; 3x3 convs 64-64, pool, 128-128, pool,
256-256, FC 512-512-10, no padding) with 1-bit weights and activations mapped by our ILP onto the
ZC706's resources at 200 MHz, MACs built from LUTs. Not like with like in two ways, both stated
in the output: our LUT-MAC cost (w*a + 8 LUTs per lane) is far above an XNOR-popcount lane, and
FINN chose its folding for a target rate while our ILP maximises throughput under 80% caps.
"""

from __future__ import annotations

import numpy as np

from hwcodesign.backends import simulate
from hwcodesign.backends.dataflow import map_pipeline
from hwcodesign.boards import Board, Resources, load_board
from hwcodesign.ir import Graph, Input, IntType, Tensor, identity_requant, make_requant
from hwcodesign.ops import Conv, Linear, Pool

PUBLISHED_FPS = 21906
PUBLISHED_LATENCY_US = 283

# DS190 (Zynq-7000 overview): XC7Z045 has 900 DSP, 545 BRAM36 (1,090 BRAM18), 218,600 LUT, 437,200 FF.
ZC706 = Board(
    name="zc706", display_name="ZC706", part="xc7z045ffg900-2", board_part=None, ps_type="zynq7",
    resources=Resources(dsp=900, bram18k=1090, uram=0, lut=218600, ff=437200), clock_mhz=200.0,
    ddr_bandwidth_gbps=3.2, pynq_image="-", source="DS190; clock as in the FINN paper",
    # The CPU plays no part in this accelerator-only comparison; the PYNQ-Z2's Cortex-A9 stands in
    # (same core, not the ZC706's clock).
    cpu=load_board("pynqz2").cpu,
)

ACT, WEIGHT = IntType(1, False), IntType(1, True)


def cnv() -> Graph:
    rng = np.random.default_rng(0)
    ops: list = [Input("in", (), Tensor("x", (1, 3, 32, 32), IntType(8, False), 1 / 255, 0))]

    def add_conv(name: str, c_out: int) -> None:
        source = ops[-1].output
        size = source.shape[2] - 2
        weight = rng.integers(-1, 1, (c_out, source.channels, 3, 3), endpoint=False)
        ops.append(Conv(name, (source.name,), Tensor(name, (1, c_out, size, size), ACT, 1.0, 0), weight, WEIGHT,
                        np.zeros(c_out, np.int64), (1, 1), (0, 0, 0, 0), (1, 1), 1,
                        make_requant(np.full(c_out, 0.01), 0, 0, 1)))

    def add_pool(name: str) -> None:
        source = ops[-1].output
        size = source.shape[2] // 2
        ops.append(Pool(name, (source.name,), Tensor(name, (1, source.channels, size, size), ACT, 1.0, 0), "max",
                        (2, 2), (2, 2), (0, 0, 0, 0), identity_requant(source.channels, 0, 0, 1)))

    def add_fc(name: str, c_out: int, out_type: IntType) -> None:
        source = ops[-1].output
        weight = rng.integers(-1, 1, (c_out,) + source.shape[1:], endpoint=False)
        ops.append(Linear(name, (source.name,), Tensor(name, (1, c_out, 1, 1), out_type, 1.0, 0), weight, WEIGHT,
                          np.zeros(c_out, np.int64), make_requant(np.full(c_out, 0.01), 0, out_type.min, out_type.max)))

    add_conv("conv1", 64)
    add_conv("conv2", 64)
    add_pool("pool1")
    add_conv("conv3", 128)
    add_conv("conv4", 128)
    add_pool("pool2")
    add_conv("conv5", 256)
    add_conv("conv6", 256)
    add_fc("fc1", 512, ACT)
    add_fc("fc2", 512, ACT)
    add_fc("fc3", 10, IntType(16, True))
    return Graph.from_ops("cnv_w1a1", ops, [ops[-1].output.name])


def main() -> None:
    graph = cnv()
    mapping = map_pipeline(graph, ZC706, "throughput")
    report = simulate(graph, mapping)
    print("FINN CNV (W1A1, CIFAR-10) on ZC706 @ 200 MHz")
    print(f"  published (FINN, FPGA'17): {PUBLISHED_FPS:,} fps, {PUBLISHED_LATENCY_US} us latency")
    print(f"  simulated (hwcodesign):    {report.fps:,.0f} fps, {report.latency_ms * 1e3:.0f} us latency "
          f"(ratio simulated/published fps {report.fps / PUBLISHED_FPS:.2f})")
    print(f"  resources: LUT {mapping.total('lut'):,}/{ZC706.resources.lut:,}, BRAM18K {mapping.total('bram18k')}"
          f"/{ZC706.resources.bram18k}, DSP {mapping.total('dsp')}/{ZC706.resources.dsp}; bottleneck "
          f"{report.bottleneck.name}")
    print("  not like with like: our LUT MAC (w*a+8 LUTs/lane) vs FINN's XNOR-popcount; FINN folded "
          "for a target rate, our ILP maximises throughput under 80% LUT/BRAM caps")


if __name__ == "__main__":
    main()
