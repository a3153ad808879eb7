"""Algebraic folds that keep float semantics: BatchNorm into Conv/Dense, standalone BatchNorm
to Mul+Add, Div by a constant to Mul, zero Pad into Conv."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node, Tensor
from ..ops.batchnorm import bn_scale_shift
from ..ops.registry import OPS
from .cleanup import absorb_into_producer


def _single_use(g: Graph, tensor: str) -> bool:
    return tensor not in g.outputs and len(g.consumers().get(tensor, [])) == 1


def _private_const(g: Graph, node: Node, idx: int, data: np.ndarray, hint: str) -> None:
    """Give `node` its own copy of a constant input (constants may be shared by several nodes)."""
    node.inputs[idx] = g.const(np.ascontiguousarray(data, dtype=np.float32), hint)


def fold_batchnorm(g: Graph) -> bool:
    changed = False
    for bn in [n for n in g.nodes if n.op == "BatchNorm"]:
        prod = g.producer(bn.inputs[0])
        channel_axis = OPS[prod.op].bias_axis(g, prod) if prod is not None else None
        if channel_axis is None or not _single_use(g, bn.inputs[0]):
            continue
        if prod.attrs.get("act"):
            continue
        if bn.attrs["axis"] != channel_axis:
            continue
        a, b = bn_scale_shift(*(g.tensors[t].data for t in bn.inputs[1:5]), bn.attrs["epsilon"])
        w = g.tensors[prod.inputs[1]].data.astype(np.float64)
        w = w * a.reshape((-1,) + (1,) * (w.ndim - 1))
        bias = g.tensors[prod.inputs[2]].data.astype(np.float64) if len(prod.inputs) > 2 and prod.inputs[2] else 0.0
        new_bias = bias * a + b
        while len(prod.inputs) < 3:
            prod.inputs.append("")
        _private_const(g, prod, 1, w, "w_bn")
        _private_const(g, prod, 2, new_bias, "b_bn")
        absorb_into_producer(g, bn, prod, bn.inputs[0])
        changed = True
    g.prune_tensors()
    return changed


def decompose_batchnorm(g: Graph) -> bool:
    changed = False
    for bn in [n for n in g.nodes if n.op == "BatchNorm"]:
        x = g.tensors[bn.inputs[0]]
        a, b = bn_scale_shift(*(g.tensors[t].data for t in bn.inputs[1:5]), bn.attrs["epsilon"])
        shape = [1] * len(x.shape)
        shape[bn.attrs["axis"]] = -1
        sa = g.const(a.reshape(shape).astype(np.float32), "bn_scale")
        sb = g.const(b.reshape(shape).astype(np.float32), "bn_shift")
        mid = g.fresh_name(f"{bn.name}_scaled")
        g.add_tensor(Tensor(mid, x.shape, x.dtype, perm=x.perm))
        idx = g.node_index(bn)
        g.remove_node(bn)
        g.add_node(Node(bn.name + "_add", "Add", [mid, sb], [bn.outputs[0]], {"act": None}, bn.onnx_name), idx)
        g.add_node(Node(bn.name + "_mul", "Mul", [bn.inputs[0], sa], [mid], {"act": None}, bn.onnx_name), idx)
        changed = True
    g.prune_tensors()
    return changed


def div_to_mul(g: Graph) -> bool:
    changed = False
    for n in [n for n in g.nodes if n.op == "Div"]:
        c = g.tensors[n.inputs[1]]
        if not c.is_const or np.any(c.data == 0):
            continue
        n.op = "Mul"
        n.inputs[1] = g.const((1.0 / c.data.astype(np.float64)).astype(np.float32), "reciprocal")
        changed = True
    g.prune_tensors()
    return changed


def fold_pad(g: Graph) -> bool:
    """Pad(constant 0, spatial axes only) -> Conv becomes Conv with larger pads."""
    changed = False
    for pad in [n for n in g.nodes if n.op == "Pad"]:
        uses = g.consumers().get(pad.outputs[0], [])
        if len(uses) != 1 or pad.outputs[0] in g.outputs or pad.attrs["value"] != 0.0:
            continue
        conv = uses[0]
        if conv.inputs[0] != pad.outputs[0] or not OPS[conv.op].absorb_zero_pad(g, conv, pad.attrs["pads"]):
            continue
        conv.inputs[0] = pad.inputs[0]
        g.remove_node(pad)
        changed = True
    g.prune_tensors()
    return changed


def fold_bias_add(g: Graph) -> bool:
    """Dense/Conv followed by Add of a per-output-channel constant: the constant becomes the bias
    (tf2onnx and MatMul-based exporters emit MatMul + Add)."""
    changed = False
    for add in [n for n in g.nodes if n.op == "Add" and not n.attrs.get("act")]:
        consts = [i for i, t in enumerate(add.inputs) if g.tensors[t].is_const]
        if len(consts) != 1:
            continue
        x = add.inputs[1 - consts[0]]
        prod = g.producer(x)
        channel_axis = OPS[prod.op].bias_axis(g, prod) if prod is not None else None
        if channel_axis is None or prod.attrs.get("act") or not _single_use(g, x):
            continue
        out = g.tensors[x]
        if out.quant is not None:  # QDQ: x is requantized before the Add, which stays an int8 layer
            continue
        c = g.tensors[add.inputs[consts[0]]].data
        channels = out.shape[channel_axis]
        if c.ndim > len(out.shape):
            continue
        full = (1,) * (len(out.shape) - c.ndim) + c.shape
        if any(d != 1 for i, d in enumerate(full) if i != channel_axis) or full[channel_axis] not in (1, channels):
            continue
        has_bias = len(prod.inputs) > 2 and bool(prod.inputs[2])
        while len(prod.inputs) < 3:
            prod.inputs.append("")
        const_name = add.inputs[consts[0]]
        if not has_bias and g.tensors[const_name].quant is not None and c.shape == (channels,):
            prod.inputs[2] = const_name  # a pre-quantized int32 bias: keep it exact
        else:
            vec = np.broadcast_to(c.reshape(-1), (channels,)).astype(np.float64)
            bias = g.tensors[prod.inputs[2]].data.astype(np.float64) if has_bias else 0.0
            _private_const(g, prod, 2, bias + vec, "b_add")
        absorb_into_producer(g, add, prod, x)
        changed = True
    g.prune_tensors()
    return changed
