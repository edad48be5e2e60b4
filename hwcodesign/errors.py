"""Errors the compiler raises on bad input.

Every error a user can trigger derives from `HwcodesignError`, so the CLI can print one clear
line (no traceback) and exit non-zero, while programming errors still surface as tracebacks.
"""

from __future__ import annotations


class HwcodesignError(Exception):
    """Base class for every error caused by the user's input rather than by a bug."""


class ModelFormatError(HwcodesignError):
    """The file is not a readable, valid ONNX model (missing, truncated, fails the checker)."""


class UnsupportedModelError(HwcodesignError):
    """The model is valid ONNX but uses something the hardware flow cannot build.

    The message always names the node, its op type and the reason, so the user knows what to
    change in the model.
    """

    def __init__(self, node: str, op_type: str, reason: str) -> None:
        self.node = node
        self.op_type = op_type
        self.reason = reason
        super().__init__(f"node '{node}' (op {op_type}): {reason}")


class GraphError(HwcodesignError):
    """An IR graph is inconsistent (dangling edge, shape or type mismatch)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid graph:\n  " + "\n  ".join(problems))


class BoardError(HwcodesignError):
    """An unknown board name or a malformed board description."""
