"""Mapper: cost model per layer and folding, and the integer program that picks foldings."""

from hwcodesign.mapper.cost import Folding, LayerCost, candidate_foldings, layer_cost
from hwcodesign.mapper.ilp import Mapping, MappingInfeasible, map_to_board

__all__ = ["Folding", "LayerCost", "Mapping", "MappingInfeasible", "candidate_foldings", "layer_cost", "map_to_board"]
