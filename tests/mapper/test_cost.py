"""Cost-model formulas against hand calculations."""

import re

import numpy as np
import pytest
from support.deep_chain import deep_conv_chain

import hwcodesign.mapper.cost as cost_module
from hwcodesign.codegen.hls_top import build_top
from hwcodesign.hardware.folding import Folding
from hwcodesign.hardware.units import PIPELINE_RAMP
from hwcodesign.ir import IntType, Tensor, identity_requant, make_requant
from hwcodesign.mapper.cost import candidate_foldings, layer_cost, stage_plan
from hwcodesign.ops import Conv, DepthwiseConv, OpFamily, OpUnsupported, Pool, Refused
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
    op = conv(16, 32)
    macs = 16 * 16 * 32 * 16 * 9
    for folding in (Folding(1, 1), Folding(4, 8), Folding(32, 16), Folding(32, 144)):
        cost = layer_cost(op, [source(16)], folding)
        assert cost.cycles == macs // (folding.pe * folding.simd)


def test_dsp_packing_depends_on_the_dsp_generation() -> None:
    op = conv(16, 32)
    ultrascale = layer_cost(op, [source(16)], Folding(8, 8), "zynq_ultrascale")
    zynq7 = layer_cost(op, [source(16)], Folding(8, 8), "zynq7")
    # 64 lanes; each PE finishes an output every 144/8 = 18 cycles, so one requant unit (2 DSPs)
    assert ultrascale.dsp == 64 // 2 + 2  # two int8 MACs per DSP48E2
    assert zynq7.dsp == 64 + 2
    fast = layer_cost(conv(4, 32, k=1), [source(4)], Folding(32, 4), "zynq_ultrascale")
    assert fast.dsp == 128 // 2 + 2 * 32  # every PE finishes an output each cycle


def test_lut_macs_are_offered_only_for_low_bits() -> None:
    op8 = conv(8, 8)
    assert all(f.mac == "dsp" for f in candidate_foldings(op8, [source(8)]))
    op4 = Conv("c", ("x",), op8.output, np.ones((8, 8, 3, 3), np.int64), IntType(4, True), op8.bias,
               (1, 1), (1,) * 4, (1, 1), 1, op8.requant)
    low = candidate_foldings(op4, [source(8, dtype=IntType(4, False))], max_candidates=200)
    assert any(f.mac == "lut" for f in low)
    lut_cost = layer_cost(op4, [source(8, dtype=IntType(4, False))], Folding(8, 8, "lut"))
    assert lut_cost.dsp == 2  # only the (shared) requantization multiplier


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
    assert cost.cycles == 16 * 16 * (16 // 4) * (9 // 3)


def test_non_overlapping_pool_is_input_bound() -> None:
    op = Pool("p", ("x",), Tensor("y", (1, 8, 8, 8), UINT8, 0.1, 0), "max", (2, 2), (2, 2), (0,) * 4,
              identity_requant(8, 0, 0, 255))
    assert layer_cost(op, [source(8)], Folding(2, 1)).cycles == 16 * 16 * 8 // 2


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
            assert plan.row_steps * loop_rows >= plan.loop_trips  # ROW_STEPS bounds every row's iterations
            stage = build_stage(graph, op, layer_cost(op, inputs, folding).cycles, folding)
            assert stage.holds_rows == plan.held_rows and stage.steps == plan.steps == out_h
            # the cost model's compute cycles are the MAC steps of the loop (no drain, no fill)
            macs = out_h * op.output.shape[3] * (op.out_channels // folding.pe) * (inputs[0].channels * op.kernel[0] * op.kernel[1] // folding.simd)
            ramps = out_h * op.output.shape[3] * PIPELINE_RAMP if plan.pixel_ring else 0
            assert layer_cost(op, inputs, folding).cycles == max(macs, plan.input_words) + ramps


def test_a_refused_dataflow_facet_is_named_not_defaulted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A family that cannot run an op as a stage says why; nothing falls back to a per-pixel stage."""
    refusing = OpFamily(name="test", ops=(Conv,), dataflow=Refused("no line buffer for this op"))
    monkeypatch.setattr(cost_module, "family_of", lambda op: refusing)
    with pytest.raises(OpUnsupported, match="cannot run as a dataflow stage: no line buffer for this op"):
        layer_cost(conv(4, 4), [source(4)], Folding())
