"""The lookup-table family: a float function of one quantized tensor is the table of onnxruntime's
outputs on its 2**b levels, so the golden model equals onnxruntime exactly (0 LSB), whichever
exporter form the function takes (the ONNX op, x * f(x) with f(x) quantized, the arithmetic)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from support.compare import compare_with_onnxruntime
from support.table_cases import CASES, SHAPE, build

from hwcodesign.errors import UnsupportedModelError
from hwcodesign.hardware.engine.tables import LOOKUP_ENTRIES, lookup_table_words
from hwcodesign.ir.types import IntType, Tensor
from hwcodesign.ops import Lookup
from hwcodesign.ops.table.evaluate import FloatFunction, Leaf, compute_table, fine_table
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.quantize import quantize_qdq
from hwcodesign.reference import Reference
from hwcodesign.sim import quantize_input, run_golden

U8, I8 = IntType(8, False), IntType(8, True)
FUNCTIONS = {"Sigmoid": {}, "HardSigmoid": {}, "HardSwish": {}, "Tanh": {}, "Exp": {}, "Erf": {}, "Softplus": {},
             "Gelu": {}, "GeluTanh": {"approximate": "tanh"}}
NAMES = {"sigmoid": "Sigmoid", "hard_sigmoid": "HardSigmoid", "hard_swish": "HardSwish", "tanh": "Tanh", "exp": "Exp",
         "erf": "Erf", "softplus": "Softplus", "gelu": "GELU", "gelu_tanh": "GELU", "gelu_erf": "GELU", "silu": "SiLU",
         "hard_swish_mul": "HardSwish", "hard_swish_arithmetic": "HardSwish"}
GRIDS = 24


def random_grids(dtype: IntType, seed: int) -> list[tuple[Tensor, Tensor]]:
    """Input/output grids of `dtype` (float32 scales, any zero point)."""
    rng = np.random.default_rng(seed)
    grids = []
    for _ in range(GRIDS):
        scale_in, scale_out = (float(np.float32(rng.uniform(lo, hi))) for lo, hi in ((0.004, 0.1), (0.002, 0.05)))
        zero_in, zero_out = (int(rng.integers(dtype.min, dtype.max + 1)) for _ in range(2))
        grids.append((Tensor("x", (1, 1, 1, 256), dtype, scale_in, zero_in),
                      Tensor("y", (1, 1, 1, 256), dtype, scale_out, zero_out)))
    return grids


@pytest.mark.parametrize("dtype", [U8, I8], ids=str)
@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_numpy_executor_table_equals_onnxruntime_on_every_level(function: str, dtype: IntType) -> None:
    """Without onnxruntime the numpy executor computes the table: the same integers on every level."""
    op = "Gelu" if function.startswith("Gelu") else function
    varied = 0
    for source, out in random_grids(dtype, seed=sum(map(ord, function)) + dtype.signed):
        node = helper.make_node(op, ["xf"], ["yf"], **FUNCTIONS[function])
        chain = FloatFunction(source, {"xf": Leaf(source)}, {}, (node,), "yf", 20)
        expected = compute_table(chain, out, "onnxruntime")
        assert np.array_equal(compute_table(chain, out, "numpy"), expected), (source, out)
        varied += len(np.unique(expected)) > 16
    assert varied >= GRIDS // 2, "the grids exercise the function, not only its saturation"


@pytest.mark.parametrize("dtype", [U8, I8], ids=str)
def test_numpy_executor_equals_onnxruntime_through_a_quantized_factor(dtype: IntType) -> None:
    """SiLU as quantize_static writes it: x times a table of x (sigmoid quantized), both backends."""
    for source, out in random_grids(dtype, seed=7 + dtype.signed):
        sigmoid_grid = Tensor("s", source.shape, dtype, float(np.float32(1 / 255)), dtype.min)
        sigmoid = FloatFunction(source, {"xf": Leaf(source)}, {}, (helper.make_node("Sigmoid", ["xf"], ["sf"]),), "sf", 17)
        levels = compute_table(sigmoid, sigmoid_grid, "onnxruntime")
        leaves = {"xf": Leaf(source), "sq": Leaf(sigmoid_grid, levels, "Sigmoid")}
        silu = FloatFunction(source, leaves, {}, (helper.make_node("Mul", ["xf", "sq"], ["yf"]),), "yf", 17)
        assert np.array_equal(compute_table(silu, out, "numpy"), compute_table(silu, out, "onnxruntime"))


def lowered(case: str, symmetric: bool) -> tuple[object, object]:
    model, calibration, inner = build(case)
    quantized = quantize_qdq(model, calibration, symmetric_activations=symmetric, nodes_to_exclude=inner)
    return quantized, optimize(load_onnx(quantized))


@pytest.mark.parametrize("symmetric", [False, True], ids=["uint8", "int8"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_table_equals_onnxruntime_exactly(case: str, symmetric: bool) -> None:
    quantized, graph = lowered(case, symmetric)
    (table,) = [op for op in graph if isinstance(op, Lookup)]
    assert table.function == NAMES[case]
    assert [op.kind for op in graph] == ["Input", "Conv", "Lookup", "Conv"]
    source = graph.tensor(table.inputs[0])
    assert source.dtype == (I8 if symmetric else U8) and table.output.dtype == source.dtype
    reference = Reference(quantized, {table.output.name: 3 if symmetric else 2})
    rng = np.random.default_rng(5)
    for _ in range(5):
        x = rng.normal(0, 1.5, SHAPE).astype(np.float32)
        expected = reference.run({reference.input_names[0]: x}, [table.output.name])[table.output.name]
        golden = run_golden(graph, quantize_input(graph, x), keep_intermediates=True)[table.output.name]
        assert np.array_equal(golden, expected.astype(np.int64)), case
    agreement = compare_with_onnxruntime(quantized, [rng.normal(0, 1, SHAPE).astype(np.float32) for _ in range(5)],
                                         graph=graph)
    assert agreement.max_lsb == 0, str(agreement)


def test_a_per_channel_scale_after_a_function_is_refused_by_name() -> None:
    from support.onnx_models import GraphBuilder

    b = GraphBuilder(0)
    x = b.conv(b.input(SHAPE), 4, 4, pads=[1, 1, 1, 1])
    scaled = b.node("Mul", [b.node("Sigmoid", [x]), b.const(np.linspace(0.5, 2, 4, dtype=np.float32).reshape(1, 4, 1, 1))])
    out = b.conv(scaled, 4, 4, k=1)
    rng = np.random.default_rng(1)
    model = b.model([out])
    sigmoid, mul = (node.name for node in model.graph.node[1:3])
    quantized = quantize_qdq(model, [rng.normal(0, 1, SHAPE).astype(np.float32) for _ in range(8)],
                             nodes_to_exclude=[sigmoid, mul])
    with pytest.raises(UnsupportedModelError, match="per-channel scal"):
        load_onnx(quantized)


def test_an_arithmetic_node_on_a_tensor_alone_stays_an_affine_layer() -> None:
    """x * 3 quantized is the usual per-tensor affine layer: no table where no function is."""
    from support.onnx_models import GraphBuilder

    b = GraphBuilder(0)
    x = b.conv(b.input(SHAPE), 4, 4, pads=[1, 1, 1, 1])
    out = b.conv(b.node("Mul", [x, b.const(np.float32(3))]), 4, 4, k=1)
    rng = np.random.default_rng(1)
    graph = optimize(load_onnx(quantize_qdq(b.model([out]), [rng.normal(0, 1, SHAPE).astype(np.float32)
                                                               for _ in range(8)])))
    assert not any(isinstance(op, Lookup) for op in graph)


@pytest.mark.parametrize("dtype", [U8, I8, IntType(4, True), IntType(4, False)], ids=str)
def test_engine_table_is_indexed_by_the_stored_byte(dtype: IntType) -> None:
    """The engine's copy of a table (params words, WORD_BYTES entries each): the entry at each
    level's stored byte (two's complement when signed) is that level's output byte; bytes no level
    stores hold 0."""
    source = Tensor("x", (1, 1, 1, 1), dtype, 0.1, 0)
    levels = np.arange(dtype.min, dtype.max + 1)
    table = np.random.default_rng(dtype.bits).integers(-128, 128, levels.size)  # int8 outputs
    words = lookup_table_words(table, source, 8)
    assert words.shape == (LOOKUP_ENTRIES // 8,) and words.dtype == np.uint64
    entries = words.view(np.uint8) if np.little_endian else words.byteswap().view(np.uint8)
    expected = np.zeros(LOOKUP_ENTRIES, np.uint8)
    for level, value in zip(levels.tolist(), table.tolist()):
        expected[level & 0xFF] = value & 0xFF
    assert np.array_equal(entries, expected)


@pytest.mark.parametrize(("function", "scale"), [("HardSwish", 0.05), ("Exp", 0.02), ("Sigmoid", 1e-4)])
def test_a_fine_table_holds_each_value_within_half_a_step(function: str, scale: float) -> None:
    """A lookup mean's table: the finest power-of-two grid whose 16-bit entries hold every value,
    the largest above half the range, each entry within half a step of the float value."""
    source = Tensor("x", (1, 1, 1, 1), U8, scale, 128)
    chain = FloatFunction(source, {"xf": Leaf(source)}, {}, (helper.make_node(function, ["xf"], ["yf"]),), "yf", 20)
    table, step = fine_table(chain, 16)
    assert np.log2(step) == np.round(np.log2(step))
    assert 1 << 14 < np.abs(table).max() < 1 << 15
    x = ((np.arange(256) - 128) * np.float32(scale)).astype(np.float32)
    values = {"HardSwish": x * np.clip(x / 6 + 0.5, 0, 1), "Exp": np.exp(x), "Sigmoid": 1 / (1 + np.exp(-x))}[function]
    assert np.abs(table * step - values).max() <= step / 2 + 1e-6 * np.abs(values).max()


def test_a_mean_of_a_function_over_other_axes_is_refused_by_name() -> None:
    model, calibration, _ = build("hard_swish")
    graph = model.graph
    function = next(node for node in graph.node if node.op_type == "HardSwish")
    mean = helper.make_node("ReduceMean", [function.output[0]], ["mean_out"], name="row_mean", axes=[2],
                            keepdims=1)  # opset 17: axes an attribute
    consumer = next(node for node in graph.node if function.output[0] in node.input)
    consumer.input[list(consumer.input).index(function.output[0])] = "mean_out"
    graph.node.insert(list(graph.node).index(consumer), mean)
    quantized = quantize_qdq(model, calibration, nodes_to_exclude=[function.name])
    with pytest.raises(UnsupportedModelError, match=r"row_mean.*ReduceMean.*axes \[2\].*over H and W"):
        load_onnx(quantized)
