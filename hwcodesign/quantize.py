"""Static QDQ quantization with onnxruntime's quantizer: the one call the examples and the tests make.

`quantize_qdq` wraps `onnxruntime.quantization.quantize_static` in one convention: QDQ format,
symmetric int8 or int4 weights per output channel (or per tensor), uint8 activations (int8
symmetric on request) with MinMax ranges calibrated on batch-1 feeds, on the CPU provider, with
onnxruntime's chatty logging silenced. Those are the QDQ patterns real users feed the compiler,
with scales nobody here chose.

onnxruntime is not a base dependency: it is imported when a model is quantized, and its absence
is a `HwcodesignError` naming the extra that installs it (see `hwcodesign.reference`).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx

from hwcodesign.errors import HwcodesignError
from hwcodesign.reference import EXTRA

# Weight bits -> the name of onnxruntime's `QuantType` member.
WEIGHT_TYPES = {8: "QInt8", 4: "QInt4"}

# One calibration input: a batch-1 array for the model's single input, or arrays by input name.
Feed = np.ndarray | Mapping[str, np.ndarray]


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence Python warnings and all logging below ERROR (`quantize_static` logs chatty
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


def calibration_feeds(calibration: np.ndarray | Sequence[Feed], input_name: str) -> list[dict[str, np.ndarray]]:
    """Feeds by input name: an array (N, ...) gives N batch-1 feeds; a sequence gives one feed per item."""
    if isinstance(calibration, np.ndarray):
        return [{input_name: calibration[i:i + 1]} for i in range(len(calibration))]
    return [dict(item) if isinstance(item, Mapping) else {input_name: item} for item in calibration]


class FeedReader:
    """Calibration feeds in the `get_next`/`rewind` protocol of onnxruntime's `CalibrationDataReader`."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._feeds = feeds
        self._it = iter(self._feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = iter(self._feeds)


def quantize_qdq(model: onnx.ModelProto, calibration: np.ndarray | Sequence[Feed], *, weight_bits: int = 8,
                 per_channel: bool = True, symmetric_activations: bool = False, input_name: str | None = None,
                 pre_process: bool = False, nodes_to_exclude: Sequence[str] = (),
                 extra_options: Mapping[str, object] | None = None, ir_version: int | None = None) -> onnx.ModelProto:
    """`model` quantized by onnxruntime's `quantize_static`; returns the QDQ model.

    `calibration`: an array of N inputs (fed one at a time as `input_name`, by default the
    model's first input) or a sequence of feeds. Weights are symmetric `weight_bits` (8 or 4;
    int4 needs the model at opset >= 21, the caller converts it), per output channel unless
    `per_channel` is off; activations asymmetric uint8, or symmetric int8. `pre_process` first
    runs onnxruntime's `quant_pre_process` (shape inference and graph optimization);
    `nodes_to_exclude` stay float; `ir_version` caps the result's IR version. A
    `TensorQuantOverrides` entry may name its `quant_type` as a string, "int8" or "uint8" (so
    callers need not import onnxruntime).
    """
    try:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as error:
        raise HwcodesignError(f"quantizing with onnxruntime needs onnxruntime: {EXTRA}") from error
    if weight_bits not in WEIGHT_TYPES:
        raise ValueError(f"weight_bits must be one of {sorted(WEIGHT_TYPES)}, got {weight_bits}")

    class Reader(FeedReader, CalibrationDataReader):
        pass

    feeds = calibration_feeds(calibration, input_name or model.graph.input[0].name)
    options = {"ActivationSymmetric": symmetric_activations, **(extra_options or {})}
    names = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
    if "TensorQuantOverrides" in options:
        options["TensorQuantOverrides"] = {
            tensor: [{**entry, **({"quant_type": names[entry["quant_type"]]} if isinstance(entry.get("quant_type"), str)
                                  else {})} for entry in entries]
            for tensor, entries in options["TensorQuantOverrides"].items()}  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "float.onnx", Path(tmp) / "qdq.onnx"
        onnx.save(model, str(source))
        if pre_process:
            quant_pre_process(str(source), str(Path(tmp) / "pre.onnx"))
            source = Path(tmp) / "pre.onnx"
        with quiet():
            quantize_static(
                str(source), str(target), Reader(feeds),
                quant_format=QuantFormat.QDQ, per_channel=per_channel,
                activation_type=QuantType.QInt8 if symmetric_activations else QuantType.QUInt8,
                weight_type=getattr(QuantType, WEIGHT_TYPES[weight_bits]),
                nodes_to_exclude=list(nodes_to_exclude) or None, calibrate_method=CalibrationMethod.MinMax,
                calibration_providers=["CPUExecutionProvider"], extra_options=options,
            )
        quantized = onnx.load(str(target))
    if ir_version is not None:
        quantized.ir_version = min(quantized.ir_version, ir_version)
    return quantized
