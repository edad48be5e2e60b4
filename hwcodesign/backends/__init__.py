"""The hardware architectures behind one interface (`base.Architecture`): the dataflow pipeline
(`dataflow`) and the layer-sequential engine (`sequential`), each mapping, simulating, reporting
and writing its project; `choose` picks one and takes a mapping of either. Above the mapper, the
simulator, the report and the code generator, below the flows."""

from hwcodesign.backends.base import AnyMapping, Architecture
from hwcodesign.backends.choose import (
    ARCHITECTURES,
    BACKENDS,
    backend_of,
    build_report,
    emit_project,
    map_to_board,
    simulate,
)

__all__ = ["ARCHITECTURES", "BACKENDS", "AnyMapping", "Architecture", "backend_of", "build_report", "emit_project",
           "map_to_board", "simulate"]
