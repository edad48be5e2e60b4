"""ONNX frontend: read a quantized model (QDQ or QONNX) and lower it to the integer IR."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx

from hwcodesign.errors import HwcodesignError
from hwcodesign.frontend.loader import origin_of, read_model, type_error
from hwcodesign.frontend.lowering import SUPPORTED_OPS, Lowering
from hwcodesign.ir.graph import Graph


def load_onnx(source: str | Path | onnx.ModelProto) -> Graph:
    """Read, check and lower a quantized ONNX model; raises a HwcodesignError on bad input.

    A model the ONNX checker's type and shape inference refuses is still refused, but in the
    lowering's words when it has some: they say what to change ("P must have shape (1, 18, 1, 1)")
    where the checker says only that shapes do not broadcast.
    """
    model = read_model(source)
    invalid = type_error(model, origin_of(source))
    if invalid is None:
        return Lowering(model).run()
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):  # its numbers may be anything
            warnings.simplefilter("ignore")
            Lowering(model).run()
    except HwcodesignError as error:
        raise error from None
    except Exception:  # noqa: BLE001, S110 - lowering assumes a type-valid model; the checker's error is the answer
        pass
    raise invalid


__all__ = ["SUPPORTED_OPS", "load_onnx", "read_model"]
