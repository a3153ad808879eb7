"""Activation fusion: a clamp (Relu, Clip: OpDef.clamp) after an op that takes a fused
activation (OpDef.fuses_activation: Conv, Dense, Add, Sub, Mul, MaxPool) becomes the producer's
clamp (`act`), as TFLite fuses activations into its kernels."""
from __future__ import annotations

from ..ir import Graph
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
