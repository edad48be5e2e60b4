"""Per-layer weight formats in ONNX models (hwcodesign/frontend/formats.py) and how the frontend
types and checks them: metadata round trip, weights typed as their format, one clear error
naming the layer for every inconsistent model or formats file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from support.compare import compare_with_onnxruntime
from support.op_cases import build

from hwcodesign.errors import HwcodesignError, UnsupportedModelError
from hwcodesign.frontend.formats import (
    FORMATS_KEY,
    load_formats_file,
    parse_formats,
    read_formats,
    weight_nodes,
    with_weight_formats,
)
from hwcodesign.ir import dybit
from hwcodesign.ir.types import DyBitType, IntType
from hwcodesign.passes import load_onnx, optimize
from hwcodesign.quant.formats import WeightFormat
from hwcodesign.quantize import quantize_qdq

CONV, GEMM = "conv3_node", "gemm9_node"  # the weight nodes of op case flatten_gemm


@pytest.fixture(scope="module")
def gemm_model() -> tuple[onnx.ModelProto, list[np.ndarray]]:
    """flatten_gemm (Conv -> Relu -> MaxPool -> Flatten -> Gemm), int8 QDQ by onnxruntime."""
    model, calibration = build("flatten_gemm")
    return quantize_qdq(model, calibration), calibration


def with_metadata(model: onnx.ModelProto, value: str) -> onnx.ModelProto:
    edited = onnx.ModelProto()
    edited.CopyFrom(model)
    kept = [p for p in edited.metadata_props if p.key != FORMATS_KEY]
    del edited.metadata_props[:]
    edited.metadata_props.extend(kept)
    edited.metadata_props.append(onnx.StringStringEntryProto(key=FORMATS_KEY, value=value))
    return edited


def weights_by_layer(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    graph = optimize(load_onnx(model))
    return {op.name: op for op in graph if hasattr(op, "weight_type")}


def test_weight_nodes_are_conv_gemm_matmul(gemm_model: tuple[onnx.ModelProto, list[np.ndarray]]) -> None:
    model, _ = gemm_model
    assert sorted(weight_nodes(model)) == [CONV, GEMM]


def test_metadata_round_trip(gemm_model: tuple[onnx.ModelProto, list[np.ndarray]]) -> None:
    model, _ = gemm_model
    assert read_formats(model) == {}
    formats = {CONV: WeightFormat.parse("dybit4"), GEMM: WeightFormat.parse("int4")}
    written = with_weight_formats(model, formats)
    assert read_formats(written) == formats
    entry = next(p.value for p in written.metadata_props if p.key == FORMATS_KEY)
    assert json.loads(entry) == {CONV: "dybit4", GEMM: "int4"}
    onnx.checker.check_model(written)
    # the input model is not modified
    assert read_formats(model) == {} and len(written.graph.node) == len(model.graph.node)
    # a second call merges: the earlier layer keeps its format, the new one is added
    only_conv = with_weight_formats(model, {CONV: WeightFormat.parse("dybit3")})
    both = with_weight_formats(only_conv, {GEMM: WeightFormat.parse("dybit2")})
    assert read_formats(both) == {CONV: WeightFormat.parse("dybit3"), GEMM: WeightFormat.parse("dybit2")}
    # other metadata entries survive
    tagged = onnx.ModelProto()
    tagged.CopyFrom(model)
    tagged.metadata_props.append(onnx.StringStringEntryProto(key="author", value="me"))
    kept = with_weight_formats(tagged, formats)
    assert {p.key: p.value for p in kept.metadata_props}["author"] == "me"


def test_weights_are_typed_as_their_format(gemm_model: tuple[onnx.ModelProto, list[np.ndarray]]) -> None:
    model, calibration = gemm_model
    assert {name: op.weight_type for name, op in weights_by_layer(model).items()} == {
        CONV: IntType(8, True), GEMM: IntType(8, True)}
    written = with_weight_formats(model, {CONV: WeightFormat.parse("dybit4"), GEMM: WeightFormat.parse("int4")})
    ops = weights_by_layer(written)
    assert ops[CONV].weight_type == DyBitType(4)
    assert ops[GEMM].weight_type == IntType(4, True)
    assert dybit.representable(ops[CONV].weight, 4).all()
    assert np.abs(ops[GEMM].weight).max() <= 7
    # the rewritten model is a plain QDQ model onnxruntime runs, within 1 LSB of the golden model
    agreement = compare_with_onnxruntime(written, calibration[:4])
    assert agreement.max_lsb <= 1, str(agreement)


def test_layers_not_named_keep_their_integer_type(gemm_model: tuple[onnx.ModelProto, list[np.ndarray]]) -> None:
    model, _ = gemm_model
    ops = weights_by_layer(with_weight_formats(model, {GEMM: WeightFormat.parse("dybit3")}))
    assert (ops[CONV].weight_type, ops[GEMM].weight_type) == (IntType(8, True), DyBitType(3))


def test_metadata_claiming_dybit_on_integer_weights_is_refused(
        gemm_model: tuple[onnx.ModelProto, list[np.ndarray]]) -> None:
    model, _ = gemm_model
    lying = with_metadata(model, json.dumps({CONV: "dybit4"}))
    with pytest.raises(UnsupportedModelError) as error:
        load_onnx(lying)
    assert (error.value.node, error.value.op_type) == (CONV, "Conv")
    assert "dybit4" in str(error.value) and "not a dybit4 level" in str(error.value)
    assert "with_weight_formats" in str(error.value)


def test_metadata_claiming_int4_on_int8_weights_is_refused(
        gemm_model: tuple[onnx.ModelProto, list[np.ndarray]]) -> None:
    model, _ = gemm_model
    with pytest.raises(UnsupportedModelError) as error:
        load_onnx(with_metadata(model, json.dumps({GEMM: "int4"})))
    assert (error.value.node, error.value.op_type) == (GEMM, "Gemm")
    assert "int4" in str(error.value)


def test_metadata_naming_an_unknown_layer_is_refused(gemm_model: tuple[onnx.ModelProto, list[np.ndarray]]) -> None:
    model, _ = gemm_model
    written = with_weight_formats(model, {CONV: WeightFormat.parse("dybit4")})
    for name in ("no_such_layer", "maxpool5_node"):  # absent, and a node that has no weights
        with pytest.raises(UnsupportedModelError) as error:
            load_onnx(with_metadata(written, json.dumps({CONV: "dybit4", name: "dybit4"})))
        assert error.value.node == name
        assert name in str(error.value) and FORMATS_KEY in str(error.value)


def test_metadata_with_a_bad_format_name_is_refused(gemm_model: tuple[onnx.ModelProto, list[np.ndarray]]) -> None:
    model, _ = gemm_model
    with pytest.raises(HwcodesignError, match=f"{CONV}.*float8"):
        load_onnx(with_metadata(model, json.dumps({CONV: "float8"})))


def test_with_weight_formats_refuses_an_unknown_layer(gemm_model: tuple[onnx.ModelProto, list[np.ndarray]]) -> None:
    model, _ = gemm_model
    with pytest.raises(HwcodesignError) as error:
        with_weight_formats(model, {"conv99": WeightFormat.parse("dybit4"), CONV: WeightFormat.parse("dybit4")})
    assert "conv99" in str(error.value)
    assert CONV in str(error.value) and GEMM in str(error.value)  # it lists the layers there are


def test_parse_formats() -> None:
    expected = {"a": WeightFormat("dybit", 4), "b": WeightFormat("int", 8)}
    assert parse_formats({"a": "dybit4", "b": "int8"}, "here") == expected
    assert parse_formats({"layers": {"a": "dybit4", "b": "int8"}}, "here") == expected
    with pytest.raises(HwcodesignError, match="here: expected a JSON object"):
        parse_formats(["dybit4"], "here")
    with pytest.raises(HwcodesignError, match="here: layer 'a': DyBit formats are 2..8 bits, got 9"):
        parse_formats({"a": "dybit9"}, "here")


def test_load_formats_file_errors(tmp_path: Path) -> None:
    good = tmp_path / "formats.json"
    good.write_text(json.dumps({"layers": {CONV: "dybit4"}}))
    assert load_formats_file(good) == {CONV: WeightFormat("dybit", 4)}

    malformed = tmp_path / "malformed.json"
    malformed.write_text('{"conv3_node": "dybit4",')
    with pytest.raises(HwcodesignError, match="cannot read weight formats from .*malformed.json"):
        load_formats_file(malformed)

    missing = tmp_path / "absent.json"
    with pytest.raises(HwcodesignError, match="cannot read weight formats from .*absent.json"):
        load_formats_file(missing)

    bad_name = tmp_path / "bad_name.json"
    bad_name.write_text(json.dumps({"layers": {CONV: "float8"}}))
    with pytest.raises(HwcodesignError) as error:
        load_formats_file(bad_name)
    message = str(error.value)
    assert "bad_name.json" in message and CONV in message and "float8" in message and "intN or dybitN" in message

    not_object = tmp_path / "list.json"
    not_object.write_text(json.dumps(["dybit4"]))
    with pytest.raises(HwcodesignError, match="expected a JSON object"):
        load_formats_file(not_object)


def test_dybit_on_a_deformable_conv_is_refused() -> None:
    from support.deform_cases import DeformCase, deform_qdq_model

    model, _ = deform_qdq_model(DeformCase(), calibration=2)
    assert "deform" not in weight_nodes(model)  # with_weight_formats cannot even name it
    with pytest.raises(HwcodesignError, match="deform"):
        with_weight_formats(model, {"deform": WeightFormat.parse("dybit4")})
    with pytest.raises(UnsupportedModelError) as error:
        load_onnx(with_metadata(model, json.dumps({"deform": "dybit4"})))
    assert (error.value.node, error.value.op_type) == ("deform", "DeformConv")
    assert "dybit4" in str(error.value) and "deformable" in str(error.value)
    # the ordinary convolutions of the same model may have DyBit weights
    ops = weights_by_layer(with_weight_formats(model, {"off_conv": WeightFormat.parse("dybit4")}))
    assert ops["off_conv"].weight_type == DyBitType(4)
    assert ops["deform"].weight_type == IntType(8, True)


def initializer_types(model: onnx.ModelProto) -> dict[str, int]:
    return {init.name: init.data_type for init in model.graph.initializer}


def test_wide_dybit_levels_use_int32_at_the_models_opset(gemm_model: tuple[onnx.ModelProto, list[np.ndarray]]) -> None:
    """Levels that fit int8 are written as int8 (every DyBit 5 level does, and rounded wider
    formats often do); wider ones as int32, which DequantizeLinear takes at any opset >= 10, so
    the model keeps its opset (raising it would change the meaning of other ops)."""
    model, calibration = gemm_model
    assert model.opset_import[0].version == 17
    narrow = with_weight_formats(model, {CONV: WeightFormat.parse("dybit5")})
    assert narrow.opset_import[0].version == 17
    assert initializer_types(narrow)[f"{CONV}_dybit5_q"] == onnx.TensorProto.INT8

    for fmt in ("dybit6", "dybit8"):
        wide = with_weight_formats(model, {CONV: WeightFormat.parse(fmt), GEMM: WeightFormat.parse("dybit4")})
        onnx.checker.check_model(wide)
        assert [o.version for o in wide.opset_import if o.domain in ("", "ai.onnx")] == [17]
        types = initializer_types(wide)
        levels = numpy_helper.to_array(next(i for i in wide.graph.initializer if i.name == f"{CONV}_{fmt}_q"))
        expected = onnx.TensorProto.INT8 if np.abs(levels).max() <= 127 else onnx.TensorProto.INT32
        assert types[f"{CONV}_{fmt}_q"] == expected
        assert types[f"{GEMM}_dybit4_q"] == onnx.TensorProto.INT8
        assert np.abs(levels).max() <= dybit.max_level(int(fmt[-1]))
        ops = weights_by_layer(wide)
        assert ops[CONV].weight_type == DyBitType(int(fmt[-1]))
        agreement = compare_with_onnxruntime(wide, calibration[:4])
        assert agreement.max_lsb <= 1, f"{fmt}: {agreement}"


def test_malformed_metadata_json_is_a_clear_error(gemm_model: tuple[onnx.ModelProto, list[np.ndarray]]) -> None:
    model, _ = gemm_model
    with pytest.raises(HwcodesignError, match="hwcodesign.weight_formats' is not valid JSON"):
        load_onnx(with_metadata(model, "{conv: dybit4"))


def test_a_format_applied_twice_gives_a_valid_model(gemm_model: tuple[onnx.ModelProto, list[np.ndarray]]) -> None:
    """Names derived for the second rewrite do not collide with the first's; the first's
    DequantizeLinear and initializers are dropped."""
    model, calibration = gemm_model
    once = with_weight_formats(model, {CONV: WeightFormat.parse("dybit4")})
    twice = with_weight_formats(once, {CONV: WeightFormat.parse("dybit4")})
    onnx.checker.check_model(twice, full_check=True)
    assert len(twice.graph.node) == len(once.graph.node)
    assert weights_by_layer(twice)[CONV].weight_type == DyBitType(4)
    assert compare_with_onnxruntime(twice, calibration[:2]).max_lsb <= 1
