"""Graph -> Graph rewrites of the integer IR; `optimize` runs them all in order."""

from hwcodesign.passes.pipeline import PIPELINE, optimize

__all__ = ["PIPELINE", "optimize"]
