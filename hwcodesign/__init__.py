"""hwcodesign: quantized ONNX CNNs to Xilinx Zynq FPGA accelerators.

The pipeline, one plain function per stage (see DESIGN.md):
`quantize_model(float_model, frames) -> QDQ model`, `load_partitioned(path) -> (Partition, Graph)`
(a whole model split into host parts and the accelerator's IR; `load_onnx(path) -> Graph` for a
model that is all accelerator), `optimize(graph) -> Graph`, `map_to_board(graph, board, goal) -> Mapping`,
`simulate(graph, mapping) -> LatencyReport`, `emit_project(graph, mapping, out_dir) -> Project`
(`Project.csim(x)` runs the generated C++), or `compile_model(...)` for all of them at once.

The names below are imported on first use (PEP 562), so `import hwcodesign` is instant: the
command line then loads the pipeline inside its own Ctrl-C handling, and a tool that needs only
one stage does not pay for onnxruntime, PuLP and matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"  # the code generator stamps it into projects

_HOMES = {
    "HostOptions": "hwcodesign.partition",
    "HwcodesignError": "hwcodesign.errors",
    "Project": "hwcodesign.codegen.project",
    "available_boards": "hwcodesign.boards",
    "compile_model": "hwcodesign.flows.compile",
    "dequantize_outputs": "hwcodesign.sim",
    "emit_project": "hwcodesign.backends",
    "load_board": "hwcodesign.boards",
    "load_onnx": "hwcodesign.passes",
    "load_partitioned": "hwcodesign.partition",
    "map_to_board": "hwcodesign.backends",
    "optimize": "hwcodesign.passes",
    "quantize_input": "hwcodesign.sim",
    "quantize_model": "hwcodesign.flows.quantize",
    "run_golden": "hwcodesign.sim",
    "simulate": "hwcodesign.backends",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'hwcodesign' has no attribute '{name}'")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
