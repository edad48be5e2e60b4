"""What an ONNX tensor name stands for while a quantized model is being lowered.

ONNX quantized models describe integer hardware in float terms: QuantizeLinear/DequantizeLinear
(or QONNX `Quant`) pin a float tensor to a grid, and the ops between them compute in floats.
Lowering tracks every ONNX tensor as one of these values:

- `Constant`: a folded float/int array (BatchNorm parameters, shapes, float biases);
- `QuantizedConstant`: integers plus per-channel scale (quantized weights and biases);
- `FloatInput`: a graph input not yet quantized;
- `Activation`: an IR tensor (integers) whose real value is scale * (q - zero_point);
- `Pending`: the integer accumulator of a layer whose output is not quantized yet, with the
  per-channel affine (bias, BatchNorm), activation and clamp that the next quantizer folds into
  one requantization stage;
- `Padded`: a constant-mode Pad of an activation over H and W, which the Conv or pool reading
  it takes as its own window pads (`frontend/padding.py`);
- `MaskStep` / `ActiveMask`: the float subgraph that computes a sparse network's active sites
  (Abs -> ReduceMax over channels -> Greater 0 -> Cast, then a MaxPool per downsampling), which
  a Mul applies to a conv's output (`frontend/sparse.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import onnx

from hwcodesign.frontend.loader import static_input_shape
from hwcodesign.ir.op import Op, Shape
from hwcodesign.ir.requant import Requant, make_requant, sign_requant, threshold_requant
from hwcodesign.ir.types import ActiveSet, BipolarType, IntType, Tensor


@dataclass(frozen=True)
class Constant:
    array: np.ndarray


@dataclass(frozen=True, eq=False)
class QuantizedConstant:
    """Integers `q` with real value scale * (q - zero_point); scale/zero_point broadcast to q."""

    q: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray
    dtype: IntType


@dataclass(frozen=True, eq=False)
class FloatInput:
    """A graph input; its shape is validated only when it is used as an activation."""

    info: onnx.ValueInfoProto

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def shape(self) -> Shape:
        return static_input_shape(self.info)


@dataclass(frozen=True)
class Activation:
    """A quantized activation available as an IR tensor. `flat` marks a Flatten view."""

    tensor: Tensor
    flat: bool = False


@dataclass(frozen=True)
class Padded:
    """`source` padded by `pads` (top, left, bottom, right) with the integer `fill` on its grid, by
    the Pad node `node`; not a layer: the Conv or pool reading it widens its own pads."""

    source: Activation
    pads: tuple[int, int, int, int]
    fill: int
    node: str


@dataclass(frozen=True)
class OutputQuantizer:
    """Where a quantizer puts its output: the grid and the integer clamp range on it. A threshold
    quantizer (`MultiThreshold`) also has `thresholds`, per channel (or one row for all) on the
    real value it reads: its output is lo + the number of thresholds met."""

    scale: float
    zero_point: int
    dtype: IntType
    lo: int
    hi: int
    thresholds: tuple[tuple[float, ...], ...] | None = None

    @staticmethod
    def full_range(scale: float, zero_point: int, dtype: IntType) -> OutputQuantizer:
        return OutputQuantizer(scale, zero_point, dtype, dtype.min, dtype.max)

    @staticmethod
    def of(tensor: Tensor) -> OutputQuantizer:
        return OutputQuantizer.full_range(tensor.scale, tensor.zero_point, tensor.dtype)

    def same_grid(self, tensor: Tensor) -> bool:
        return (
            self.thresholds is None
            and np.isclose(self.scale, tensor.scale, rtol=1e-7, atol=0)
            and self.zero_point == tensor.zero_point
            and self.dtype == tensor.dtype
            and (self.lo, self.hi) == (tensor.dtype.min, tensor.dtype.max)
        )


@dataclass(frozen=True)
class FinalStage:
    """Everything a layer builder needs once its output quantizer is known.

    `ratio` is the per-channel real factor from the accumulator to output integers, `bias` the
    bias in accumulator units (not yet rounded), `negative_ratio` the LeakyReLU slope applied to
    `ratio` (None without LeakyReLU); `thresholds` a threshold quantizer's, on the real value
    ratio * output scale * (acc + bias).
    """

    output: Tensor
    ratio: np.ndarray
    bias: np.ndarray
    lo: int
    hi: int
    negative_ratio: np.ndarray | None
    thresholds: np.ndarray | None = None

    def requant(self, fractional_bias: np.ndarray | None = None) -> Requant:
        gain = self.ratio * self.output.scale  # the real value per accumulator unit
        if isinstance(self.output.dtype, BipolarType):
            threshold = None if self.thresholds is None else self.thresholds[:, 0]
            return sign_requant(gain, fractional_bias, self.lo, self.hi, threshold)
        if self.thresholds is not None:
            return threshold_requant(self.thresholds, gain, fractional_bias, self.output.zero_point, self.lo, self.hi)
        return make_requant(self.ratio, self.output.zero_point, self.lo, self.hi, self.negative_ratio,
                            fractional_bias)


@dataclass(frozen=True)
class ConvWindow:
    """A pending conv's input's active set (None: dense), window and input size (H, W): what
    its sparse (masked) form's active set follows from (`hwcodesign.ops.sparse.ir.allowed_actives`)."""

    source_active: ActiveSet | None
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads: tuple[int, int, int, int]
    in_size: tuple[int, int]


@dataclass(frozen=True, eq=False)
class Pending:
    """A layer whose real output is gain_c * acc_scale_c * (acc + bias_c), then `activation`.

    `build` turns the final stage into the IR op. `passthrough` is set for layers whose output
    is exactly representable on their input's grid (max pool, nearest resize, ReLU, concat of
    equal grids); such layers may be left unquantized in the model.
    """

    node: str
    op_type: str
    shape: Shape
    acc_scale: np.ndarray
    build: Callable[[FinalStage], Op]
    gain: np.ndarray = field(default_factory=lambda: np.ones(1))
    bias: np.ndarray = field(default_factory=lambda: np.zeros(1))
    activation: str = "none"
    clip_range: tuple[float, float] = (-np.inf, np.inf)
    leaky_alpha: float = 0.0
    has_bias: bool = True
    passthrough: OutputQuantizer | None = None
    flat: bool = False
    active: ActiveSet | None = None  # the output's active sites (a sparse layer)
    window: ConvWindow | None = None  # a conv's input and window, so a mask Mul can make it sparse

    @property
    def channels(self) -> int:
        return self.shape[1]

    def with_changes(self, **changes: object) -> Pending:
        return replace(self, **changes)


@dataclass(frozen=True)
class MaskStep:
    """Part of an active-site mask being built from the sparse input `root` (a graph input's
    name, float or quantized): `stage` is the last op seen ("abs", "reduced", "bool")."""

    root: str
    stage: str


@dataclass(frozen=True)
class ActiveMask:
    """A float 0/1 mask of active sites: the root input's (an event happened there), then one
    window per downsampling (`ActiveSet.steps`).

    A mask quantized as onnxruntime's `quantize_static` does by default is still a mask when its
    grid keeps 0 and 1 apart: `value` is what an active site dequantizes to (1.0 for a float
    mask), `grid` the (scale, zero point) between its QuantizeLinear and DequantizeLinear (None
    when the mask is a float tensor).
    """

    root: str
    steps: tuple[tuple[int, int, int, int, int, int, int, int], ...] = ()
    value: float = 1.0
    grid: tuple[float, int] | None = None


Value = Constant | QuantizedConstant | FloatInput | Activation | Padded | Pending | MaskStep | ActiveMask
