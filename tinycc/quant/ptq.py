"""int8 post-training quantization: give every activation tensor its (scale, zero point).

Per-tensor asymmetric int8 activations from calibration ranges; ops whose output must share the
input's quantization (pools, reshapes, data movement) or have a fixed one (softmax, sigmoid,
tanh) say so through OpDef.int8_output (see ops/registry.py). Weights and biases are quantized
when the graph is lowered, as the weight scheme recorded here on every node with weights says
(quant/weights.py: int8 per output channel, symmetric), from the input scale fixed here.
"""
from __future__ import annotations

import math
from typing import Mapping

from ..errors import BadInput, Unsupported
from ..ir import Graph
from ..ops.registry import OPS
from .calibrate import TensorStats, range_methods
from .params import choose_qparams, fixed_qparams, share_params_through_moves
from .weights import record_weight_schemes


def concat_shared_ranges(g: Graph, stats: Mapping[str, TensorStats], methods: Mapping[str, str]) -> dict:
    """TFLite's rule that CONCATENATION's inputs and output share one quantization
    (OpDef.int8_shared_inputs): every tensor tied to a Concat (directly, or through ops that keep their input's params) gets the union of
    the group's ranges, so that concat parts are plain copies (and can even be written in place).
    Groups holding a fixed-quantization tensor (e.g. a softmax output) are left alone."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    fixed, concat_roots = set(), []
    for node in g.nodes:
        rule = OPS[node.op].int8_output(g, node)
        if rule == "same_as_input":
            for out in node.outputs:
                parent[find(out)] = find(node.inputs[0])
        elif rule != "calibrated":
            fixed.update(node.outputs)
        if OPS[node.op].int8_shared_inputs:
            for t in node.inputs:
                if not g.tensors[t].is_const:
                    parent[find(t)] = find(node.outputs[0])
            concat_roots.append(node.outputs[0])
    groups: dict[str, list[str]] = {}
    for t in parent:
        groups.setdefault(find(t), []).append(t)
    shared = {}
    for out in concat_roots:
        members = groups[find(out)]
        if any(m in fixed for m in members):
            continue
        ranges = [stats[m].range(methods[m]) for m in members if m in stats]
        lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
        shared.update({m: (lo, hi) for m in members})
    return shared


def _params_through_moves(g: Graph) -> dict:
    """In a pre-quantized graph, the params of every tensor, including those the importer created
    (e.g. the pooled map before the Reshape of a ReduceMean without keepdims) that reach the
    exporter's params through values passed on unchanged ("same_as_input": Reshape, Flatten, ...)
    by their only consumer."""
    consumers = g.consumers()
    moves = [(node.inputs[0], node.outputs[0]) for node in g.nodes
             if node.inputs and OPS[node.op].int8_output(g, node) == "same_as_input"
             and len(consumers.get(node.inputs[0], ())) == 1]
    quant = {name: t.quant for name, t in g.tensors.items() if t.quant is not None}
    share_params_through_moves(moves, quant)
    return quant


def assign_qparams(g: Graph, stats: Mapping[str, TensorStats] | None, method: str | None) -> Graph:
    """stats=None: a pre-quantized graph, where only data movement may lack params."""
    q = g.copy()
    methods = range_methods(q, method) if stats is not None else {}
    shared = concat_shared_ranges(q, stats, methods) if stats is not None else {}
    moved = _params_through_moves(q) if stats is None else {}

    def calibrated(name):
        lo, hi = shared[name] if name in shared else stats[name].range(methods[name])
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise BadInput(f"the float model computes non-finite values (range [{lo}, {hi}]) in tensor {name!r} "
                           "on the calibration data: check the calibration samples (NaN, Inf, huge values) and "
                           "the model's weights")
        return choose_qparams(lo, hi)

    for name in q.inputs:
        t = q.tensors[name]
        if t.quant is None:
            if stats is None:
                raise Unsupported(f"model input {name!r} has no quantization parameters")
            t.quant = calibrated(name)
    for node in q.nodes:
        rule = OPS[node.op].int8_output(q, node)
        for out in node.outputs:
            t = q.tensors[out]
            if t.quant is not None:  # pre-quantized (QDQ) models carry their own
                continue
            if rule == "calibrated":
                if stats is None:
                    t.quant = moved.get(out)
                if t.quant is not None:
                    continue
                if stats is None:
                    raise Unsupported(f"{node.op} node {node.onnx_name or node.name!r}: output {out!r} has no "
                                      "quantization parameters in the pre-quantized model")
                if out not in stats:
                    raise Unsupported(f"no calibration statistics for tensor {out!r}")
                t.quant = calibrated(out)
            elif rule == "same_as_input":
                t.quant = q.tensors[node.inputs[0]].quant
            else:
                _, scale, zp = rule
                t.quant = fixed_qparams(scale, zp)
    record_weight_schemes(q)
    return q
