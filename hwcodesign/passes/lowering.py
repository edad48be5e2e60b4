"""The lowering pass: walk the ONNX nodes in order and build the integer IR with the op families'
rules (`hwcodesign/ops/<family>/lowering.py`), the toolkit's plumbing (`frontend/plumbing.py`)
and the named patterns the pipeline enables (`LOWERING_STEPS`).

Each node goes to the enabled patterns that list its op type, in pipeline order, then to the
rule for its op type. An op type no rule or enabled pattern takes is refused before the walk,
with every such node listed (`frontend/unsupported.py`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from types import MappingProxyType

import numpy as np
import onnx
from onnx import numpy_helper

from hwcodesign.errors import UnsupportedModelError, raise_all
from hwcodesign.frontend.context import LAYOUT_OPS, Builders, LoweringContext, Rule, node_name
from hwcodesign.frontend.finn_types import annotated_integers, annotated_types, integer_type
from hwcodesign.frontend.formats import FORMATS_KEY
from hwcodesign.frontend.loader import graph_inputs
from hwcodesign.frontend.narrow import narrow_quantizers
from hwcodesign.frontend.plumbing import PLUMBING
from hwcodesign.frontend.quantizers import FLOAT_TYPES, ONNX_INT_TYPES, QUANTIZERS
from hwcodesign.frontend.sparse import sparse_roots
from hwcodesign.frontend.unsupported import supported_ops_text, unsupported_nodes
from hwcodesign.frontend.validate import duplicate_node_names, input_size_problem
from hwcodesign.frontend.values import Constant, FloatInput, QuantizedConstant
from hwcodesign.ir.graph import Graph
from hwcodesign.ir.types import IntType, Tensor
from hwcodesign.ops import FAMILIES
from hwcodesign.ops.facets.lowering import FamilyLowering, Pattern

FOLD_CONSTANTS = "fold-constants"


def fold_constants(ctx: LoweringContext, node: onnx.NodeProto, name: str) -> bool:
    """`fold-constants`: a node computing on constants only is evaluated now (ONNX reference); a
    layout op (Transpose, Reshape, ...) of quantized weights moves their integers and scales."""
    inputs = [ctx.values.get(i) for i in node.input if i]
    if node.op_type in QUANTIZERS or not inputs:
        return False
    if all(isinstance(v, Constant) for v in inputs):
        ctx.fold_constant(node, name)
        return True
    if node.op_type in LAYOUT_OPS and isinstance(ctx.values.get(node.input[0]), QuantizedConstant) and \
            all(isinstance(ctx.values.get(i), Constant) for i in node.input[1:] if i):
        ctx.fold_quantized_layout(node, name)
        return True
    return False


CONSTANT_FOLDING = Pattern(FOLD_CONSTANTS, ("*",), fold_constants,
                           "nodes on constants only (shape arithmetic, weight transforms) and layout ops of "
                           "quantized weights evaluated at import")
NARROW_QUANTIZERS = Pattern("recognize-narrow-quantizers", ("QuantizeLinear", "Clip"), narrow_quantizers,
                            "QuantizeLinear -> Clip -> DequantizeLinear on integers (Brevitas's QCDQ below 8 bits): "
                            "one quantizer of the Clip's range")


def family_lowerings() -> list[FamilyLowering]:
    return [family.lowering for family in FAMILIES if isinstance(family.lowering, FamilyLowering)]


def lowering_patterns() -> dict[str, Pattern]:
    """Every pattern by name: the plumbing's (narrow quantizers, constant folding), then the families'."""
    patterns = {pattern.name: pattern for pattern in (NARROW_QUANTIZERS, CONSTANT_FOLDING)}
    for lowering in family_lowerings():
        patterns.update((pattern.name, pattern) for pattern in lowering.patterns)
    return patterns


def lowering_rules() -> Mapping[str, Rule]:
    """The plumbing's rules and every family's, by ONNX op type; two owners of one type is a bug."""
    rules: dict[str, Rule] = dict(PLUMBING)
    for lowering in family_lowerings():
        for op_type, rule in lowering.rules.items():
            assert op_type not in rules, f"two lowering rules for {op_type}"
            rules[op_type] = rule  # type: ignore[assignment]
    return MappingProxyType(rules)


def builders() -> Builders:
    found = {name: builder for lowering in family_lowerings() for name, builder in lowering.builders.items()}
    return Builders(**found)


def handled_op_types(rules: Mapping[str, Rule] | None = None, patterns: Collection[Pattern] | None = None) -> list[str]:
    """The ONNX op types the lowering takes (by default every rule and every pattern): what the
    accelerator can run, which the host/accelerator partition reads."""
    rules = lowering_rules() if rules is None else rules
    patterns = lowering_patterns().values() if patterns is None else patterns
    found = [*rules, "Constant", *(op_type for pattern in patterns for op_type in pattern.op_types)]
    return [op_type for op_type in dict.fromkeys(found) if op_type != "*"]


def annotated_constant(array: np.ndarray, dtype: IntType | None) -> Constant | QuantizedConstant:
    """An initializer; quantized (scale 1) when FINN's annotation gives it an integer type its
    values have (a streamlined FINN model's weights)."""
    q = None if dtype is None else annotated_integers(array, dtype)
    if q is None or dtype is None:
        return Constant(array)
    return QuantizedConstant(q, np.ones(q.shape), np.zeros(q.shape, np.int64), dtype)


class LoweringWalk:
    """One lowering of one model with the patterns `steps` (names, in order); `run()` returns the IR.

    `taken` records, per step, the nodes it lowered ("name (op type)"), for `--dump-ir`.
    """

    def __init__(self, model: onnx.ModelProto, steps: Collection[str]) -> None:
        patterns = lowering_patterns()
        self.model = model
        self.steps = [patterns[step] for step in steps]
        self.ctx = LoweringContext(model, lowering_rules(), builders())
        self.taken: dict[str, list[str]] = {step.name: [] for step in self.steps}

    def handled(self) -> list[str]:
        """Every op type a rule or an enabled pattern takes: the plumbing's, then family by family."""
        return handled_op_types(self.ctx.rules, self.steps)

    def run(self) -> Graph:
        """Lower every node; every node that cannot be built is reported at once (`raise_all`).

        A node that fails marks its outputs failed, and nodes reading a failed tensor are skipped
        rather than reported: their problem is the failed node's, not theirs.
        """
        ctx, graph = self.ctx, self.model.graph
        datatypes = {name: dtype for name, text in annotated_types(self.model).items()
                     if (dtype := integer_type(text)) is not None}
        for init in graph.initializer:
            ctx.values[init.name] = annotated_constant(numpy_helper.to_array(init), datatypes.get(init.name))
        unsupported = unsupported_nodes(self.model, self.handled(), CONSTANT_FOLDING in self.steps)
        problems = duplicate_node_names(self.model) + [problem for _, problem in unsupported]
        failed = {tensor for node, _ in unsupported for tensor in node.output}
        ctx.sparse_roots = sparse_roots(self.model)
        for value in graph_inputs(self.model):
            elem_type = value.type.tensor_type.elem_type
            too_big = input_size_problem(value)
            if elem_type not in ONNX_INT_TYPES and elem_type not in FLOAT_TYPES or too_big:
                problems.append(too_big or UnsupportedModelError(
                    value.name, "graph input", f"element type {onnx.TensorProto.DataType.Name(elem_type)}"))
                failed.add(value.name)
            source = ctx.values[value.name] = FloatInput(value)
            if value.name in datatypes and value.name not in failed:  # integers already: the accelerator's input
                ctx.builders.input(ctx, source, Tensor(value.name, source.shape, datatypes[value.name], 1.0, 0))
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
                outputs.append(ctx.require_activation(value.name, value.name, "graph output").tensor.name)
            except UnsupportedModelError as problem:
                problems.append(problem)
        unused = sorted(set(ctx.weight_formats) - set(ctx.weight_formats_used))
        if unused and not problems:
            problems.append(UnsupportedModelError(
                unused[0], "weight format", f"metadata '{FORMATS_KEY}' names layers that are "
                f"not Conv/Gemm/MatMul nodes of the model: {', '.join(unused)}"))
        order = {node_name(node, index): index for index, node in enumerate(graph.node)}
        unsupported_first = {id(problem) for _, problem in unsupported}
        problems.sort(key=lambda problem: (id(problem) not in unsupported_first, order.get(problem.node, -1)))
        raise_all(problems, supported_ops_text(self.handled()) if unsupported else None)
        return Graph.from_ops(graph.name or "model", ctx.ops, outputs)

    def visit(self, node: onnx.NodeProto, name: str) -> None:
        ctx = self.ctx
        if node.op_type == "Constant":
            ctx.values[node.output[0]] = Constant(ctx.constant_node_value(node, name))
            return
        for step in self.steps:
            if ("*" in step.op_types or node.op_type in step.op_types) and step.match(ctx, node, name):
                self.taken[step.name].append(f"{name} ({node.op_type})")
                return
        ctx.rules[node.op_type](ctx, node, name)
