"""Mapper: cost models (dataflow stages, the layer-sequential engine) and the integer program that
sizes the hardware; `map_to_board` picks the architecture."""

from hwcodesign.mapper.architecture import ARCHITECTURES, map_to_board
from hwcodesign.mapper.cost import candidate_foldings, layer_cost
from hwcodesign.mapper.engine_map import EngineMapping, map_engine
from hwcodesign.mapper.ilp import Mapping, MappingInfeasible, map_dataflow

__all__ = ["ARCHITECTURES", "EngineMapping", "Mapping", "MappingInfeasible", "candidate_foldings",
           "layer_cost", "map_dataflow", "map_engine", "map_to_board"]
