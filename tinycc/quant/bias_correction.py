"""Empirical bias correction (quantization.md §5.2, Nagel et al. 2019 "data-free quantization").

Quantizing a layer's input and weights shifts the mean of its output: E[W_q x_q] != E[W x].
Per output channel o of every Conv/Dense, over the calibration samples,

    b_o += E[(W x + b)_o] - E[(W_q x_q + b_q)_o]

where the left side is the float layer on float inputs and the right side the layer as the int8
model computes it, on the inputs the int8 model actually sees (earlier layers quantized and
already corrected). Both are taken before the fused activation, where the output is linear in b.

The int8 model is simulated in float ("fake quantization"): every activation is rounded to its
tensor's (scale, zero point), Conv/Dense weights and biases are quantized exactly as lowering
quantizes them (quant.weights.encode_weights). Everything runs in numpy float64, so the result is
deterministic.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np

from ..ir import Graph, IRError, Node
from ..ops.registry import OPS
from ..reference.float_exec import check_inputs, to_physical
from .params import dequantize, quantize
from .weights import encode_weights

def correct_biases(float_graph: Graph, quantized_graph: Graph,
                   samples: Sequence[Mapping[str, np.ndarray]]) -> Graph:
    """A copy of `quantized_graph` (the float graph with quantization parameters assigned) whose
    Conv/Dense biases are corrected for the mean output shift of int8 quantization."""
    q = quantized_graph.copy()
    if len(float_graph.nodes) != len(q.nodes) or any(
            a.name != b.name for a, b in zip(float_graph.nodes, q.nodes)):
        raise IRError("bias correction needs the quantized graph to have the float graph's nodes")
    samples = list(samples)
    if not samples:
        return q
    float_env = [_initial_env(float_graph, s, fake_quant=False) for s in samples]
    quant_env = [_initial_env(q, s, fake_quant=True) for s in samples]
    last_use = _last_use(q)
    for k, (fnode, qnode) in enumerate(zip(float_graph.nodes, q.nodes)):
        if _is_correctable(q, qnode):
            _correct_node(q, fnode, qnode, float_env, quant_env)
        else:
            for fe, qe in zip(float_env, quant_env):
                _run_node(float_graph, fnode, fe, fake_quant=False)
                _run_node(q, qnode, qe, fake_quant=True)
        for env in (*float_env, *quant_env):
            for name in [t for t in env if last_use.get(t, len(q.nodes)) <= k]:
                del env[name]
    q.prune_tensors()
    return q


# ---- per-layer correction ---------------------------------------------------------------------
def _is_correctable(q: Graph, node: Node) -> bool:
    if OPS[node.op].bias_axis(q, node) is None:  # ops with weights and a bias (Conv, Dense)
        return False
    w = q.tensors[node.inputs[1]]
    x = q.tensors[node.inputs[0]]
    return w.dtype == "float32" and x.quant is not None and x.quant.per_tensor


def _correct_node(q: Graph, fnode: Node, qnode: Node, float_env: list[dict], quant_env: list[dict]) -> None:
    channels = q.tensors[qnode.inputs[1]].shape[0]
    axis = OPS[qnode.op].bias_axis(q, qnode)
    linear_f, linear_q = _without_act(fnode), _without_act(qnode)
    w_fake, b_fake = _fake_quant_weights(q, qnode)
    sum_f, sum_q, count = np.zeros(channels), np.zeros(channels), 0
    pre_q = []
    for fe, qe in zip(float_env, quant_env):
        yf = OPS[fnode.op].run_float(linear_f, [fe[t] if t else None for t in fnode.inputs])[0]
        yq = _run_linear(linear_q, qe[qnode.inputs[0]], w_fake, b_fake)
        sum_f += _channel_sums(yf, axis)
        sum_q += _channel_sums(yq, axis)
        count += yq.size // channels
        pre_q.append(yq)
        fe[fnode.outputs[0]] = _apply_act_float(fnode, yf)
    _set_bias(q, qnode, _bias(q, qnode, channels) + (sum_f - sum_q) / count)
    w_new, b_new = _fake_quant_weights(q, qnode)  # the new bias, quantized as lowering will
    shape = [1] * pre_q[0].ndim
    shape[axis] = channels
    for qe, yq in zip(quant_env, pre_q):
        if np.array_equal(w_new, w_fake):  # the output is linear in the bias
            yq = yq + (b_new - b_fake).reshape(shape)
        else:  # a large bias raised the weight scale (see quant.weights.encode_weights)
            yq = _run_linear(linear_q, qe[qnode.inputs[0]], w_new, b_new)
        qe[qnode.outputs[0]] = _fake_quant(q, qnode.outputs[0], _apply_act_float(qnode, yq))


def _fake_quant_weights(q: Graph, node: Node) -> tuple[np.ndarray, np.ndarray]:
    """Weights and bias as the int8 kernel uses them, dequantized to float64."""
    in_scale, _ = q.tensors[node.inputs[0]].quant.scalar()
    enc = encode_weights(q, node, in_scale)
    w_scale = enc.qp.scale.astype(np.float64)
    w = enc.q.astype(np.float64) * w_scale.reshape((-1,) + (1,) * (enc.q.ndim - 1))
    b = enc.bias.astype(np.float64) * np.float64(np.float32(in_scale)) * w_scale
    return w, b


def _run_linear(node: Node, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    return OPS[node.op].run_float(node, [x, w, b])[0].astype(np.float64)


def _channel_sums(y: np.ndarray, axis: int) -> np.ndarray:
    y = np.moveaxis(np.asarray(y, dtype=np.float64), axis, -1)
    return y.reshape(-1, y.shape[-1]).sum(axis=0)


def _without_act(node: Node) -> Node:
    return dataclasses.replace(node, attrs={**node.attrs, "act": None})


def _apply_act_float(node: Node, y: np.ndarray) -> np.ndarray:
    from ..ops.registry import apply_act

    return apply_act(np.asarray(y, dtype=np.float32), node.attrs.get("act"))


def _bias(q: Graph, node: Node, channels: int) -> np.ndarray:
    bname = node.inputs[2] if len(node.inputs) > 2 else ""
    if not bname:
        return np.zeros(channels)
    return q.tensors[bname].data.astype(np.float64).reshape(channels)


def _set_bias(q: Graph, node: Node, bias: np.ndarray) -> None:
    """Give the node its own bias constant (the old one may be shared or absent)."""
    name = q.const(bias.astype(np.float32), f"{node.name}_bias")
    if len(node.inputs) > 2:
        node.inputs[2] = name
    else:
        node.inputs.append(name)


# ---- executing one node on float or fake-quantized values -------------------------------------
def _initial_env(g: Graph, sample: Mapping[str, np.ndarray], fake_quant: bool) -> dict[str, np.ndarray]:
    env = {}
    for name, v in check_inputs(g, sample).items():
        v = to_physical(g, name, np.asarray(v, dtype=np.float32))
        env[name] = _fake_quant(g, name, v) if fake_quant else v
    for name, t in g.tensors.items():
        if t.is_const:
            env[name] = t.data
    return env


def _run_node(g: Graph, node: Node, env: dict, fake_quant: bool) -> None:
    ys = OPS[node.op].run_float(node, [env[t] if t else None for t in node.inputs])
    for name, y in zip(node.outputs, ys):
        env[name] = _fake_quant(g, name, y) if fake_quant else y


def _fake_quant(g: Graph, name: str, v: np.ndarray) -> np.ndarray:
    qp = g.tensors[name].quant
    if qp is None or not qp.per_tensor or g.tensors[name].dtype != "float32":
        return v
    return dequantize(quantize(v, qp), qp)


def _last_use(g: Graph) -> dict[str, int]:
    """Index of the last node reading each activation; graph outputs are never freed."""
    last = {}
    for k, node in enumerate(g.nodes):
        for t in node.inputs:
            if t and not g.tensors[t].is_const:
                last[t] = k
    for t in g.outputs:
        last[t] = len(g.nodes)
    return last
