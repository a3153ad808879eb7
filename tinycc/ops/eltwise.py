"""Binary element-wise ops with numpy broadcasting: Add, Sub, Mul, Div (attr act: fused clamp)."""
from __future__ import annotations

import numpy as np

from .common import unsupported_int8
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

    def lower_int8(self, lc, node):
        return _lower_binary_int8(self, lc, node)


for _name in _FUNCS:
    register(type(_name, (_Binary,), {"name": _name}))


@onnx_importer("Add", "Sub", "Mul", "Div")
def import_binary(ctx, onode, attrs):
    a, b = onode.input
    for name in (a, b):
        t = ctx.graph.tensors[name]
        if t.dtype not in ("float32", "float64"):
            from .common import unsupported

            raise unsupported(onode, f"{t.dtype} operand {name!r} (float tensors expected)")
    ctx.add(onode.op_type, [a, b], [onode.output[0]], onode, act=None)


# ---- int8 ---------------------------------------------------------------------------------------
def _operand(lc, node, name):
    """(argument, scale, zero point, physical shape) of an operand, constants as int8 blobs."""
    from ..program import Arg

    if lc.is_const(name):
        blob, s, zp = lc.const_operand(name, node)
        return Arg("const", blob), s, zp, lc.tensor(name).shape
    s, zp = lc.qp(name)
    return Arg("in", name), s, zp, lc.tensor(name).shape


def _lower_binary_int8(self, lc, node):
    from ..golden import kernels_eltwise as E
    from ..program import Arg
    from ..quant.params import act_range

    if self.name == "Div":
        raise unsupported_int8(node, "division by a run-time tensor")
    y = node.outputs[0]
    (a1, s1, z1, sh1), (a2, s2, z2, sh2) = (_operand(lc, node, t) for t in node.inputs)
    s_out, z_out = lc.qp(y)
    out_shape = lc.tensor(y).shape
    lo, hi = act_range(node.attrs.get("act"), lc.tensor(y).quant)
    make, fn, kernel = {"Add": (E.make_add_params, E.add_s8, "tc_add_s8"),
                        "Sub": (E.make_sub_params, E.sub_s8, "tc_sub_s8"),
                        "Mul": (E.make_mul_params, E.mul_s8, "tc_mul_s8")}[self.name]
    try:
        p = make(s1, z1, s2, z2, s_out, z_out, sh1, sh2, out_shape, act_min=lo, act_max=hi)
    except ValueError as exc:
        raise unsupported_int8(node, str(exc)) from None
    acts = [a for a in (a1, a2) if a.kind == "in"]
    same_shape = tuple(k for k, a in enumerate(acts) if tuple(lc.tensor(a.ref).shape) == tuple(out_shape))
    lc.add_step(node, kernel, p, [a1, a2, Arg("out", y)], lambda x1, x2: fn(p, x1, x2), inplace_inputs=same_shape)


# ---- C kernels (tinycc/kernels.py): the runtime_c functions this module lowers to ------------
from ..golden import kernels_eltwise as _KE  # noqa: E402
from ..kernels import declare  # noqa: E402

declare("tc_add_s8", header="tc_eltwise.h", params=_KE.AddParams, args=("in", "in", "out"), sources=("tc_add_s8.c",))
declare("tc_sub_s8", header="tc_eltwise.h", params=_KE.AddParams, args=("in", "in", "out"), sources=("tc_add_s8.c",))
declare("tc_mul_s8", header="tc_eltwise.h", params=_KE.MulParams, args=("in", "in", "out"), sources=("tc_mul_s8.c",))
