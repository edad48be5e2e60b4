"""Lowering rules: how ONNX nodes become this family's IR ops."""
