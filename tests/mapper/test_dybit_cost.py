"""The cost model and the mappers on DyBit weights (hwcodesign/mapper/cost.py, engine.py).

A DyBit weight has two widths: memories hold its `storage_bits`-bit code, multipliers see its
`value_bits`-bit decoded level, and every MAC lane has a decoder of `decoder_luts` LUTs. The
expected costs below are derived from those documented rules and the memory model
(`hardware/memory.py`), comparing the DyBit op with the same op typed as an integer of either
width at the same folding.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from support.op_cases import build

from hwcodesign.backends.choose import map_to_board
from hwcodesign.boards import load_board
from hwcodesign.frontend.formats import with_weight_formats
from hwcodesign.hardware.engine.config import EngineUnsupported
from hwcodesign.hardware.folding import Folding
from hwcodesign.hardware.memory import weight_memory_cost
from hwcodesign.hardware.units import lut_mac_cost, lut_macs_possible, macs_per_dsp, weight_decoder_luts
from hwcodesign.ir import IntType, Tensor, dybit, make_requant
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.types import DyBitType
from hwcodesign.mapper.cost import candidate_foldings, layer_cost
from hwcodesign.mapper.engine.program import instructions
from hwcodesign.mapper.ilp import Mapping, MappingInfeasible
from hwcodesign.ops import Conv, DepthwiseConv, Linear
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.quant.formats import WeightFormat
from hwcodesign.quantize import quantize_qdq

UINT8, INT8 = IntType(8, False), IntType(8, True)
DYBIT4 = DyBitType(4)


def source(channels: int, size: int = 16, dtype: IntType = UINT8) -> Tensor:
    return Tensor("x", (1, channels, size, size), dtype, 0.1, 0)


def conv(c_in: int, c_out: int, k: int = 3, groups: int = 1, kind: type = Conv) -> Conv:
    """A conv with DyBit4-representable weights (so any of the weight types below fits them)."""
    rng = np.random.default_rng(0)
    weight = rng.choice(dybit.levels(4), (c_out, c_in // groups, k, k))
    return kind("c", ("x",), Tensor("y", (1, c_out, 16, 16), UINT8, 0.1, 0), weight, INT8,
                np.zeros(c_out, np.int64), (1, 1), ((k - 1) // 2,) * 4, (1, 1), groups,
                make_requant(np.full(c_out, 0.01), 0, 0, 255))


def linear(c_in: int, c_out: int) -> Linear:
    rng = np.random.default_rng(1)
    return Linear("fc", ("x",), Tensor("y", (1, c_out, 1, 1), UINT8, 0.1, 0),
                  rng.choice(dybit.levels(4), (c_out, c_in, 1, 1)), INT8, np.zeros(c_out, np.int64),
                  make_requant(np.full(c_out, 0.01), 0, 0, 255))


def weight_memory(op: Conv, inputs: list[Tensor], folding: Folding, storage_bits: int):
    """The weight memory of a (non-depthwise) conv stage at this folding, in the memory it names
    (mac_stage_cost)."""
    in_per_group = inputs[0].channels // op.groups
    depth = op.groups * (op.out_channels // op.groups // folding.pe) * (in_per_group * op.kernel[0] * op.kernel[1]
                                                                        // folding.simd)
    return weight_memory_cost(folding.weights, depth, folding.simd * storage_bits, folding.pe)


FOLDINGS = [Folding(1, 1), Folding(4, 8), Folding(8, 36), Folding(16, 72)]


@pytest.mark.parametrize("folding", FOLDINGS, ids=str)
def test_dybit_costs_follow_storage_and_value_widths(folding: Folding) -> None:
    """Against the same op typed as the decoded integer (int6, value_bits): DSPs, FFs and cycles
    are those of a 6-bit multiplier; weight memory is that of 4-bit codes instead of 6-bit
    words; LUTs add the lanes' decoders and whatever the narrower memory saves."""
    op_int8 = conv(16, 32)
    op_dy = replace(op_int8, weight_type=DYBIT4)
    op_int6 = replace(op_int8, weight_type=IntType(DYBIT4.value_bits, True))
    assert DYBIT4.value_bits == 6 and DYBIT4.storage_bits == 4
    inputs = [source(16)]
    dy, int6 = layer_cost(op_dy, inputs, folding), layer_cost(op_int6, inputs, folding)
    codes, words = weight_memory(op_dy, inputs, folding, 4), weight_memory(op_dy, inputs, folding, 6)
    lanes = folding.pe * folding.simd
    assert (dy.cycles, dy.depth, dy.dsp, dy.ff) == (int6.cycles, int6.depth, int6.dsp, int6.ff)
    assert dy.bram18k - int6.bram18k == codes.bram18k - words.bram18k
    assert dy.lut - int6.lut == lanes * dybit.decoder_luts(4) + codes.lut - words.lut
    assert weight_decoder_luts(DYBIT4, lanes) == lanes * dybit.decoder_luts(4)
    assert weight_decoder_luts(INT8, lanes) == 0
    # against int8 the memory is that of 4-bit vs 8-bit words
    int8 = layer_cost(op_int8, inputs, folding)
    assert dy.bram18k - int8.bram18k == codes.bram18k - weight_memory(op_dy, inputs, folding, 8).bram18k


def test_decoder_is_the_only_lut_difference_when_weights_are_in_bram() -> None:
    op = conv(64, 64)
    inputs, folding = [source(64)], Folding(4, 8)
    assert weight_memory(op, inputs, folding, 4).lut == weight_memory(op, inputs, folding, 6).lut == 0
    dy = layer_cost(replace(op, weight_type=DYBIT4), inputs, folding)
    int6 = layer_cost(replace(op, weight_type=IntType(6, True)), inputs, folding)
    assert dy.lut - int6.lut == 32 * dybit.decoder_luts(4) == 32 * 6


def test_dybit4_weights_take_less_bram_than_int8() -> None:
    """A 64 -> 64 3x3 conv (36864 weights) whose weight memory dominates its BRAM."""
    op = conv(64, 64)
    inputs = [source(64, size=8)]
    for folding in (Folding(1, 1), Folding(4, 8), Folding(8, 16), Folding(16, 64)):
        dy = layer_cost(replace(op, weight_type=DYBIT4), inputs, folding)
        int8 = layer_cost(op, inputs, folding)
        assert dy.bram18k <= int8.bram18k, folding
    dy = layer_cost(replace(op, weight_type=DYBIT4), inputs, Folding(4, 8))
    int8 = layer_cost(op, inputs, Folding(4, 8))
    # 4 PE memories of 1152 words, as 512 x 36 blocks three deep: 32-bit words (8 codes) one
    # block wide, 64-bit words (8 int8 weights) two: 4 x (6 - 3) blocks saved
    assert int8.bram18k - dy.bram18k == 4 * (6 - 3)
    assert dy.bram18k < int8.bram18k


@pytest.mark.parametrize("bits", range(2, 9))
def test_dsp_macs_use_the_decoded_width(bits: int) -> None:
    """Two MACs per DSP48E2 need <= 8-bit operands: DyBit 2..5 decode to <= 8 bits, 6..8 do not."""
    op = replace(conv(16, 32), weight_type=DyBitType(bits))
    folding = Folding(8, 8)
    cost = layer_cost(op, [source(16)], folding)
    per_dsp = macs_per_dsp(2 * bits - 2, 8, "zynq_ultrascale")
    assert per_dsp == (2 if bits <= 5 else 1)
    as_int = layer_cost(replace(op, weight_type=IntType(2 * bits - 2, True)), [source(16)], folding)
    assert cost.dsp == as_int.dsp


def test_lut_macs_are_offered_for_dybit_and_integers_with_8bit_activations() -> None:
    op_int8 = conv(8, 8)
    inputs = [source(8)]
    for op in (op_int8, replace(op_int8, weight_type=IntType(4, True)), *(
            replace(op_int8, weight_type=DyBitType(bits)) for bits in (2, 4, 8))):
        options = candidate_foldings(op, inputs, max_candidates=10**6)
        dsp = {(f.pe, f.simd) for f in options if f.mac == "dsp"}
        lut = {(f.pe, f.simd) for f in options if f.mac == "lut"}
        assert lut and lut == dsp
    # wider activations: no LUT MACs, even for DyBit
    wide = [source(8, dtype=IntType(12, False))]
    assert all(f.mac == "dsp" for f in candidate_foldings(replace(op_int8, weight_type=DYBIT4), wide, 10**6))
    assert lut_macs_possible(DYBIT4, 8) and not lut_macs_possible(DYBIT4, 9)
    assert lut_macs_possible(INT8, 8) and lut_macs_possible(IntType(4, True), 4)
    assert not lut_macs_possible(IntType(9, True), 8) and not lut_macs_possible(INT8, 9)
    # depthwise and fully connected layers too
    dw = replace(conv(8, 8, groups=8, kind=DepthwiseConv), weight_type=DYBIT4)
    assert any(f.mac == "lut" for f in candidate_foldings(dw, inputs, max_candidates=10**6))
    fc = replace(linear(8, 10), weight_type=DYBIT4)
    assert any(f.mac == "lut" for f in candidate_foldings(fc, [Tensor("x", (1, 8, 1, 1), UINT8, 0.1, 0)], 10**6))


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_lut_mac_cost_formula(bits: int) -> None:
    """lut_mac_cost: FINN-R's n x a LUT multiplier + an a x log2(n) shifter; LUT-MAC stages use no
    MAC DSPs and add that per lane instead of the 6 LUTs of DSP glue; the decoders stay."""
    a = 8
    finn_r = (2 * math.ceil((bits + a) / 6) - 1) * (bits + a)
    assert lut_mac_cost(DyBitType(bits), a) == finn_r + a * max(1, math.ceil(math.log2(bits)))
    assert lut_mac_cost(IntType(bits, True), a) == finn_r
    op = replace(conv(16, 32), weight_type=DyBitType(bits))
    inputs = [source(16)]
    dsp = layer_cost(op, inputs, Folding(8, 8))
    lut = layer_cost(op, inputs, Folding(8, 8, "lut"))
    lanes = 64
    mac_dsps = -(-lanes // macs_per_dsp(DyBitType(bits).value_bits, a, "zynq_ultrascale"))
    assert dsp.dsp - lut.dsp == mac_dsps
    assert lut.lut - dsp.lut == lanes * (lut_mac_cost(DyBitType(bits), a) - 6)
    assert (lut.cycles, lut.bram18k, lut.ff) == (dsp.cycles, dsp.bram18k, dsp.ff)


def dybit_graph(case: str, formats: dict[str, str]) -> Graph:
    model, calibration = build(case)
    qdq = quantize_qdq(model, calibration)
    return optimize(load_onnx(with_weight_formats(qdq, {k: WeightFormat.parse(v) for k, v in formats.items()})))


@pytest.fixture(scope="module")
def gemm_dybit() -> Graph:
    """flatten_gemm with an int8 conv and a DyBit4 Gemm."""
    return dybit_graph("flatten_gemm", {"gemm9_node": "dybit4"})


def test_engine_refuses_dybit_layers(gemm_dybit: Graph) -> None:
    with pytest.raises(EngineUnsupported) as error:
        instructions(gemm_dybit)
    message = str(error.value)
    assert "'gemm9_node'" in message and "dybit4" in message and "dataflow" in message
    # the same model with integer weights runs on the engine
    model, calibration = build("flatten_gemm")
    assert instructions(optimize(load_onnx(quantize_qdq(model, calibration))))
    with pytest.raises(EngineUnsupported, match="gemm9_node"):
        map_to_board(gemm_dybit, load_board("ultra96v2"), architecture="sequential")


def test_auto_maps_a_dybit_model_as_dataflow(gemm_dybit: Graph) -> None:
    board = load_board("ultra96v2")
    mapping = map_to_board(gemm_dybit, board, architecture="auto")
    assert isinstance(mapping, Mapping) and mapping.architecture == "dataflow"
    assert set(mapping.foldings) == {op.name for op in gemm_dybit}
    gemm = next(op for op in gemm_dybit if op.name == "gemm9_node")
    assert gemm.weight_type == DYBIT4
    assert mapping.foldings["gemm9_node"] in candidate_foldings(gemm, gemm_dybit.input_tensors(gemm), 10**6)


def test_auto_does_not_fall_back_to_the_engine_for_dybit(gemm_dybit: Graph) -> None:
    """When the pipeline does not fit, the engine cannot take DyBit layers either: one error
    saying both."""
    with pytest.raises(MappingInfeasible) as error:
        map_to_board(gemm_dybit, load_board("ultra96v2"), caps={"dsp": 0.0, "lut": 0.001}, architecture="auto")
    assert "gemm9_node" in str(error.value) and "dybit4" in str(error.value)
