"""Cost-model formulas against hand calculations."""

import re
from dataclasses import replace

import numpy as np
import pytest
from support.deep_chain import deep_conv_chain

import hwcodesign.mapper.cost as cost_module
from hwcodesign.codegen.hls_top import build_top
from hwcodesign.hardware.folding import Folding
from hwcodesign.hardware.units import PIPELINE_RAMP, lut_mac_cost, requant_units
from hwcodesign.ir import IntType, Tensor, identity_requant, make_requant
from hwcodesign.mapper.cost import candidate_foldings, layer_cost, stage_plan
from hwcodesign.ops import Conv, DepthwiseConv, OpUnsupported, Pool, Refused, family_of
from hwcodesign.sim.latency import build_stage

UINT8, INT8 = IntType(8, False), IntType(8, True)


def source(channels: int, size: int = 16, dtype: IntType = UINT8) -> Tensor:
    return Tensor("x", (1, channels, size, size), dtype, 0.1, 0)


def conv(c_in: int, c_out: int, k: int = 3, dilation: int = 1, groups: int = 1, kind: type = Conv) -> Conv:
    pad = (k - 1) * dilation // 2
    return kind("c", ("x",), Tensor("y", (1, c_out, 16, 16), UINT8, 0.1, 0),
                np.ones((c_out, c_in // groups, k, k), np.int64), INT8, np.zeros(c_out, np.int64),
                (1, 1), (pad,) * 4, (dilation, dilation), groups, make_requant(np.full(c_out, 0.01), 0, 0, 255))


def test_conv_cycles_are_macs_over_lanes() -> None:
    """The loops hwc_conv runs: the fill (input rows 0 and 1 of a 3x3 window padded by 1, in words
    of the input lanes), then per output row its MAC steps and the output stages' drain."""
    op = conv(16, 32)
    macs = 16 * 16 * 32 * 16 * 9
    for folding in (Folding(1, 1), Folding(4, 8), Folding(32, 16), Folding(32, 144)):
        cost = layer_cost(op, [source(16)], folding)
        fill = 2 * 16 * (16 // min(folding.simd, 16))
        drain = -(-folding.pe // requant_units(folding.pe, 144 // folding.simd))
        assert cost.cycles == fill + macs // (folding.pe * folding.simd) + 16 * drain


def test_dsp_packing_depends_on_the_dsp_generation() -> None:
    op = conv(16, 32)
    ultrascale = layer_cost(op, [source(16)], Folding(8, 8), "zynq_ultrascale")
    zynq7 = layer_cost(op, [source(16)], Folding(8, 8), "zynq7")
    # 64 lanes; each PE finishes an output every 144/8 = 18 cycles, so one requant unit (2 DSPs)
    assert ultrascale.dsp == 64 // 2 + 2  # two int8 MACs per DSP48E2
    assert zynq7.dsp == 64 + 2
    fast = layer_cost(conv(4, 32, k=1), [source(4)], Folding(32, 4), "zynq_ultrascale")
    assert fast.dsp == 128 // 2 + 2 * 32  # every PE finishes an output each cycle


def test_lut_macs_are_offered_up_to_8x8() -> None:
    """LUT MACs for weights and activations of at most 8 bits (FINN-R's LUT multiplier: 80 LUTs
    at 8x8, 24 at 4x4), none past 8; a LUT-MAC stage's DSPs are its requantization's only."""
    op8 = conv(8, 8)
    options = candidate_foldings(op8, [source(8)], max_candidates=200)
    assert {f.mac for f in options} == {"dsp", "lut"}
    assert {(f.pe, f.simd) for f in options if f.mac == "lut"} == {(f.pe, f.simd) for f in options if f.mac == "dsp"}
    assert lut_mac_cost(op8.weight_type, 8) == 80
    assert all(f.mac == "dsp" for f in candidate_foldings(op8, [source(8, dtype=IntType(9, False))], 200))
    op4 = Conv("c", ("x",), op8.output, np.ones((8, 8, 3, 3), np.int64), IntType(4, True), op8.bias,
               (1, 1), (1,) * 4, (1, 1), 1, op8.requant)
    low = candidate_foldings(op4, [source(8, dtype=IntType(4, False))], max_candidates=200)
    assert any(f.mac == "lut" for f in low)
    assert lut_mac_cost(op4.weight_type, 4) == 24
    lut_cost = layer_cost(op4, [source(8, dtype=IntType(4, False))], Folding(8, 8, "lut"))
    dsp_cost = layer_cost(op4, [source(8, dtype=IntType(4, False))], Folding(8, 8, "dsp"))
    assert lut_cost.dsp == 2  # only the (shared) requantization multiplier
    assert lut_cost.lut - dsp_cost.lut == 64 * (24 - 6)  # a multiplier per lane instead of DSP glue


def window_rows(op: Conv) -> int:
    return stage_plan(op, [source(4)], Folding()).window_rows


def test_line_buffer_rows_follow_kernel_and_dilation() -> None:
    assert window_rows(conv(4, 4, k=3)) == 3
    assert window_rows(conv(4, 4, k=3, dilation=2)) == 5
    assert window_rows(conv(4, 4, k=5)) == 5
    assert window_rows(conv(4, 4, k=1)) == 1


def test_depthwise_folds_channels_and_taps() -> None:
    op = conv(16, 16, groups=16, kind=DepthwiseConv)
    cost = layer_cost(op, [source(16)], Folding(4, 3))
    fill, drain = 2 * 16 * (16 // 4), 2  # rows 0 and 1 of 4-channel words; 4 PEs, 2 output stages
    assert cost.cycles == fill + 16 * 16 * (16 // 4) * (9 // 3) + 16 * drain


def test_non_overlapping_pool_reads_its_input_while_it_pools() -> None:
    """A 2x2 stride-2 pool of PE 2: each output row pools 8 x 4 folds x 4 taps = 128 steps while
    the next two input rows' 128 words stream in, then drains 1; before row 0 the fill reads two rows."""
    op = Pool("p", ("x",), Tensor("y", (1, 8, 8, 8), UINT8, 0.1, 0), "max", (2, 2), (2, 2), (0,) * 4,
              identity_requant(8, 0, 0, 255))
    assert layer_cost(op, [source(8)], Folding(2, 1)).cycles == 2 * 16 * 8 // 2 + 8 * (128 + 1)


def config_value(declarations: str, name: str) -> int:
    return int(re.search(rf"static const int {name} = (-?\d+);", declarations).group(1))


def test_one_plan_feeds_the_cost_the_simulator_and_the_config() -> None:
    """Line-buffer rows, lanes and loop trips come from the family's plan alone: the generated
    config, the simulator's row model and the cost model all read the same numbers."""
    graph = deep_conv_chain(layers=3, width=8, size=12)
    convs = [op for op in graph if op.kind == "Conv"]
    options = {op.name: candidate_foldings(op, graph.input_tensors(op)) for op in convs}
    for pick in (0, 0.5, 1):  # the most folded, a middle, the most parallel
        foldings = {name: found[round(pick * (len(found) - 1))] for name, found in options.items()}
        stages = iter(build_top(graph, foldings, {}, 64).stages)
        for op in convs:
            inputs, folding = graph.input_tensors(op), foldings[op.name]
            plan = stage_plan(op, inputs, folding)
            text = next(stages).declarations
            assert config_value(text, "RING_ROWS") == plan.ring_rows
            assert config_value(text, "WINDOW_ROWS") == plan.window_rows
            assert config_value(text, "IN_LANES") == plan.input_lanes[0]
            assert config_value(text, "ROW_STEPS") == plan.row_steps
            out_h = op.output.shape[2]
            loop_rows = config_value(text, "OUT_H")  # H*W one-pixel rows when the conv runs pixel by pixel
            # ROW_STEPS bounds every row's iterations
            assert plan.fill_words + plan.row_steps * loop_rows >= plan.loop_trips
            cycles = layer_cost(op, inputs, folding).cycles
            stage = build_stage(graph, op, cycles, folding)
            assert stage.holds_rows == plan.held_rows and stage.steps == plan.steps == out_h
            # the cost model's cycles are the loops' iterations and the pipeline ramps; the
            # simulator's steps take them row by row, the fill in the first
            ramps = out_h * op.output.shape[3] * PIPELINE_RAMP if plan.pixel_ring else 0
            assert cycles == plan.loop_trips + ramps == sum(plan.step_trips) + ramps
            assert sum(stage.cycles(0, step) for step in range(stage.steps)) == pytest.approx(cycles)
            assert stage.cycles(0, 0) > stage.cycles(0, 1)


def test_a_refused_dataflow_facet_is_named_not_defaulted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A family that cannot run an op as a stage says why; nothing falls back to a per-pixel stage."""
    refusing = replace(family_of(Conv), dataflow=Refused("no line buffer for this op"))
    monkeypatch.setattr(cost_module, "family_of", lambda op: refusing)
    with pytest.raises(OpUnsupported, match="cannot run as a dataflow stage: no line buffer for this op"):
        layer_cost(conv(4, 4), [source(4)], Folding())
