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
from types import MappingProxyType
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


class _Mutations:
    """How many times any node list or any node's name/inputs/outputs changed, process-wide.

    Graph's query index is valid only at the count it was last brought up to date at. Passes
    rewrite `node.inputs[i]` in place, so the lists themselves report their changes
    (TrackedList): the graph that owns the node updates its index in O(changed edges) and
    re-stamps it; any other change leaves the index behind the count, which rebuilds it on
    the next query. No mutation path can leave it stale silently."""

    count = 0


def mutation_count() -> int:
    return _Mutations.count


def _changed() -> None:
    _Mutations.count += 1


class TrackedList(list):
    """A list that counts every change (all of list's mutating methods) and reports it to its
    owner (a Node for its inputs/outputs, a Graph for its nodes): owner.list_changed(field,
    method name, args, the list before (None for append/insert where owner.takes_inserts),
    the list now)."""

    owner = None
    field = ""

    def _tracked(method):  # noqa: N805 (a decorator used in the class body)
        name = method.__name__

        def wrapper(self, *args, **kwargs):
            owner = self.owner
            # the graph's node list is long and learns an append/insert from its argument
            before = None if owner is None or (name in ("append", "insert") and owner.takes_inserts) \
                else list(self)
            result = method(self, *args, **kwargs)
            _changed()
            if owner is not None:
                owner.list_changed(self.field, name, args, before, self)
            return result
        wrapper.__name__ = name
        return wrapper

    __setitem__ = _tracked(list.__setitem__)
    __delitem__ = _tracked(list.__delitem__)
    __iadd__ = _tracked(list.__iadd__)
    __imul__ = _tracked(list.__imul__)
    append = _tracked(list.append)
    extend = _tracked(list.extend)
    insert = _tracked(list.insert)
    pop = _tracked(list.pop)
    remove = _tracked(list.remove)
    clear = _tracked(list.clear)
    sort = _tracked(list.sort)
    reverse = _tracked(list.reverse)
    del _tracked

    def __reduce_ex__(self, protocol):
        """Copies are plain tracked lists without an owner (the owner adopts them again)."""
        return (TrackedList, (list(self),))

    def watched_by(self, owner, field: str) -> "TrackedList":
        self.owner, self.field = owner, field
        return self


_TRACKED_NODE_FIELDS = ("name", "inputs", "outputs")
_UNSET = object()


@dataclass
class Node:
    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    onnx_name: str = ""  # the node's name in the ONNX file (untrusted text: never put in C raw)

    def __setattr__(self, key: str, value: Any) -> None:
        if key not in _TRACKED_NODE_FIELDS:
            object.__setattr__(self, key, value)
            return
        old = self.__dict__.get(key, _UNSET)
        if key != "name":
            value = TrackedList(value).watched_by(self, key)
        object.__setattr__(self, key, value)
        if old is not _UNSET:  # a change, not the construction of the node
            _changed()
            self.list_changed(key, "=", (), [old] if key == "name" else list(old),
                              [value] if key == "name" else value)

    takes_inserts = False

    def list_changed(self, key: str, method: str, args: tuple, before, after) -> None:
        graph = self.__dict__.get("_graph")
        if graph is not None:
            graph.node_changed(self, key, before, after)

    def __getstate__(self) -> dict:
        """Copies and pickles leave the owning graph behind (a copied graph adopts its nodes)."""
        return {k: v for k, v in self.__dict__.items() if k != "_graph"}


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
        self._index: _GraphIndex | None = None

    def __getstate__(self) -> dict:
        """Copies and pickles leave the query index behind (rebuilt on the first query)."""
        return {**self.__dict__, "_index": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.nodes = self._nodes  # adopt the copied nodes

    @property
    def nodes(self) -> list[Node]:
        return self._nodes

    @nodes.setter
    def nodes(self, nodes: Iterable[Node]) -> None:
        nodes = TrackedList(nodes).watched_by(self, "nodes")
        for n in self.__dict__.get("_nodes", ()):
            _release(self, n)
        for n in nodes:
            _adopt(self, n)
        self._nodes = nodes
        self._index = None
        _changed()

    def _indexed(self) -> "_GraphIndex":
        """The query index of the current graph: kept up to date by the graph's own nodes'
        changes, rebuilt after any other (see _Mutations)."""
        if self._index is None or self._index.at != mutation_count():
            self._index = _GraphIndex(self._nodes)
        return self._index

    def _index_before_change(self) -> "_GraphIndex | None":
        """The index if it was up to date just before the change being reported, else None."""
        idx = self._index
        return idx if idx is not None and idx.at == mutation_count() - 1 else None

    def node_changed(self, node: Node, key: str, before: list, after: list) -> None:
        """A node of this graph changed its name, inputs or outputs (from `before` to `after`)."""
        idx = self._index_before_change()
        if idx is not None and idx.update_node(node, key, before, after):
            idx.at = mutation_count()

    takes_inserts = True

    def list_changed(self, key: str, method: str, args: tuple, before, after) -> None:
        """The node list changed: adopt the new nodes, release the removed ones."""
        if method in ("append", "insert"):
            added, removed = [args[-1]], []
        elif method in ("__delitem__", "pop") and isinstance(args[0] if args else -1, int):
            added, removed = [], [before[args[0] if args else -1]]
        else:
            now = {id(n) for n in after}
            was = {id(n) for n in before}
            added = [n for n in after if id(n) not in was]
            removed = [n for n in before if id(n) not in now]
        for n in removed:
            _release(self, n)
        for n in added:
            _adopt(self, n)
        idx = self._index_before_change()
        if idx is None:
            return
        if method == "append":
            idx.append(args[0], len(after) - 1)
        else:
            idx.position = None  # positions moved: rebuilt by the next node_index
            ok = all(idx.remove_node(n) for n in removed) and all(idx.add_node(n) for n in added)
            if not ok:
                return
        idx.at = mutation_count()

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
            if name not in self.tensors and name not in self._indexed().node_names:
                return name

    def add_node(self, node: Node, index: int | None = None) -> Node:
        if index is None:
            self._nodes.append(node)
        else:
            self._nodes.insert(index, node)
        return node

    # ---- queries ------------------------------------------------------------------------
    def producer(self, tensor: str) -> Node | None:
        return self._indexed().first_producer.get(tensor)

    def producers(self) -> dict[str, Node]:
        return dict(self._indexed().last_producer)

    def consumers(self) -> MappingProxyType:
        """tensor -> the nodes reading it, in node order (read-only: shared until the next change)."""
        return self._indexed().consumers

    def has_node(self, node: Node) -> bool:
        """Whether this very node (not an equal one) is in the graph, in O(1)."""
        return node.__dict__.get("_graph") is self

    def has_node_named(self, name: str) -> bool:
        return name in self._indexed().node_names

    def node_index(self, node: Node) -> int:
        index = self._indexed().positions(self._nodes).get(id(node))
        if index is None or self._nodes[index] is not node:
            raise IRError(f"node {node.name!r} not in graph")
        return index

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
        readers = self.nodes if not old else list({id(n): n for n in self.consumers().get(old, ())}.values())
        for n in readers:
            if old in n.inputs:
                n.inputs = [new if t == old else t for t in n.inputs]
        self.outputs = [new if t == old else t for t in self.outputs]

    def remove_node(self, node: Node) -> None:
        for i, n in enumerate(self._nodes):
            if n is node:
                del self._nodes[i]
                return

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


def _adopt(graph: Graph, node: Node) -> None:
    """`node` is in `graph`: its changes go to that graph's index."""
    object.__setattr__(node, "_graph", graph)
    node.inputs.watched_by(node, "inputs")
    node.outputs.watched_by(node, "outputs")


def _release(graph: Graph, node: Node) -> None:
    if node.__dict__.get("_graph") is graph:
        object.__setattr__(node, "_graph", None)


class _GraphIndex:
    """Answers to Graph's queries: built in one pass over the nodes, then kept up to date edge
    by edge. producer() gives the first node writing a tensor, producers() the last (as the
    scans they replace did; valid IR has one). consumers() lists readers in node order as of
    the last rebuild, a reader added since comes last (callers count them, order is unused)."""

    builds = 0  # full rebuilds, process-wide (tests hold the number per compile to a budget)

    def __init__(self, nodes: list[Node]):
        _GraphIndex.builds += 1
        self._uses: dict[str, tuple[Node, ...]] = {}
        self.consumers = MappingProxyType(self._uses)
        self.first_producer: dict[str, Node] = {}
        self.last_producer: dict[str, Node] = {}
        self.position: dict[int, int] | None = {}
        self.name_count: dict[str, int] = {}
        self.node_names = self.name_count.keys()
        uses: dict[str, list[Node]] = {}
        for i, n in enumerate(nodes):
            self.position.setdefault(id(n), i)
            self._add_name(n.name)
            for t in n.inputs:
                if t:
                    uses.setdefault(t, []).append(n)
            for t in n.outputs:
                self.first_producer.setdefault(t, n)
                self.last_producer[t] = n
        self._uses.update((t, tuple(ns)) for t, ns in uses.items())
        self.at = mutation_count()

    def positions(self, nodes: list[Node]) -> dict[int, int]:
        if self.position is None:
            self.position = {}
            for i, n in enumerate(nodes):
                self.position.setdefault(id(n), i)
        return self.position

    def append(self, node: Node, position: int) -> None:
        """`node` was appended at `position`."""
        self.add_node(node)
        if self.position is not None:
            self.position.setdefault(id(node), position)

    def add_node(self, node: Node) -> bool:
        self._add_name(node.name)
        self._add_readers(node, node.inputs)
        return self._add_writer(node, node.outputs)

    def remove_node(self, node: Node) -> bool:
        return (self._remove_name(node.name) and self._remove_readers(node, node.inputs)
                and self._remove_writer(node, node.outputs))

    def update_node(self, node: Node, key: str, before: list, after: list) -> bool:
        """Apply one change of a node in the graph; False where the index cannot follow it
        (it is then rebuilt on the next query)."""
        if key == "name":
            if not self._remove_name(before[0]):
                return False
            self._add_name(after[0])
            return True
        if key == "inputs":
            if not self._remove_readers(node, before):
                return False
            self._add_readers(node, after)
            return True
        return self._remove_writer(node, before) and self._add_writer(node, after)

    def _add_name(self, name: str) -> None:
        self.name_count[name] = self.name_count.get(name, 0) + 1

    def _remove_name(self, name: str) -> bool:
        left = self.name_count.get(name, 0) - 1
        if left > 0:
            self.name_count[name] = left
        elif left == 0:
            del self.name_count[name]
        return left >= 0

    def _add_readers(self, node: Node, tensors: list[str]) -> None:
        for t in tensors:  # a node reading a tensor twice is listed twice, as in a rebuild
            if t:
                self._uses[t] = self._uses.get(t, ()) + (node,)

    def _remove_readers(self, node: Node, tensors: list[str]) -> bool:
        for t in tensors:
            if t:
                readers = list(self._uses.get(t, ()))
                at = next((i for i, n in enumerate(readers) if n is node), None)
                if at is None:
                    return False
                del readers[at]
                if readers:
                    self._uses[t] = tuple(readers)
                else:
                    del self._uses[t]
        return True

    def _add_writer(self, node: Node, tensors: list[str]) -> bool:
        for t in tensors:
            if t in self.first_producer:
                return False  # a second writer: which one comes first needs the node order
            self.first_producer[t] = self.last_producer[t] = node
        return True

    def _remove_writer(self, node: Node, tensors: list[str]) -> bool:
        for t in tensors:
            if self.first_producer.get(t) is not node or self.last_producer.get(t) is not node:
                return False
            del self.first_producer[t], self.last_producer[t]
        return True


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
