"""Comparisons (Greater, GreaterOrEqual, Less, LessOrEqual, Equal) and Where, with numpy
broadcasting.

int8: a comparison follows TFLite Micro's quantized GREATER / LESS / EQUAL ... (reference
comparisons.h: both inputs shifted left by 8 and rescaled by their own scale, then compared);
its bool output is an int8 tensor of 0 and 1 with scale 1 and zero point 0. Where selects x or y
by that condition and rescales the value to the output quantization (the identity where the
quantizations agree, which is TFLM SELECT_V2's requirement). CompareParams / WhereParams mirror
tc_compare_params / tc_where_params (runtime_c/tc_eltwise_ext.h); compare_s8 / where_s8 are the
bit-exact references of tc_compare_s8 / tc_where_s8.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np

from ..golden.arith import mbqm, quantize_multiplier, requantize_to_int8
from ..golden.checks import Dims4, as_int8, check_dims4, check_requant_pair, checked_scale, is_int8, pad4, require
from ..kernels import declare
from ..program import Arg
from .common import bad_input, unsupported, unsupported_int8
from .eltwise import _check_broadcast, _operand, broadcast_dims
from .registry import LayoutClass, OpDef, onnx_importer, register

# op -> (float function, TC_CMP_* code)
COMPARISONS = {"Greater": (np.greater, 0), "GreaterOrEqual": (np.greater_equal, 1), "Less": (np.less, 2),
               "LessOrEqual": (np.less_equal, 3), "Equal": (np.equal, 4)}
COMPARE_LEFT_SHIFT = 8  # TC_COMPARE_LEFT_SHIFT
BOOL_QUANT = ("fixed", 1.0, 0)  # a bool tensor in int8: codes 0 and 1


class _Compare(OpDef):
    layout_class = LayoutClass.ELEMENTWISE

    def infer(self, g, node):
        a, b = (g.tensors[t] for t in node.inputs)
        return [(tuple(np.broadcast_shapes(a.shape, b.shape)), "bool")]

    def run_float(self, node, xs):
        return [np.asarray(COMPARISONS[self.name][0](xs[0], xs[1]), dtype=bool)]

    def int8_output(self, g, node):
        return BOOL_QUANT

    def lower_int8(self, lc, node):
        y = node.outputs[0]
        (a1, s1, z1, sh1), (a2, s2, z2, sh2) = (_operand(lc, node, t) for t in node.inputs)
        try:
            p = make_compare_params(COMPARISONS[self.name][1], s1, z1, s2, z2, sh1, sh2, lc.tensor(y).shape)
        except ValueError as exc:
            raise unsupported_int8(node, str(exc)) from None
        lc.add_step(node, "tc_compare_s8", p, [a1, a2, Arg("out", y)], lambda v1, v2: compare_s8(p, v1, v2))


for _name in COMPARISONS:
    register(type(_name, (_Compare,), {"name": _name}))


@register
class Where(OpDef):
    name = "Where"
    layout_class = LayoutClass.ELEMENTWISE

    def infer(self, g, node):
        c, x, y = (g.tensors[t] for t in node.inputs)
        return [(tuple(np.broadcast_shapes(c.shape, x.shape, y.shape)), x.dtype)]

    def run_float(self, node, xs):
        return [np.where(np.asarray(xs[0], dtype=bool), xs[1], xs[2]).astype(np.float32)]

    def lower_int8(self, lc, node):
        cond, x, y = node.inputs
        out = node.outputs[0]
        if lc.is_const(cond):
            c_arg = Arg("const", lc.blob(np.asarray(lc.tensor(cond).data, dtype=bool).astype(np.int8), node, "cond"))
        elif lc.tensor(cond).dtype == "bool" and lc.qp(cond) == (1.0, 0):
            c_arg = Arg("in", cond)
        else:
            raise unsupported_int8(node, f"a condition {cond!r} that is not a comparison's bool output")
        for t in (x, y):
            if lc.is_const(t) and not np.all(np.isfinite(lc.tensor(t).data)):
                raise unsupported_int8(node, f"a non-finite constant {t!r} (e.g. a -inf mask)")
        (xa, sx, zx, shx), (ya, sy, zy, shy) = (_operand(lc, node, t) for t in (x, y))
        s_out, z_out = lc.qp(out)
        try:
            p = make_where_params(lc.tensor(cond).shape, sx, zx, shx, sy, zy, shy, s_out, z_out, lc.tensor(out).shape)
        except ValueError as exc:
            raise unsupported_int8(node, str(exc)) from None
        acts = [a for a in (c_arg, xa, ya) if a.kind == "in"]
        same = tuple(k for k, a in enumerate(acts) if tuple(lc.tensor(a.ref).shape) == tuple(lc.tensor(out).shape))
        lc.add_step(node, "tc_where_s8", p, [c_arg, xa, ya, Arg("out", out)],
                    lambda cv, xv, yv: where_s8(p, cv, xv, yv), inplace_inputs=same)


def _float_operands(ctx, onode, names):
    for name in names:
        t = ctx.graph.tensors[name]
        if t.dtype not in ("float32", "float64"):
            raise unsupported(onode, f"{t.dtype} operand {name!r} (float tensors expected)")


@onnx_importer(*COMPARISONS)
def import_compare(ctx, onode, attrs):
    a, b = onode.input
    _float_operands(ctx, onode, (a, b))
    ctx.add(onode.op_type, [a, b], [onode.output[0]], onode)


@onnx_importer("Where")
def import_where(ctx, onode, attrs):
    cond, x, y = onode.input
    if ctx.graph.tensors[cond].dtype != "bool":
        raise bad_input(onode, f"condition {cond!r} is {ctx.graph.tensors[cond].dtype}, not bool")
    _float_operands(ctx, onode, (x, y))
    ctx.add("Where", [cond, x, y], [onode.output[0]], onode)


# ---- integer reference (runtime_c/tc_compare_s8.c, tc_where_s8.c) -------------------------------
@dataclass(frozen=True)
class CompareParams:
    """tc_compare_params (runtime_c/tc_eltwise_ext.h)."""

    C_STRUCT: ClassVar[str] = "tc_compare_params"
    op: int
    in1_zp: int
    in1_multiplier: int
    in1_shift: int
    in2_zp: int
    in2_multiplier: int
    in2_shift: int
    in1_dims: Dims4
    in2_dims: Dims4
    out_dims: Dims4

    def validate(self) -> None:
        require(0 <= self.op <= 4, f"op must be in [0, 4], got {self.op}")
        for d in (self.in1_dims, self.in2_dims, self.out_dims):
            check_dims4(d, "dims")
        _check_broadcast(self.in1_dims, self.in2_dims, self.out_dims)
        require(is_int8(self.in1_zp) and is_int8(self.in2_zp), "zero points must be in [-128, 127]")
        for m, s in ((self.in1_multiplier, self.in1_shift), (self.in2_multiplier, self.in2_shift)):
            require(m >= 0 and -31 <= s <= 0, f"comparison multipliers must be below one: ({m}, {s})")


def _smaller_than_one(scale: float, what: str) -> tuple[int, int]:
    """TFLM QuantizeMultiplierSmallerThanOneExp of an input scale (which must be below 1)."""
    require(checked_scale(scale, what) < 1.0, f"{what} {scale!r} must be below 1 for an int8 comparison")
    mult, shift = quantize_multiplier(float(scale))
    require(shift <= 0, f"{what} {scale!r} rounds up to 1")
    return mult, shift


def make_compare_params(op: int, s1: float, zp1: int, s2: float, zp2: int, shape1: Sequence[int],
                        shape2: Sequence[int], out_shape: Sequence[int] | None = None) -> CompareParams:
    """TFLM ComparisonsPrepare: each input's own scale as a multiplier, left shift 8."""
    m1, sh1 = _smaller_than_one(s1, "s1")
    m2, sh2 = _smaller_than_one(s2, "s2")
    d1, d2, do = broadcast_dims(shape1, shape2, out_shape)
    p = CompareParams(int(op), int(zp1), m1, sh1, int(zp2), m2, sh2, d1, d2, do)
    p.validate()
    return p


def compare_s8(p: CompareParams, in1, in2) -> np.ndarray:
    """Mirror of tc_compare_s8: 0 / 1 as int8, shape p.out_dims."""
    p.validate()
    a = as_int8(in1, int(np.prod(p.in1_dims)), "in1").reshape(p.in1_dims).astype(np.int64)
    b = as_int8(in2, int(np.prod(p.in2_dims)), "in2").reshape(p.in2_dims).astype(np.int64)
    va = mbqm((a - p.in1_zp) << COMPARE_LEFT_SHIFT, p.in1_multiplier, p.in1_shift)
    vb = mbqm((b - p.in2_zp) << COMPARE_LEFT_SHIFT, p.in2_multiplier, p.in2_shift)
    fn = [np.greater, np.greater_equal, np.less, np.less_equal, np.equal][p.op]
    return np.broadcast_to(fn(va, vb), p.out_dims).astype(np.int8)


@dataclass(frozen=True)
class WhereParams:
    """tc_where_params (runtime_c/tc_eltwise_ext.h)."""

    C_STRUCT: ClassVar[str] = "tc_where_params"
    x_zp: int
    x_multiplier: int
    x_shift: int
    y_zp: int
    y_multiplier: int
    y_shift: int
    out_zp: int
    cond_dims: Dims4
    x_dims: Dims4
    y_dims: Dims4
    out_dims: Dims4

    def validate(self) -> None:
        for d in (self.cond_dims, self.x_dims, self.y_dims, self.out_dims):
            check_dims4(d, "dims")
        for d in (self.cond_dims, self.x_dims, self.y_dims):
            require(all(a in (1, o) for a, o in zip(d, self.out_dims)), f"dims {d} do not broadcast to {self.out_dims}")
        require(all(is_int8(z) for z in (self.x_zp, self.y_zp, self.out_zp)), "zero points must be in [-128, 127]")
        check_requant_pair(self.x_multiplier, self.x_shift)
        check_requant_pair(self.y_multiplier, self.y_shift)


def broadcast_dims3(cond_shape, x_shape, y_shape, out_shape) -> tuple[Dims4, Dims4, Dims4, Dims4]:
    """Three shapes numpy-broadcast to out_shape, as 4-D (leading size-1 output axes dropped)."""
    out = [int(d) for d in out_shape]
    while len(out) > 4 and out[0] == 1:
        out = out[1:]
    require(len(out) <= 4, f"Where over {len(out_shape)} dimensions (at most 4 besides leading 1s)")
    result = []
    for shape in (cond_shape, x_shape, y_shape):
        s = [int(d) for d in shape]
        s = [1] * max(0, len(out) - len(s)) + s[max(0, len(s) - len(out)):]
        result.append(pad4(s))
    return result[0], result[1], result[2], pad4(out)


def make_where_params(cond_shape, sx: float, zx: int, x_shape, sy: float, zy: int, y_shape, s_out: float,
                      z_out: int, out_shape) -> WhereParams:
    """Each input's rescale s / s_out in double (the identity (2^30, 1) when equal)."""
    mx, shx = quantize_multiplier(checked_scale(sx, "sx") / checked_scale(s_out, "s_out"))
    my, shy = quantize_multiplier(checked_scale(sy, "sy") / s_out)
    dc, dx, dy, do = broadcast_dims3(cond_shape, x_shape, y_shape, out_shape)
    p = WhereParams(int(zx), mx, shx, int(zy), my, shy, int(z_out), dc, dx, dy, do)
    p.validate()
    return p


def where_s8(p: WhereParams, cond, x, y) -> np.ndarray:
    """Mirror of tc_where_s8; shape p.out_dims."""
    p.validate()
    c = np.asarray(cond).reshape(p.cond_dims)
    xv = as_int8(x, int(np.prod(p.x_dims)), "x").reshape(p.x_dims).astype(np.int64)
    yv = as_int8(y, int(np.prod(p.y_dims)), "y").reshape(p.y_dims).astype(np.int64)
    rx = requantize_to_int8(np.broadcast_to(xv - p.x_zp, p.out_dims), p.x_multiplier, p.x_shift, p.out_zp)
    ry = requantize_to_int8(np.broadcast_to(yv - p.y_zp, p.out_dims), p.y_multiplier, p.y_shift, p.out_zp)
    return np.where(np.broadcast_to(c != 0, p.out_dims), rx, ry).astype(np.int8)


declare("tc_compare_s8", header="tc_eltwise_ext.h", params=CompareParams, golden=compare_s8,
        args=("in", "in", "out"), sources=("tc_compare_s8.c",))
declare("tc_where_s8", header="tc_eltwise_ext.h", params=WhereParams, golden=where_s8,
        args=("in", "in", "in", "out"), sources=("tc_where_s8.c",))
