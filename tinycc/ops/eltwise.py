"""Binary element-wise ops with numpy broadcasting: Add, Sub, Mul, Div (attr act: fused clamp)."""
from __future__ import annotations

import numpy as np

from .registry import LayoutClass, OpDef, apply_act, onnx_importer, register

_FUNCS = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}


class _Binary(OpDef):
    layout_class = LayoutClass.ELEMENTWISE

    def infer(self, g, node):
        a, b = (g.tensors[t] for t in node.inputs)
        return [(tuple(np.broadcast_shapes(a.shape, b.shape)), a.dtype)]

    def run_float(self, node, xs):
        y = _FUNCS[self.name](xs[0].astype(np.float32), xs[1].astype(np.float32))
        return [apply_act(np.asarray(y, dtype=np.float32), node.attrs.get("act"))]


for _name in _FUNCS:
    register(type(_name, (_Binary,), {"name": _name}))


@onnx_importer("Add", "Sub", "Mul", "Div")
def import_binary(ctx, onode, attrs):
    a, b = onode.input
    for name in (a, b):
        t = ctx.graph.tensors[name]
        if t.dtype not in ("float32",):
            from .common import unsupported

            raise unsupported(onode, f"{t.dtype} operand {name!r} (float tensors expected)")
    ctx.add(onode.op_type, [a, b], [onode.output[0]], onode, act=None)
