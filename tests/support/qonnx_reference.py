"""qonnx's own executor (`qonnx.core.onnx_exec.execute_onnx`) as the reference for QONNX and FINN
models: the tool FINN users run, which nobody here wrote.

qonnx 1.0.0 runs every standard node as a one-node model it makes with onnx's `make_model`, which
stamps onnx 1.23's IR version 14; onnxruntime < 1.32 reads at most IR 13 and refuses every such
model. `runnable_node_models` stamps the IR version the suite's models use instead, only while
qonnx runs; nothing else about the models changes.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from support.onnx_models import IR_VERSION


@contextlib.contextmanager
def runnable_node_models() -> Iterator[None]:
    """qonnx's per-node models written with an IR version onnxruntime reads."""
    import qonnx.core.onnx_exec as onnx_exec

    original = onnx_exec.qonnx_make_model

    def make_model(graph: onnx.GraphProto, **kwargs: object) -> onnx.ModelProto:
        model = original(graph, **kwargs)
        model.ir_version = min(model.ir_version, IR_VERSION)
        return model

    onnx_exec.qonnx_make_model = make_model
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        onnx_exec.qonnx_make_model = original


def loaded(model: str | Path | onnx.ModelProto) -> onnx.ModelProto:
    return model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))


def cleaned(model: str | Path | onnx.ModelProto) -> Any:
    """The model as FINN's flow reads it: a qonnx ModelWrapper after `cleanup_model` (shapes
    inferred, constants folded but quantizers kept, Transposes folded into quantized weights)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    with runnable_node_models():
        return cleanup_model(ModelWrapper(loaded(model)))


def run_reference(model: str | Path | onnx.ModelProto, inputs: np.ndarray) -> np.ndarray:
    """The whole model's output for each of `inputs` (N, ...) by qonnx's `execute_onnx` on the
    cleaned model, one sample at a time when the graph has batch 1, stacked to (N, ...)."""
    from qonnx.core.onnx_exec import execute_onnx

    wrapper = cleaned(model)
    graph_input = wrapper.graph.input[0].name
    output = wrapper.graph.output[0].name
    batch = wrapper.get_tensor_shape(graph_input)[0]
    step = 1 if batch == 1 else len(inputs)
    with runnable_node_models():
        outputs = [execute_onnx(wrapper, {graph_input: inputs[i:i + step]})[output]
                   for i in range(0, len(inputs), step)]
    return np.concatenate(outputs, axis=0).astype(np.float32)


def qonnx_run(model: onnx.ModelProto, frames: np.ndarray) -> tuple[Any, list[dict[str, np.ndarray]]]:
    """The cleaned-up model (a qonnx ModelWrapper, whose tensor names cleanup renames) and, for
    each of `frames` (N, ...) of its one input, every tensor qonnx computes."""
    from qonnx.core.onnx_exec import execute_onnx

    wrapper = cleaned(model)
    name = wrapper.graph.input[0].name
    with runnable_node_models():
        return wrapper, [execute_onnx(wrapper, {name: frames[i:i + 1]}, return_full_exec_context=True)
                         for i in range(len(frames))]


def qonnx_tensors(model: str | Path | onnx.ModelProto, frames: Iterable[np.ndarray],
                  names: Iterable[str]) -> dict[str, np.ndarray]:
    """The tensors `names` of the model as written (no cleanup: its tensor names stay) for each
    frame (batch 1 each), stacked: what an accelerator's layers are compared with."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    source = onnx.ModelProto.FromString(loaded(model).SerializeToString())
    source.ir_version = min(source.ir_version, IR_VERSION)
    with runnable_node_models():
        wrapper = ModelWrapper(source)
        if not wrapper.check_all_tensor_shapes_specified():
            wrapper = wrapper.transform(InferShapes())
        input_name = wrapper.graph.input[0].name
        runs = [execute_onnx(wrapper, {input_name: frame}, return_full_exec_context=True) for frame in frames]
    names = list(names)
    return {name: np.concatenate([run[name] for run in runs]) for name in names}
