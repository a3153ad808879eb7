"""Recognise the decomposed forms exporters write for GELU, Mish and LayerNorm.

`fuse_unary_functions`: a region of element-wise nodes whose only run-time input is one tensor
x (the other operands scalar constants) and that has one output y computes y = f(x). When f is
a named activation (GELU exact or tanh, Mish) to float32 precision, the region becomes that one
node, and int8 makes it one 256-entry table instead of a chain of int8 layers each rounding
(Div -> Erf -> Add -> Mul -> Mul for torch's GELU; Softplus -> Tanh -> Mul for Mish; the
Pow/Mul x^3 chain of the tanh GELU). The function is recognised by evaluating the region on a
grid, so every operand order and constant placement the exporters choose is found the same way.

`fuse_layer_norm`: ReduceMean -> Sub -> Pow 2 (or Mul by itself) -> ReduceMean -> Add eps ->
Sqrt -> Div, then optionally Mul by a constant scale and Add of a constant bias, over trailing
axes (torch's LayerNorm below opset 17) becomes one LayerNorm node; over one other axis (the
channels-first LayerNorm of ConvNeXt-style models) a LayerNorm between two Transposes.

Regions whose inner tensors carry quantization (QDQ models) are left alone: the model says how
each of them is rounded.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node, Tensor
from ..ops.activation import gelu, mish
from ..ops.registry import OPS

# element-wise IR ops a unary-function region may contain
PIECES = frozenset({"Add", "Sub", "Mul", "Div", "Pow", "Erf", "Tanh", "Softplus", "Sigmoid", "Exp", "Sqrt", "Neg",
                    "Reciprocal", "Abs", "Log"})
MAX_REGION = 16  # nodes; the longest export (GELU tanh in opset-11 torch) has 9
# (op, attrs, float64 function) tried in order; GELU exact and tanh differ by up to 5e-4
NAMED_FUNCTIONS = (
    ("Gelu", {"approximate": "none"}, lambda x: gelu(x, "none")),
    ("Gelu", {"approximate": "tanh"}, lambda x: gelu(x, "tanh")),
    ("Mish", {}, lambda x: x * np.tanh(np.logaddexp(0.0, x))),
)
GRID = np.linspace(-10.0, 10.0, 2001, dtype=np.float32)
RTOL = ATOL = 2e-5


def fuse_patterns(g: Graph) -> bool:
    changed = fuse_layer_norm(g)
    changed |= fuse_unary_functions(g)
    g.prune_tensors()
    return changed


# ---- unary functions ------------------------------------------------------------------------------
def _is_scalar_const(g: Graph, name: str) -> bool:
    t = g.tensors[name]
    return t.is_const and t.data.size == 1


def _region(g: Graph, x: str, y: str) -> list[Node] | None:
    """The element-wise nodes computing y from x and scalar constants alone, or None."""
    nodes, stack, seen = [], [y], set()
    while stack:
        t = stack.pop()
        if t == x or t in seen or (t and _is_scalar_const(g, t)):
            continue
        seen.add(t)
        prod = g.producer(t)
        if prod is None or prod.op not in PIECES or prod.attrs.get("act") or len(prod.outputs) != 1:
            return None
        nodes.append(prod)
        if len(nodes) > MAX_REGION:
            return None
        stack.extend(prod.inputs)
    inside = {id(n) for n in nodes}
    uses = g.consumers()
    for n in nodes:
        out = n.outputs[0]
        if out == y:
            continue
        if out in g.outputs or g.tensors[out].quant is not None or \
                any(id(c) not in inside for c in uses.get(out, [])):
            return None
    return sorted(nodes, key=g.node_index)


def _evaluate(g: Graph, nodes: list[Node], x: str, y: str) -> np.ndarray | None:
    values = {x: GRID}
    with np.errstate(all="ignore"):
        for n in nodes:
            xs = [values[t] if t in values else g.tensors[t].data for t in n.inputs]
            values[n.outputs[0]] = OPS[n.op].run_float(n, xs)[0]
    out = np.asarray(values[y], dtype=np.float64)
    return out.reshape(-1) if out.size == GRID.size else None


def _named(values: np.ndarray):
    grid = GRID.astype(np.float64)
    for op, attrs, fn in NAMED_FUNCTIONS:
        want = fn(grid)
        if np.all(np.abs(values - want) <= ATOL + RTOL * np.abs(want)):
            return op, attrs
    return None


def _candidates(g: Graph, top: Node) -> list[str]:
    """Run-time tensors read inside the element-wise cone above `top`, nearest first."""
    found, stack, seen = [], list(top.inputs), set()
    while stack and len(seen) <= MAX_REGION:
        t = stack.pop(0)
        if not t or t in seen or g.tensors[t].is_const:
            continue
        seen.add(t)
        found.append(t)
        prod = g.producer(t)
        if prod is not None and prod.op in PIECES:
            stack.extend(prod.inputs)
    return found


def fuse_unary_functions(g: Graph) -> bool:
    changed = False
    for top in reversed(list(g.nodes)):
        if not g.has_node(top) or top.op not in PIECES or len(top.outputs) != 1:
            continue
        y = top.outputs[0]
        for x in _candidates(g, top):
            nodes = _region(g, x, y)
            if nodes is None or len(nodes) < 2 or g.tensors[x].shape != g.tensors[y].shape:
                continue
            values = _evaluate(g, nodes, x, y)
            named = _named(values) if values is not None else None
            if named is None:
                continue
            op, attrs = named
            g.add_node(Node(g.fresh_name(top.name), op, [x], [y], dict(attrs), top.onnx_name), g.node_index(top))
            for n in nodes:
                g.remove_node(n)
            changed = True
            break
    return changed


# ---- LayerNorm ------------------------------------------------------------------------------------
def _only_use(g: Graph, tensor: str) -> Node | None:
    uses = g.consumers().get(tensor, [])
    if tensor in g.outputs or len(uses) != 1 or g.tensors[tensor].quant is not None:
        return None
    return uses[0]


def _other_input(node: Node, name: str) -> str:
    return node.inputs[1] if node.inputs[0] == name else node.inputs[0]


def _mean_axes(node: Node) -> tuple[int, ...] | None:
    """The axes of a keepdims ReduceMean, else None."""
    if node.op != "ReduceMean" or not node.attrs.get("keepdims") or not node.attrs["axes"]:
        return None
    return tuple(node.attrs["axes"])


def _affine_shape(g: Graph, x: str, axes: tuple[int, ...]) -> tuple[int, ...]:
    """The shape a scale / bias may broadcast to: the input's along `axes`, 1 elsewhere."""
    return tuple(d if i in axes else 1 for i, d in enumerate(g.tensors[x].shape))


def _match_layer_norm(g: Graph, mean: Node):
    """(x, axes, eps, last node, nodes, scale, bias) of the LayerNorm that starts at `mean`."""
    axes = _mean_axes(mean)
    if axes is None:
        return None
    x = mean.inputs[0]
    sub = _only_use(g, mean.outputs[0])
    if sub is None or sub.op != "Sub" or sub.inputs != [x, mean.outputs[0]] or sub.attrs.get("act"):
        return None
    d = sub.outputs[0]
    uses = list({id(n): n for n in g.consumers().get(d, [])}.values())  # Mul(d, d) reads d twice
    if d in g.outputs or len(uses) != 2 or g.tensors[d].quant is not None:
        return None
    square = next((n for n in uses if (n.op == "Pow" and n.attrs["exponent"] == 2.0)
                   or (n.op == "Mul" and n.inputs == [d, d])), None)
    div = next((n for n in uses if n.op == "Div" and n.inputs[0] == d), None)
    if square is None or div is None:
        return None
    var = _only_use(g, square.outputs[0])
    if var is None or var.inputs[0] != square.outputs[0] or _mean_axes(var) != axes:
        return None
    add = _only_use(g, var.outputs[0])
    if add is None or add.op != "Add" or add.attrs.get("act"):
        return None
    eps_name = _other_input(add, var.outputs[0])
    if not _is_scalar_const(g, eps_name):
        return None
    sqrt = _only_use(g, add.outputs[0])
    if sqrt is None or sqrt.op != "Sqrt" or _only_use(g, sqrt.outputs[0]) is not div or div.inputs[1] != sqrt.outputs[0]:
        return None
    nodes = [mean, sub, square, var, add, sqrt, div]
    eps = float(g.tensors[eps_name].data.reshape(()))
    affine = _affine_shape(g, x, axes)
    last, scale, bias = div, None, None
    for op in ("Mul", "Add"):
        nxt = _only_use(g, last.outputs[0])
        if nxt is None or nxt.op != op or nxt.attrs.get("act"):
            break
        c = _other_input(nxt, last.outputs[0])
        if not g.tensors[c].is_const or not _broadcasts_to(g.tensors[c].data.shape, affine):
            break
        if op == "Mul":
            scale = c
        else:
            bias = c
        nodes.append(nxt)
        last = nxt
    if eps < 0 or not np.isfinite(eps):
        return None
    return x, axes, eps, last, nodes, scale, bias


def _broadcasts_to(shape, target) -> bool:
    """numpy broadcasting of `shape` to exactly `target` (leading 1s allowed)."""
    if len(shape) > len(target):
        return all(d == 1 for d in shape[:len(shape) - len(target)]) and _broadcasts_to(shape[len(shape) - len(target):],
                                                                                       target)
    return all(a in (1, b) for a, b in zip(shape[::-1], target[::-1]))


def _affine_const(g: Graph, name: str | None, x: str, axes: tuple[int, ...], fill: float, hint: str) -> str:
    """A scale / bias as LayerNorm takes it: shaped like the normalised (moved-last) axes."""
    if name is None:
        return g.const(np.full(1, fill, np.float32), hint)
    full = np.broadcast_to(np.asarray(g.tensors[name].data, np.float32), _affine_shape(g, x, axes))
    shape = tuple(g.tensors[x].shape[a] for a in axes)
    return g.const(np.ascontiguousarray(full.reshape(shape)), hint)


def fuse_layer_norm(g: Graph) -> bool:
    """Trailing axes become one LayerNorm; a single other axis (a channels-first LayerNorm, as
    ConvNeXt writes it) becomes Transpose (axis last) -> LayerNorm -> Transpose back, which the
    layout pass cancels against the NHWC transposes (channels are already last there)."""
    changed = False
    for mean in [n for n in g.nodes if n.op == "ReduceMean"]:
        if not g.has_node(mean):
            continue
        found = _match_layer_norm(g, mean)
        if found is None:
            continue
        x, axes, eps, last, nodes, scale, bias = found
        rank = len(g.tensors[x].shape)
        trailing = axes == tuple(range(axes[0], rank))
        if not trailing and len(axes) != 1:
            continue
        scale = _affine_const(g, scale, x, axes, 1.0, "ln_scale")
        bias = _affine_const(g, bias, x, axes, 0.0, "ln_bias")
        y = last.outputs[0]
        at = g.node_index(last)
        if trailing:
            g.add_node(Node(g.fresh_name(last.name), "LayerNorm", [x, scale, bias], [y],
                            {"axis": axes[0], "epsilon": eps}, last.onnx_name), at)
        else:
            perm = tuple(i for i in range(rank) if i != axes[0]) + axes
            inverse = tuple(int(i) for i in np.argsort(perm))
            t = g.tensors[x]
            moved = g.fresh_name(f"{x}_axis_last")
            normed = g.fresh_name(f"{y}_axis_last")
            for name in (moved, normed):
                g.add_tensor(Tensor(name, tuple(t.shape[p] for p in perm), t.dtype))
            new = [Node(g.fresh_name(last.name + "_to_last"), "Transpose", [x], [moved], {"perm": perm}, last.onnx_name),
                   Node(g.fresh_name(last.name), "LayerNorm", [moved, scale, bias], [normed],
                        {"axis": rank - 1, "epsilon": eps}, last.onnx_name),
                   Node(g.fresh_name(last.name + "_back"), "Transpose", [normed], [y], {"perm": inverse},
                        last.onnx_name)]
            for k, n in enumerate(new):
                g.add_node(n, at + k)
        for n in nodes:
            g.remove_node(n)
        changed = True
    return changed
