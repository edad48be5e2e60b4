"""Every deformable conv case of support/deform_cases.py in one project per folding.

Like support/op_suite.py: each case is its own DeformConv on its own inputs (names prefixed with
the case's label), all in one graph, one project per folding variant ('serial', 'parallel' and
'mapped', the ILP's choice for all the layers at once). One g++ build serves every case at that
folding (a project per case and folding took 39 builds). test_csim_deform and the deformable
loop counts share the projects, and the session's C-simulation cache builds them once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwcodesign.backends import emit_project
from hwcodesign.boards import Board
from hwcodesign.codegen.project import Project
from hwcodesign.hardware.folding import Folding
from hwcodesign.ir.graph import Graph
from support.codegen import VARIANTS, variant_mapping
from support.deform_cases import FIXED_GRID, GRID, DeformCase, DeformLayer, deform_layer, random_inputs

CASES = GRID + FIXED_GRID


@dataclass(frozen=True)
class DeformSuite:
    """The all-cases graph, each case's layer (as built alone, with the suite's names), and per
    variant the project and its layers' foldings (emitted, not compiled)."""

    graph: Graph
    layers: dict[str, DeformLayer]
    projects: dict[str, Project]
    foldings: dict[str, dict[str, Folding]]

    def inputs(self, frames: int, seed: int) -> dict[str, np.ndarray]:
        """Random frames for every case's inputs (each case's as `random_inputs` draws them)."""
        values: dict[str, np.ndarray] = {}
        for index, layer in enumerate(self.layers.values()):
            values.update(random_inputs(layer, frames, seed + index))
        return values

    def output(self, case: DeformCase) -> str:
        return self.layers[case.label].out.name


def prefix(case: DeformCase) -> str:
    return f"{case.label}_"


def emit_deform_suite(board: Board, root: Path) -> DeformSuite:
    layers = {case.label: deform_layer(case, prefix(case)) for case in CASES}
    ops = [op for layer in layers.values() for op in layer.graph]
    graph = Graph.from_ops("deform_suite", ops, [layer.out.name for layer in layers.values()])
    projects, foldings = {}, {}
    for variant in VARIANTS:
        mapping = variant_mapping(graph, board, variant)
        projects[variant] = emit_project(graph, mapping, root / variant)
        foldings[variant] = dict(mapping.foldings)
    return DeformSuite(graph, layers, projects, foldings)
