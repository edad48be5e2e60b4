"""Lowering a quantized ONNX graph (QDQ or QONNX `Quant`) into the integer layer IR.

The walk visits ONNX nodes in their (topological) order and keeps a `Value` per tensor name
(see `values.py`). Compute ops become `Pending` accumulators; BatchNorm, bias adds, scalar
multiplies and activations fold into the pending accumulator; the next quantizer turns it into
one IR op with an integer requantization stage. Constant subgraphs (shape arithmetic, Constant
nodes) are evaluated on the spot with the ONNX reference evaluator.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from hwcodesign.errors import UnsupportedModelError, raise_all
from hwcodesign.frontend.formats import FORMATS_KEY, read_formats
from hwcodesign.frontend.loader import graph_inputs
from hwcodesign.frontend.sparse import (
    CONVENTION,
    SPARSE_DOMAIN,
    SparseLowering,
    sparse_conv_kind,
    sparse_roots,
)
from hwcodesign.frontend.validate import (
    check_scale,
    check_window,
    duplicate_node_names,
    fold_size_problem,
    frame_size_problem,
    input_size_problem,
    one_node_model,
    per_axis_view,
    quant_input_problem,
)
from hwcodesign.frontend.values import (
    Activation,
    ActiveMask,
    Constant,
    ConvWindow,
    FinalStage,
    FloatInput,
    MaskStep,
    OutputQuantizer,
    Pending,
    QuantizedConstant,
    Value,
)
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.op import Input, Op, Shape, window_output_size
from hwcodesign.ir.requant import RatioOutOfRange, Requant, make_requant, shared_shift
from hwcodesign.ir.types import ActiveSet, DyBitType, IntType, Tensor, WeightType
from hwcodesign.ops import Act, Add, Concat, Conv, DeformConv, GlobalAvgPool, Linear, Pool, Resize

QONNX_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas")

ONNX_INT_TYPES: dict[int, IntType] = {
    onnx.TensorProto.UINT8: IntType(8, False),
    onnx.TensorProto.INT8: IntType(8, True),
    onnx.TensorProto.UINT16: IntType(16, False),
    onnx.TensorProto.INT16: IntType(16, True),
    onnx.TensorProto.INT32: IntType(32, True),
    onnx.TensorProto.UINT4: IntType(4, False),
    onnx.TensorProto.INT4: IntType(4, True),
}

BIAS_TYPE = IntType(32, True)
DEFORM_FRAC_BITS = 8  # sampling positions and bilinear weights in 1/256 pixel
DEFORM_SAMPLE_SHIFT = 8  # a bilinear sample keeps 8 fractional bits of the input LSB
MAX_OFFSET_RANGE = 16  # pixels; (K-1)*dil + 33 line-buffer rows at most


class Lowering(SparseLowering):
    """One lowering of one model; `run()` returns the IR graph."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.weight_formats = read_formats(model)  # layer -> WeightFormat (frontend/formats.py)
        self.values: dict[str, Value] = {}
        self.ops: list[Op] = []
        self.used_names: set[str] = set()
        self.fixed_shape_offsets: dict[str, Activation] = {}  # Mul(d, P) outputs -> d (see fixed_shape_mul)
        self.input_tensor_of: dict[str, str] = {}  # graph input name -> its quantized IR tensor
        self.sparse_roots: set[str] = set()  # graph inputs of a sparse network (frontend/sparse.py)
        self.weight_formats_used: set[str] = set()
        self.handlers: dict[str, Callable[[onnx.NodeProto, str], None]] = {
            "QuantizeLinear": self.quantize_linear,
            "DequantizeLinear": self.dequantize_linear,
            "Quant": self.qonnx_quant,
            "Conv": self.conv,
            "DeformConv": self.deform_conv,
            "Gemm": self.gemm,
            "MatMul": self.matmul,
            "Add": self.add,
            "Mul": self.mul,
            "BatchNormalization": self.batch_norm,
            "Relu": self.relu,
            "Clip": self.clip,
            "LeakyRelu": self.leaky_relu,
            "MaxPool": self.pool,
            "AveragePool": self.pool,
            "GlobalAveragePool": self.global_average_pool,
            "Concat": self.concat,
            "Resize": self.resize,
            "Upsample": self.resize,
            "Flatten": self.flatten,
            "Reshape": self.reshape,
            "Identity": self.identity,
            "Dropout": self.identity,
            "Shape": self.shape_of,
            "Abs": self.mask_abs,
            "ReduceMax": self.mask_reduce,
            "ReduceSum": self.mask_reduce,
            "Greater": self.mask_greater,
            "Cast": self.mask_cast,
            "SubmConv": self.subm_conv,
        }

    # ================================================================ driver
    def run(self) -> Graph:
        """Lower every node; every node that cannot be built is reported at once (`raise_all`).

        A node that fails marks its outputs failed, and nodes reading a failed tensor are skipped
        rather than reported: their problem is the failed node's, not theirs.
        """
        graph = self.model.graph
        for init in graph.initializer:
            self.values[init.name] = Constant(numpy_helper.to_array(init))
        unsupported = unsupported_nodes(self.model, set(self.handlers))
        problems = duplicate_node_names(self.model) + [problem for _, problem in unsupported]
        failed = {tensor for node, _ in unsupported for tensor in node.output}
        self.sparse_roots = sparse_roots(self.model)
        for value in graph_inputs(self.model):
            elem_type = value.type.tensor_type.elem_type
            too_big = input_size_problem(value)
            if elem_type not in ONNX_INT_TYPES and elem_type not in FLOAT_TYPES or too_big:
                problems.append(too_big or UnsupportedModelError(
                    value.name, "graph input", f"element type {onnx.TensorProto.DataType.Name(elem_type)}"))
                failed.add(value.name)
            self.values[value.name] = FloatInput(value)
        for index, node in enumerate(graph.node):
            if any(tensor in failed for tensor in node.input) or node.output[:1] and node.output[0] in failed:
                failed.update(node.output)
                continue
            try:
                self.visit(node, node_name(node, index))
            except UnsupportedModelError as problem:
                problems.append(problem)
                failed.update(node.output)
        outputs = []
        for value in graph.output:
            if value.name in failed:
                continue
            try:
                outputs.append(self.require_activation(value.name, value.name, "graph output").tensor.name)
            except UnsupportedModelError as problem:
                problems.append(problem)
        unused = sorted(set(self.weight_formats) - set(self.weight_formats_used))
        if unused and not problems:
            problems.append(UnsupportedModelError(
                unused[0], "weight format", f"metadata '{FORMATS_KEY}' names layers that are "
                f"not Conv/Gemm/MatMul nodes of the model: {', '.join(unused)}"))
        order = {node_name(node, index): index for index, node in enumerate(graph.node)}
        unsupported_first = {id(problem) for _, problem in unsupported}
        problems.sort(key=lambda problem: (id(problem) not in unsupported_first, order.get(problem.node, -1)))
        raise_all(problems, supported_ops_text() if unsupported else None)
        return Graph.from_ops(graph.name or "model", self.ops, outputs)

    def visit(self, node: onnx.NodeProto, name: str) -> None:
        if node.op_type == "Constant":
            self.values[node.output[0]] = Constant(self.constant_node_value(node, name))
            return
        inputs = [self.values.get(i) for i in node.input if i]
        if node.op_type not in QUANTIZERS and inputs and all(isinstance(v, Constant) for v in inputs):
            self.fold_constant(node, name)
            return
        self.handlers[node.op_type](node, name)

    # ================================================================ helpers
    def unique(self, name: str) -> str:
        candidate, suffix = name, 1
        while candidate in self.used_names:
            suffix += 1
            candidate = f"{name}_{suffix}"
        self.used_names.add(candidate)
        return candidate

    def emit(self, op: Op) -> None:
        self.ops.append(op)

    def value(self, node: onnx.NodeProto, name: str, index: int) -> Value:
        if index >= len(node.input) or not node.input[index]:
            raise UnsupportedModelError(name, node.op_type, f"input {index} is missing")
        tensor = node.input[index]
        if tensor not in self.values:
            raise UnsupportedModelError(name, node.op_type, f"input '{tensor}' is not defined")
        return self.values[tensor]

    def optional(self, node: onnx.NodeProto, index: int) -> Value | None:
        if index >= len(node.input) or not node.input[index]:
            return None
        return self.values.get(node.input[index])

    def constant(self, node: onnx.NodeProto, name: str, index: int, what: str) -> np.ndarray:
        """A constant operand as real numbers (quantized constants are dequantized)."""
        value = self.value(node, name, index)
        if isinstance(value, QuantizedConstant):
            return (value.q - value.zero_point) * value.scale
        if not isinstance(value, Constant):
            raise UnsupportedModelError(
                name, node.op_type, f"{what} ('{node.input[index]}') must be a constant initializer"
            )
        return value.array

    @staticmethod
    def attrs(node: onnx.NodeProto) -> dict[str, object]:
        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def constant_node_value(self, node: onnx.NodeProto, name: str) -> np.ndarray:
        try:
            return np.asarray(ReferenceEvaluator(one_node_model(node, {}, self.model)).run(None, {})[0])
        except Exception as error:  # the reference evaluator raises many kinds
            raise UnsupportedModelError(name, node.op_type, f"cannot read its value: {error}") from None

    def fold_constant(self, node: onnx.NodeProto, name: str) -> None:
        feeds = {i: self.values[i].array for i in node.input if i}  # type: ignore[union-attr]
        too_big = fold_size_problem(node, feeds, self.model)
        if too_big:
            raise UnsupportedModelError(name, node.op_type, too_big)
        try:
            results = ReferenceEvaluator(one_node_model(node, feeds, self.model)).run(None, {})
        except Exception as error:  # the reference evaluator raises many kinds
            raise UnsupportedModelError(name, node.op_type, f"cannot fold constant: {error}") from None
        for output, result in zip(node.output, results):
            self.values[output] = Constant(np.asarray(result))

    def activation(self, node: onnx.NodeProto, name: str, index: int) -> Activation:
        return self.require_activation(node.input[index], name, node.op_type)

    def require_activation(self, tensor_name: str, node: str, op_type: str) -> Activation:
        """The quantized activation behind a tensor; exact unquantized layers get finalized."""
        value = self.values.get(tensor_name)
        if isinstance(value, Activation):
            return value
        if isinstance(value, Pending) and value.passthrough is not None:
            self.finalize(value, value.passthrough, tensor_name)
            return self.values[tensor_name]  # type: ignore[return-value]
        what = {
            Pending: "comes from an unquantized layer '{src}' ({op}); add a QuantizeLinear/Quant after it",
            FloatInput: "is a float graph input; quantize it first with QuantizeLinear or Quant",
            Constant: "is a float constant; hardware needs quantized activations here",
            QuantizedConstant: "is a constant; only activations can flow here",
        }.get(type(value), "is not defined")
        source = value.node if isinstance(value, Pending) else ""
        source_op = value.op_type if isinstance(value, Pending) else ""
        raise UnsupportedModelError(
            node, op_type, f"input '{tensor_name}' " + what.format(src=source, op=source_op)
        )

    # ============================================================ quantizers
    def quantizer_of(
        self, node: onnx.NodeProto, name: str, scale: np.ndarray, zero_point: np.ndarray,
        dtype: IntType, lo: int | None = None, hi: int | None = None,
    ) -> OutputQuantizer:
        if scale.size != 1 or zero_point.size != 1:
            raise UnsupportedModelError(
                name, node.op_type, "per-channel quantization of an activation; hardware uses one scale per activation tensor"
            )
        zp = float(zero_point.reshape(-1)[0])
        if zp != round(zp):
            raise UnsupportedModelError(name, node.op_type, f"non-integer zero point {zp}")
        check_scale(name, node.op_type, scale, dtype.max - dtype.min + 1)
        scale_value = float(scale.reshape(-1)[0])
        return OutputQuantizer(
            scale_value, int(zp), dtype, dtype.min if lo is None else lo, dtype.max if hi is None else hi
        )

    def quantize_value(self, node: onnx.NodeProto, name: str, quantizer: OutputQuantizer,
                       scale: np.ndarray, zero_point: np.ndarray) -> None:
        """Apply a quantizer (QuantizeLinear or Quant) to whatever its input is."""
        source = self.value(node, name, 0)
        out = node.output[0]
        if isinstance(source, Constant):
            self.refuse_empty(node, name, source.array)
            if not np.all(np.isfinite(source.array)):
                raise UnsupportedModelError(name, node.op_type, f"'{node.input[0]}' holds NaN or infinite values")
            if np.any(scale == 0):
                raise UnsupportedModelError(name, node.op_type, f"quantizing '{node.input[0]}' with a zero scale divides "
                                            "by zero")
            real = source.array.astype(np.float64)
            q = np.clip(np.rint(real / scale + zero_point), quantizer.lo, quantizer.hi).astype(np.int64)
            self.values[out] = QuantizedConstant(
                q, np.broadcast_to(scale, q.shape), np.broadcast_to(zero_point, q.shape).astype(np.int64), quantizer.dtype
            )
            return
        if isinstance(source, QuantizedConstant):
            raise UnsupportedModelError(name, node.op_type, "quantizing an already quantized constant")
        if scale.size != 1:
            raise UnsupportedModelError(
                name, node.op_type, "per-channel quantization of an activation; hardware uses one scale per activation tensor"
            )
        if isinstance(source, FloatInput):
            self.emit_input(source, Tensor(out, source.shape, quantizer.dtype, quantizer.scale, quantizer.zero_point))
            return
        if isinstance(source, Activation):
            if quantizer.same_grid(source.tensor):
                self.values[out] = source
                return
            pending = self.elementwise_pending(source, name, "identity", passthrough=False)
            self.finalize(pending, quantizer, out)
            self.values[out] = Activation(self.values[out].tensor, source.flat)  # type: ignore[union-attr]
            return
        if isinstance(source, ActiveMask | MaskStep):
            raise UnsupportedModelError(
                name, node.op_type, "quantizes the active-site mask; the mask stays float (it says which sites are "
                "active, it is not data): leave its nodes out of quantization (onnxruntime's quantize_static: "
                "nodes_to_exclude), " + CONVENTION)
        if not isinstance(source, Pending):
            raise UnsupportedModelError(name, node.op_type, f"cannot quantize its input '{node.input[0]}' here")
        self.finalize(source, quantizer, out)

    def finalize(self, pending: Pending, quantizer: OutputQuantizer, out: str) -> None:
        """Fix a pending layer's output grid: fold gain/bias/activation into one Requant."""
        too_big = frame_size_problem(pending.shape)
        if too_big:
            raise UnsupportedModelError(pending.node, pending.op_type, f"output {too_big}")
        channels = pending.channels
        ratio = np.broadcast_to(pending.gain * pending.acc_scale / quantizer.scale, (channels,)).astype(np.float64)
        bias = np.broadcast_to(pending.bias, (channels,)).astype(np.float64)
        lo, hi = quantizer.lo, quantizer.hi
        clip_lo, clip_hi = pending.clip_range
        if np.isfinite(clip_lo):
            lo = max(lo, int(np.rint(clip_lo / quantizer.scale)) + quantizer.zero_point)
        if np.isfinite(clip_hi):
            hi = min(hi, int(np.rint(clip_hi / quantizer.scale)) + quantizer.zero_point)
        if lo > hi:
            raise UnsupportedModelError(
                pending.node, pending.op_type, f"activation range is empty on the output grid [{quantizer.lo}, {quantizer.hi}]"
            )
        negative = ratio * pending.leaky_alpha if pending.activation == "leaky_relu" else None
        tensor = Tensor(out, pending.shape, quantizer.dtype, quantizer.scale, quantizer.zero_point, pending.active)
        try:
            op = pending.build(FinalStage(tensor, ratio, bias, lo, hi, negative))
        except RatioOutOfRange as error:
            raise UnsupportedModelError(
                pending.node, pending.op_type, f"{error}: the output '{out}' has scale {quantizer.scale:.3g}, too fine "
                "for the scale of what it requantizes; check the quantizer scales") from None
        self.emit(op)
        self.values[out] = Activation(tensor, pending.flat)

    def quantize_linear(self, node: onnx.NodeProto, name: str) -> None:
        attrs = self.attrs(node)
        scale = self.constant(node, name, 1, "scale").astype(np.float64)
        zp_value = self.optional(node, 2)
        if zp_value is None:
            output_dtype = int(attrs.get("output_dtype", 0)) or onnx.TensorProto.UINT8
            zero_point = np.zeros(scale.shape, np.int64)
        else:
            if not isinstance(zp_value, Constant):
                raise UnsupportedModelError(name, node.op_type, "zero point must be a constant initializer")
            output_dtype = onnx.helper.np_dtype_to_tensor_dtype(zp_value.array.dtype)
            zero_point = zp_value.array.astype(np.int64)
        dtype = self.int_type(node, name, output_dtype)
        source = self.value(node, name, 0)
        self.refuse_non_real_quant_input(node, name, source)
        shape = source.array.shape if isinstance(source, Constant) else None
        scale, zero_point = self.per_axis(node, name, scale, zero_point, shape)
        quantizer = self.quantizer_of(node, name, scale.reshape(-1)[:1], zero_point.reshape(-1)[:1], dtype) if scale.size == 1 else None
        if quantizer is None:
            if not isinstance(source, Constant):
                self.quantizer_of(node, name, scale, zero_point, dtype)  # raises: per-channel
            quantizer = OutputQuantizer(1.0, 0, dtype, dtype.min, dtype.max)
        self.quantize_value(node, name, quantizer, scale, zero_point)

    def dequantize_linear(self, node: onnx.NodeProto, name: str) -> None:
        source = self.value(node, name, 0)
        value_scale = self.optional(node, 1)
        if not isinstance(value_scale, Constant):
            raise UnsupportedModelError(
                name, node.op_type, f"scale '{node.input[1]}' must be a constant initializer"
            )
        scale = value_scale.array.astype(np.float64)
        zp_value = self.optional(node, 2)
        if zp_value is not None and not isinstance(zp_value, Constant):
            raise UnsupportedModelError(name, node.op_type, "zero point must be a constant initializer")
        zero_point = np.zeros(scale.shape, np.int64) if zp_value is None else zp_value.array.astype(np.int64)
        if not isinstance(source, Constant):
            self.per_axis(node, name, scale, zero_point, None)  # checks block_size and the scale
        out = node.output[0]
        if isinstance(source, Constant):
            array = source.array
            self.refuse_empty(node, name, array)
            if np.any(scale == 0):  # every value it scales is 0, and requantizing divides by it
                raise UnsupportedModelError(name, node.op_type, f"scale '{node.input[1]}' has zero entries")
            dtype = self.int_type(node, name, onnx.helper.np_dtype_to_tensor_dtype(array.dtype), array)
            scale, zero_point = self.per_axis(node, name, scale, zero_point, array.shape)
            q = array.astype(np.int64)
            self.values[out] = QuantizedConstant(
                q, np.broadcast_to(scale, q.shape), np.broadcast_to(zero_point, q.shape), dtype
            )
            return
        if isinstance(source, Activation):
            quantizer = self.quantizer_of(node, name, scale, zero_point, source.tensor.dtype)
            if not quantizer.same_grid(source.tensor):
                raise UnsupportedModelError(
                    name, node.op_type,
                    f"dequantizes '{node.input[0]}' with scale/zero point {quantizer.scale:.6g}/{quantizer.zero_point}"
                    f" but it was quantized with {source.tensor.scale:.6g}/{source.tensor.zero_point}",
                )
            self.values[out] = source
            return
        if isinstance(source, FloatInput):
            dtype = self.int_type(node, name, self.input_elem_type(source.name))
            quantizer = self.quantizer_of(node, name, scale, zero_point, dtype)
            self.emit_input(source, Tensor(out, source.shape, dtype, quantizer.scale, quantizer.zero_point))
            return
        raise UnsupportedModelError(name, node.op_type, f"cannot dequantize '{node.input[0]}': it is not an integer tensor")

    def emit_input(self, source: FloatInput, tensor: Tensor) -> None:
        """The accelerator's input for a graph input; sparse when a mask or SubmConv reads it."""
        if source.name in self.sparse_roots:
            tensor = tensor.with_active(ActiveSet(tensor.name))
        self.emit(Input(self.unique(source.name), (), tensor))
        self.input_tensor_of[source.name] = tensor.name
        self.values[tensor.name] = Activation(tensor)

    def input_elem_type(self, input_name: str) -> int:
        for value in self.model.graph.input:
            if value.name == input_name:
                return value.type.tensor_type.elem_type
        return onnx.TensorProto.FLOAT

    def int_type(self, node: onnx.NodeProto, name: str, onnx_type: int, values: np.ndarray | None = None) -> IntType:
        dtype = ONNX_INT_TYPES.get(onnx_type)
        if dtype is None:
            raise UnsupportedModelError(
                name, node.op_type, f"quantized type {onnx.TensorProto.DataType.Name(onnx_type)} not supported (int/uint 4, 8, 16, int32)"
            )
        return dtype

    def per_axis(self, node: onnx.NodeProto, name: str, scale: np.ndarray, zero_point: np.ndarray,
                 shape: tuple[int, ...] | None) -> tuple[np.ndarray, np.ndarray]:
        """Reshape a 1-D per-axis scale/zero point so it broadcasts along the node's `axis` of a
        constant of `shape` (None: an activation, left to `quantizer_of`), checking both first."""
        attrs = self.attrs(node)
        block_size = int(attrs.get("block_size", 0))  # type: ignore[call-overload]
        if block_size:
            raise UnsupportedModelError(name, node.op_type, f"block_size {block_size}: blocked quantization is not "
                                        "supported" + (" (and ONNX forbids it with one scale)" if scale.size == 1 else ""))
        check_scale(name, node.op_type, scale)
        if scale.ndim > 1:  # the ONNX spec: a scalar (per tensor) or 1-D (per axis); onnxruntime refuses more
            raise UnsupportedModelError(name, node.op_type, f"scale of shape {list(scale.shape)}: {node.op_type} takes a "
                                        "scalar or a 1-D scale")
        if zero_point.size == 0:
            raise UnsupportedModelError(name, node.op_type, "the zero point is empty")
        if scale.size == 1 and zero_point.size == 1:
            return scale.reshape(()), zero_point.reshape(())
        if shape is None:
            return scale, zero_point
        view = per_axis_view(name, node.op_type, scale, zero_point, int(attrs.get("axis", 1)), shape)  # type: ignore[call-overload]
        return scale.reshape(view), zero_point.reshape(view)

    @staticmethod
    def refuse_empty(node: onnx.NodeProto, name: str, array: np.ndarray) -> None:
        if array.size == 0:
            raise UnsupportedModelError(name, node.op_type, f"'{node.input[0]}' is empty (shape {list(array.shape)})")

    def qonnx_quant(self, node: onnx.NodeProto, name: str) -> None:
        attrs = self.attrs(node)
        for flag in ("signed", "narrow"):
            if attrs.get(flag, 0) not in (0, 1):
                raise UnsupportedModelError(name, node.op_type, f"attribute {flag}={attrs[flag]!r} must be 0 or 1")
        signed = bool(attrs.get("signed", 1))
        narrow = bool(attrs.get("narrow", 0))
        rounding = attrs.get("rounding_mode", b"ROUND")
        rounding = rounding.decode() if isinstance(rounding, bytes) else str(rounding)
        if rounding.upper() not in ("ROUND", "HALF_EVEN"):
            raise UnsupportedModelError(name, node.op_type, f"rounding_mode {rounding} not supported (ROUND only)")
        scale = self.constant(node, name, 1, "scale").astype(np.float64)
        zero_point = self.constant(node, name, 2, "zero point").astype(np.float64)
        bit_width = self.constant(node, name, 3, "bit width").reshape(-1)
        bits = float(bit_width[0]) if bit_width.size == 1 else np.nan
        if not (np.isfinite(bits) and bits == round(bits) and 1 <= bits <= 16):
            raise UnsupportedModelError(name, node.op_type, f"bit width {bit_width.tolist()} must be one integer 1..16")
        dtype = IntType(int(bits), signed)
        lo = dtype.min + (1 if narrow and signed else 0)
        hi = dtype.max - (1 if narrow and not signed else 0)
        check_scale(name, node.op_type, scale)
        if zero_point.size == 0 or not np.all((zero_point >= lo) & (zero_point <= hi)):
            raise UnsupportedModelError(name, node.op_type, f"zero point {zero_point.reshape(-1)[:4].tolist()} is outside "
                                        f"the {dtype} range [{lo}, {hi}]")
        source = self.value(node, name, 0)
        self.refuse_non_real_quant_input(node, name, source)
        if isinstance(source, Constant):
            try:
                np.broadcast_shapes(source.array.shape, scale.shape, zero_point.shape)
            except ValueError:
                raise UnsupportedModelError(name, node.op_type, f"scale {list(scale.shape)} and zero point "
                                            f"{list(zero_point.shape)} do not broadcast to '{node.input[0]}' "
                                            f"{list(source.array.shape)}") from None
            quantizer = OutputQuantizer(1.0, 0, dtype, lo, hi)
        else:
            quantizer = self.quantizer_of(node, name, scale, zero_point, dtype, lo, hi)
        if np.any(zero_point != np.rint(zero_point)):
            raise UnsupportedModelError(name, node.op_type, "non-integer zero point")
        self.quantize_value(node, name, quantizer, scale, np.rint(zero_point).astype(np.int64))

    def refuse_non_real_quant_input(self, node: onnx.NodeProto, name: str, source: Value) -> None:
        if isinstance(source, Constant):
            problem = quant_input_problem(source.array, node.input[0], node.op_type)
        elif isinstance(source, FloatInput) and self.input_elem_type(source.name) not in FLOAT_TYPES:
            problem = quant_input_problem(np.zeros(0, helper.tensor_dtype_to_np_dtype(
                self.input_elem_type(source.name))), node.input[0], node.op_type)
        else:
            problem = None
        if problem:
            raise UnsupportedModelError(name, node.op_type, problem)

    # ============================================================ compute ops
    def weights(self, node: onnx.NodeProto, name: str, index: int) -> QuantizedConstant:
        value = self.value(node, name, index)
        if not isinstance(value, QuantizedConstant):
            raise UnsupportedModelError(
                name, node.op_type,
                f"weights '{node.input[index]}' are not quantized; put DequantizeLinear or Quant on the initializer",
            )
        return value

    @staticmethod
    def output_channel_scale(name: str, op_type: str, weight: QuantizedConstant, out_axis: int) -> tuple[np.ndarray, np.ndarray, IntType]:
        """Per-output-channel weight scale; weights with their zero point removed; their type."""
        scale = np.moveaxis(np.broadcast_to(weight.scale, weight.q.shape), out_axis, 0)
        zero = np.moveaxis(np.broadcast_to(weight.zero_point, weight.q.shape), out_axis, 0)
        q = np.moveaxis(weight.q, out_axis, 0)
        flat_scale = scale.reshape(scale.shape[0], -1)
        if not np.all(flat_scale == flat_scale[:, :1]):
            raise UnsupportedModelError(name, op_type, "weight scale varies along a non-output axis")
        zero_flat = zero.reshape(zero.shape[0], -1)
        if not np.all(zero_flat == zero_flat[:, :1]):
            raise UnsupportedModelError(name, op_type, "weight zero point varies along a non-output axis")
        per_channel_zero = zero_flat[:, 0]
        dtype = weight.dtype
        if np.any(per_channel_zero != 0):
            dtype = IntType.fitting(dtype.min - int(per_channel_zero.max()), dtype.max - int(per_channel_zero.min()))
        centred = q - per_channel_zero.reshape((-1,) + (1,) * (q.ndim - 1))
        return flat_scale[:, 0].astype(np.float64), centred.astype(np.int64), dtype

    def weight_format(self, name: str, op_type: str, w_int: np.ndarray, w_type: IntType) -> WeightType:
        """The weights' type: the one the model's weight formats name for this layer (whose
        levels the weights must be), else the quantizer's integer type."""
        fmt = self.weight_formats.get(name)
        if fmt is None:
            return w_type
        self.weight_formats_used.add(name)
        typed = fmt.weight_type
        if not typed.contains(w_int):
            bad = next(int(v) for v in np.unique(w_int) if not typed.contains(v))
            raise UnsupportedModelError(name, op_type, f"weights are marked {fmt} but {bad} is not a {fmt} "
                                        f"level; write the model with hwcodesign.frontend.formats.with_weight_formats")
        return typed

    def refuse_weight_format(self, name: str, op_type: str, why: str) -> None:
        if name in self.weight_formats:
            raise UnsupportedModelError(name, op_type, f"weight format {self.weight_formats[name]}: {why}")

    def bias_real(self, node: onnx.NodeProto, name: str, index: int, channels: int) -> np.ndarray:
        value = self.optional(node, index)
        if value is None:
            return np.zeros(channels)
        if isinstance(value, QuantizedConstant):
            real = (value.q - value.zero_point) * value.scale
        elif isinstance(value, Constant):
            real = value.array.astype(np.float64)
        else:
            raise UnsupportedModelError(name, node.op_type, f"bias '{node.input[index]}' must be a constant")
        if real.size not in (1, channels):
            raise UnsupportedModelError(name, node.op_type, f"bias '{node.input[index]}' has {real.size} values for "
                                        f"{channels} output channels")
        return np.broadcast_to(real.reshape(-1), (channels,)).astype(np.float64)

    def conv(self, node: onnx.NodeProto, name: str) -> None:
        x = self.activation(node, name, 0)
        attrs = self.attrs(node)
        weight = self.weights(node, name, 1)
        w_scale, w_int, w_type = self.output_channel_scale(name, node.op_type, weight, 0)
        if w_int.ndim != 4:
            raise UnsupportedModelError(name, node.op_type, f"{w_int.ndim - 2}-D convolution; only 2-D is supported")
        check_window(name, node.op_type, attrs, w_int.shape[2:])
        w_type = self.weight_format(name, node.op_type, w_int, w_type)
        out_channels, _, kh, kw = w_int.shape
        groups = int(attrs.get("group", 1))
        stride = tuple(int(s) for s in attrs.get("strides", (1, 1)))
        dilation = tuple(int(d) for d in attrs.get("dilations", (1, 1)))
        pads = self.window_pads(node, name, attrs, x.tensor.shape, (kh, kw), stride, dilation)
        depthwise = groups > 1 and groups == x.tensor.channels == out_channels
        layer_name = self.unique(name)
        input_name = x.tensor.name

        def build(stage: FinalStage) -> Op:
            bias, requant = self.bias_and_requant(name, node.op_type, stage)
            if stage.output.sparse and isinstance(w_type, DyBitType):
                raise UnsupportedModelError(name, node.op_type, f"{w_type} weights on a sparse conv; DyBit weights are "
                                            "decoded in dense Conv, depthwise Conv and Gemm/MatMul stages")
            kind = sparse_conv_kind(stage.output.sparse, depthwise)
            return kind(layer_name, (input_name,), stage.output, w_int, w_type, bias,
                        stride, pads, dilation, groups, requant)  # type: ignore[arg-type]

        probe = Conv(layer_name, (input_name,), x.tensor, w_int, w_type, np.zeros(out_channels, np.int64),
                     stride, pads, dilation, groups, _unit_requant())  # type: ignore[arg-type]
        shape = probe.output_shape([x.tensor.shape])
        if min(shape[2:]) < 1:
            raise UnsupportedModelError(name, node.op_type, f"output would be empty: {shape}")
        acc_scale = x.tensor.scale * w_scale
        window = ConvWindow(x.tensor.active, (kh, kw), stride, pads)  # type: ignore[arg-type]
        pending = Pending(name, node.op_type, shape, acc_scale, build, bias=np.zeros(out_channels), window=window)
        self.values[node.output[0]] = self.add_bias(pending, self.bias_real(node, name, 2, out_channels), node)

    def deform_conv(self, node: onnx.NodeProto, name: str) -> None:
        """ONNX DeformConv (opset 19) with quantized input, offsets (and mask), bounded offsets.

        The offset bound R comes from the offset tensor's quantized range, i.e. from a Clip on
        the offset branch before its QuantizeLinear; offsets that can move further than
        `MAX_OFFSET_RANGE` pixels are refused, since their line buffer would not fit on chip.
        Offsets computed as Mul(d, P), P the square pattern (`fixed_shape_mul`), make it a
        fixed-shape DeformConv reading d, whose clamped range times max|p_k| bounds R.
        """
        x = self.activation(node, name, 0)
        weight = self.weights(node, name, 1)
        fixed_d = self.fixed_shape_offsets.get(node.input[2]) if len(node.input) > 2 else None
        offset = fixed_d if fixed_d is not None else self.activation(node, name, 2)
        mask = self.activation(node, name, 4) if len(node.input) > 4 and node.input[4] else None
        attrs = self.attrs(node)
        self.refuse_weight_format(name, node.op_type, "deformable convolutions keep integer weights")
        w_scale, w_int, w_type = self.output_channel_scale(name, node.op_type, weight, 0)
        if w_int.ndim != 4:
            raise UnsupportedModelError(name, node.op_type, f"{w_int.ndim - 2}-D deformable convolution; only 2-D")
        check_window(name, node.op_type, attrs, w_int.shape[2:])
        out_channels = w_int.shape[0]
        stride = tuple(int(v) for v in attrs.get("strides", (1, 1)))  # type: ignore[union-attr]
        dilation = tuple(int(v) for v in attrs.get("dilations", (1, 1)))  # type: ignore[union-attr]
        pads = tuple(int(v) for v in attrs.get("pads", (0, 0, 0, 0)))  # type: ignore[union-attr]
        groups = int(attrs.get("group", 1))  # type: ignore[arg-type]
        offset_groups = int(attrs.get("offset_group", 1))  # type: ignore[arg-type]
        reach = pattern_reach(w_int.shape[2:], dilation) if fixed_d is not None else None
        offset_range = self.offset_bound(offset, name, node.op_type, w_int.shape[2], dilation[0], reach)
        frac = DEFORM_FRAC_BITS
        limit = (offset_range << frac) // (reach or 1)  # DeformConv.offset_limit
        offset_requant = make_requant(np.array([offset.tensor.scale * 2.0**frac]), 0, -limit, limit)
        mask_scale = mask.tensor.scale if mask is not None else 1.0
        acc_scale = x.tensor.scale * w_scale * mask_scale / 2.0 ** (2 * frac - DEFORM_SAMPLE_SHIFT)
        layer_name = self.unique(name)
        inputs = (x.tensor.name, offset.tensor.name) + ((mask.tensor.name,) if mask is not None else ())

        def build(stage: FinalStage) -> Op:
            bias, requant = self.bias_and_requant(name, node.op_type, stage)
            return DeformConv(layer_name, inputs, stage.output, w_int, w_type, bias, stride, pads, dilation,  # type: ignore[arg-type]
                              groups, offset_groups, offset_range, frac, offset_requant, DEFORM_SAMPLE_SHIFT, requant,
                              fixed_shape=fixed_d is not None)

        probe = Conv(layer_name, (x.tensor.name,), x.tensor, w_int, w_type, np.zeros(out_channels, np.int64),
                     stride, pads, dilation, groups, _unit_requant())  # type: ignore[arg-type]
        shape = probe.output_shape([x.tensor.shape])
        pending = Pending(name, node.op_type, shape, acc_scale, build, bias=np.zeros(out_channels))
        self.values[node.output[0]] = self.add_bias(pending, self.bias_real(node, name, 3, out_channels), node)

    def offset_bound(self, offset: Activation, name: str, op_type: str, kernel: int, dilation: int,
                     pattern: int | None = None) -> int:
        """Pixels the offsets can move a sample: what their quantized (and clamped) range reaches.

        A fixed shape's offsets are d * p_k, so its d reaches `pattern` = max|p_k| times further.
        """
        gain = pattern or 1
        tensor = offset.tensor
        lo, hi = tensor.dtype.min, tensor.dtype.max
        producer = next((op for op in self.ops if op.output.name == tensor.name), None)
        if producer is not None and producer.requants():
            lo = max(lo, min(rq.lo for rq in producer.requants()))
            hi = min(hi, max(rq.hi for rq in producer.requants()))
        reach = max(abs(lo - tensor.zero_point), abs(hi - tensor.zero_point)) * tensor.scale * gain
        # a Clip at R quantizes to a range ending within one step of R (of R / gain for d)
        offset_range = max(1, int(np.ceil(reach - tensor.scale * gain)))
        if offset_range > MAX_OFFSET_RANGE:
            rows = (kernel - 1) * dilation + 2 * offset_range + 1
            bound = "offsets with Clip(min=-R, max=R)" if pattern is None else (
                f"fixed-shape scale d with Clip(min=-R/{pattern}, max=R/{pattern}) ({pattern} = max |p_k|)")
            raise UnsupportedModelError(
                name, op_type,
                f"offsets can move samples {reach:.3g} pixels (the quantized range of '{tensor.name}'); the hardware "
                f"streams rows through a line buffer, and reaching that far would need {rows} rows of it. Bound the "
                f"{bound} on the offset branch before its QuantizeLinear, R <= {MAX_OFFSET_RANGE}",
            )
        return offset_range

    def fixed_shape_mul(self, node: onnx.NodeProto, name: str) -> bool:
        """Is this Mul(d, P) the offsets of fixed-shape DeformConvs? Then record d and say so.

        It is when its output feeds only DeformConv offset inputs, one operand is a quantized
        activation d and the other a constant with one value per offset channel (2*G*K*K) while d
        has fewer channels. Then P must be the square pattern (`DeformConv.square_pattern`) in
        ONNX offset order (group, tap, (y, x)), shaped (1, 2*G*K*K, 1, 1), and d one channel per
        offset group: what is off is refused, naming this node. Anything else is an ordinary Mul.
        """
        out = node.output[0]
        graph = self.model.graph
        consumers = [(node_name(n, i), n) for i, n in enumerate(graph.node) if out in n.input]
        if not consumers or out in {v.name for v in graph.output} or not all(
            n.op_type == "DeformConv" and [i for i, t in enumerate(n.input) if t == out] == [2] for _, n in consumers
        ):
            return False
        a, b = self.value(node, name, 0), self.value(node, name, 1)
        if self.real_constant(a) is not None:
            a, b = b, a
        constant = self.real_constant(b)
        if constant is None or not isinstance(a, Activation) or a.tensor.channels >= constant.size:
            return False  # e.g. a per-channel scale of free offsets
        geometries = [self.deform_geometry(n, consumer) for consumer, n in consumers]
        if any(2 * groups * kernel[0] * kernel[1] != constant.size for kernel, _, groups in geometries):
            return False
        for (consumer, _), geometry in zip(consumers, geometries):
            self.check_fixed_shape(node, name, consumer, geometry, a, constant)
        self.fixed_shape_offsets[out] = a
        return True

    def deform_geometry(self, node: onnx.NodeProto, name: str) -> tuple[tuple[int, int], tuple[int, int], int]:
        """Kernel, dilation and offset groups of a DeformConv node, before its weights are lowered."""
        attrs = self.attrs(node)
        kernel = tuple(int(k) for k in attrs.get("kernel_shape", ()))  # type: ignore[union-attr]
        if len(kernel) != 2:
            kernel = self.constant_shape(node.input[1])[2:]
        if len(kernel) != 2:
            raise UnsupportedModelError(name, node.op_type, "the kernel shape is unknown; give it a kernel_shape attribute")
        dilation = tuple(int(v) for v in attrs.get("dilations", (1, 1)))  # type: ignore[union-attr]
        return kernel, dilation, int(attrs.get("offset_group", 1))  # type: ignore[return-value, arg-type]

    def constant_shape(self, tensor: str) -> tuple[int, ...]:
        """A weight's shape, even before the DequantizeLinear that reads its initializer is visited."""
        producer = next((n for n in self.model.graph.node if tensor in n.output), None)
        if producer is not None and producer.op_type in ("DequantizeLinear", "Identity"):
            tensor = producer.input[0]
        value = self.values.get(tensor)
        if isinstance(value, QuantizedConstant):
            return tuple(value.q.shape)
        if isinstance(value, Constant):
            return tuple(value.array.shape)
        return ()

    @staticmethod
    def check_fixed_shape(node: onnx.NodeProto, name: str, consumer: str,
                          geometry: tuple[tuple[int, int], tuple[int, int], int], d: Activation,
                          constant: np.ndarray) -> None:
        """The Mul's constant has a pattern's size, so it is meant as one: refuse what is off, precisely."""
        kernel, dilation, groups = geometry
        where = f"offsets = Mul(d, P) of DeformConv '{consumer}' look like a fixed shape, but"
        if kernel[0] % 2 == 0 or kernel[1] % 2 == 0 or kernel == (1, 1):
            raise UnsupportedModelError(
                name, node.op_type, f"{where} a fixed shape scales the taps about a centre tap: it needs an odd kernel "
                f"larger than 1x1, not {kernel[0]}x{kernel[1]}")
        pattern = DeformConv.square_pattern(kernel, dilation)
        expected = np.tile(pattern.reshape(-1), groups).reshape(1, -1, 1, 1)
        broadcast = (1,) * (4 - constant.ndim) + constant.shape  # as ONNX aligns it against d
        if broadcast != expected.shape:
            raise UnsupportedModelError(
                name, node.op_type, f"{where} P must have shape {expected.shape} ((dy, dx) per offset group and tap, "
                f"broadcast over the pixels), not {constant.shape}")
        if not np.allclose(constant.reshape(expected.shape), expected, rtol=0, atol=1e-6):
            raise UnsupportedModelError(
                name, node.op_type, f"{where} P is not the square pattern of a {kernel[0]}x{kernel[1]} kernel at dilation "
                f"{dilation}: tap k = (i, j) needs ((i - (KH-1)/2) * dil_h, (j - (KW-1)/2) * dil_w), i.e. "
                f"{pattern.tolist()} per offset group")
        if groups != 1 or d.tensor.channels != 1:
            raise UnsupportedModelError(
                name, node.op_type, f"{where} d '{d.tensor.name}' has {d.tensor.channels} channels for offset_group="
                f"{groups}; a fixed shape needs one d per offset group, and ONNX broadcasts Mul(d, P) only with one "
                "channel, so use offset_group=1")

    @staticmethod
    def bias_and_requant(name: str, op_type: str, stage: FinalStage) -> tuple[np.ndarray, Requant]:
        """Integer bias for the accumulator; its sub-unit remainder goes to the requant offset."""
        rounded = np.rint(stage.bias)
        if not np.all(np.isfinite(rounded)):
            raise UnsupportedModelError(name, op_type, "the bias (with what folds into it: BatchNorm, added constants) "
                                        "is not finite")
        if not BIAS_TYPE.contains(rounded):
            raise UnsupportedModelError(name, op_type, "bias does not fit 32 bits in accumulator units")
        requant = stage.requant(fractional_bias=stage.bias - rounded)
        return rounded.astype(np.int64), requant

    def window_pads(self, node: onnx.NodeProto, name: str, attrs: dict[str, object], shape: Shape,
                    kernel: tuple[int, int], stride: tuple[int, ...], dilation: tuple[int, ...]) -> tuple[int, int, int, int]:
        auto_pad = attrs.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
        if auto_pad in ("NOTSET", ""):
            pads = tuple(int(p) for p in attrs.get("pads", (0, 0, 0, 0)))  # type: ignore[union-attr]
            if len(pads) != 4:
                raise UnsupportedModelError(name, node.op_type, f"pads {pads} are not 2-D")
            return pads  # type: ignore[return-value]
        if auto_pad == "VALID":
            return (0, 0, 0, 0)
        totals = []
        for size, k, s, d in zip(shape[2:], kernel, stride, dilation):
            out = -(-size // s)
            totals.append(max(0, (out - 1) * s + (k - 1) * d + 1 - size))
        if auto_pad == "SAME_UPPER":
            return (totals[0] // 2, totals[1] // 2, totals[0] - totals[0] // 2, totals[1] - totals[1] // 2)
        return (totals[0] - totals[0] // 2, totals[1] - totals[1] // 2, totals[0] // 2, totals[1] // 2)

    def linear(self, node: onnx.NodeProto, name: str, x: Activation, weight: QuantizedConstant,
               out_axis: int, gain: float, bias_index: int | None) -> None:
        tensor = x.tensor
        if not x.flat and tensor.shape[2:] != (1, 1):
            raise UnsupportedModelError(
                name, node.op_type, f"input '{tensor.name}' is {tensor.shape}; flatten it before a matrix multiply"
            )
        w_scale, w_int, w_type = self.output_channel_scale(name, node.op_type, weight, out_axis)
        if w_int.ndim != 2 or w_int.shape[1] != tensor.elements_per_frame:
            raise UnsupportedModelError(
                name, node.op_type, f"weight shape {weight.q.shape} does not match {tensor.elements_per_frame} inputs"
            )
        w_type = self.weight_format(name, node.op_type, w_int, w_type)
        out_channels = w_int.shape[0]
        w_int = w_int.reshape((out_channels,) + tensor.shape[1:])
        layer_name = self.unique(name)

        def build(stage: FinalStage) -> Op:
            bias, requant = self.bias_and_requant(name, node.op_type, stage)
            return Linear(layer_name, (tensor.name,), stage.output, w_int, w_type, bias, requant)

        shape = (1, out_channels, 1, 1)
        pending = Pending(name, node.op_type, shape, tensor.scale * w_scale, build,
                          gain=np.full(1, gain), bias=np.zeros(out_channels), flat=True)
        if bias_index is not None:
            pending = self.add_bias(pending, self.bias_real(node, name, bias_index, out_channels), node)
        self.values[node.output[0]] = pending

    def gemm(self, node: onnx.NodeProto, name: str) -> None:
        attrs = self.attrs(node)
        if int(attrs.get("transA", 0)):
            raise UnsupportedModelError(name, node.op_type, "transA=1 is not supported")
        x = self.activation(node, name, 0)
        weight = self.weights(node, name, 1)
        out_axis = 0 if int(attrs.get("transB", 0)) else 1
        beta = float(attrs.get("beta", 1.0))
        alpha = float(attrs.get("alpha", 1.0))
        self.linear(node, name, x, weight, out_axis, alpha, None)
        pending = self.values[node.output[0]]
        assert isinstance(pending, Pending)
        bias = self.bias_real(node, name, 2, pending.channels) * beta
        self.values[node.output[0]] = self.add_bias(pending, bias, node)

    def matmul(self, node: onnx.NodeProto, name: str) -> None:
        x = self.activation(node, name, 0)
        self.linear(node, name, x, self.weights(node, name, 1), 1, 1.0, None)

    # ====================================================== float epilogue
    def add_bias(self, pending: Pending, bias: np.ndarray, node: onnx.NodeProto) -> Pending:
        if not np.any(bias):
            return pending
        if pending.activation != "none":
            raise UnsupportedModelError(
                node.name or node.op_type, node.op_type, f"adds a constant after the activation of '{pending.node}'; cannot fold"
            )
        if not pending.has_bias:
            raise UnsupportedModelError(
                node.name or node.op_type, node.op_type, f"'{pending.node}' ({pending.op_type}) has no bias to fold a constant into"
            )
        unit = pending.gain * pending.acc_scale
        if np.any(unit == 0):
            raise UnsupportedModelError(node.name or node.op_type, node.op_type, "a zero scale makes the bias unfoldable")
        return pending.with_changes(bias=pending.bias + bias / unit)

    def scale_pending(self, pending: Pending, gain: np.ndarray, node: onnx.NodeProto, name: str) -> Pending:
        if pending.activation != "none":
            raise UnsupportedModelError(
                name, node.op_type, f"scales the output of '{pending.node}' after its activation; cannot fold into the layer"
            )
        if np.any(gain == 0):
            raise UnsupportedModelError(name, node.op_type, "a zero scale factor cannot be folded")
        if not pending.has_bias and np.unique(gain).size > 1:
            raise UnsupportedModelError(
                name, node.op_type, f"per-channel scaling of '{pending.node}' ({pending.op_type}) cannot be folded"
            )
        return pending.with_changes(gain=pending.gain * gain, passthrough=None)

    def channel_vector(self, array: np.ndarray, channels: int, name: str, node: onnx.NodeProto) -> np.ndarray:
        """A constant that broadcasts per channel over NCHW (shape (C,1,1), (1,C,1,1), scalar...)."""
        squeezed = np.asarray(array, dtype=np.float64)
        if squeezed.size in (1, channels):
            trailing = squeezed.shape[-2:] if squeezed.ndim >= 3 else ()
            if squeezed.size == 1 or all(d == 1 for d in trailing):
                return np.broadcast_to(squeezed.reshape(-1), (channels,))
        raise UnsupportedModelError(
            name, node.op_type, f"constant of shape {array.shape} is not per-channel for {channels} channels"
        )

    def real_constant(self, value: Value) -> np.ndarray | None:
        """The real value of a (possibly quantized) constant operand, else None."""
        if isinstance(value, Constant):
            return value.array.astype(np.float64)
        if isinstance(value, QuantizedConstant):
            return (value.q - value.zero_point) * value.scale
        return None

    def add(self, node: onnx.NodeProto, name: str) -> None:
        a, b = self.value(node, name, 0), self.value(node, name, 1)
        if self.real_constant(a) is not None:
            a, b = b, a
        constant = self.real_constant(b)
        if constant is not None:
            if isinstance(a, Activation):
                a = self.affine_pending(a, name)
            if not isinstance(a, Pending):
                raise UnsupportedModelError(name, node.op_type, "adds two constants or a float input")
            bias = self.channel_vector(constant, a.channels, name, node)
            self.values[node.output[0]] = self.add_bias(a, bias, node)
            return
        lhs = self.require_activation(node.input[0], name, node.op_type).tensor
        rhs = self.require_activation(node.input[1], name, node.op_type).tensor
        if lhs.shape != rhs.shape:
            raise UnsupportedModelError(name, node.op_type, f"broadcasting add of {lhs.shape} and {rhs.shape}")
        layer_name = self.unique(name)

        def build(stage: FinalStage) -> Op:
            if stage.negative_ratio is not None:
                raise UnsupportedModelError(name, node.op_type, "LeakyRelu fused after Add; quantize the sum first")
            ratio = float(stage.ratio[0])
            multipliers, shift = shared_shift([ratio * lhs.scale, ratio * rhs.scale])
            requant = Requant(np.ones(1, np.int64), np.full(1, shift, np.int64), stage.output.zero_point, stage.lo, stage.hi)
            return Add(layer_name, (lhs.name, rhs.name), stage.output, (multipliers[0], multipliers[1]), requant)

        self.values[node.output[0]] = Pending(name, node.op_type, lhs.shape, np.ones(1), build, has_bias=False,
                                              active=lhs.active)

    def mul(self, node: onnx.NodeProto, name: str) -> None:
        if self.fixed_shape_mul(node, name) or self.mask_mul(node, name):
            return
        a, b = self.value(node, name, 0), self.value(node, name, 1)
        if self.real_constant(a) is not None:
            a, b = b, a
        constant = self.real_constant(b)
        if constant is None:
            raise UnsupportedModelError(name, node.op_type, "only multiplication by a constant is supported")
        if isinstance(a, Activation):
            a = self.affine_pending(a, name)
        if not isinstance(a, Pending):
            raise UnsupportedModelError(name, node.op_type, f"input '{node.input[0]}' is not an activation")
        gain = self.channel_vector(constant, a.channels, name, node)
        self.values[node.output[0]] = self.scale_pending(a, gain, node, name)

    def batch_norm(self, node: onnx.NodeProto, name: str) -> None:
        source = self.value(node, name, 0)
        gamma, beta, mean, var = (self.constant(node, name, i, what) for i, what in
                                  ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")))
        epsilon = float(self.attrs(node).get("epsilon", 1e-5))
        if not np.all(var.astype(np.float64) + epsilon > 0):
            raise UnsupportedModelError(name, node.op_type, f"variance + epsilon must be positive (variance "
                                        f"'{node.input[4]}', epsilon {epsilon:g})")
        a = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + epsilon)
        b = beta.astype(np.float64) - a * mean.astype(np.float64)
        if isinstance(source, Activation):
            source = self.affine_pending(source, name)
        if not isinstance(source, Pending):
            raise UnsupportedModelError(name, node.op_type, f"input '{node.input[0]}' is not an activation")
        pending = self.scale_pending(source, a, node, name)
        self.values[node.output[0]] = self.add_bias(pending, b, node)

    def affine_pending(self, x: Activation, name: str) -> Pending:
        """A per-channel scale and shift of a quantized activation (BatchNorm, Add/Mul by a constant).

        With nothing to fold into, it becomes a 1x1 depthwise conv with unit weights: the
        per-channel multiplier, bias and offset of its output stage do the work.
        """
        tensor = x.tensor
        channels = tensor.channels
        unit = np.ones((channels, 1, 1, 1), np.int64)
        layer_name = self.unique(name)

        def build(stage: FinalStage) -> Op:
            bias, requant = self.bias_and_requant(name, "affine", stage)
            kind = sparse_conv_kind(stage.output.sparse, channels > 1)
            return kind(layer_name, (tensor.name,), stage.output, unit, IntType(2, True), bias,
                        (1, 1), (0, 0, 0, 0), (1, 1), channels, requant)

        window = ConvWindow(tensor.active, (1, 1), (1, 1), (0, 0, 0, 0))
        return Pending(name, "affine", tensor.shape, np.full(1, tensor.scale), build,
                       bias=np.zeros(channels), flat=x.flat, window=window)

    # ============================================================ activations
    def elementwise_pending(self, x: Activation, name: str, function: str, passthrough: bool) -> Pending:
        """acc = x - zero_point on x's grid; becomes an Act op once its output is quantized."""
        tensor = x.tensor
        layer_name = self.unique(name)

        def build(stage: FinalStage) -> Op:
            requant = stage.requant()
            return Act(layer_name, (tensor.name,), stage.output, pending_function(stage, function), requant)

        return Pending(
            name, function, tensor.shape, np.full(1, tensor.scale), build, has_bias=False,
            passthrough=OutputQuantizer.of(tensor) if passthrough else None, flat=x.flat, active=tensor.active,
        )

    def activation_input(self, node: onnx.NodeProto, name: str, function: str, exact: bool) -> Pending:
        source = self.value(node, name, 0)
        if isinstance(source, Activation):
            return self.elementwise_pending(source, name, function, passthrough=exact)
        if isinstance(source, Pending):
            if source.activation not in ("none", "relu", "clip") or (function == "leaky_relu" and source.activation != "none"):
                raise UnsupportedModelError(name, node.op_type, f"second activation after '{source.node}' cannot be fused")
            return source
        raise UnsupportedModelError(name, node.op_type, f"input '{node.input[0]}' is not an activation")

    def set_clip(self, node: onnx.NodeProto, name: str, lo: float, hi: float, function: str) -> None:
        pending = self.activation_input(node, name, function, exact=True)
        old_lo, old_hi = pending.clip_range
        activation = function if pending.activation == "none" else "clip"
        self.values[node.output[0]] = pending.with_changes(
            activation=activation, clip_range=(max(old_lo, lo), min(old_hi, hi))
        )

    def relu(self, node: onnx.NodeProto, name: str) -> None:
        self.set_clip(node, name, 0.0, np.inf, "relu")

    def clip(self, node: onnx.NodeProto, name: str) -> None:
        attrs = self.attrs(node)
        lo = float(attrs.get("min", -np.inf))
        hi = float(attrs.get("max", np.inf))
        for index in (1, 2):
            value = self.optional(node, index)
            if value is None:
                continue
            if not isinstance(value, Constant):
                raise UnsupportedModelError(name, node.op_type, "clip bounds must be constants")
            if value.array.size != 1 or np.isnan(value.array).any():
                raise UnsupportedModelError(name, node.op_type, f"clip bound '{node.input[index]}' must be one number, "
                                            f"not {value.array.reshape(-1)[:4].tolist()} of shape {list(value.array.shape)}")
            if index == 1:
                lo = float(value.array.reshape(()))
            else:
                hi = float(value.array.reshape(()))
        self.set_clip(node, name, lo, hi, "relu" if lo == 0 and not np.isfinite(hi) else "clip")

    def leaky_relu(self, node: onnx.NodeProto, name: str) -> None:
        alpha = float(self.attrs(node).get("alpha", 0.01))
        pending = self.activation_input(node, name, "leaky_relu", exact=False)
        if not pending.has_bias and pending.op_type not in ("identity", "leaky_relu"):
            raise UnsupportedModelError(name, node.op_type, f"LeakyRelu fused after {pending.op_type}; quantize its input first")
        self.values[node.output[0]] = pending.with_changes(activation="leaky_relu", leaky_alpha=alpha, passthrough=None)

    # ================================================================ pooling
    def pool(self, node: onnx.NodeProto, name: str) -> None:
        mask = self.values.get(node.input[0])
        if isinstance(mask, ActiveMask):  # the active sites of a strided sparse level
            self.mask_pool(node, name, mask)
            return
        x = self.activation(node, name, 0).tensor
        attrs = self.attrs(node)
        kernel = tuple(int(k) for k in attrs.get("kernel_shape", ()))  # type: ignore[union-attr]
        check_window(name, node.op_type, attrs, kernel)
        stride = tuple(int(s) for s in attrs.get("strides", (1, 1)))
        if int(attrs.get("ceil_mode", 0)):
            raise UnsupportedModelError(name, node.op_type, "ceil_mode=1 is not supported; use floor mode (ceil_mode=0), "
                                        "with one more row/column of pads at the bottom/right if the size must stay")
        if any(int(d) != 1 for d in attrs.get("dilations", (1, 1))):
            raise UnsupportedModelError(name, node.op_type, "dilated pooling is not supported")
        pads = self.window_pads(node, name, attrs, x.shape, kernel, stride, (1, 1))  # type: ignore[arg-type]
        mode = "max" if node.op_type == "MaxPool" else "avg"
        if mode == "avg" and any(pads) and not int(attrs.get("count_include_pad", 0)):
            raise UnsupportedModelError(
                name, node.op_type, "count_include_pad=0 with padding gives a position-dependent divisor; use count_include_pad=1"
            )
        if len(node.output) > 1 and node.output[1]:
            raise UnsupportedModelError(name, node.op_type, "the Indices output is not supported")
        layer_name = self.unique(name)

        def build(stage: FinalStage) -> Op:
            requant = stage.requant()
            return Pool(layer_name, (x.name,), stage.output, mode, kernel, stride, pads, requant)  # type: ignore[arg-type]

        shape = (x.shape[0], x.shape[1],
                 window_output_size(x.shape[2], kernel[0], stride[0], pads[0] + pads[2], 1),
                 window_output_size(x.shape[3], kernel[1], stride[1], pads[1] + pads[3], 1))
        acc_scale = x.scale if mode == "max" else x.scale / (kernel[0] * kernel[1])
        passthrough = OutputQuantizer.of(x) if mode == "max" else None
        self.values[node.output[0]] = Pending(name, node.op_type, shape, np.full(1, acc_scale), build,
                                              has_bias=False, passthrough=passthrough)

    def global_average_pool(self, node: onnx.NodeProto, name: str) -> None:
        x = self.activation(node, name, 0).tensor
        layer_name = self.unique(name)

        def build(stage: FinalStage) -> Op:
            requant = stage.requant()
            return GlobalAvgPool(layer_name, (x.name,), stage.output, requant)

        shape = (x.shape[0], x.shape[1], 1, 1)
        acc_scale = x.scale / (x.shape[2] * x.shape[3])
        self.values[node.output[0]] = Pending(name, node.op_type, shape, np.full(1, acc_scale), build, has_bias=False)

    # ============================================================== structure
    def concat(self, node: onnx.NodeProto, name: str) -> None:
        axis = int(self.attrs(node).get("axis", 1))
        tensors = [self.require_activation(i, name, node.op_type).tensor for i in node.input]
        if axis not in (1, -3):
            raise UnsupportedModelError(name, node.op_type, f"concat along axis {axis}; only channels (axis 1)")
        if len({(t.shape[2], t.shape[3]) for t in tensors}) != 1:
            raise UnsupportedModelError(name, node.op_type, "inputs differ in spatial size")
        layer_name = self.unique(name)

        def build(stage: FinalStage) -> Op:
            ratio = float(stage.ratio[0])
            requants = tuple(
                make_requant(np.full(t.channels, ratio * t.scale), stage.output.zero_point, stage.lo, stage.hi)
                for t in tensors
            )
            return Concat(layer_name, tuple(t.name for t in tensors), stage.output, requants)

        first = tensors[0]
        same = all(OutputQuantizer.of(first).same_grid(t) for t in tensors)
        shape = (first.shape[0], sum(t.channels for t in tensors), first.shape[2], first.shape[3])
        self.values[node.output[0]] = Pending(name, node.op_type, shape, np.ones(1), build, has_bias=False,
                                              passthrough=OutputQuantizer.of(first) if same else None)

    def resize(self, node: onnx.NodeProto, name: str) -> None:
        x = self.activation(node, name, 0).tensor
        attrs = self.attrs(node)
        mode = attrs.get("mode", b"nearest")
        mode = mode.decode() if isinstance(mode, bytes) else str(mode)
        if mode != "nearest":
            raise UnsupportedModelError(name, node.op_type, f"mode '{mode}'; only nearest-neighbour resize is supported")
        factors = self.resize_factors(node, name, attrs, x.shape)
        self.check_nearest_is_repeat(node, name, attrs, factors, x.shape)
        layer_name = self.unique(name)

        def build(stage: FinalStage) -> Op:
            requant = stage.requant()
            return Resize(layer_name, (x.name,), stage.output, factors, requant)

        shape = (x.shape[0], x.shape[1], x.shape[2] * factors[0], x.shape[3] * factors[1])
        self.values[node.output[0]] = Pending(name, node.op_type, shape, np.full(1, x.scale), build,
                                              has_bias=False, passthrough=OutputQuantizer.of(x))

    def resize_factors(self, node: onnx.NodeProto, name: str, attrs: dict[str, object], shape: Shape) -> tuple[int, int]:
        scales: np.ndarray | None = None
        if node.op_type == "Upsample":
            scales = np.asarray(attrs["scales"]) if "scales" in attrs else self.constant(node, name, 1, "scales")
        else:
            for index, what in ((2, "scales"), (3, "sizes")):
                value = self.optional(node, index)
                if value is None:
                    continue
                if not isinstance(value, Constant):
                    raise UnsupportedModelError(name, node.op_type, f"{what} must be constant")
                if value.array.size == 0:
                    continue
                scales = value.array.astype(np.float64)
                if what == "sizes":
                    scales = scales / np.asarray(shape, np.float64)
        if scales is None or scales.size != 4:
            raise UnsupportedModelError(name, node.op_type, "needs 4 constant scales or sizes")
        if scales[0] != 1 or scales[1] != 1:
            raise UnsupportedModelError(name, node.op_type, "resizing batch or channels is not supported")
        factors = tuple(int(round(s)) for s in scales[2:])
        if any(abs(s - f) > 1e-6 or f < 1 for s, f in zip(scales[2:], factors)):
            raise UnsupportedModelError(name, node.op_type, f"scale factors {scales[2:].tolist()} must be positive integers")
        return factors  # type: ignore[return-value]

    @staticmethod
    def check_nearest_is_repeat(node: onnx.NodeProto, name: str, attrs: dict[str, object],
                                factors: tuple[int, int], shape: Shape) -> None:
        """Integer upsampling is pixel repetition only for some coordinate/rounding modes; check."""
        if node.op_type == "Upsample":
            return
        def text(key: str, default: str) -> str:
            value = attrs.get(key, default)
            return value.decode() if isinstance(value, bytes) else str(value)
        transform = text("coordinate_transformation_mode", "half_pixel")
        rounding = text("nearest_mode", "round_prefer_floor")
        for factor, size in zip(factors, shape[2:]):
            out = np.arange(size * factor, dtype=np.float64)
            if transform == "asymmetric":
                source = out / factor
            elif transform in ("half_pixel", "pytorch_half_pixel"):
                source = (out + 0.5) / factor - 0.5
            elif transform == "align_corners":
                source = out * (size - 1) / max(size * factor - 1, 1)
            else:
                raise UnsupportedModelError(name, node.op_type, f"coordinate_transformation_mode '{transform}'")
            rounded = {
                "floor": np.floor(source),
                "ceil": np.ceil(source),
                "round_prefer_floor": np.where(source % 1 == 0.5, np.floor(source), np.round(source)),
                "round_prefer_ceil": np.where(source % 1 == 0.5, np.ceil(source), np.round(source)),
            }.get(rounding)
            if rounded is None:
                raise UnsupportedModelError(name, node.op_type, f"nearest_mode '{rounding}'")
            if not np.array_equal(np.clip(rounded, 0, size - 1), out // factor):
                raise UnsupportedModelError(
                    name, node.op_type,
                    f"{transform}/{rounding} does not repeat pixels; use asymmetric coordinates with floor rounding",
                )

    def flatten(self, node: onnx.NodeProto, name: str) -> None:
        if int(self.attrs(node).get("axis", 1)) != 1:
            raise UnsupportedModelError(name, node.op_type, "only Flatten(axis=1) is a streaming no-op")
        self.flat_view(node, name)

    def flat_view(self, node: onnx.NodeProto, name: str) -> None:
        source = self.value(node, name, 0)
        if isinstance(source, Activation):
            self.values[node.output[0]] = Activation(source.tensor, flat=True)
        elif isinstance(source, Pending):
            self.values[node.output[0]] = source.with_changes(flat=True)
        else:
            raise UnsupportedModelError(name, node.op_type, f"input '{node.input[0]}' is not an activation")

    def reshape(self, node: onnx.NodeProto, name: str) -> None:
        source = self.value(node, name, 0)
        target = self.constant(node, name, 1, "target shape").astype(np.int64).tolist()
        shape = source.tensor.shape if isinstance(source, Activation) else getattr(source, "shape", None)
        if shape is None:
            raise UnsupportedModelError(name, node.op_type, f"input '{node.input[0]}' is not an activation")
        total = int(np.prod(shape))
        resolved = [shape[i] if d == 0 else d for i, d in enumerate(target)]
        if -1 in resolved:
            known = int(np.prod([d for d in resolved if d != -1]))
            resolved[resolved.index(-1)] = total // max(known, 1)
        elements = total // shape[0]
        if resolved == [shape[0], elements] or (resolved[:2] == [shape[0], elements] and all(d == 1 for d in resolved[2:])):
            self.flat_view(node, name)
            return
        if tuple(resolved) == tuple(shape):
            self.identity(node, name)
            return
        raise UnsupportedModelError(
            name, node.op_type, f"reshape {tuple(shape)} -> {tuple(resolved)} is not a flatten; it would reorder the stream"
        )

    def identity(self, node: onnx.NodeProto, name: str) -> None:
        self.values[node.output[0]] = self.value(node, name, 0)
        if node.op_type == "Dropout" and len(node.output) > 1 and node.output[1]:
            raise UnsupportedModelError(name, node.op_type, "the mask output is not supported")

    def shape_of(self, node: onnx.NodeProto, name: str) -> None:
        source = self.value(node, name, 0)
        if isinstance(source, Activation):
            shape = source.tensor.shape
            flat = source.flat
        elif isinstance(source, Pending | FloatInput):
            shape, flat = source.shape, getattr(source, "flat", False)
        else:
            raise UnsupportedModelError(name, node.op_type, "shape of an unsupported value")
        dims = (shape[0], int(np.prod(shape[1:]))) if flat else shape
        self.values[node.output[0]] = Constant(np.asarray(dims, np.int64))


FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE)
QUANTIZERS = ("QuantizeLinear", "DequantizeLinear", "Quant")
NEVER_FOLDED = ("Loop", "Scan", "If", "SequenceMap")  # control flow: folding it could run for ever


def node_name(node: onnx.NodeProto, index: int) -> str:
    return node.name or f"{node.op_type}_{index}"


def unsupported_nodes(model: onnx.ModelProto,
                      handled: set[str]) -> list[tuple[onnx.NodeProto, UnsupportedModelError]]:
    """Every node of an unsupported op, found before lowering starts, whatever its position.

    Any op is fine on constants only (it is folded); a tensor is constant when it is an
    initializer, a Constant node's output, a Shape, or computed from constants alone.
    """
    found = []
    constant = {init.name for init in model.graph.initializer}
    shapes = constant_values(model)
    for index, node in enumerate(model.graph.node):
        in_standard_domain = node.domain in ("", "ai.onnx")
        folds = in_standard_domain and node.op_type not in QUANTIZERS + NEVER_FOLDED and all(
            not name or name in constant for name in node.input
        )
        if node.op_type in ("Constant", "Shape") and in_standard_domain or folds:
            constant.update(node.output)
            continue
        qonnx_quant = node.domain in QONNX_DOMAINS and node.op_type == "Quant"
        sparse_conv = node.domain == SPARSE_DOMAIN and node.op_type == "SubmConv"
        if qonnx_quant or sparse_conv or (in_standard_domain and node.op_type in handled and node.op_type != "SubmConv"):
            continue
        op_type = node.op_type if in_standard_domain else f"{node.domain}.{node.op_type}"
        hint = op_hint(node, shapes)
        reason = f"op not supported; {hint}" if hint else "op not supported"
        found.append((node, UnsupportedModelError(node_name(node, index), op_type, reason)))
    return found


def constant_values(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {init.name: numpy_helper.to_array(init) for init in model.graph.initializer if init.data_type
            == onnx.TensorProto.INT64}


def op_hint(node: onnx.NodeProto, constants: dict[str, np.ndarray]) -> str | None:
    """What to use instead of an unsupported node, where a supported equivalent exists."""
    if node.op_type in ("ReduceMean", "ReduceSum"):
        axes = [int(a) for a in next((a.ints for a in node.attribute if a.name == "axes"), [])]
        if len(node.input) > 1 and node.input[1] in constants:
            axes = [int(a) for a in constants[node.input[1]].reshape(-1)]
        if sorted(a % 4 for a in axes) == [2, 3]:
            return (f"a {node.op_type} over H and W is a global average pool"
                    f"{' times H*W' if node.op_type == 'ReduceSum' else ''}: export it as GlobalAveragePool")
    if node.op_type == "Sum" and len(node.input) == 2:
        return "a Sum of two tensors is an Add: export it as Add"
    if node.op_type in ("HardSigmoid", "HardSwish", "Sigmoid", "Tanh", "Elu", "Selu", "Gelu", "Mish"):
        return ("the activations built are Relu, Clip (e.g. Relu6) and LeakyRelu: retrain with one of them, "
                "or run this op on the host after the accelerator's outputs")
    return None


def pending_function(stage: FinalStage, function: str) -> str:
    if stage.negative_ratio is not None:
        return "leaky_relu"
    if function in ("relu", "clip"):
        return function
    return "identity" if (stage.lo, stage.hi) == (stage.output.dtype.min, stage.output.dtype.max) else "clip"


def pattern_reach(kernel: tuple[int, ...], dilation: tuple[int, ...]) -> int:
    """max |p_k| of a fixed shape: pixels one unit of d moves the outermost tap."""
    return int(np.abs(DeformConv.square_pattern(kernel, dilation)).max(initial=0))  # type: ignore[arg-type]


def _unit_requant() -> Requant:
    return Requant(np.ones(1, np.int64), np.zeros(1, np.int64), 0, 0, 0)


SUPPORTED_OPS = (
    "QuantizeLinear", "DequantizeLinear", "Quant (QONNX)", "Conv", "DeformConv", "Gemm", "MatMul", "Add", "Mul",
    "BatchNormalization", "Relu", "Clip", "LeakyRelu", "MaxPool", "AveragePool", "GlobalAveragePool",
    "Concat", "Resize", "Upsample", "Flatten", "Reshape", "Identity", "Dropout", "Constant",
    "hwcodesign.SubmConv", "Abs/ReduceMax/ReduceSum/Greater/Cast (in an active-site mask)",
)


def supported_ops_text() -> str:
    return "supported ops: " + ", ".join(SUPPORTED_OPS) + " (plus any op on constants, which is folded)"
