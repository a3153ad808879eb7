"""Identity/Dropout removal, constant folding and dead-code elimination."""
from __future__ import annotations

from ..ir import Graph, Node
from ..ops.registry import OPS


def bypass(g: Graph, node: Node) -> bool:
    """Remove a node whose single output is physically identical to its first input."""
    src, dst = node.inputs[0], node.outputs[0]
    if dst not in g.outputs:
        g.remove_node(node)
        g.replace_uses(dst, src)
        return True
    prod = g.producer(src)
    if prod is None or src in g.outputs or src in g.inputs:
        return False  # graph input straight to graph output: the copy must stay
    absorb_into_producer(g, node, prod, src)
    return True


def absorb_into_producer(g: Graph, node: Node, prod: Node, src: str) -> None:
    """Drop `node`, which reads `src` from `prod`: `prod` now writes node's output itself. The
    later name is kept, since it may be a graph output."""
    dst = node.outputs[0]
    g.remove_node(node)
    g.replace_uses(src, dst)
    prod.outputs = [dst if t == src else t for t in prod.outputs]


def remove_identity(g: Graph) -> bool:
    changed = False
    for node in list(g.nodes):
        if node.op == "Identity" and bypass(g, node):
            changed = True
    g.prune_tensors()
    return changed


def fold_constants(g: Graph) -> bool:
    """Evaluate nodes whose inputs are all constants (e.g. weight transforms left by exporters)."""
    changed = False
    for node in list(g.nodes):
        ins = [g.tensors[t] for t in node.inputs if t]
        if not ins or not all(t.is_const for t in ins) or any(t in g.outputs for t in node.outputs):
            continue
        values = OPS[node.op].run_float(node, [g.tensors[t].data if t else None for t in node.inputs])
        for t, v in zip(node.outputs, values):
            g.tensors[t].data = v
            g.tensors[t].shape = tuple(v.shape)
        g.remove_node(node)
        changed = True
    return changed


def dce(g: Graph) -> bool:
    changed = False
    while True:
        uses = g.consumers()
        dead = [n for n in g.nodes if not any(t in g.outputs or uses.get(t) for t in n.outputs)]
        if not dead:
            break
        for n in dead:
            g.remove_node(n)
        changed = True
    g.prune_tensors()
    return changed
