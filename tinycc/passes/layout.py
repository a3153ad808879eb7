"""NCHW -> NHWC: the layout MCU kernels use (channels innermost).

Every 4-D activation gets perm NHWC_PERM (physical = logical.transpose(0, 2, 3, 1)); spatial
ops switch their layout attribute and weights, element-wise ops get permuted constants, axis
ops get remapped axes, and ops that need the logical layout (Reshape, Transpose, Dense, MatMul)
get an explicit Transpose in front. simplify_transposes then removes the transposes that cancel
or only move size-1 axes (e.g. before a Flatten after global pooling, or a tf2onnx input).
"""
from __future__ import annotations

import numpy as np

from ..ir import NHWC_PERM, Graph, Node, Tensor
from ..ops.registry import OPS, LayoutClass
from .cleanup import bypass

P = NHWC_PERM


def _is_identity(perm) -> bool:
    return perm is None or tuple(perm) == tuple(range(len(perm)))


def _insert_transpose(g: Graph, node: Node, idx: int, to_perm: tuple | None) -> None:
    """Feed input `idx` of node through a Transpose giving it physical perm `to_perm`."""
    src = g.tensors[node.inputs[idx]]
    src_perm = src.perm or tuple(range(len(src.shape)))
    want = to_perm or tuple(range(len(src.shape)))
    # physical_src = L.transpose(src_perm); physical_dst = L.transpose(want) = physical_src.transpose(q)
    inv = np.argsort(src_perm)
    q = tuple(int(inv[w]) for w in want)
    logical = tuple(src.shape[i] for i in inv)
    name = g.fresh_name(f"{src.name}_t")
    g.add_tensor(Tensor(name, tuple(logical[w] for w in want), src.dtype, perm=None if _is_identity(want) else want,
                        quant=src.quant))
    g.add_node(Node(g.fresh_name(f"{node.name}_transpose"), "Transpose", [src.name], [name], {"perm": q}),
               g.node_index(node))
    node.inputs[idx] = name


def _activation_inputs(g: Graph, node: Node) -> list[int]:
    return [i for i, t in enumerate(node.inputs) if t and not g.tensors[t].is_const]


def _permute_const_for_nhwc(g: Graph, node: Node, idx: int) -> None:
    c = g.tensors[node.inputs[idx]]
    lead = 4 - c.data.ndim
    data = c.data.reshape((1,) * lead + c.data.shape)
    axis_map = {a: P.index(a + lead) for a in range(c.data.ndim)}
    g.rewrite_const_input(node, idx, data.transpose(P), "nhwc_const", axis_map)


def _remap_axes(node: Node, kinds: dict[str, str]) -> None:
    inv = {logical: phys for phys, logical in enumerate(P)}  # logical axis -> physical position
    for key, kind in kinds.items():
        v = node.attrs[key]
        if kind == "axis":
            node.attrs[key] = inv[v]
        elif kind == "axes":
            node.attrs[key] = tuple(sorted(inv[a] for a in v))
        elif kind == "per_axis":
            node.attrs[key] = tuple(v[p] for p in P)
        elif kind == "pads":
            begin, end = v[:4], v[4:]
            node.attrs[key] = tuple(begin[p] for p in P) + tuple(end[p] for p in P)


def _runs_nhwc(g: Graph, node: Node) -> bool:
    op = OPS[node.op]
    acts = _activation_inputs(g, node)
    if op.layout_class == LayoutClass.SPATIAL:
        return True
    if op.layout_class not in (LayoutClass.ELEMENTWISE, LayoutClass.AXIS) or not acts:
        return False
    if any(len(g.tensors[node.inputs[i]].shape) != 4 for i in acts):
        return False
    if op.layout_class == LayoutClass.ELEMENTWISE:
        return all(g.tensors[t].data.ndim <= 4 for t in node.inputs if t and g.tensors[t].is_const)
    return op.keeps_nhwc(g, node)


def _layout_free(g: Graph, node: Node) -> bool:
    """An element-wise or axis op that may run in NHWC as well as in the logical layout."""
    return OPS[node.op].layout_class != LayoutClass.SPATIAL and _runs_nhwc(g, node)


def _nhwc_wanted(g: Graph) -> dict[str, bool]:
    """Per node output, whether NHWC is wanted downstream of it: by a spatial op, a graph output
    (4-D outputs are NHWC in the API) or an element-wise/axis op that also reads a tensor in NHWC,
    directly or through element-wise/axis ops. Predicted once, before the pass: a tensor is taken
    to stay logical when a logical op makes it (or a graph input left logical, or an op that
    cannot run in NHWC), or an element-wise/axis op fed only by such tensors."""
    logical = {name: _is_identity(g.tensors[name].perm) for name in g.inputs}
    for node in g.nodes:
        if OPS[node.op].layout_class == LayoutClass.SPATIAL:
            stays = False
        elif _runs_nhwc(g, node):
            stays = all(logical.get(node.inputs[i], True) for i in _activation_inputs(g, node))
        else:
            stays = True
        logical.update((t, stays) for t in node.outputs)
    consumers, wanted = g.consumers(), {}
    for node in reversed(g.nodes):  # every reader of a tensor comes after its producer
        for t in node.outputs:
            wanted[t] = t in g.outputs or any(
                OPS[user.op].layout_class == LayoutClass.SPATIAL
                or (_layout_free(g, user)
                    and (any(not logical.get(user.inputs[i], True) for i in _activation_inputs(g, user))
                         or any(wanted.get(o, False) for o in user.outputs)))
                for user in consumers.get(t, []))
    return wanted


def _stays_logical(g: Graph, node: Node, nhwc_wanted: dict[str, bool]) -> bool:
    """An element-wise or axis op whose activations all come in the logical layout (e.g. the
    scaling and softmax of attention scores between two MatMuls) stays there when nothing
    downstream wants NHWC: in NHWC it would cost a transpose per input and one back before each
    logical consumer. When its result reaches a spatial op it moves to NHWC as before, which
    transposes its inputs once instead of once before every spatial consumer."""
    if OPS[node.op].layout_class == LayoutClass.SPATIAL:
        return False
    if any(not _is_identity(g.tensors[node.inputs[i]].perm) for i in _activation_inputs(g, node)):
        return False
    return not any(nhwc_wanted.get(t, True) for t in node.outputs)


def layout_nhwc(g: Graph) -> bool:
    changed = False
    consumers = g.consumers()
    for name in g.inputs:
        t = g.tensors[name]
        uses = consumers.get(name, [])
        if len(t.shape) == 4 and any(OPS[n.op].layout_class != LayoutClass.LOGICAL for n in uses):
            t.perm, t.shape = P, tuple(t.shape[p] for p in P)
            changed = True
    nhwc_wanted = _nhwc_wanted(g)
    for node in list(g.nodes):
        op = OPS[node.op]
        if _runs_nhwc(g, node) and not _stays_logical(g, node, nhwc_wanted):
            for i in _activation_inputs(g, node):
                if g.tensors[node.inputs[i]].perm != P:
                    _insert_transpose(g, node, i, P)
            if op.layout_class == LayoutClass.SPATIAL:
                op.to_nhwc(g, node)
            elif op.layout_class == LayoutClass.ELEMENTWISE:
                for i, t in enumerate(node.inputs):
                    if t and g.tensors[t].is_const:
                        _permute_const_for_nhwc(g, node, i)
            else:
                _remap_axes(node, op.axis_attrs)
            for t in node.outputs:
                out = g.tensors[t]
                if len(out.shape) == 4:
                    out.perm, out.shape = P, tuple(out.shape[p] for p in P)
            changed = True
        else:
            for i in _activation_inputs(g, node):
                if not _is_identity(g.tensors[node.inputs[i]].perm):
                    _insert_transpose(g, node, i, None)
                    changed = True
    return changed


def simplify_transposes(g: Graph) -> bool:
    changed = False
    progress = True
    while progress:
        progress = False
        for node in list(g.nodes):
            if not g.has_node(node):
                continue
            if node.op == "Transpose":
                progress |= _simplify_transpose(g, node)
            elif node.op == "Reshape":
                progress |= _simplify_reshape(g, node)
        changed |= progress
    g.prune_tensors()
    return changed


def _single_consumer(g: Graph, tensor: str):
    uses = g.consumers().get(tensor, [])
    return uses[0] if len(uses) == 1 and tensor not in g.outputs else None


def _simplify_transpose(g: Graph, node: Node) -> bool:
    perm = tuple(node.attrs["perm"])
    if _is_identity(perm):
        return bypass(g, node)
    src = g.tensors[node.inputs[0]]
    prod = g.producer(src.name)
    if prod is not None and prod.op == "Transpose" and _single_consumer(g, src.name) is node:
        first = prod.attrs["perm"]
        node.attrs["perm"] = tuple(first[p] for p in perm)
        node.inputs[0] = prod.inputs[0]
        g.remove_node(prod)
        return True
    moved = [d for d in perm if src.shape[d] != 1]
    if moved == sorted(moved):  # only size-1 axes move: memory order is unchanged
        node.op = "Reshape"
        node.attrs = {"shape": tuple(g.tensors[node.outputs[0]].shape)}
        return True
    return False


def _simplify_reshape(g: Graph, node: Node) -> bool:
    src = g.tensors[node.inputs[0]]
    if tuple(src.shape) == tuple(node.attrs["shape"]):
        return bypass(g, node)
    prod = g.producer(src.name)
    if prod is not None and prod.op == "Reshape" and _single_consumer(g, src.name) is node:
        node.inputs[0] = prod.inputs[0]
        g.remove_node(prod)
        return True
    return False
