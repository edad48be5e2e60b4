"""The package's onnxruntime reference runner, QDQ quantizer and ONNX graph editor."""

from __future__ import annotations

import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from support.onnx_models import IR_VERSION, GraphBuilder

from hwcodesign.errors import HwcodesignError
from hwcodesign.onnx_edit import GraphEdit, expose_outputs, quantizer_outputs
from hwcodesign.quantize import quantize_qdq
from hwcodesign.reference import Reference, run_reference


def small_model() -> tuple[onnx.ModelProto, list[np.ndarray]]:
    b = GraphBuilder(seed=1)
    x = b.input((1, 2, 6, 6), "x")
    y = b.node("Relu", [b.conv(x, 2, 3, pads=[1, 1, 1, 1])])
    rng = np.random.default_rng(0)
    return b.model([y]), [rng.normal(0, 1, (1, 2, 6, 6)).astype(np.float32) for _ in range(4)]


def test_reference_runs_the_model_as_written_by_name() -> None:
    model, samples = small_model()
    reference = Reference(model)
    session_options = reference.session.get_session_options()
    assert session_options.graph_optimization_level.name == "ORT_DISABLE_ALL"
    assert session_options.intra_op_num_threads == 1
    assert reference.session.get_providers() == ["CPUExecutionProvider"]
    (output,) = reference.output_names
    outputs = reference.run({"x": samples[0]})
    assert list(outputs) == [output] and outputs[output].shape == (1, 3, 6, 6)
    assert np.array_equal(reference.frames(np.concatenate(samples))[1:2], reference.first(samples[1]))


def test_reference_exposes_intermediate_tensors() -> None:
    model, samples = small_model()
    conv = next(n for n in model.graph.node if n.op_type == "Conv").output[0]
    outputs = run_reference(model, {"x": samples[0]}, [conv, model.graph.output[0].name])
    assert np.array_equal(np.maximum(outputs[conv], 0), outputs[model.graph.output[0].name])
    assert [o.name for o in model.graph.output] == [model.graph.output[0].name]  # the caller's model untouched


def test_quantized_intermediates_keep_their_integer_type() -> None:
    model, samples = small_model()
    qdq = quantize_qdq(model, samples, ir_version=IR_VERSION)
    quantizers = quantizer_outputs(qdq)
    assert quantizers and set(quantizers.values()) == {TensorProto.UINT8}
    outputs = Reference(qdq, intermediates=quantizers).run({"x": samples[0]}, list(quantizers))
    assert all(value.dtype == np.uint8 for value in outputs.values())


def test_missing_onnxruntime_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    model, samples = small_model()
    with pytest.raises(HwcodesignError, match=r"pip install hwcodesign\[examples\]"):
        Reference(model)
    monkeypatch.setitem(sys.modules, "onnxruntime.quantization", None)
    with pytest.raises(HwcodesignError, match=r"pip install hwcodesign\[examples\]"):
        quantize_qdq(model, samples)


def test_quantize_takes_a_stack_or_a_list_of_feeds_alike() -> None:
    model, samples = small_model()
    from_list = quantize_qdq(model, samples)
    from_stack = quantize_qdq(model, np.concatenate(samples), input_name="x")
    from_dicts = quantize_qdq(model, [{"x": s} for s in samples], per_channel=True)
    assert from_list.SerializeToString() == from_stack.SerializeToString() == from_dicts.SerializeToString()


def test_graph_edit_inserts_rewires_sorts_and_prunes() -> None:
    model, samples = small_model()
    edit = GraphEdit(model)
    relu = next(n for n in model.graph.node if n.op_type == "Relu")
    conv_out = relu.input[0]
    assert edit.producer(conv_out).op_type == "Conv" and edit.consumers(conv_out) == [relu]
    scale = edit.add_init("s", np.float32(0.05))
    assert scale == "s" and edit.fresh("s") == "s_2" and edit.fresh("s") == "s_3"
    unused = edit.add_init("unused", np.zeros(3, np.float32))
    doubled = edit.add_node("Mul", [conv_out, scale], "scaled", "scale")
    edit.rewire(conv_out, doubled, skip=[edit.producer(doubled)])
    assert relu.input[0] == doubled
    edit.finish()  # the Mul was appended after the Relu: sorted back in front of it
    assert [n.op_type for n in model.graph.node] == ["Conv", "Mul", "Relu"]
    assert unused not in {i.name for i in model.graph.initializer}
    onnx.checker.check_model(model)
    out = model.graph.output[0].name
    got = run_reference(model, {"x": samples[0]}, [conv_out, out])
    assert np.allclose(got[out], np.maximum(got[conv_out] * np.float32(0.05), 0))


def test_graph_edit_refuses_a_cycle_and_packs_int4() -> None:
    model, _ = small_model()
    edit = GraphEdit(model)
    name = edit.add_init("w4", np.array([-8, 7, 3]), TensorProto.INT4)
    assert numpy_helper.to_array(edit.inits[name]).tolist() == [-8, 7, 3]
    edit.graph.node.append(helper.make_node("Relu", ["loop"], ["loop"], name="loop"))
    with pytest.raises(ValueError, match="cycle or a dangling input"):
        edit.finish()


def test_expose_outputs_skips_inputs_and_existing_outputs() -> None:
    model, _ = small_model()
    out = model.graph.output[0].name
    exposed = expose_outputs(model, ["x", out, "extra"], {"extra": TensorProto.UINT8})
    assert [(o.name, o.type.tensor_type.elem_type) for o in exposed.graph.output] == [
        (out, TensorProto.FLOAT), ("extra", TensorProto.UINT8)]
