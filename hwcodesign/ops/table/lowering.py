"""Lowering of float functions of one quantized tensor into lookup tables (`lookup-tables`).

Between a DequantizeLinear and a QuantizeLinear, any elementwise float computation that reads one
quantized tensor x (and per-tensor constants) is a function of x's 2**b levels: the table of its
quantized outputs. The pattern collects the float nodes as they come (`FloatChain`, a pending
layer its QuantizeLinear finishes) and the table is computed when the output grid is known, by
running exactly those nodes on every level (`table/evaluate.py`). It takes:

- a unary function of x: Sigmoid, HardSigmoid, HardSwish, Tanh, Exp, Erf, Softplus, Gelu;
- any chain of Add, Sub, Mul, Div, Relu, Clip, Neg, Max, Min around them on x and scalar
  constants: x * HardSigmoid(x), GELU's x * 0.5 * (1 + erf(x / sqrt 2)), HardSwish written as
  x * Clip(x + 3, 0, 6) / 6. An arithmetic node on x alone starts a chain only when the float
  nodes it leads to, up to their quantizers, hold a function or read x twice (else it is the
  usual per-tensor affine or activation layer);
- `x * f(x)` with f(x) quantized on its own (onnxruntime's quantize_static writes SiLU as
  Mul(DQ(x), DQ(Q(Sigmoid(DQ(x)))))): the second operand is a table of x, so the product is a
  function of x alone, fed to the float nodes through f's table. f's own table is then dead
  unless something else reads it (`remove-dead-layers`);
- a ReduceMean over H, W of such a chain, quantized after the mean: `LookupMean`, the sum of the
  function's values on a fine 16-bit grid, requantized once (`mean_of_function`).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import onnx

from hwcodesign.errors import HwcodesignError, UnsupportedModelError
from hwcodesign.frontend.context import LoweringContext
from hwcodesign.frontend.values import Activation, Constant, FinalStage, Pending, QuantizedConstant
from hwcodesign.ir.op import Op
from hwcodesign.ir.types import Tensor
from hwcodesign.ops.facets.lowering import FamilyLowering, Pattern
from hwcodesign.ops.table.evaluate import FloatFunction, Leaf, compute_table, fine_table
from hwcodesign.ops.table.ir import MEAN_TABLE_BITS, Lookup, LookupMean

FUNCTIONS = ("Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Exp", "Erf", "Softplus", "Gelu")
ARITHMETIC = ("Add", "Sub", "Mul", "Div", "Relu", "Clip", "Neg", "Max", "Min")
QUANTIZERS = ("QuantizeLinear", "Quant")
MAX_INPUT_BITS = 8  # a 2**b-entry ROM per lane: 256 entries at 8 bits, 65536 at 16
# what `inspect` calls a table, by the op types of its float nodes (sorted; a table read through
# a quantized f(x) counts as f)
NAMES = {("Mul", "Sigmoid"): "SiLU", ("HardSigmoid", "Mul"): "HardSwish", ("Add", "Clip", "Div", "Mul"): "HardSwish",
         ("Add", "Div", "Erf", "Mul", "Mul"): "GELU", ("Gelu",): "GELU"}


@dataclass(frozen=True, eq=False)
class FloatChain(Pending):
    """Float nodes on one quantized tensor, waiting for the quantizer that makes them a table."""

    function: FloatFunction | None = None


def lookup_tables(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> bool:
    """`lookup-tables`: take `node` into a float chain on one quantized tensor (module doc); a node
    it declines goes to its op type's rule, and is refused here if there is none."""
    if node.op_type == "ReduceMean":
        return mean_of_function(ctx, node, name)
    if take(ctx, node, name):
        return True
    if node.op_type not in ctx.rules:
        raise UnsupportedModelError(name, node.op_type, "only a float function of one quantized tensor and scalar "
                                    "constants, quantized after, is supported (it becomes a lookup table)")
    return False


def take(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> bool:
    operands = [(tensor, ctx.values.get(tensor)) for tensor in node.input if tensor]
    chains = [value for _, value in operands if isinstance(value, FloatChain) and value.function is not None]
    activations = [(tensor, value) for tensor, value in operands if isinstance(value, Activation)]
    constants = {tensor: value for tensor, value in operands if isinstance(value, Constant | QuantizedConstant)}
    if len(chains) + len(activations) + len(constants) != len(operands) or not chains and not activations:
        return False
    if any(ctx_array(value).size != 1 for value in constants.values()):
        return False  # a per-channel constant: an affine layer, not one function of every element
    found = leaves_of(ctx, activations, {chain.function.source.name: chain.function.source  # type: ignore[union-attr]
                                          for chain in chains})
    if found is None:
        return False
    leaves, source = found
    derived = any(leaf.levels is not None for leaf in leaves.values())
    if not chains and not derived and node.op_type not in FUNCTIONS:
        read = {value.tensor.name for _, value in activations}
        aliases = {t for t, value in ctx.values.items() if isinstance(value, Activation) and value.tensor.name in read}
        if not leads_to_function(ctx, node, aliases):
            return False
    if source.dtype.bits > MAX_INPUT_BITS:
        raise UnsupportedModelError(name, node.op_type, f"a float function of the {source.dtype} tensor "
                                    f"'{source.name}' would be a {1 << source.dtype.bits}-entry table per lane; "
                                    f"lookup tables take inputs of at most {MAX_INPUT_BITS} bits")
    merged_leaves: dict[str, Leaf] = {}
    merged_constants: dict[str, np.ndarray] = {}
    nodes: dict[str, onnx.NodeProto] = {}
    for chain in chains:
        assert chain.function is not None
        merged_leaves.update(chain.function.leaves)
        merged_constants.update(chain.function.constants)
        nodes.update((n.output[0], n) for n in chain.function.nodes)
    merged_leaves.update(leaves)
    merged_constants.update((tensor, ctx_array(value)) for tensor, value in constants.items())
    nodes[node.output[0]] = node
    function = FloatFunction(source, MappingProxyType(merged_leaves), MappingProxyType(merged_constants),
                             tuple(nodes.values()), node.output[0], default_opset(ctx.model))
    flat = any(value.flat for _, value in activations) or any(chain.flat for chain in chains)
    ctx.values[node.output[0]] = chain_value(ctx, name, node.op_type, function, flat)
    return True


def mean_of_function(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> bool:
    """A ReduceMean over H, W of a float chain (`quantize_static` quantizes a mean, not always the
    function before it: dynamo's MobileNetV3 ends in ReduceMean(HardSwish(x))): the sum of the
    function's fine table (`LookupMean`). A mean of a quantized tensor is left to the pool rule."""
    chain = ctx.values.get(node.input[0])
    if not isinstance(chain, FloatChain) or chain.function is None:
        return False
    function, attrs = chain.function, ctx.attrs(node)
    if len(node.input) > 1 and node.input[1]:
        axes = [int(a) for a in ctx.constant(node, name, 1, "axes").reshape(-1)]
    else:
        axes = [int(a) for a in attrs.get("axes", ())]  # type: ignore[union-attr]
    shape = chain.shape
    if len(shape) != 4 or sorted(a % 4 for a in axes) != [2, 3]:
        raise UnsupportedModelError(name, node.op_type, f"axes {axes}: a mean of a float function is supported "
                                    "over H and W (axes 2, 3) of an NCHW tensor")
    try:
        table, fine_scale = fine_table(function, MEAN_TABLE_BITS)
    except HwcodesignError as error:
        raise UnsupportedModelError(name, node.op_type, str(error)) from None
    source, layer_name = function.source, ctx.unique(name)

    def build(stage: FinalStage) -> Op:
        return LookupMean(layer_name, (source.name,), stage.output, table_name(function), table, stage.requant())

    acc_scale = fine_scale / (shape[2] * shape[3])
    ctx.values[node.output[0]] = Pending(name, node.op_type, (shape[0], shape[1], 1, 1), np.full(1, acc_scale), build,
                                         has_bias=False, flat=not int(attrs.get("keepdims", 1)))
    return True


def ctx_array(value: Constant | QuantizedConstant) -> np.ndarray:
    """A constant as onnxruntime reads it: a float constant as stored, a quantized one dequantized
    in float32 ((q - zero point) in int32, times the float32 scale)."""
    if isinstance(value, Constant):
        return np.asarray(value.array)
    difference = (value.q - value.zero_point).astype(np.int32).astype(np.float32)
    return difference * np.asarray(value.scale, np.float32)


def leaves_of(ctx: LoweringContext, activations: list[tuple[str, Activation]],
              chain_sources: dict[str, Tensor]) -> tuple[dict[str, Leaf], Tensor] | None:
    """The quantized tensors a node reads as leaves of one source tensor (the tensor itself, or a
    lookup table of it), and that source; None when they are functions of different tensors."""
    tensors = {value.tensor.name: value.tensor for _, value in activations}
    parents = {t: parent_of(ctx, tensor) for t, tensor in tensors.items()}
    candidates = {**chain_sources, **tensors, **{p.name: p for p in parents.values() if p is not None}}
    for root, source in candidates.items():
        if set(chain_sources) <= {root} and all(t == root or parents[t] is not None and parents[t].name == root  # type: ignore[union-attr]
                                                 for t in tensors):
            leaves = {}
            for name, value in activations:
                lookup = None if value.tensor.name == root else producer_lookup(ctx, value.tensor)
                leaves[name] = Leaf(value.tensor) if lookup is None else Leaf(value.tensor, lookup.table, lookup.function)
            return leaves, source
    return None


def producer_lookup(ctx: LoweringContext, tensor: Tensor) -> Lookup | None:
    for op in reversed(ctx.ops):
        if op.output.name == tensor.name:
            return op if isinstance(op, Lookup) else None
    return None


def parent_of(ctx: LoweringContext, tensor: Tensor) -> Tensor | None:
    """The tensor a lookup table reads, for a tensor a lookup table makes (else None)."""
    lookup = producer_lookup(ctx, tensor)
    if lookup is None:
        return None
    for op in ctx.ops:
        if op.output.name == lookup.inputs[0]:
            return op.output
    return None


def leads_to_function(ctx: LoweringContext, start: onnx.NodeProto, sources: set[str]) -> bool:
    """Whether an arithmetic node on a quantized tensor (float names `sources`) starts a float
    function of it: the elementwise nodes it feeds, up to quantizers only, hold a unary function or
    a node reading the tensor twice (x * h(x)). Anything else leaving them refuses the chain."""
    nodes = list(ctx.model.graph.node)
    constant_outputs = {output for node in nodes if node.op_type == "Constant" for output in node.output}
    initializers = {init.name for init in ctx.model.graph.initializer}

    def constant(tensor: str) -> bool:
        value = ctx.values.get(tensor)
        return isinstance(value, Constant | QuantizedConstant) or tensor in constant_outputs or tensor in initializers

    region, made = [start], set(start.output)
    grown = True
    while grown:
        grown = False
        for node in nodes:
            if node in region or not any(tensor in made for tensor in node.input):
                continue
            if node.op_type in QUANTIZERS:
                continue
            if node.op_type not in FUNCTIONS + ARITHMETIC:
                return False
            if not all(not t or t in made or t in sources or constant(t) for t in node.input):
                return False
            region.append(node)
            made.update(node.output)
            grown = True
    return any(node.op_type in FUNCTIONS or sum(1 for t in node.input if t in made or t in sources) >= 2
               for node in region)


def default_opset(model: onnx.ModelProto) -> int:
    return next((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), 13)


def table_name(function: FloatFunction) -> str:
    """`inspect`'s name of a table: its function's common name, else its float nodes' op types."""
    parts = [leaf.function for leaf in function.leaves.values() if leaf.levels is not None]
    parts += [node.op_type for node in function.nodes]
    key = tuple(sorted(parts))
    return NAMES.get(key, parts[0] if len(parts) == 1 else "(" + " ".join(parts) + ")")


def chain_value(ctx: LoweringContext, name: str, op_type: str, function: FloatFunction, flat: bool) -> FloatChain:
    source = function.source

    def build(stage: FinalStage) -> Op:
        gain = stage.ratio * stage.output.scale
        if stage.negative_ratio is not None or np.any(stage.bias != 0) or not np.allclose(gain, 1, rtol=1e-12):
            raise UnsupportedModelError(name, op_type, "a per-channel scale or bias (BatchNormalization, Mul or Add "
                                        "of a vector) after a float function; quantize the function's output first")
        try:
            table = compute_table(function, stage.output)
        except HwcodesignError as error:
            raise UnsupportedModelError(name, op_type, str(error)) from None
        table = np.clip(table, stage.lo, stage.hi)
        return Lookup(ctx.unique(name), (source.name,), stage.output, table_name(function), table)

    return FloatChain(name, "Lookup", source.shape, np.ones(1), build, has_bias=False, flat=flat, function=function)


LOWERING = FamilyLowering(
    patterns=(
        Pattern("lookup-tables", FUNCTIONS + ARITHMETIC + ("ReduceMean",), lookup_tables,
                "float functions of one quantized tensor (Sigmoid, HardSwish, x * sigmoid(x), GELU, ...) made "
                "lookup tables of its levels, and a mean over H, W of one the sum of its fine table"),
    ),
)
