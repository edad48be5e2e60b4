"""Mapper: cost models (dataflow stages, the layer-sequential engine) and the integer programs that
size the hardware. Choosing the architecture, and planning the pipeline's streams by simulation,
happen above it (`hwcodesign.backends`)."""

from hwcodesign.mapper.cost import candidate_foldings, layer_cost
from hwcodesign.mapper.engine_map import EngineMapping, map_engine
from hwcodesign.mapper.ilp import map_dataflow
from hwcodesign.mapper.mapping import Mapping
from hwcodesign.mapper.table import MappingInfeasible

__all__ = ["EngineMapping", "Mapping", "MappingInfeasible", "candidate_foldings", "layer_cost", "map_dataflow",
           "map_engine"]
