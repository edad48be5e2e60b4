"""Errors the compiler raises on bad input.

Every error a user can trigger derives from `HwcodesignError`, so the CLI can print one clear
line (no traceback) and exit non-zero, while programming errors still surface as tracebacks.
"""

from __future__ import annotations


class HwcodesignError(Exception):
    """Base class for every error caused by the user's input rather than by a bug."""


class ModelNote(UserWarning):
    """Something the compiler did to or assumed about a model that the user should know, issued
    with `warnings.warn`: the command line prints each as one `hwcodesign: note: ...` line, a
    program sees a warning it can filter or record."""


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


class UnsupportedNodesError(UnsupportedModelError):
    """Several nodes cannot be built; all are reported at once, so one round of fixes suffices.

    Raised only for two or more problems (a single one stays a plain `UnsupportedModelError`);
    the message is a first line "N nodes cannot be built:" and one indented line per node.
    `node`, `op_type` and `reason` are the first problem's, for callers that handle one; `note`
    (e.g. the supported ops) is said once at the end rather than on every line.
    """

    def __init__(self, problems: list[UnsupportedModelError], note: str | None = None) -> None:
        self.problems = problems
        first = problems[0]
        self.node, self.op_type, self.reason = first.node, first.op_type, first.reason
        message = listing(f"{len(problems)} nodes cannot be built", [str(p) for p in problems])
        HwcodesignError.__init__(self, message + (f"\n  {note}" if note else ""))


class GraphError(HwcodesignError):
    """An IR graph is inconsistent (dangling edge, shape or type mismatch)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(listing("invalid graph", problems))


def listing(headline: str, items: list[str]) -> str:
    """One line for one item ("headline: item"); else the headline and one indented line per item."""
    if len(items) == 1:
        return f"{headline}: {items[0]}"
    return f"{headline}:\n" + "\n".join(f"  {item}" for item in items)


def raise_all(problems: list[UnsupportedModelError], note: str | None = None) -> None:
    """Raise the one problem as itself (`note` joined to its reason), several as one
    `UnsupportedNodesError`, none: nothing."""
    if len(problems) == 1:
        one = problems[0]
        raise UnsupportedModelError(one.node, one.op_type, f"{one.reason}; {note}") if note else one
    if problems:
        raise UnsupportedNodesError(problems, note)


class BoardError(HwcodesignError):
    """An unknown board name or a malformed board description."""
