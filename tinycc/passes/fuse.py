"""Activation fusion.

fuse_activation: a clamp (Relu, Clip: OpDef.clamp) after an op that takes a fused activation
(OpDef.fuses_activation: Conv, Dense, Add, Sub, Mul, MaxPool) becomes the producer's clamp
(`act`), as TFLite fuses activations into its kernels.

fuse_self_gating: Mul(x, Gate(x)) with a unary activation as the gate (x * HardSigmoid(x) is
torch's hard-swish at opset <= 13, x * Sigmoid(x) is SiLU) becomes one SelfGated node
(ops/gated.py): one lookup table in int8, and the gate tensor is never stored."""
from __future__ import annotations

from ..ir import Graph
from ..ops.gated import GATES
from ..ops.registry import OPS
from .cleanup import absorb_into_producer


def _merge(act, lo, hi):
    old_lo, old_hi = (act or {}).get("min"), (act or {}).get("max")
    lo = old_lo if lo is None else (lo if old_lo is None else max(lo, old_lo))
    hi = old_hi if hi is None else (hi if old_hi is None else min(hi, old_hi))
    return {"min": lo, "max": hi}


def fuse_activation(g: Graph) -> bool:
    changed = False
    for act in [n for n in g.nodes if OPS[n.op].clamp(n) is not None]:
        src = act.inputs[0]
        prod = g.producer(src)
        if prod is None or not OPS[prod.op].fuses_activation or src in g.outputs:
            continue
        if len(g.consumers().get(src, [])) != 1:
            continue
        lo, hi = OPS[act.op].clamp(act)
        prod.attrs["act"] = _merge(prod.attrs.get("act"), lo, hi)
        absorb_into_producer(g, act, prod, src)
        changed = True
    g.prune_tensors()
    return changed


def _self_gate(g: Graph, mul) -> tuple | None:
    """(x, gate node) when `mul` computes x * Gate(x) and the gate output feeds only `mul`."""
    if mul.op != "Mul" or len(mul.inputs) != 2 or mul.attrs.get("act"):
        return None
    uses = g.consumers()
    for gate_out, x in (mul.inputs, mul.inputs[::-1]):
        gate = g.producer(gate_out)
        if gate is None or gate.op not in GATES or gate.inputs[0] != x or g.tensors[x].is_const:
            continue
        # A gate that is a graph output or feeds other nodes must still be stored; a gate
        # tensor with pre-set quantization (QDQ model) is rounded there as the model says.
        if gate_out in g.outputs or len(uses.get(gate_out, [])) != 1 or g.tensors[gate_out].quant is not None:
            continue
        return x, gate
    return None


def fuse_self_gating(g: Graph) -> bool:
    changed = False
    for mul in [n for n in g.nodes if n.op == "Mul"]:
        found = _self_gate(g, mul)
        if found is None:
            continue
        x, gate = found
        g.remove_node(gate)
        mul.op = "SelfGated"
        mul.inputs = [x]
        mul.attrs = {"gate": gate.op, "gate_attrs": dict(gate.attrs)}
        changed = True
    g.prune_tensors()
    return changed
