"""Binary element-wise ops with numpy broadcasting: Add, Sub, Mul, Div (attr act: fused clamp).

int8 (TFLite Micro ADD / SUB / MUL, reference_ops add.h / sub.h / mul.h): AddParams / MulParams
mirror tc_add_params / tc_mul_params, make_*_params do the offline float work (TFLM's Prepare),
add_s8 / sub_s8 / mul_s8 are the bit-exact references of runtime_c's tc_add_s8 / tc_sub_s8 /
tc_mul_s8. Shapes are folded into the kernels' 4-D form by broadcast_dims.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import ClassVar, Optional, Sequence

import numpy as np

from ..errors import BadInput
from ..golden.arith import INT32_MAX, mbqm, quantize_multiplier, requantize_to_int8
from ..golden.checks import (Dims4, as_int8, check_act_range, check_dims4, check_requant_pair, checked_scale,
                             is_int8, pad4, require)
from ..kernels import DSP, FAST, Variant, declare
from ..program import Arg
from ..quant.params import act_range
from .common import bad_input, unsupported, unsupported_int8
from .registry import LayoutClass, OpDef, apply_act, onnx_importer, register

_FUNCS = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}


def broadcast_infer(g, node):
    """OpDef.infer of a binary op with numpy broadcasting: the shape both inputs broadcast to."""
    a, b = (g.tensors[t] for t in node.inputs)
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        # importers that decompose an op into an Add (Gemm's C, BatchNorm) reach here with
        # shapes ONNX's checker does not relate: the model is wrong, not tinycc
        raise BadInput(f"{node.op} of node {node.onnx_name or node.name!r}: input shapes "
                       f"{list(a.shape)} and {list(b.shape)} do not broadcast") from None
    return [(tuple(shape), a.dtype)]


class _Binary(OpDef):
    layout_class = LayoutClass.ELEMENTWISE
    fuses_activation = True

    def infer(self, g, node):
        return broadcast_infer(g, node)

    def run_float(self, node, xs):
        y = _FUNCS[self.name](xs[0].astype(np.float32), xs[1].astype(np.float32))
        return [apply_act(np.asarray(y, dtype=np.float32), node.attrs.get("act"))]

    def lower_int8(self, lc, node):
        if self.name == "Div":
            raise unsupported_int8(node, "division by a run-time tensor")
        y = node.outputs[0]
        (a1, s1, z1, sh1), (a2, s2, z2, sh2) = (_operand(lc, node, t) for t in node.inputs)
        s_out, z_out = lc.qp(y)
        out_shape = lc.tensor(y).shape
        lo, hi = act_range(node.attrs.get("act"), lc.tensor(y).quant)
        make, fn, kernel = {"Add": (make_add_params, add_s8, "tc_add_s8"),
                            "Sub": (make_sub_params, sub_s8, "tc_sub_s8"),
                            "Mul": (make_mul_params, mul_s8, "tc_mul_s8")}[self.name]
        try:
            p = make(s1, z1, s2, z2, s_out, z_out, sh1, sh2, out_shape, act_min=lo, act_max=hi)
        except ValueError as exc:
            raise unsupported_int8(node, str(exc)) from None
        acts = [a for a in (a1, a2) if a.kind == "in"]
        same_shape = tuple(k for k, a in enumerate(acts) if tuple(lc.tensor(a.ref).shape) == tuple(out_shape))
        if self.name in ("Add", "Sub") and uses_add_tables(p):
            tables = lc.blob(add_tables(p, 1 if self.name == "Add" else -1), node, "tables")
            # the golden is TFLM's arithmetic (add_s8 / sub_s8), not the tables: the kernel's
            # output is checked against a model that does not share them
            lc.add_step(node, "tc_add_s8_table", p, [Arg("const", tables), a1, a2, Arg("out", y)],
                        lambda _tables, x1, x2: fn(p, x1, x2), inplace_inputs=same_shape)
            return
        lc.add_step(node, kernel, p, [a1, a2, Arg("out", y)], lambda x1, x2: fn(p, x1, x2),
                    inplace_inputs=same_shape)


for _name in _FUNCS:
    # Div has no int8 kernel: a division by a constant becomes a Mul (passes.fold.div_to_mul)
    register(type(_name, (_Binary,), {"name": _name, "fuses_activation": _name != "Div"}))


@onnx_importer("Add", "Sub", "Mul", "Div")
def import_binary(ctx, onode, attrs):
    a, b = onode.input
    for name in (a, b):
        t = ctx.graph.tensors[name]
        if t.dtype not in ("float32", "float64"):
            raise unsupported(onode, f"{t.dtype} operand {name!r} (float tensors expected)")
    ctx.add(onode.op_type, [a, b], [onode.output[0]], onode, act=None)


def _operand(lc, node, name):
    """(argument, scale, zero point, physical shape) of an operand, constants as int8 blobs."""
    if lc.is_const(name):
        blob, s, zp = lc.const_operand(name, node)
        return Arg("const", blob), s, zp, lc.tensor(name).shape
    s, zp = lc.qp(name)
    return Arg("in", name), s, zp, lc.tensor(name).shape


# ---- integer reference (runtime_c/tc_add_s8.c, tc_sub_s8.c, tc_mul_s8.c) -------------------------
ADD_LEFT_SHIFT = 20               # TC_ADD_LEFT_SHIFT
# ADD / SUB layers of at least this many output elements look their operands' rescaling up in
# 2 KB of tables (tc_add_s8_table: on the Cortex-M4 about 12 instructions per element instead of
# 19-23): at 1,024 elements the tables are 2 bytes of flash per element.
ADD_TABLE_MIN_ELEMENTS = 1024


def uses_add_tables(p: "AddParams") -> bool:
    """Whether an ADD / SUB is lowered to tc_add_s8_table (ADD_TABLE_MIN_ELEMENTS)."""
    return int(np.prod(p.out_dims)) >= ADD_TABLE_MIN_ELEMENTS


def _check_broadcast(in1_dims: Dims4, in2_dims: Dims4, out_dims: Dims4) -> None:
    for a, b, o in zip(in1_dims, in2_dims, out_dims):
        require(min(a, b, o) >= 1 and a in (1, o) and b in (1, o),
                f"dims {in1_dims} and {in2_dims} do not broadcast to {out_dims}")


@dataclass(frozen=True)
class AddParams:
    """tc_add_params: ADD and SUB with broadcasting (TFLM fixed-point pipeline, left shift 20)."""

    C_STRUCT: ClassVar[str] = "tc_add_params"
    in1_zp: int
    in1_multiplier: int
    in1_shift: int
    in2_zp: int
    in2_multiplier: int
    in2_shift: int
    out_multiplier: int
    out_shift: int
    out_zp: int
    act_min: int
    act_max: int
    in1_dims: Dims4
    in2_dims: Dims4
    out_dims: Dims4

    def validate(self) -> None:
        _check_binary(self)
        for m, s in ((self.in1_multiplier, self.in1_shift), (self.in2_multiplier, self.in2_shift),
                     (self.out_multiplier, self.out_shift)):
            require(0 <= m <= INT32_MAX and -31 <= s <= 0,
                    f"ADD/SUB multipliers must be below one: (multiplier, shift) = ({m}, {s})")


def _check_binary(p) -> None:
    """Shape and quantization checks shared by ADD/SUB and MUL (tc_eltwise.h)."""
    for d in (p.in1_dims, p.in2_dims, p.out_dims):
        check_dims4(d, "dims")
    _check_broadcast(p.in1_dims, p.in2_dims, p.out_dims)
    require(all(is_int8(z) for z in (p.in1_zp, p.in2_zp, p.out_zp)), "zero points must be in [-128, 127]")
    check_act_range(p.act_min, p.act_max)


@dataclass(frozen=True)
class MulParams:
    """tc_mul_params: MUL with broadcasting. (Its last fields repeat AddParams' because the two C
    structs end alike; a shared base cannot hold trailing fields.)"""

    C_STRUCT: ClassVar[str] = "tc_mul_params"
    in1_zp: int
    in2_zp: int
    out_multiplier: int
    out_shift: int
    out_zp: int
    act_min: int
    act_max: int
    in1_dims: Dims4
    in2_dims: Dims4
    out_dims: Dims4

    def validate(self) -> None:
        _check_binary(self)
        check_requant_pair(self.out_multiplier, self.out_shift)


def broadcast_dims(shape1: Sequence[int], shape2: Sequence[int],
                   out_shape: Optional[Sequence[int]] = None) -> tuple[Dims4, Dims4, Dims4]:
    """Numpy-broadcast two shapes and fold them into the kernels' 4-D form.

    Size-1 output axes are dropped and neighbouring axes along which each input is either
    complete or broadcast in the same way are merged, so equal shapes become one flat axis and
    a squeeze-excite [1,H,W,C] * [1,1,1,C] becomes [1,1,H*W,C] * [1,1,1,C].
    """
    shape1, shape2 = [int(d) for d in shape1], [int(d) for d in shape2]
    if out_shape is None:
        out_shape = np.broadcast_shapes(tuple(shape1), tuple(shape2))
    out_shape = [int(d) for d in out_shape]
    rank = max(len(shape1), len(shape2), len(out_shape))
    a = [1] * (rank - len(shape1)) + shape1
    b = [1] * (rank - len(shape2)) + shape2
    o = [1] * (rank - len(out_shape)) + out_shape
    for da, db, do in zip(a, b, o):
        require(min(da, db, do) >= 1 and da in (1, do) and db in (1, do),
                f"shapes {shape1} and {shape2} do not broadcast to {out_shape}")
    merged: list[list[int]] = []        # [a, b, out] per merged axis
    pattern = None
    for da, db, do in zip(a, b, o):
        if do == 1:
            continue
        kind = (da == do, db == do)
        if kind == pattern:
            merged[-1] = [merged[-1][0] * da, merged[-1][1] * db, merged[-1][2] * do]
        else:
            merged.append([da, db, do])
            pattern = kind
    require(len(merged) <= 4, f"broadcast of {shape1} and {shape2} needs more than 4 axes")
    return (pad4([m[0] for m in merged]), pad4([m[1] for m in merged]),
            pad4([m[2] for m in merged]))


def _quantize_multiplier_smaller_than_one(real: float) -> tuple[int, int]:
    """TFLM QuantizeMultiplierSmallerThanOneExp: 0 < real < 1, shift <= 0."""
    require(0.0 < real < 1.0, f"multiplier must be in (0, 1), got {real!r}")
    mult, shift = quantize_multiplier(real)
    require(shift <= 0, f"multiplier {real!r} rounds up to 1")
    return mult, shift


def _add_sub_params(reals: tuple[float, float, float], zp1: int, zp2: int, zp_out: int,
                    shape1, shape2, out_shape, act_min: int, act_max: int) -> AddParams:
    (m1, s1), (m2, s2), (mo, so) = (_quantize_multiplier_smaller_than_one(r) for r in reals)
    in1_dims, in2_dims, out_dims = broadcast_dims(shape1, shape2, out_shape)
    p = AddParams(in1_zp=int(zp1), in1_multiplier=m1, in1_shift=s1, in2_zp=int(zp2),
                  in2_multiplier=m2, in2_shift=s2, out_multiplier=mo, out_shift=so,
                  out_zp=int(zp_out), act_min=int(act_min), act_max=int(act_max),
                  in1_dims=in1_dims, in2_dims=in2_dims, out_dims=out_dims)
    p.validate()
    return p


def make_add_params(s1: float, zp1: int, s2: float, zp2: int, s_out: float, zp_out: int,
                    shape1: Sequence[int], shape2: Sequence[int],
                    out_shape: Optional[Sequence[int]] = None,
                    act_min: int = -128, act_max: int = 127) -> AddParams:
    """TFLM CalculateOpDataAdd: the real multipliers are computed in double."""
    s1, s2, s_out = checked_scale(s1, "s1"), checked_scale(s2, "s2"), checked_scale(s_out, "s_out")
    twice_max_input_scale = 2.0 * max(s1, s2)
    reals = (s1 / twice_max_input_scale, s2 / twice_max_input_scale,
             twice_max_input_scale / ((1 << ADD_LEFT_SHIFT) * s_out))
    return _add_sub_params(reals, zp1, zp2, zp_out, shape1, shape2, out_shape, act_min, act_max)


def make_sub_params(s1: float, zp1: int, s2: float, zp2: int, s_out: float, zp_out: int,
                    shape1: Sequence[int], shape2: Sequence[int],
                    out_shape: Optional[Sequence[int]] = None,
                    act_min: int = -128, act_max: int = 127) -> AddParams:
    """TFLM CalculateOpDataSub: unlike ADD, the real multipliers are computed in float32."""
    f1, f2, fo = (np.float32(checked_scale(s, n)) for s, n in ((s1, "s1"), (s2, "s2"), (s_out, "s_out")))
    twice_max_input_scale = np.float32(2) * max(f1, f2)
    reals = (float(f1 / twice_max_input_scale), float(f2 / twice_max_input_scale),
             float(twice_max_input_scale / (np.float32(1 << ADD_LEFT_SHIFT) * fo)))
    return _add_sub_params(reals, zp1, zp2, zp_out, shape1, shape2, out_shape, act_min, act_max)


def make_mul_params(s1: float, zp1: int, s2: float, zp2: int, s_out: float, zp_out: int,
                    shape1: Sequence[int], shape2: Sequence[int],
                    out_shape: Optional[Sequence[int]] = None,
                    act_min: int = -128, act_max: int = 127) -> MulParams:
    """TFLM CalculateOpDataMul: real multiplier s1 * s2 / s_out in double."""
    real = checked_scale(s1, "s1") * checked_scale(s2, "s2") / checked_scale(s_out, "s_out")
    mult, shift = quantize_multiplier(real)
    in1_dims, in2_dims, out_dims = broadcast_dims(shape1, shape2, out_shape)
    p = MulParams(in1_zp=int(zp1), in2_zp=int(zp2), out_multiplier=mult, out_shift=shift,
                  out_zp=int(zp_out), act_min=int(act_min), act_max=int(act_max),
                  in1_dims=in1_dims, in2_dims=in2_dims, out_dims=out_dims)
    p.validate()
    return p


def _binary_operands(p, in1, in2) -> tuple[np.ndarray, np.ndarray]:
    a = as_int8(in1, int(np.prod(p.in1_dims)), "in1").reshape(p.in1_dims).astype(np.int64)
    b = as_int8(in2, int(np.prod(p.in2_dims)), "in2").reshape(p.in2_dims).astype(np.int64)
    return a, b


def _add_or_sub(p: AddParams, in1, in2, sign2: int) -> np.ndarray:
    p.validate()
    a, b = _binary_operands(p, in1, in2)
    ra = mbqm((a - p.in1_zp) << ADD_LEFT_SHIFT, p.in1_multiplier, p.in1_shift)
    rb = mbqm((b - p.in2_zp) << ADD_LEFT_SHIFT, p.in2_multiplier, p.in2_shift)
    raw = np.broadcast_to(ra + sign2 * rb, p.out_dims)
    return requantize_to_int8(raw, p.out_multiplier, p.out_shift, p.out_zp, p.act_min, p.act_max)


def add_s8(p: AddParams, in1, in2) -> np.ndarray:
    """Returns the output as an array of shape p.out_dims."""
    return _add_or_sub(p, in1, in2, 1)


def sub_s8(p: AddParams, in1, in2) -> np.ndarray:
    """in1 - in2; returns an array of shape p.out_dims."""
    return _add_or_sub(p, in1, in2, -1)


def add_tables(p: AddParams, sign2: int = 1) -> np.ndarray:
    """tc_add_s8_table's 512 int32: each operand's rescaling MBQM((x - zp) << 20, ...) for x =
    -128..127, doubled (the DSP variant requantizes the doubled sum with one SMMLAR), in1's then
    in2's times sign2 (-1: SUB)."""
    p.validate()
    x = np.arange(-128, 128, dtype=np.int64)
    ra = mbqm((x - p.in1_zp) << ADD_LEFT_SHIFT, p.in1_multiplier, p.in1_shift)
    rb = mbqm((x - p.in2_zp) << ADD_LEFT_SHIFT, p.in2_multiplier, p.in2_shift)
    return np.concatenate([2 * ra, 2 * sign2 * rb]).astype(np.int32)


def add_table_s8(p: AddParams, tables, in1, in2) -> np.ndarray:
    """tc_add_s8_table: the output from the looked-up operands (ADD or SUB, as the tables were
    built); equal to add_s8 / sub_s8 with tables = add_tables(p, +1 / -1)."""
    p.validate()
    t = np.asarray(tables, dtype=np.int64).reshape(-1)
    require(t.size == 512 and not (t % 2).any(), "tables must be 512 doubled (even) values")
    a, b = _binary_operands(p, in1, in2)
    raw = np.broadcast_to((t[a + 128] + t[256 + b + 128]) // 2, p.out_dims)
    return requantize_to_int8(raw, p.out_multiplier, p.out_shift, p.out_zp, p.act_min, p.act_max)


def mul_s8(p: MulParams, in1, in2) -> np.ndarray:
    """Returns the output as an array of shape p.out_dims."""
    p.validate()
    a, b = _binary_operands(p, in1, in2)
    acc = np.broadcast_to((a - p.in1_zp) * (b - p.in2_zp), p.out_dims)
    return requantize_to_int8(acc, p.out_multiplier, p.out_shift, p.out_zp, p.act_min, p.act_max)


# ---- C kernels (tinycc/kernels.py): the runtime_c functions this module lowers to ------------
_ADD_VARIANTS = (Variant(DSP, ("tc_add_s8_dsp.c",)), Variant(FAST, ("tc_add_s8_fast.c",), "TC_FAST_PORTABLE"))
declare("tc_add_s8", header="tc_eltwise.h", params=AddParams, golden=add_s8,
        args=("in", "in", "out"), sources=("tc_add_s8.c",), variants=_ADD_VARIANTS)
declare("tc_sub_s8", header="tc_eltwise.h", params=AddParams, golden=sub_s8,
        args=("in", "in", "out"), sources=("tc_add_s8.c",), variants=_ADD_VARIANTS)
declare("tc_add_s8_table", header="tc_eltwise.h", params=AddParams, golden=add_table_s8,
        args=("const", "in", "in", "out"), sources=("tc_add_s8_table.c",),
        variants=_ADD_VARIANTS)
declare("tc_mul_s8", header="tc_eltwise.h", params=MulParams, golden=mul_s8,
        args=("in", "in", "out"), sources=("tc_mul_s8.c",), variants=(Variant(DSP, ("tc_mul_s8_dsp.c",)),))


# ---- PRelu, Max / Min, Sum (issue 14 part A) -------------------------------------------------------
# PRelu follows TFLM PRELU (two multipliers); Max / Min rescale both inputs to the output
# quantization and compare (TFLM MAXIMUM / MINIMUM compare raw int8 values, which this is when the
# quantizations agree); n-ary Max / Min / Sum import as chains of binary nodes.
def prelu(x, slope):
    """x for x >= 0, x * slope below (ONNX PRelu, slope broadcast to x)."""
    return np.where(x >= 0, x, x * slope)


def _float_operands(ctx, onode, names):
    for name in names:
        t = ctx.graph.tensors[name]
        if t.dtype not in ("float32", "float64"):
            raise unsupported(onode, f"{t.dtype} operand {name!r} (float tensors expected)")


@register
class PRelu(OpDef):
    name = "PRelu"
    layout_class = LayoutClass.ELEMENTWISE

    def infer(self, g, node):
        x = g.tensors[node.inputs[0]]
        return [(tuple(x.shape), x.dtype)]

    def run_float(self, node, xs):
        return [np.asarray(prelu(xs[0].astype(np.float32), xs[1].astype(np.float32)), dtype=np.float32)]

    def lower_int8(self, lc, node):
        x, y = node.inputs[0], node.outputs[0]
        (a1, s1, z1, sh1), (a2, s2, z2, sh2) = (_operand(lc, node, t) for t in node.inputs)
        s_out, z_out = lc.qp(y)
        try:
            p = make_prelu_params(s1, z1, s2, z2, s_out, z_out, sh1, sh2)
        except ValueError as exc:
            raise unsupported_int8(node, str(exc)) from None
        same = (0,) if a1.kind == "in" else ()
        lc.add_step(node, "tc_prelu_s8", p, [a1, a2, Arg("out", y)], lambda xv, av: prelu_s8(p, xv, av),
                    inplace_inputs=same)


class _MinMax(OpDef):
    layout_class = LayoutClass.ELEMENTWISE
    op_code = 0

    def infer(self, g, node):
        return broadcast_infer(g, node)

    def run_float(self, node, xs):
        fn = np.maximum if self.op_code == MINMAX_MAX else np.minimum
        return [np.asarray(fn(xs[0].astype(np.float32), xs[1].astype(np.float32)), dtype=np.float32)]

    def lower_int8(self, lc, node):
        y = node.outputs[0]
        (a1, s1, z1, sh1), (a2, s2, z2, sh2) = (_operand(lc, node, t) for t in node.inputs)
        s_out, z_out = lc.qp(y)
        try:
            p = make_minmax_params(self.op_code, s1, z1, s2, z2, s_out, z_out, sh1, sh2, lc.tensor(y).shape)
        except ValueError as exc:
            raise unsupported_int8(node, str(exc)) from None
        acts = [a for a in (a1, a2) if a.kind == "in"]
        same = tuple(k for k, a in enumerate(acts) if tuple(lc.tensor(a.ref).shape) == tuple(lc.tensor(y).shape))
        lc.add_step(node, "tc_minmax_s8", p, [a1, a2, Arg("out", y)], lambda v1, v2: minmax_s8(p, v1, v2),
                    inplace_inputs=same)


MINMAX_MAX, MINMAX_MIN = 0, 1  # TC_MINMAX_MAX, TC_MINMAX_MIN
register(type("Max", (_MinMax,), {"name": "Max", "op_code": MINMAX_MAX}))
register(type("Min", (_MinMax,), {"name": "Min", "op_code": MINMAX_MIN}))


@onnx_importer("PRelu")
def import_prelu(ctx, onode, attrs):
    x, slope = onode.input
    _float_operands(ctx, onode, (x, slope))
    x_shape, s_shape = ctx.shape(x), ctx.shape(slope)
    try:
        out = np.broadcast_shapes(tuple(x_shape), tuple(s_shape))
    except ValueError:
        out = None
    if out is None or tuple(out) != tuple(x_shape):
        raise bad_input(onode, f"slope of shape {list(s_shape)} does not broadcast to the input's {list(x_shape)}")
    ctx.add("PRelu", [x, slope], [onode.output[0]], onode)


@onnx_importer("Max", "Min", "Sum")
def import_nary(ctx, onode, attrs):
    """n inputs with multidirectional broadcasting: a chain of binary nodes (one input: identity)."""
    names = [t for t in onode.input]
    if not names or not all(names):
        raise bad_input(onode, "every input must be given")
    _float_operands(ctx, onode, names)
    op = {"Max": "Max", "Min": "Min", "Sum": "Add"}[onode.op_type]
    extra = {"act": None} if op == "Add" else {}
    if len(names) == 1:
        ctx.alias(names[0], onode.output[0], onode)
        return
    acc = names[0]
    for k, name in enumerate(names[1:]):
        last = k == len(names) - 2
        acc = ctx.add(op, [acc, name], [onode.output[0]] if last else None, onode, f"{op.lower()}{k}", **extra)[0]


# ---- integer reference (runtime_c/tc_prelu_s8.c, tc_minmax_s8.c) -------------------------------
@dataclass(frozen=True)
class PreluParams:
    """tc_prelu_params (runtime_c/tc_eltwise_ext.h)."""

    C_STRUCT: ClassVar[str] = "tc_prelu_params"
    in_zp: int
    alpha_zp: int
    out_zp: int
    mult_pos: int
    shift_pos: int
    mult_neg: int
    shift_neg: int
    in_dims: Dims4
    alpha_dims: Dims4
    out_dims: Dims4

    def validate(self) -> None:
        for d in (self.in_dims, self.alpha_dims, self.out_dims):
            check_dims4(d, "dims")
        _check_broadcast(self.in_dims, self.alpha_dims, self.out_dims)
        require(all(is_int8(z) for z in (self.in_zp, self.alpha_zp, self.out_zp)), "zero points must be in [-128, 127]")
        check_requant_pair(self.mult_pos, self.shift_pos)
        check_requant_pair(self.mult_neg, self.shift_neg)


def make_prelu_params(s_in: float, zp_in: int, s_alpha: float, zp_alpha: int, s_out: float, zp_out: int,
                      in_shape: Sequence[int], alpha_shape: Sequence[int]) -> PreluParams:
    """TFLM CalculatePreluParams: both real multipliers from the float32 scales in double."""
    s_in, s_alpha, s_out = (checked_scale(s, n) for s, n in ((s_in, "s_in"), (s_alpha, "s_alpha"), (s_out, "s_out")))
    m1, sh1 = quantize_multiplier(s_in / s_out)
    m2, sh2 = quantize_multiplier(s_in * s_alpha / s_out)
    in_dims, alpha_dims, out_dims = broadcast_dims(in_shape, alpha_shape, in_shape)
    p = PreluParams(int(zp_in), int(zp_alpha), int(zp_out), m1, sh1, m2, sh2, in_dims, alpha_dims, out_dims)
    p.validate()
    return p


def prelu_s8(p: PreluParams, x, alpha) -> np.ndarray:
    """Mirror of tc_prelu_s8; returns an array of shape p.out_dims."""
    p.validate()
    v, a = _binary_operands(SimpleNamespace(in1_dims=p.in_dims, in2_dims=p.alpha_dims), x, alpha)
    v = np.broadcast_to(v - p.in_zp, p.out_dims)
    a = np.broadcast_to(a - p.alpha_zp, p.out_dims)
    y = np.where(v >= 0, mbqm(v, p.mult_pos, p.shift_pos), mbqm(v * a, p.mult_neg, p.shift_neg))
    return np.clip(y + p.out_zp, -128, 127).astype(np.int8)


@dataclass(frozen=True)
class MinMaxParams:
    """tc_minmax_params (runtime_c/tc_eltwise_ext.h)."""

    C_STRUCT: ClassVar[str] = "tc_minmax_params"
    op: int
    in1_zp: int
    in1_multiplier: int
    in1_shift: int
    in2_zp: int
    in2_multiplier: int
    in2_shift: int
    out_zp: int
    in1_dims: Dims4
    in2_dims: Dims4
    out_dims: Dims4

    def validate(self) -> None:
        require(self.op in (MINMAX_MAX, MINMAX_MIN), f"op must be {MINMAX_MAX} (max) or {MINMAX_MIN} (min)")
        for d in (self.in1_dims, self.in2_dims, self.out_dims):
            check_dims4(d, "dims")
        _check_broadcast(self.in1_dims, self.in2_dims, self.out_dims)
        require(all(is_int8(z) for z in (self.in1_zp, self.in2_zp, self.out_zp)), "zero points must be in [-128, 127]")
        check_requant_pair(self.in1_multiplier, self.in1_shift)
        check_requant_pair(self.in2_multiplier, self.in2_shift)


def make_minmax_params(op: int, s1: float, zp1: int, s2: float, zp2: int, s_out: float, zp_out: int,
                       shape1: Sequence[int], shape2: Sequence[int],
                       out_shape: Optional[Sequence[int]] = None) -> MinMaxParams:
    """Each input's rescale s_in / s_out in double (exactly (2^30, 1), the identity, when equal)."""
    s1, s2, s_out = (checked_scale(s, n) for s, n in ((s1, "s1"), (s2, "s2"), (s_out, "s_out")))
    m1, sh1 = quantize_multiplier(s1 / s_out)
    m2, sh2 = quantize_multiplier(s2 / s_out)
    in1_dims, in2_dims, out_dims = broadcast_dims(shape1, shape2, out_shape)
    p = MinMaxParams(int(op), int(zp1), m1, sh1, int(zp2), m2, sh2, int(zp_out), in1_dims, in2_dims, out_dims)
    p.validate()
    return p


def minmax_s8(p: MinMaxParams, in1, in2) -> np.ndarray:
    """Mirror of tc_minmax_s8; returns an array of shape p.out_dims."""
    p.validate()
    a, b = _binary_operands(p, in1, in2)
    ra = requantize_to_int8(a - p.in1_zp, p.in1_multiplier, p.in1_shift, p.out_zp).astype(np.int64)
    rb = requantize_to_int8(b - p.in2_zp, p.in2_multiplier, p.in2_shift, p.out_zp).astype(np.int64)
    fn = np.maximum if p.op == MINMAX_MAX else np.minimum
    return fn(np.broadcast_to(ra, p.out_dims), np.broadcast_to(rb, p.out_dims)).astype(np.int8)


declare("tc_prelu_s8", header="tc_eltwise_ext.h", params=PreluParams, golden=prelu_s8,
        args=("in", "in", "out"), sources=("tc_prelu_s8.c",))
declare("tc_minmax_s8", header="tc_eltwise_ext.h", params=MinMaxParams, golden=minmax_s8,
        args=("in", "in", "out"), sources=("tc_minmax_s8.c",))
