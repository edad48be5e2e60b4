"""The typed layer graph every stage of the compiler reads and writes.

A `Graph` wraps a `networkx.DiGraph` whose nodes are layer names (attribute `op`, a frozen op
dataclass) and whose edges carry the `Tensor` flowing from producer to consumer. Graphs are
treated as values: passes build new graphs with `Graph.from_ops`, never edit one in place.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import networkx as nx

from hwcodesign.errors import GraphError
from hwcodesign.ir.op import Input, Op
from hwcodesign.ir.requant import Requant
from hwcodesign.ir.types import Tensor


class Graph:
    """Layers in dataflow order plus the names of the tensors leaving the accelerator."""

    def __init__(self, name: str, ops: Iterable[Op], outputs: Iterable[str]) -> None:
        self.name = name
        self.outputs: tuple[str, ...] = tuple(outputs)
        self._dag = nx.DiGraph()
        self._producer: dict[str, str] = {}
        self._dangling: list[str] = []
        ops = list(ops)
        for op in ops:
            if op.name in self._dag:
                self._dangling.append(f"duplicate layer name '{op.name}'")
            self._dag.add_node(op.name, op=op)
            if op.output.name in self._producer:
                self._dangling.append(f"tensor '{op.output.name}' has two producers")
            self._producer[op.output.name] = op.name
        for op in ops:
            for tensor_name in op.inputs:
                producer = self._producer.get(tensor_name)
                if producer is None:
                    self._dangling.append(
                        f"layer '{op.name}' reads tensor '{tensor_name}' that nothing produces"
                    )
                    continue
                self._dag.add_edge(producer, op.name, tensor=self.op(producer).output)

    @classmethod
    def from_ops(cls, name: str, ops: Iterable[Op], outputs: Iterable[str]) -> Graph:
        """Build a graph and check it; the one constructor passes use."""
        graph = cls(name, ops, outputs)
        graph.check()
        return graph

    # ----------------------------------------------------------------- access
    def op(self, name: str) -> Op:
        return self._dag.nodes[name]["op"]

    def __iter__(self) -> Iterator[Op]:
        """Layers in a deterministic topological order (ties broken by insertion order)."""
        order = {n: i for i, n in enumerate(self._dag.nodes)}
        for name in nx.lexicographical_topological_sort(self._dag, key=order.__getitem__):
            yield self.op(name)

    def __len__(self) -> int:
        return self._dag.number_of_nodes()

    @property
    def dag(self) -> nx.DiGraph:
        """Read-only view of the underlying networkx graph (for analyses and plots)."""
        return nx.restricted_view(self._dag, [], [])

    def tensor(self, name: str) -> Tensor:
        return self.op(self._producer[name]).output

    def producer(self, tensor_name: str) -> Op:
        return self.op(self._producer[tensor_name])

    def consumers(self, tensor_name: str) -> list[Op]:
        producer = self._producer[tensor_name]
        return [self.op(n) for n in self._dag.successors(producer)]

    def input_tensors(self, op: Op) -> list[Tensor]:
        return [self.tensor(t) for t in op.inputs]

    @property
    def inputs(self) -> list[Input]:
        return [op for op in self if isinstance(op, Input)]

    def output_tensors(self) -> list[Tensor]:
        return [self.tensor(t) for t in self.outputs]

    def macs(self) -> int:
        """Multiply-accumulates of one frame over every op (`Op.macs`)."""
        return sum(op.macs([t.shape for t in self.input_tensors(op)]) for op in self)

    # ------------------------------------------------------------- validation
    def check(self) -> None:
        """Raise `GraphError` listing every dangling edge, cycle, shape or type mismatch."""
        problems = list(self._dangling)
        if not nx.is_directed_acyclic_graph(self._dag):
            problems.append("graph has a cycle")
        for tensor_name in self.outputs:
            if tensor_name not in self._producer:
                problems.append(f"graph output '{tensor_name}' is not produced by any layer")
        if not problems:
            for op in self:
                problems.extend(f"layer '{op.name}' ({op.kind}): {p}" for p in self._op_problems(op))
        if problems:
            raise GraphError(problems)

    def _op_problems(self, op: Op) -> list[str]:
        if isinstance(op, Input):
            problems = [] if not op.inputs else ["an Input takes no inputs"]
            active = op.output.active
            if active is not None and (active.root != op.output.name or active.steps):
                problems.append(f"a sparse input's active set must be its own sites, not {active}")
            return problems
        tensors = self.input_tensors(op)
        expected = op.output_shape([t.shape for t in tensors])
        problems = []
        if expected != op.output.shape:
            problems.append(f"output shape {op.output.shape} but inputs imply {expected}")
        problems.extend(op.input_problems(tensors))
        for requant in op.requants():
            problems.extend(_requant_problems(requant, op.output))
        problems.extend(op.sparse_problems(tensors))
        return problems


def _requant_problems(requant: Requant, output: Tensor) -> list[str]:
    problems = []
    if not output.dtype.min <= requant.lo <= requant.hi <= output.dtype.max:
        problems.append(
            f"output clamp [{requant.lo}, {requant.hi}] outside type {output.dtype}"
        )
    if requant.zero_point != output.zero_point:
        problems.append(
            f"requant zero point {requant.zero_point} != tensor zero point {output.zero_point}"
        )
    if requant.multiplier.shape != requant.shift.shape:
        problems.append("requant multiplier and shift differ in length")
    return problems
