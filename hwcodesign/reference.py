"""The onnxruntime reference: what a model means, as the golden model is checked against it.

The reference semantics are the model as written: graph optimisations OFF (ORT_DISABLE_ALL), so a
QDQ group runs as DequantizeLinear -> float op -> QuantizeLinear instead of a fused integer
kernel with its own approximations (QLinearAveragePool was measured up to 7 LSB away from the
model's own float semantics), on the CPU provider with one thread, so that every run gives the
same floats. `Reference(model, optimized=True)` exists only to time the fast path users get
(benchmarks); it is not the reference.

onnxruntime is not a base dependency (the `examples` and `test` extras install it): it is
imported when a reference is made, and its absence is a `HwcodesignError` naming the extra.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from hwcodesign.errors import HwcodesignError
from hwcodesign.onnx_edit import expose_outputs

EXTRA = "pip install hwcodesign[examples]"


def onnxruntime_installed() -> bool:
    """Whether onnxruntime is there to import (found, not imported: importing it takes a second)."""
    return importlib.util.find_spec("onnxruntime") is not None


def onnxruntime() -> Any:
    """The onnxruntime module, or a HwcodesignError saying which extra installs it."""
    try:
        import onnxruntime as ort
    except ImportError as error:
        raise HwcodesignError(f"running the onnxruntime reference needs onnxruntime: {EXTRA}") from error
    return ort


class Reference:
    """One onnxruntime session on `model`, inputs and outputs by name.

    `intermediates` names tensors inside the graph to return as well (added as graph outputs on
    a copy of the model), for a layer-by-layer comparison with the golden model: float tensors,
    or a mapping from name to ONNX element type (a QuantizeLinear output is uint8 or int8).
    """

    def __init__(self, model: onnx.ModelProto | str | Path, intermediates: Iterable[str] | Mapping[str, int] = (),
                 optimized: bool = False, threads: int = 1) -> None:
        ort = onnxruntime()
        names = list(intermediates)
        if names:
            proto = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))
            types = intermediates if isinstance(intermediates, Mapping) else None
            model = expose_outputs(proto, names, types)
        options = ort.SessionOptions()
        if not optimized:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
        self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        self.input_names = [value.name for value in self.session.get_inputs()]
        self.output_names = [value.name for value in self.session.get_outputs()]

    def run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Outputs by name (every graph output, or the named ones) for inputs by name."""
        names = list(outputs) if outputs is not None else self.output_names
        return dict(zip(names, self.session.run(names, dict(feeds))))

    def first(self, x: np.ndarray) -> np.ndarray:
        """Output 0 for a single-input model fed `x` (float32)."""
        (name,) = self.input_names
        return self.session.run(self.output_names[:1], {name: x.astype(np.float32, copy=False)})[0]

    def frames(self, frames: np.ndarray) -> np.ndarray:
        """Output 0 of a batch-1 single-input model run frame by frame, stacked along N."""
        return np.concatenate([self.first(frame[None]) for frame in frames])


def run_reference(model: onnx.ModelProto | str | Path, feeds: Mapping[str, np.ndarray],
                  outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """One run of `model` under the reference semantics: outputs (or the named tensors) by name."""
    return Reference(model, intermediates=[n for n in outputs or () if n]).run(feeds, outputs)
