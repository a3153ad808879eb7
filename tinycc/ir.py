"""The tinycc intermediate representation.

A Graph holds Tensors (values: activations and constants) and Nodes (operator applications).
Node order is kept topological; `Graph.dag()` gives the networkx view used by schedulers.
Tensors carry shape, dtype, layout, constant data and (after quantization) quant params.

Layout: every tensor has `perm`, the permutation that turns the tensor as the ONNX model defines
it (its "logical" value) into the array tinycc stores ("physical" = logical.transpose(perm)).
Imported graphs have identity perms; the NHWC pass gives 4-D activations perm (0, 2, 3, 1).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Iterable

import networkx as nx
import numpy as np

from .errors import TinyccError

NHWC_PERM = (0, 2, 3, 1)
DTYPES = {"float32", "int8", "uint8", "int16", "int32", "int64", "bool", "float64"}


class IRError(TinyccError):
    """The IR is inconsistent: a bug in tinycc (exit code 70)."""


@dataclass
class QuantParams:
    """Affine quantization: real = (q - zero_point) * scale, per tensor or along `axis`."""

    scale: np.ndarray  # float32, shape () or (C,)
    zero_point: np.ndarray  # int32, same shape as scale
    axis: int | None = None

    @property
    def per_tensor(self) -> bool:
        return self.axis is None

    def scalar(self) -> tuple[float, int]:
        if not self.per_tensor:
            raise IRError("per-axis quantization where a per-tensor one is required")
        return float(self.scale), int(self.zero_point)


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    data: np.ndarray | None = None  # constants only
    perm: tuple[int, ...] | None = None  # physical = logical.transpose(perm); None = identity
    quant: QuantParams | None = None

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def layout(self) -> str:
        if len(self.shape) == 4 and self.perm == NHWC_PERM:
            return "NHWC"
        return "NCHW" if len(self.shape) == 4 else "ND"


@dataclass
class Node:
    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    onnx_name: str = ""  # the node's name in the ONNX file (untrusted text: never put in C raw)


class Graph:
    def __init__(self, name: str = "model"):
        self.name = name
        self.tensors: dict[str, Tensor] = {}
        self.nodes: list[Node] = []
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        # inputs and outputs a QDQ model exchanges as integers: name -> "int8" | "uint8" (kept apart:
        # a model made of Q/DQ only can have one tensor as an integer input and a float output)
        self.int8_inputs: dict[str, str] = {}
        self.int8_outputs: dict[str, str] = {}
        self._uid = itertools.count()

    # ---- construction -------------------------------------------------------------------
    def add_tensor(self, t: Tensor) -> Tensor:
        if t.name in self.tensors:
            raise IRError(f"tensor {t.name!r} defined twice")
        self.tensors[t.name] = t
        return t

    def const(self, data: np.ndarray, hint: str = "const") -> str:
        name = self.fresh_name(hint)
        data = np.asarray(data)
        self.add_tensor(Tensor(name, tuple(data.shape), str(data.dtype), data=data))
        return name

    def rewrite_const_input(self, node: Node, idx: int, data: np.ndarray, hint: str,
                            axis_map: dict[int, int] | None = None) -> str:
        """Copy on write: `node` reads a new constant `data` (derived from its constant input
        `idx`) instead. Constants are never changed in place, since another node may read the
        same one (weight tying, a module called twice). Quantization parameters follow the
        values; a per-axis one gets its axis renumbered by `axis_map` (old axis -> new axis)."""
        old = self.tensors[node.inputs[idx]]
        name = self.const(np.ascontiguousarray(data), hint)
        if old.quant is not None:
            q = old.quant
            axis = q.axis if q.axis is None or axis_map is None else axis_map[q.axis]
            self.tensors[name].quant = QuantParams(q.scale, q.zero_point, axis)
        node.inputs[idx] = name
        return name

    def fresh_name(self, hint: str) -> str:
        while True:
            name = f"{hint}__{next(self._uid)}"
            if name not in self.tensors and all(n.name != name for n in self.nodes):
                return name

    def add_node(self, node: Node, index: int | None = None) -> Node:
        if index is None:
            self.nodes.append(node)
        else:
            self.nodes.insert(index, node)
        return node

    # ---- queries ------------------------------------------------------------------------
    def producer(self, tensor: str) -> Node | None:
        for n in self.nodes:
            if tensor in n.outputs:
                return n
        return None

    def producers(self) -> dict[str, Node]:
        return {t: n for n in self.nodes for t in n.outputs}

    def consumers(self) -> dict[str, list[Node]]:
        uses: dict[str, list[Node]] = {}
        for n in self.nodes:
            for t in n.inputs:
                if t:
                    uses.setdefault(t, []).append(n)
        return uses

    def node_index(self, node: Node) -> int:
        for i, n in enumerate(self.nodes):
            if n is node:
                return i
        raise IRError(f"node {node.name!r} not in graph")

    def dag(self) -> nx.DiGraph:
        """Nodes of the graph as a networkx DiGraph (edge = tensor from producer to consumer)."""
        g = nx.DiGraph()
        prod = self.producers()
        for i, n in enumerate(self.nodes):
            g.add_node(n.name, node=n, index=i)
        for n in self.nodes:
            for t in n.inputs:
                if t in prod:
                    g.add_edge(prod[t].name, n.name, tensor=t)
        return g

    def replace_uses(self, old: str, new: str) -> None:
        for n in self.nodes:
            n.inputs = [new if t == old else t for t in n.inputs]
        self.outputs = [new if t == old else t for t in self.outputs]

    def remove_node(self, node: Node) -> None:
        self.nodes = [n for n in self.nodes if n is not node]

    def prune_tensors(self) -> None:
        used = set(self.inputs) | set(self.outputs)
        for n in self.nodes:
            used.update(t for t in n.inputs if t)
            used.update(n.outputs)
        self.tensors = {k: v for k, v in self.tensors.items() if k in used}

    def toposort(self) -> None:
        """Reorder nodes topologically, keeping the current order wherever it is already valid."""
        index = {n.name: i for i, n in enumerate(self.nodes)}
        order = nx.lexicographical_topological_sort(self.dag(), key=lambda name: index[name])
        by_name = {n.name: n for n in self.nodes}
        self.nodes = [by_name[x] for x in order]

    def copy(self) -> "Graph":
        import copy as _copy

        return _copy.deepcopy(self)


def validate(g: Graph) -> None:
    """Check the invariants every pass must preserve; raise IRError naming the first violation."""
    seen: set[str] = set(g.inputs)
    names: set[str] = set()
    for t in g.inputs:
        if t not in g.tensors:
            raise IRError(f"graph input {t!r} has no tensor")
    for name, t in g.tensors.items():
        if t.name != name:
            raise IRError(f"tensor key {name!r} != name {t.name!r}")
        if t.dtype not in DTYPES:
            raise IRError(f"tensor {name!r} has unknown dtype {t.dtype}")
        if any((not isinstance(d, (int, np.integer))) or d < 0 for d in t.shape):
            raise IRError(f"tensor {name!r} has a non-static shape {t.shape}")
        if t.is_const:
            seen.add(name)
            if tuple(t.data.shape) != tuple(t.shape):
                raise IRError(f"constant {name!r}: data shape {t.data.shape} != {t.shape}")
        if t.perm is not None and sorted(t.perm) != list(range(len(t.shape))):
            raise IRError(f"tensor {name!r}: perm {t.perm} does not match rank {len(t.shape)}")
    from .ops import registry  # late import: ops depend on ir

    for n in g.nodes:
        if n.name in names:
            raise IRError(f"node name {n.name!r} used twice")
        names.add(n.name)
        if n.op not in registry.OPS:
            raise IRError(f"node {n.name!r} has unknown op {n.op!r}")
        for t in n.inputs:
            if t and t not in seen:
                raise IRError(f"node {n.name!r} ({n.op}) reads {t!r} before it is defined")
        for t in n.outputs:
            if t not in g.tensors:
                raise IRError(f"node {n.name!r} output {t!r} has no tensor")
            if t in seen:
                raise IRError(f"tensor {t!r} is defined twice (node {n.name!r})")
            seen.add(t)
        registry.OPS[n.op].check(g, n)
    for t in g.outputs:
        if t not in seen:
            raise IRError(f"graph output {t!r} is never produced")


def iter_ops(g: Graph, op: str) -> Iterable[Node]:
    return [n for n in g.nodes if n.op == op]
