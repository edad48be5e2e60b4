"""The import pipeline's named passes (hwcodesign/passes/pipeline.py): their names and order, every
ONNX op type owned by one rule or pattern, disabling a pass (a model that needs it is refused
naming the node), and `--dump-ir`: one numbered file per pass, a DIR refused like `-o`."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from support.deform_cases import DeformCase, deform_qdq_model
from support.qdq_by_hand import conv_bn_relu_qdq
from support.sparse_models import SparseCase, SparseLayer, event_frames, sparse_models

from hwcodesign.cli import main
from hwcodesign.errors import UnsupportedModelError
from hwcodesign.ops import FAMILIES
from hwcodesign.ops.facets.lowering import FamilyLowering
from hwcodesign.outputs import MANIFEST_FILE
from hwcodesign.passes import (
    LOWERING_STEPS,
    MAPPING_PASSES,
    PASS_NAMES,
    PassError,
    PassOptions,
    load_onnx,
    optimize,
)
from hwcodesign.passes.lowering import lowering_patterns, lowering_rules

# the op types the lowering handled before it was split into family rules, plumbing and patterns
ONNX_OP_TYPES = {
    "QuantizeLinear", "DequantizeLinear", "Quant", "Conv", "DeformConv", "Gemm", "MatMul", "Add", "Mul",
    "BatchNormalization", "Relu", "Clip", "LeakyRelu", "MaxPool", "AveragePool", "GlobalAveragePool", "Concat",
    "Resize", "Upsample", "Flatten", "Reshape", "Identity", "Dropout", "Shape", "Abs", "ReduceMax", "ReduceSum",
    "Greater", "Cast", "SubmConv", "ReduceMean", "Pad", "Split", "Slice", "Gather", "Transpose", "Trunc",
    "BipolarQuant", "MultiThreshold",  # QONNX's 1-bit quantizer, FINN's thresholds
    "Round",  # onto the integers (CoDeNet's offsets)
    # lookup tables (ops/table): float functions of one quantized tensor and the arithmetic around them
    "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Exp", "Erf", "Softplus", "Gelu", "Sub", "Div", "Neg", "Max", "Min",
}


def without(*names: str) -> PassOptions:
    return PassOptions(frozenset(names))


def test_passes_are_named_in_order() -> None:
    assert PASS_NAMES == (
        "recognize-narrow-quantizers", "fold-constants", "lookup-tables", "fold-batch-norm", "fold-activations", "recognize-fixed-shape-offsets",
        "recognize-sparse-masks", "recognize-channel-shuffle", "lower", "remove-dead-layers", "remove-identity-acts",
        "fuse-activations", "pack-input-window",
    )
    assert set(lowering_patterns()) == set(LOWERING_STEPS)


def test_every_family_registers_lowering_and_every_op_type_has_an_owner() -> None:
    assert all(isinstance(family.lowering, FamilyLowering) for family in FAMILIES)
    patterns = {op_type for pattern in lowering_patterns().values() for op_type in pattern.op_types}
    assert set(lowering_rules()) | patterns - {"*"} == ONNX_OP_TYPES


def test_unknown_pass_is_one_line_listing_the_names() -> None:
    with pytest.raises(PassError, match="^unknown pass 'fold-bn'; the passes are: recognize-narrow-quantizers, fold-constants, ") as error:
        without("fold-bn")
    assert "\n" not in str(error.value) and "fuse-activations" in str(error.value)
    with pytest.raises(PassError, match="'lower' builds the IR and cannot be disabled"):
        without("lower")


def test_batch_norm_without_its_folding_is_refused_naming_the_node() -> None:
    assert len(load_onnx(conv_bn_relu_qdq())) == 2
    with pytest.raises(UnsupportedModelError, match=r"node 'bn' \(op BatchNormalization\): op not supported") as error:
        load_onnx(conv_bn_relu_qdq(), without("fold-batch-norm"))
    assert error.value.node == "bn"


def test_activation_without_fusion_needs_a_quantized_input() -> None:
    with pytest.raises(UnsupportedModelError, match=r"node 'relu' \(op Relu\): input 'n' comes from an unquantized "
                       r"layer 'conv' \(Conv\)"):
        load_onnx(conv_bn_relu_qdq(), without("fold-activations"))


def test_constants_without_folding_are_refused() -> None:
    model = conv_bn_relu_qdq()
    gamma = next(init for init in model.graph.initializer if init.name == "gamma")
    gamma.name = "gamma_raw"
    model.graph.node.insert(0, onnx.helper.make_node("Abs", ["gamma_raw"], ["gamma"], name="abs_gamma"))
    assert len(load_onnx(model)) == 2
    with pytest.raises(UnsupportedModelError, match=r"node 'abs_gamma' \(op Abs\)"):
        load_onnx(model, without("fold-constants"))


def test_fixed_shape_offsets_without_their_pattern_are_an_ordinary_mul() -> None:
    model, _ = deform_qdq_model(DeformCase(fixed_shape=True))
    assert next(op for op in load_onnx(model) if op.kind == "DeformConv").fixed_shape
    with pytest.raises(UnsupportedModelError, match=r"node 'pattern_mul' \(op Mul\): constant of shape \(1, 18, 1, 1\) "
                       "is not per-channel for 1 channels"):
        load_onnx(model, without("recognize-fixed-shape-offsets"))


def test_sparse_masks_without_their_pattern_are_refused() -> None:
    case = SparseCase((SparseLayer("subm", 4, 3), SparseLayer("gap"), SparseLayer("fc", 2)))
    masked, _ = sparse_models(case, event_frames(case, 0.3, 2, seed=1))
    assert any(op.kind == "SubmanifoldConv" for op in load_onnx(masked))
    with pytest.raises(UnsupportedModelError) as error:
        load_onnx(masked, without("recognize-sparse-masks"))
    assert "(op ReduceMax): op not supported" in str(error.value)  # Abs alone is an activation now


def test_disabled_ir_passes_leave_the_lowered_graph() -> None:
    graph = load_onnx(conv_bn_relu_qdq())
    everything_off = without("remove-dead-layers", "remove-identity-acts", "fuse-activations")
    assert [op.name for op in optimize(graph, everything_off)] == [op.name for op in graph]


def dumped(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name != MANIFEST_FILE)


def test_dump_ir_writes_one_numbered_file_per_pass(tmp_path: Path) -> None:
    dump = tmp_path / "ir"
    options = PassOptions(frozenset({"remove-identity-acts"}), dump)
    optimize(load_onnx(conv_bn_relu_qdq(), options), options)
    # (the mapping-time pass is dumped by `compile` when the mapper takes it)
    numbered = [f"{number:02d}-{name}.txt" for number, name in enumerate(PASS_NAMES, 1) if name not in MAPPING_PASSES]
    assert dumped(dump) == [name for name in numbered if "identity" not in name]
    assert (dump / "04-fold-batch-norm.txt").read_text().splitlines()[2:] == ["1 node(s) taken:", "  bn (BatchNormalization)"]
    assert (dump / "05-fold-activations.txt").read_text().endswith("  relu (Relu)\n")
    lower = (dump / "09-lower.txt").read_text().splitlines()
    assert lower[0] == "# after pass 9 'lower'" and any(line.startswith("conv = Conv(xq) -> yq ") for line in lower)
    load_onnx(conv_bn_relu_qdq(), PassOptions(frozenset({"fold-constants"}), dump))  # a rerun replaces the dumps
    assert dumped(dump) == numbered[:1] + numbered[2:9]


def test_cli_options(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "model.onnx"
    onnx.save(conv_bn_relu_qdq(), model)
    monkeypatch.chdir(tmp_path)
    assert main(["inspect", str(model), "--dump-ir", "ir", "--disable-pass", "fuse-activations"]) == 0
    assert dumped(tmp_path / "ir")[-4:] == [
        "08-recognize-channel-shuffle.txt", "09-lower.txt", "10-remove-dead-layers.txt", "11-remove-identity-acts.txt"]
    capsys.readouterr()
    assert main(["inspect", str(model), "--disable-pass", "nope"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["inspect", str(model), "--disable-pass", "fold-batch-norm"]) == 2
    assert "node 'bn' (op BatchNormalization): op not supported" in capsys.readouterr().err
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    assert main(["inspect", str(model), "--dump-ir", "mine"]) == 2
    err = capsys.readouterr().err
    assert "did not write (notes.txt)" in err and " -o" not in err
    assert main(["inspect", str(model), "--dump-ir", str(tmp_path)]) == 2
    assert "choose another --dump-ir" in capsys.readouterr().err
