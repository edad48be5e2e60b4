"""FINN's datatype annotations: what a streamlined FINN model says its integers are.

After FINN's streamlining (`ConvertQONNXtoFINN`, `Streamline`) the quantizers are gone: weights
are float initializers holding integers, activations come out of `MultiThreshold` nodes, and the
integer type of each tensor is written in `graph.quantization_annotation` under the key
`finn_datatype` (qonnx.core.datatype: BIPOLAR, BINARY, TERNARY, INTk, UINTk, FLOAT32, ...). Such a
tensor's real value is the integer itself (scale 1, zero point 0).
"""

from __future__ import annotations

import re

import numpy as np
import onnx

from hwcodesign.ir.types import BipolarType, IntType

DATATYPE_KEY = "finn_datatype"


def annotated_types(model: onnx.ModelProto) -> dict[str, str]:
    """Each annotated tensor's FINN datatype name."""
    found = {}
    for annotation in model.graph.quantization_annotation:
        for entry in annotation.quant_parameter_tensor_names:
            if entry.key == DATATYPE_KEY:
                found[annotation.tensor_name] = entry.value
    return found


def integer_type(name: str) -> IntType | None:
    """The integer type a FINN datatype name stands for; None for non-integer ones (FLOAT32,
    FIXED<...>, SCALEDINT<...>), which carry no quantization of their own."""
    name = name.upper()
    if name == "BIPOLAR":
        return BipolarType()
    if name == "BINARY":
        return IntType(1, False)
    if name == "TERNARY":
        return IntType(2, True)
    match = re.fullmatch(r"(U?)INT(\d+)", name)
    if match and 1 <= int(match.group(2)) <= 32:
        return IntType(int(match.group(2)), match.group(1) == "")
    return None


def annotated_integers(values: np.ndarray, dtype: IntType) -> np.ndarray | None:
    """The values as integers when they are integers of `dtype` (what the annotation claims),
    else None: a wrong annotation is not trusted."""
    array = np.asarray(values)
    if array.size == 0 or not np.all(np.isfinite(array)) or not np.all(array == np.rint(array)):
        return None
    q = np.rint(array).astype(np.int64)
    return q if dtype.contains(q) else None
