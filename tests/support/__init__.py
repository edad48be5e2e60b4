"""Helpers shared by the tests: tiny ONNX model builders and the onnxruntime comparison."""
