"""ONNX frontend: read a quantized model (QDQ or QONNX) and lower it to the integer IR."""

from __future__ import annotations

from pathlib import Path

import onnx

from hwcodesign.frontend.loader import read_model
from hwcodesign.frontend.lowering import SUPPORTED_OPS, Lowering
from hwcodesign.ir.graph import Graph


def load_onnx(source: str | Path | onnx.ModelProto) -> Graph:
    """Read, check and lower a quantized ONNX model; raises a HwcodesignError on bad input."""
    return Lowering(read_model(source)).run()


__all__ = ["SUPPORTED_OPS", "load_onnx", "read_model"]
