"""Dense (fully connected, from Gemm or MatMul with a constant right side) and MatMul.

Dense: y[..., o] = sum_i x[..., i] * w[o, i] + b[o]; inputs x, w [out, in], bias ('' if none).
MatMul of two activations: ops/matmul.py.

int8 Dense (TFLite Micro FULLY_CONNECTED, per channel): FcParams mirrors tc_fc_params, fc_s8 is
the bit-exact reference of tc_fc_s8 (fc_acc: its int64 accumulators).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

import numpy as np

from ..golden.arith import requantize_to_int8
from ..golden.checks import as_shape, require
from ..golden.spatial import add_bias_checked, check_quant, check_requant_arrays, requantize_channels
from ..kernels import DSP, Variant, declare
from ..program import Arg
from ..quant.params import act_range
from ..quant.codebook import decode_codebook, tile_channels
from ..quant.weights import requant_arrays
from .common import bad_input, unsupported
from .registry import LayoutClass, OpDef, apply_act, onnx_importer, register


@register
class Dense(OpDef):
    name = "Dense"
    layout_class = LayoutClass.LOGICAL
    fuses_activation = True

    def infer(self, g, node):
        x = g.tensors[node.inputs[0]]
        w = g.tensors[node.inputs[1]]
        if x.shape[-1] != w.shape[1]:
            from ..ir import IRError

            raise IRError(f"Dense {node.name!r}: input features {x.shape[-1]} != weight {w.shape}")
        return [(tuple(x.shape[:-1]) + (w.shape[0],), x.dtype)]

    def run_float(self, node, xs):
        x, w = xs[0].astype(np.float64), xs[1].astype(np.float64)
        y = x @ w.T
        if len(xs) > 2 and xs[2] is not None:
            y = y + xs[2].astype(np.float64)
        return [apply_act(y.astype(np.float32), node.attrs.get("act"))]

    def macs(self, g, node):
        x = g.tensors[node.inputs[0]]
        w = g.tensors[node.inputs[1]]
        return int(np.prod(x.shape[:-1])) * w.shape[0] * w.shape[1]

    def bias_axis(self, g, node):
        return len(g.tensors[node.outputs[0]].shape) - 1

    def layer_class(self, step):
        return "fc"

    def lower_int8(self, lc, node):
        x, y = node.inputs[0], node.outputs[0]
        xt = lc.tensor(x)
        rows = int(np.prod(xt.shape[:-1]))
        in_f = xt.shape[-1]
        s_in, zp_in = lc.qp(x)
        s_out, zp_out = lc.qp(y)
        enc = lc.weights(node, s_in)
        wq, bias = enc.q, enc.bias
        out_f = wq.shape[0]
        mult, shift = requant_arrays(s_in, enc.qp.scale, s_out, out_f)
        per_channel = int(np.any(mult != mult[0]) or np.any(shift != shift[0]))
        if not per_channel:  # one multiplier for the layer (per-tensor weights): 8 B/channel of flash
            mult, shift = mult[:1], shift[:1]
        act_min, act_max = act_range(node.attrs.get("act"), lc.tensor(y).quant)
        if enc.codebook is not None:
            cb = enc.codebook
            p = FcCbParams(rows=rows, in_features=in_f, out_features=out_f, in_zp=zp_in, out_zp=zp_out,
                           act_min=act_min, act_max=act_max, per_channel=per_channel, bits=cb.bits,
                           palette_oc=cb.palette_oc, tile_oc=tile_channels(out_f, in_f))
            args = [Arg("in", x), Arg("const", lc.blob(cb.indices, node, "windex")),
                    Arg("const", lc.blob(cb.palette, node, "wpalette")), Arg("const", lc.blob(bias, node, "bias")),
                    Arg("const", lc.blob(mult, node, "mult")), Arg("const", lc.blob(shift, node, "shift")),
                    Arg("scratch", "", fc_cb_scratch_bytes(p)), Arg("out", y)]
            lc.add_step(node, "tc_fc_cb_s8", p, args,
                        lambda xv, i, pal, b, m, s: fc_cb_s8(p, xv.reshape(rows, in_f), i, pal, b, m, s),
                        macs=self.macs(lc.g, node), note=f"codebook {cb.bits}-bit ({cb.method})")
            return
        p = FcParams(rows=rows, in_features=in_f, out_features=out_f, in_zp=zp_in, out_zp=zp_out,
                     act_min=act_min, act_max=act_max, per_channel=per_channel)
        args = [Arg("in", x), Arg("const", lc.blob(np.ascontiguousarray(wq), node, "w")),
                Arg("const", lc.blob(bias, node, "bias")), Arg("const", lc.blob(mult, node, "mult")),
                Arg("const", lc.blob(shift, node, "shift")), Arg("out", y)]
        lc.add_step(node, "tc_fc_s8", p, args,
                    lambda xv, w, b, m, s: fc_s8(p, xv.reshape(rows, in_f), w, b, m, s), macs=self.macs(lc.g, node))


def _gemm_operand(ctx, onode, name: str, transpose: bool, hint: str) -> str:
    """A Gemm operand as written (transposed by a Transpose node, or a transposed constant)."""
    if not transpose:
        return name
    data = ctx.const(name)
    if data is not None:
        return ctx.derive_const(name, np.ascontiguousarray(data.T), hint, {0: 1, 1: 0})
    return ctx.add("Transpose", [name], None, onode, hint, perm=(1, 0))[0]


def _gemm_tail(ctx, onode, y: str, alpha: float, c: str, beta: float, out_shape) -> None:
    """y * alpha + beta * C, written to the node's output (Mul / Add only where needed)."""
    if alpha != 1.0:
        y = ctx.add("Mul", [y, ctx.add_const(np.array(alpha, np.float32), "alpha")], None, onode, "alpha", act=None)[0]
    if c:
        cdata = ctx.const(c)
        if cdata is not None:
            term = ctx.add_const((cdata * np.float32(beta)).astype(np.float32), "beta_c") if beta != 1.0 else c
        else:
            term = c if beta == 1.0 else ctx.add("Mul", [c, ctx.add_const(np.array(beta, np.float32), "beta")],
                                                   None, onode, "beta", act=None)[0]
        y = ctx.add("Add", [y, term], None, onode, "bias", act=None)[0]
    ctx.add("Reshape", [y], [onode.output[0]], onode, "out", shape=tuple(out_shape))


@onnx_importer("Gemm")
def import_gemm(ctx, onode, attrs):
    """Y = alpha * A' B' + beta * C (A', B': A, B transposed by transA / transB). A constant B
    is a Dense layer (with C folded into its bias where C is per output column); an activation
    B a MatMul of two activations; a matrix C (or an activation C) an Add after it."""
    a, b = onode.input[0], onode.input[1]
    c = onode.input[2] if len(onode.input) > 2 else ""
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    trans_a, trans_b = bool(attrs.get("transA", 0)), bool(attrs.get("transB", 0))
    a_shape, b_shape = ctx.shape(a), ctx.shape(b)
    if len(a_shape) != 2 or len(b_shape) != 2:
        raise bad_input(onode, f"A {list(a_shape)} and B {list(b_shape)} must be 2-D")
    rows = a_shape[1] if trans_a else a_shape[0]
    inner = a_shape[0] if trans_a else a_shape[1]
    cols = b_shape[0] if trans_b else b_shape[1]
    if (b_shape[1] if trans_b else b_shape[0]) != inner:
        raise bad_input(onode, f"A {list(a_shape)} (transA={int(trans_a)}) and B {list(b_shape)} "
                               f"(transB={int(trans_b)}) do not multiply")
    if c:
        c_shape = tuple(ctx.shape(c))
        padded = (1,) * (2 - len(c_shape)) + c_shape
        if len(c_shape) > 2 or any(d not in (1, full) for d, full in zip(padded, (rows, cols))):
            raise bad_input(onode, f"C of shape {list(c_shape)} does not broadcast to the output [{rows}, {cols}]")
    a = _gemm_operand(ctx, onode, a, trans_a, "a_t")
    bdata = ctx.const(b)
    if bdata is None:  # two activations
        y = ctx.add("MatMul", [a, _gemm_operand(ctx, onode, b, trans_b, "b_t")], None, onode, "matmul", act=None)[0]
        _gemm_tail(ctx, onode, y, alpha, c, beta, (rows, cols))
        return
    prequantized = ctx.graph.tensors[b].quant is not None
    if prequantized and alpha != 1.0:
        raise unsupported(onode, "alpha != 1 on pre-quantized weights")
    w = (bdata if trans_b else bdata.T) * (1.0 if prequantized else np.float32(alpha))
    out_features = w.shape[0]
    cdata = ctx.const(c) if c else None
    per_column = cdata is not None and cdata.size in (1, out_features) and (cdata.ndim < 2 or cdata.shape[0] == 1)
    bias = ""
    if per_column:
        if ctx.graph.tensors[c].quant is not None and beta == 1.0 and cdata.shape == (out_features,):
            bias = c
        else:
            bias = ctx.add_const(np.broadcast_to(cdata.reshape(-1) * np.float32(beta), (out_features,)).astype(np.float32), "bias")
    wname = ctx.derive_const(b, np.ascontiguousarray(w, dtype=bdata.dtype), "weight", None if trans_b else {0: 1, 1: 0})
    if not c or per_column:
        ctx.add("Dense", [a, wname, bias], [onode.output[0]], onode, act=None)
        return
    y = ctx.add("Dense", [a, wname, ""], None, onode, "dense", act=None)[0]  # matrix (M x N or M x 1) bias
    _gemm_tail(ctx, onode, y, 1.0, c, beta, (rows, cols))


@onnx_importer("MatMul")
def import_matmul(ctx, onode, attrs):
    a, b = onode.input
    bdata = ctx.const(b)
    if bdata is not None and bdata.ndim == 2 and len(ctx.shape(a)) >= 1:
        if len(ctx.shape(a)) == 1:
            raise unsupported(onode, "MatMul with a 1-D left operand")
        wname = ctx.derive_const(b, np.ascontiguousarray(bdata.T), "weight", {0: 1, 1: 0})
        ctx.add("Dense", [a, wname, ""], [onode.output[0]], onode, act=None)
        return
    ctx.add("MatMul", [a, b], [onode.output[0]], onode)


# ---- integer reference (runtime_c/tc_fc_s8.c) ---------------------------------------------------
@dataclass(frozen=True)
class FcParams:
    """tc_fc_params: input [rows][in_features], weights [out_features][in_features]."""

    C_STRUCT: ClassVar[str] = "tc_fc_params"
    rows: int
    in_features: int
    out_features: int
    in_zp: int
    out_zp: int
    act_min: int
    act_max: int
    per_channel: int = 1  # 0: one (mult, shift) for the whole layer

    def validate(self) -> None:
        require(min(self.rows, self.in_features, self.out_features) >= 1,
                "rows, in_features and out_features must be >= 1")
        check_quant(self.in_zp, self.out_zp, self.act_min, self.act_max)


def fc_acc(p: FcParams, x, w, bias: Optional[np.ndarray] = None) -> np.ndarray:
    """int64 accumulators [rows][out_features] of tc_fc_s8 (bias included)."""
    p.validate()
    x = as_shape(x, (p.rows, p.in_features), "input").astype(np.int64) - p.in_zp
    w = as_shape(w, (p.out_features, p.in_features), "weights").astype(np.int64)
    return add_bias_checked(x @ w.T, bias, p.out_features)


def fc_s8(p: FcParams, x, w, bias, mult, shift) -> np.ndarray:
    """Mirror of tc_fc_s8: int8 [rows][out_features]."""
    if p.per_channel:
        return requantize_channels(fc_acc(p, x, w, bias), p, mult, shift, p.out_features)
    mult, shift = check_requant_arrays(mult, shift, 1)
    return requantize_to_int8(fc_acc(p, x, w, bias), mult[0], shift[0], p.out_zp, p.act_min, p.act_max)


@dataclass(frozen=True)
class FcCbParams(FcParams):
    """tc_fc_cb_params: tc_fc_params, then the codebook (quant/codebook.py): `bits` per index,
    `palette_oc` output features per palette, `tile_oc` weight rows decoded at a time."""

    C_STRUCT: ClassVar[str] = "tc_fc_cb_params"
    bits: int = 4
    palette_oc: int = 1
    tile_oc: int = 1

    def validate(self) -> None:
        super().validate()
        require(2 <= self.bits <= 6, f"bits={self.bits} must be in 2..6")
        require(self.palette_oc >= 1 and self.out_features % self.palette_oc == 0,
                f"palette_oc={self.palette_oc} must divide out_features={self.out_features}")
        require(1 <= self.tile_oc <= self.out_features, f"tile_oc={self.tile_oc} must be in 1..out_features")


# Mirrors of tc_codebook.h's TC_FC_CB_TABLE_MIN_WEIGHTS and TC_FC_CB_TABLE_BYTES.
FC_CB_TABLE_MIN_WEIGHTS = 4096
FC_CB_TABLE_BYTES = 1024


def fc_cb_uses_table(p: FcCbParams) -> bool:
    """Mirror of tc_fc_cb_uses_table: the DSP path decodes through a 256-word table per palette."""
    return p.bits in (2, 4) and p.in_features >= 4 and p.palette_oc * p.in_features >= FC_CB_TABLE_MIN_WEIGHTS


def fc_cb_scratch_bytes(p: FcCbParams) -> int:
    """Mirror of tc_fc_cb_s8_scratch_size: tile_oc decoded rows, or the decode table if larger."""
    rows = p.tile_oc * p.in_features
    return max(rows, FC_CB_TABLE_BYTES) if fc_cb_uses_table(p) else rows


def fc_cb_s8(p: FcCbParams, x, idx, palette, bias, mult, shift) -> np.ndarray:
    """Mirror of tc_fc_cb_s8: tc_fc_s8 on the decoded weights."""
    p.validate()
    w = decode_codebook(palette, idx, p.bits, p.in_features, p.palette_oc)
    base = FcParams(p.rows, p.in_features, p.out_features, p.in_zp, p.out_zp, p.act_min, p.act_max, p.per_channel)
    return fc_s8(base, x, w, bias, mult, shift)


# ---- C kernels (tinycc/kernels.py) ---------------------------------------------------------------
declare("tc_fc_s8", header="tc_conv.h", params=FcParams, golden=fc_s8,
        args=("in", "const", "const", "const", "const", "out"), sources=("tc_fc_s8.c",))
declare("tc_fc_cb_s8", header="tc_codebook.h", params=FcCbParams, golden=fc_cb_s8,
        args=("in", "const", "const", "const", "const", "const", "scratch", "out"),
        sources=("tc_fc_cb_s8.c", "tc_codebook.c"), variants=(Variant(DSP, ("tc_fc_cb_s8_dsp.c",)),),
        scratch_bytes=fc_cb_scratch_bytes)
