"""Sparse convolutions on the engine: refused. The engine streams dense tensors row by row
through a ring of whole rows; a sparse layer's token streams are the dataflow pipeline's."""

from hwcodesign.hardware.engine.config import SPARSE_REFUSAL
from hwcodesign.ops.refusal import Refused

FACET = Refused(SPARSE_REFUSAL)
