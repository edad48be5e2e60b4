"""ONNX toolkit: read and check a quantized model (QDQ or QONNX), and the values, quantizers and
helpers its lowering works with. The lowering itself is a pass (`hwcodesign.passes.load_onnx`)
over the op families' rules (`hwcodesign/ops/<family>/lowering.py`)."""

from __future__ import annotations

from hwcodesign.frontend.loader import read_model

__all__ = ["read_model"]
