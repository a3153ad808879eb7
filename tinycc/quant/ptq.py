"""int8 post-training quantization: give every activation tensor its (scale, zero point).

Per-tensor asymmetric int8 activations from calibration ranges; ops whose output must share the
input's quantization (pools, reshapes, data movement) or have a fixed one (softmax, sigmoid,
tanh) say so through OpDef.int8_output (see ops/registry.py). Weights and biases are quantized
when the graph is lowered (per output channel, symmetric), from the input scale fixed here.
"""
from __future__ import annotations

from typing import Mapping

from ..errors import Unsupported
from ..ir import Graph
from ..ops.registry import OPS
from .calibrate import TensorStats, range_methods
from .params import choose_qparams, fixed_qparams


def assign_qparams(g: Graph, stats: Mapping[str, TensorStats] | None, method: str | None) -> Graph:
    """stats=None: a pre-quantized graph, where only data movement may lack params."""
    q = g.copy()
    methods = range_methods(q, method) if stats is not None else {}
    for name in q.inputs:
        t = q.tensors[name]
        if t.quant is None:
            if stats is None:
                raise Unsupported(f"model input {name!r} has no quantization parameters")
            t.quant = choose_qparams(*stats[name].range(methods[name]))
    for node in q.nodes:
        rule = OPS[node.op].int8_output(q, node)
        for out in node.outputs:
            t = q.tensors[out]
            if t.quant is not None:  # pre-quantized (QDQ) models carry their own
                continue
            if rule == "calibrated":
                if stats is None:
                    raise Unsupported(f"{node.op} node {node.onnx_name or node.name!r}: output {out!r} has no "
                                      "quantization parameters in the pre-quantized model")
                if out not in stats:
                    raise Unsupported(f"no calibration statistics for tensor {out!r}")
                t.quant = choose_qparams(*stats[out].range(methods[out]))
            elif rule == "same_as_input":
                t.quant = q.tensors[node.inputs[0]].quant
            else:
                _, scale, zp = rule
                t.quant = fixed_qparams(scale, zp)
    return q
