"""hwcodesign: quantized ONNX CNNs to Xilinx Zynq FPGA accelerators.

The pipeline, one plain function per stage (see DESIGN.md):
`load_onnx(path) -> Graph`, `optimize(graph) -> Graph`, `map_to_board(graph, board, goal) -> Mapping`,
`simulate(graph, mapping) -> LatencyReport`; code generation follows.
"""

from hwcodesign.boards import available_boards, load_board
from hwcodesign.errors import HwcodesignError
from hwcodesign.frontend import load_onnx
from hwcodesign.mapper import map_to_board
from hwcodesign.passes import optimize
from hwcodesign.sim import dequantize_outputs, quantize_input, run_golden
from hwcodesign.sim.latency import simulate

__version__ = "0.1.0"

__all__ = [
    "HwcodesignError", "available_boards", "dequantize_outputs", "load_board", "load_onnx",
    "map_to_board", "optimize", "quantize_input", "run_golden", "simulate",
]
