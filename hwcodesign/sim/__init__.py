"""Simulation without hardware: the integer golden model (and, later, latency simulation)."""

from hwcodesign.sim.golden import dequantize_outputs, quantize_input, run_golden

__all__ = ["dequantize_outputs", "quantize_input", "run_golden"]
