"""From a quantized ONNX model to the optimized integer IR: named passes in one pipeline
(`passes/pipeline.py`): `load_onnx` runs the lowering, `optimize` the IR rewrites."""

from hwcodesign.passes.dump import check_dump_dir
from hwcodesign.passes.pipeline import (
           IR_PASSES,
           LOWERING_STEPS,
           MAPPING_PASSES,
           PACK_INPUT_WINDOW,
           PASS_NAMES,
           PassError,
           PassOptions,
           load_onnx,
           optimize,
)

__all__ = ["IR_PASSES", "LOWERING_STEPS", "MAPPING_PASSES", "PACK_INPUT_WINDOW", "PASS_NAMES", "PassError", "PassOptions", "check_dump_dir", "load_onnx",
           "optimize"]
