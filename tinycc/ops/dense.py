"""Dense (fully connected, from Gemm or MatMul with a constant right side) and MatMul.

Dense: y[..., o] = sum_i x[..., i] * w[o, i] + b[o]; inputs x, w [out, in], bias ('' if none).
MatMul: numpy matmul of two activations (float path only).
"""
from __future__ import annotations

import numpy as np

from .common import unsupported
from .registry import LayoutClass, OpDef, apply_act, onnx_importer, register


@register
class Dense(OpDef):
    name = "Dense"
    layout_class = LayoutClass.LOGICAL

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

    def lower_int8(self, lc, node):
        return _lower_dense_int8(self, lc, node)


@register
class MatMul(OpDef):
    name = "MatMul"
    layout_class = LayoutClass.LOGICAL

    def infer(self, g, node):
        a, b = (g.tensors[t] for t in node.inputs)
        shape = np.matmul(np.zeros(a.shape, np.float32), np.zeros(b.shape, np.float32)).shape
        return [(tuple(shape), a.dtype)]

    def run_float(self, node, xs):
        return [np.matmul(xs[0].astype(np.float64), xs[1].astype(np.float64)).astype(np.float32)]

    def macs(self, g, node):
        a = g.tensors[node.inputs[0]]
        out = g.tensors[node.outputs[0]]
        return out.size * a.shape[-1]


@onnx_importer("Gemm")
def import_gemm(ctx, onode, attrs):
    a, b = onode.input[0], onode.input[1]
    c = onode.input[2] if len(onode.input) > 2 else ""
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    if attrs.get("transA", 0):
        raise unsupported(onode, "transA=1")
    bdata = ctx.require_const(onode, b, "the weight B")
    prequantized = ctx.graph.tensors[b].quant is not None
    if prequantized and alpha != 1.0:
        raise unsupported(onode, "alpha != 1 on pre-quantized weights")
    trans_b = bool(attrs.get("transB", 0))
    w = (bdata if trans_b else bdata.T) * (1.0 if prequantized else np.float32(alpha))
    out_features = w.shape[0]
    bias = ""
    if c:
        cdata = ctx.require_const(onode, c, "the bias C")
        if cdata.size not in (1, out_features) or (cdata.ndim == 2 and cdata.shape[0] != 1):
            raise unsupported(onode, f"bias of shape {cdata.shape} (per-output bias expected)")
        if ctx.graph.tensors[c].quant is not None and beta == 1.0 and cdata.shape == (out_features,):
            bias = c
        else:
            bias = ctx.add_const(np.broadcast_to(cdata.reshape(-1) * np.float32(beta), (out_features,)).astype(np.float32), "bias")
    wname = ctx.derive_const(b, np.ascontiguousarray(w, dtype=bdata.dtype), "weight", None if trans_b else {0: 1, 1: 0})
    ctx.add("Dense", [a, wname, bias], [onode.output[0]], onode, act=None)


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


# ---- int8 ---------------------------------------------------------------------------------------
def _lower_dense_int8(self, lc, node):
    from ..golden import kernels_conv as K
    from ..lower import requant_arrays
    from ..program import Arg
    from ..quant.params import act_range

    x, y = node.inputs[0], node.outputs[0]
    bname = node.inputs[2] if len(node.inputs) > 2 else ""
    xt = lc.tensor(x)
    rows = int(np.prod(xt.shape[:-1]))
    in_f = xt.shape[-1]
    s_in, zp_in = lc.qp(x)
    s_out, zp_out = lc.qp(y)
    wq, wqp, bias = lc.weights_and_bias(node.inputs[1], bname, s_in)
    out_f = wq.shape[0]
    mult, shift = requant_arrays(s_in, wqp.scale, s_out, out_f)
    per_channel = int(np.any(mult != mult[0]) or np.any(shift != shift[0]))
    if not per_channel:  # one multiplier for the layer (per-tensor weights): 8 B/channel of flash
        mult, shift = mult[:1], shift[:1]
    act_min, act_max = act_range(node.attrs.get("act"), lc.tensor(y).quant)
    p = K.FcParams(rows=rows, in_features=in_f, out_features=out_f, in_zp=zp_in, out_zp=zp_out,
                   act_min=act_min, act_max=act_max, per_channel=per_channel)
    args = [Arg("in", x), Arg("const", lc.blob(np.ascontiguousarray(wq), node, "w")),
            Arg("const", lc.blob(bias, node, "bias")), Arg("const", lc.blob(mult, node, "mult")),
            Arg("const", lc.blob(shift, node, "shift")), Arg("out", y)]
    lc.add_step(node, "tc_fc_s8", p, args,
                lambda xv, w, b, m, s: K.fc_s8(p, xv.reshape(rows, in_f), w, b, m, s), macs=self.macs(lc.g, node))


# ---- C kernels (tinycc/kernels.py): the runtime_c functions this module lowers to ------------
from ..golden import kernels_conv as _KC  # noqa: E402
from ..kernels import declare  # noqa: E402

declare("tc_fc_s8", header="tc_conv.h", params=_KC.FcParams,
        args=("in", "const", "const", "const", "const", "out"), sources=("tc_fc_s8.c",))
