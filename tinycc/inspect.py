"""Per-layer summary of a graph: op, output shape, parameters, MACs, activation bytes at int8."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ir import Graph
from .ops.registry import OPS


@dataclass
class LayerRow:
    name: str
    op: str
    out_shape: tuple[int, ...]
    params: int
    macs: int
    act_bytes: int  # bytes of the layer's outputs at int8


def safe_text(text: str, limit: int = 40) -> str:
    """Printable rendering of an untrusted model name (no control characters)."""
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= limit else clean[: limit - 1] + "~"


def logical_shape(g: Graph, tensor: str) -> tuple[int, ...]:
    t = g.tensors[tensor]
    return tuple(t.shape[i] for i in np.argsort(t.perm)) if t.perm else tuple(t.shape)


def layer_rows(g: Graph) -> list[LayerRow]:
    rows = []
    for n in g.nodes:
        params = sum(g.tensors[t].size for t in n.inputs if t and g.tensors[t].is_const)
        rows.append(LayerRow(
            name=n.onnx_name or n.name, op=n.op, out_shape=logical_shape(g, n.outputs[0]),
            params=params, macs=OPS[n.op].macs(g, n),
            act_bytes=sum(g.tensors[t].size for t in n.outputs),
        ))
    return rows


def format_table(g: Graph, rows: list[LayerRow]) -> str:
    head = f"{'#':>3}  {'layer':<32} {'op':<18} {'output shape':<18} {'params':>9} {'MACs':>11} {'act bytes':>10}"
    lines = [head, "-" * len(head)]
    for i, r in enumerate(rows):
        shape = "x".join(str(d) for d in r.out_shape)
        lines.append(f"{i:>3}  {safe_text(r.name, 32):<32} {r.op:<18} {shape:<18} {r.params:>9,} {r.macs:>11,} {r.act_bytes:>10,}")
    lines.append("-" * len(head))
    total_params = sum(r.params for r in rows)
    total_macs = sum(r.macs for r in rows)
    peak = max((r.act_bytes for r in rows), default=0)
    in_bytes = sum(g.tensors[t].size for t in g.inputs)
    lines.append(f"     {'total':<32} {'':<18} {'':<18} {total_params:>9,} {total_macs:>11,} {peak:>10,}")
    lines.append(f"inputs: {', '.join(safe_text(t) + ' ' + 'x'.join(map(str, logical_shape(g, t))) for t in g.inputs)}"
                 f" ({in_bytes:,} bytes at int8)")
    lines.append(f"outputs: {', '.join(safe_text(t) + ' ' + 'x'.join(map(str, logical_shape(g, t))) for t in g.outputs)}")
    lines.append(f"layers: {len(rows)}  params: {total_params:,}  MACs: {total_macs:,}  "
                 f"weights at int8: ~{total_params:,} bytes  largest layer output: {peak:,} bytes")
    return "\n".join(lines)
