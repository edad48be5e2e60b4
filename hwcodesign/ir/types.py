"""Quantized value types and the tensors that carry them between layers.

Types are values, not flags: an edge of the graph holds an integer type plus the affine mapping
`real = scale * (q - zero_point)` that gives the integers their meaning. Hardware only ever sees
the integers; the scale and zero point are what the compiler needs to build requantization
constants and what the driver needs to quantize inputs and dequantize outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwcodesign.ir import dybit


@dataclass(frozen=True)
class IntType:
    """A two's-complement (signed) or plain binary (unsigned) integer of `bits` bits."""

    bits: int
    signed: bool

    def __post_init__(self) -> None:
        if not 1 <= self.bits <= 64:
            raise ValueError(f"integer width must be 1..64 bits, got {self.bits}")

    @property
    def min(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    def contains(self, values: np.ndarray) -> bool:
        """True when every value fits this type without saturation."""
        values = np.asarray(values)
        return values.size == 0 or (int(values.min()) >= self.min and int(values.max()) <= self.max)

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Uniformly random values of the type (test vectors: they hit the clamps and extremes)."""
        return rng.integers(self.min, self.max + 1, shape)

    @staticmethod
    def fitting(lo: int, hi: int) -> IntType:
        """The narrowest type holding every integer in [lo, hi]; signed only when lo < 0."""
        signed = lo < 0
        bits = 1
        while True:
            candidate = IntType(bits, signed)
            if candidate.min <= lo and hi <= candidate.max:
                return candidate
            bits += 1

    @property
    def storage_bits(self) -> int:
        """Bits one value takes in memory."""
        return self.bits

    @property
    def value_bits(self) -> int:
        """Bits of the integer the arithmetic sees (what a multiplier is sized for)."""
        return self.bits

    def __str__(self) -> str:
        return f"{'int' if self.signed else 'uint'}{self.bits}"


@dataclass(frozen=True)
class DyBitType:
    """Weights stored as `bits`-wide DyBit codes (`hwcodesign.ir.dybit`).

    The IR holds the decoded integer levels (the golden model multiplies those, exactly as the
    hardware does after its decoder); memories hold the codes. So a DyBit weight has two
    widths: `storage_bits` (the code) and `value_bits` (the decoded two's-complement level).
    """

    bits: int
    signed = True

    def __post_init__(self) -> None:
        if not dybit.MIN_BITS <= self.bits <= dybit.MAX_BITS:
            raise ValueError(f"DyBit codes must be {dybit.MIN_BITS}..{dybit.MAX_BITS} bits, got {self.bits}")

    @property
    def max(self) -> int:
        return dybit.max_level(self.bits)

    @property
    def min(self) -> int:
        return -self.max

    @property
    def storage_bits(self) -> int:
        return self.bits

    @property
    def value_bits(self) -> int:
        return dybit.decoded_bits(self.bits)

    @property
    def decoded(self) -> IntType:
        """The integer type the decoder produces."""
        return IntType(self.value_bits, True)

    def contains(self, values: np.ndarray) -> bool:
        """True when every value is a level of this DyBit width."""
        return bool(np.all(dybit.representable(values, self.bits)))

    def __str__(self) -> str:
        return f"dybit{self.bits}"


@dataclass(frozen=True)
class BipolarType(IntType):
    """A 1-bit bipolar value: -1 or +1, never 0 (QONNX `BipolarQuant`, Brevitas' binary
    quantizers, FINN's BNNs). Arithmetically it is a two's-complement int2 that never holds -2
    or 0, which is what the golden model and the generic stages compute with; memories hold one
    bit per value (1 for +1), and a MAC whose operands are bipolar is an XNOR and a popcount
    (`hardware/units.py`). Requantizing to it is a sign: `requant.sign_requant`."""

    bits: int = 2
    signed: bool = True

    def __post_init__(self) -> None:
        if (self.bits, self.signed) != (2, True):
            raise ValueError("a bipolar value is an int2 holding -1 or +1")

    @property
    def min(self) -> int:
        return -1

    @property
    def max(self) -> int:
        return 1

    def contains(self, values: np.ndarray) -> bool:
        values = np.asarray(values)
        return bool(np.all((values == 1) | (values == -1)))

    @property
    def storage_bits(self) -> int:
        return 1

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return 2 * rng.integers(0, 2, shape) - 1

    def __str__(self) -> str:
        return "bipolar"


WeightType = IntType | DyBitType


@dataclass(frozen=True)
class ActiveSet:
    """Which sites of a sparse (event-camera) tensor are active: the definition, not the data.

    Submanifold sparse networks (Graham et al., "Submanifold Sparse Convolutional Networks";
    ESDA) compute only at active sites. The active set is structural: the `root` input's sites
    where any channel differs from its zero point (an event happened there), transformed by
    `steps`, one per strided sparse layer: a site of the next level is active when any site of
    the step's window (kernel, stride, pads; the layer's downsampling rule) is. Two tensors with equal ActiveSets have the same active
    sites for every input, which is what a residual add of two sparse tensors needs.
    """

    root: str
    steps: tuple[tuple[int, int, int, int, int, int, int, int], ...] = ()  # kh, kw, sh, sw, top, left, bottom, right

    def downsampled(self, step: tuple[int, int, int, int, int, int, int, int]) -> ActiveSet:
        """The active set after a strided sparse layer whose rule is this window (kh, kw, sh, sw,
        top, left, bottom, right; `hwcodesign.ops.sparse.ir.DOWNSAMPLINGS`)."""
        return ActiveSet(self.root, self.steps + (step,))

    def __str__(self) -> str:
        return f"active({self.root}{'' if not self.steps else f', {len(self.steps)} downsamplings'})"


@dataclass(frozen=True)
class Tensor:
    """An activation edge: logical NCHW shape, integer type and its per-tensor affine scale.

    Shapes are always 4-D (N, C, H, W); a flattened vector is (N, C, 1, 1), so every stage
    streams the same way. Activation scales are per tensor (what QDQ and QONNX models use for
    activations); per-channel scales only occur on weights and are folded into requantization.
    """

    name: str
    shape: tuple[int, int, int, int]
    dtype: IntType
    scale: float
    zero_point: int
    active: ActiveSet | None = None  # set for a sparse tensor: only these sites are computed

    @property
    def sparse(self) -> bool:
        return self.active is not None

    def __post_init__(self) -> None:
        if len(self.shape) != 4:
            raise ValueError(f"tensor '{self.name}' must be 4-D NCHW, got shape {self.shape}")
        if not self.scale > 0:
            raise ValueError(f"tensor '{self.name}' has non-positive scale {self.scale}")
        if not self.dtype.min <= self.zero_point <= self.dtype.max:
            raise ValueError(
                f"tensor '{self.name}': zero point {self.zero_point} outside {self.dtype}"
            )

    @property
    def channels(self) -> int:
        return self.shape[1]

    @property
    def elements_per_frame(self) -> int:
        return self.shape[1] * self.shape[2] * self.shape[3]

    def quantize(self, real: np.ndarray) -> np.ndarray:
        """Float -> integers exactly as ONNX QuantizeLinear does (round half to even, saturate).

        The division is done in float32, like onnxruntime's kernel: inputs that land on a tie
        (common for clipped or synthetic images) then round the same way on host and reference.
        """
        if isinstance(self.dtype, BipolarType):  # QONNX BipolarQuant: the sign, sign(0) = +1
            return np.where(np.asarray(real) >= 0, 1, -1).astype(np.int64)
        ratio = np.asarray(real, dtype=np.float32) / np.float32(self.scale)
        q = np.rint(ratio.astype(np.float64)) + self.zero_point
        return np.clip(q, self.dtype.min, self.dtype.max).astype(np.int64)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return (np.asarray(q, dtype=np.float64) - self.zero_point) * self.scale

    def renamed(self, name: str) -> Tensor:
        return Tensor(name, self.shape, self.dtype, self.scale, self.zero_point, self.active)

    def with_active(self, active: ActiveSet | None) -> Tensor:
        return Tensor(self.name, self.shape, self.dtype, self.scale, self.zero_point, active)

    def describe(self) -> str:
        return f"{self.dtype} s={self.scale:.4g} z={self.zero_point}" + (" sparse" if self.sparse else "")
