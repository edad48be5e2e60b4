"""hwcodesign: quantized ONNX CNNs to Xilinx Zynq FPGA accelerators.

The pipeline, one plain function per stage (see DESIGN.md):
`load_onnx(path) -> Graph`, `optimize(graph) -> Graph`, `map_to_board(graph, board, goal) -> Mapping`,
`simulate(graph, mapping) -> LatencyReport`, `emit_project(graph, mapping, out_dir) -> Project`
(`Project.csim(x)` runs the generated C++), or `compile_model(...)` for all of them at once.
"""

__version__ = "0.1.0"  # before the imports: the code generator stamps it into projects

from hwcodesign.boards import available_boards, load_board
from hwcodesign.codegen.compile import compile_model
from hwcodesign.codegen.project import Project, emit_project
from hwcodesign.errors import HwcodesignError
from hwcodesign.frontend import load_onnx
from hwcodesign.mapper import map_to_board
from hwcodesign.passes import optimize
from hwcodesign.sim import dequantize_outputs, quantize_input, run_golden
from hwcodesign.sim.latency import simulate

__all__ = [
    "HwcodesignError", "Project", "available_boards", "compile_model", "dequantize_outputs", "emit_project",
    "load_board", "load_onnx", "map_to_board", "optimize", "quantize_input", "run_golden", "simulate",
]
