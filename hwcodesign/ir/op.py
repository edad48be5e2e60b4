"""The base of every IR op, and the accelerator's input.

Every op names its input tensors, carries its output `Tensor` and its integer constants
(weights already quantized, bias in accumulator units, a `Requant` output stage). The layer
kinds themselves live with their op family in `hwcodesign.ops`, beside everything else the
compiler knows about them; the shapes an op implies are written on its class so that the
frontend and `Graph.check()` agree on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hwcodesign.ir.input_window import FramedInput, InputWindow
from hwcodesign.ir.requant import Requant
from hwcodesign.ir.types import Tensor

Shape = tuple[int, int, int, int]


def window_output_size(size: int, kernel: int, stride: int, pad_total: int, dilation: int) -> int:
    """Output length of a sliding window (ONNX Conv/Pool formula, floor mode)."""
    effective = (kernel - 1) * dilation + 1
    return (size + pad_total - effective) // stride + 1


@dataclass(frozen=True, eq=False)
class Op:
    """Base of all layers. `inputs` are tensor names; `output` is the tensor this op produces."""

    name: str
    inputs: tuple[str, ...]
    output: Tensor

    kind: ClassVar[str] = "op"

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        raise NotImplementedError

    def input_problems(self, input_tensors: list[Tensor]) -> list[str]:
        """Op-specific consistency problems between the inputs and this op's constants."""
        return []

    def macs(self, input_shapes: list[Shape]) -> int:
        """Multiply-accumulates per frame (batch 1); 0 for ops without multipliers."""
        return 0

    def weight_bits(self) -> int:
        """Bits of on-chip constant storage (weights and biases), the BRAM the layer needs."""
        return 0

    def requants(self) -> tuple[Requant, ...]:
        return ()

    def summary(self) -> str:
        """The op as `inspect` lists it: its kind and the few attributes that tell layers apart."""
        return self.kind

    def weights_summary(self) -> str:
        """The weights' number format for `inspect`, "-" for an op without weights."""
        return "-"

    reads_sparse: ClassVar[bool] = False

    def sparse_problems(self, tensors: list[Tensor]) -> list[str]:
        """Where sparse tensors may flow: a sparse conv makes them, elementwise layers keep the
        active set (zero stays zero), a global average pool ends them (the dense tail). Anything
        else would compute at inactive sites, which the hardware never sees."""
        sparse_inputs = [t for t in tensors if t.sparse]
        if sparse_inputs and not self.reads_sparse:
            names = ", ".join(f"'{t.name}'" for t in sparse_inputs)
            return [f"reads the sparse tensor {names}; only SubmanifoldConv, Act, Add and GlobalAvgPool take sparse inputs"]
        return self.output_sparsity_problems(tensors)

    def output_sparsity_problems(self, tensors: list[Tensor]) -> list[str]:
        """Whether this op's output may be sparse given its inputs; most ops make dense tensors."""
        if self.output.sparse:
            return [f"output is marked sparse ({self.output.active}) but {self.kind} does not make sparse tensors"]
        return []


@dataclass(frozen=True, eq=False)
class Input(Op, FramedInput):
    """The accelerator's input stream: integers already quantized by the driver. With a `window`
    the host also packs each output pixel's first-layer window into channels (`ir/input_window.py`):
    `output` is then the im2col of a frame of `window.frame`."""

    window: InputWindow | None = None

    kind: ClassVar[str] = "Input"

    @property
    def boundary_tensor(self) -> Tensor:
        return self.output

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        return self.output.shape
