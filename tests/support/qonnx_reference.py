"""qonnx's own executor (`qonnx.core.onnx_exec.execute_onnx`) as the reference for QONNX models:
the tool FINN users run, which nobody here wrote.

qonnx 1.0.0 runs every standard node in a one-node model made with onnx's newest IR version
(`qonnx_make_model`), which onnxruntime 1.31 refuses ("Unsupported model IR version: 14"); those
one-node models are made at IR version 10 here, which changes no semantics.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import onnx

IR_VERSION = 10


def _patch_ir_version() -> None:
    import qonnx.core.onnx_exec as executor

    if getattr(executor.qonnx_make_model, "hwcodesign_ir_version", None) == IR_VERSION:
        return
    make_model = executor.qonnx_make_model

    def at_supported_ir(graph: onnx.GraphProto, **kwargs: object) -> onnx.ModelProto:
        model = make_model(graph, **kwargs)
        model.ir_version = min(model.ir_version, IR_VERSION)
        return model

    at_supported_ir.hwcodesign_ir_version = IR_VERSION  # type: ignore[attr-defined]
    executor.qonnx_make_model = at_supported_ir


def qonnx_tensors(model: onnx.ModelProto, frames: Iterable[np.ndarray], names: Iterable[str]) -> dict[str, np.ndarray]:
    """The tensors `names` (any in the graph) for each frame (batch 1 each), stacked."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    _patch_ir_version()
    wrapper = ModelWrapper(onnx.ModelProto.FromString(model.SerializeToString()))
    wrapper.model.ir_version = min(wrapper.model.ir_version, IR_VERSION)
    if not wrapper.check_all_tensor_shapes_specified():
        wrapper = wrapper.transform(InferShapes())
    input_name = wrapper.graph.input[0].name
    names = list(names)
    runs = [execute_onnx(wrapper, {input_name: frame}, return_full_exec_context=True) for frame in frames]
    return {name: np.concatenate([run[name] for run in runs]) for name in names}
