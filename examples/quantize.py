"""onnxruntime static QDQ quantization, shared by the example builders.

``examples/build_models.py`` (the small ResNet) and ``examples/codenet/build.py`` (the CoDeNet-like
detector) both quantize a float ONNX model with onnxruntime's ``quantize_static`` in the same
convention: QDQ format, per-output-channel symmetric int8 or int4 weights, asymmetric uint8
activations calibrated with MinMax on a stack of batch-1 inputs, on the CPU provider, with
onnxruntime's chatty logging silenced. ``quantize_qdq`` is that call.

The examples folder is not a package: both builders import this file by path (``importlib``),
registered in ``sys.modules`` as ``hwcodesign_examples_quantize``, so there is one instance.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx

#: Weight bits -> the name of onnxruntime's ``QuantType`` member.
WEIGHT_TYPES = {8: "QInt8", 4: "QInt4"}


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence Python warnings and all logging below ERROR (``quantize_static`` logs chatty
    warnings through the root logger; the torch exporter warns about deprecations)."""
    root = logging.getLogger()
    old_level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(old_level)


class ArrayReader:
    """Calibration inputs ``{input_name: batch[i:i+1]}`` over a stack of inputs, batch 1, in
    the ``get_next``/``rewind`` protocol of onnxruntime's ``CalibrationDataReader``."""

    def __init__(self, batch: np.ndarray, input_name: str):
        self._items = [{input_name: batch[i : i + 1]} for i in range(len(batch))]
        self._it = iter(self._items)

    def get_next(self):
        return next(self._it, None)

    def rewind(self):
        self._it = iter(self._items)


def quantize_qdq(
    model: onnx.ModelProto,
    calibration: np.ndarray,
    *,
    weight_bits: int,
    input_name: str = "input",
    pre_process: bool = False,
    nodes_to_exclude: Sequence[str] = (),
) -> onnx.ModelProto:
    """``model`` quantized by onnxruntime's ``quantize_static``; returns the QDQ model.

    Per-output-channel symmetric ``weight_bits`` (8 or 4) weights, asymmetric uint8
    activations with MinMax ranges over ``calibration`` (N inputs, fed one at a time as
    ``input_name``). int4 needs the model at opset >= 21 (native int4 Q/DQ); the caller
    converts it. ``pre_process`` first runs onnxruntime's ``quant_pre_process`` (shape
    inference and graph optimization); ``nodes_to_exclude`` stay float.
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if weight_bits not in WEIGHT_TYPES:
        raise ValueError(f"weight_bits must be one of {sorted(WEIGHT_TYPES)}, got {weight_bits}")

    class Reader(ArrayReader, CalibrationDataReader):
        pass

    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        source = td / "float.onnx"
        onnx.save(model, str(source))
        if pre_process:
            quant_pre_process(str(source), str(td / "pre.onnx"))
            source = td / "pre.onnx"
        with quiet():
            quantize_static(
                str(source),
                str(td / "q.onnx"),
                Reader(calibration, input_name),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=getattr(QuantType, WEIGHT_TYPES[weight_bits]),
                nodes_to_exclude=list(nodes_to_exclude) or None,
                calibration_providers=["CPUExecutionProvider"],
            )
        return onnx.load(str(td / "q.onnx"))


def keep_used_opsets(model: onnx.ModelProto, always: Iterable[str] = ("",)) -> None:
    """Drop the opset imports of domains no node uses (``always`` are kept regardless);
    ``quant_pre_process`` leaves one for every domain onnxruntime knows."""
    used = {n.domain for n in model.graph.node} | set(always)
    kept = [o for o in model.opset_import if o.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(kept)
