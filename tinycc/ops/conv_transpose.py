"""ConvTranspose: 2-D (and 1-D, lifted to 2-D) transposed convolution, any groups (depthwise
included), strides, dilations, pads, output_padding / output_shape / auto_pad.

IR inputs: x, w with the Conv convention (OIHW for NCHW / OHWI for NHWC, O = out channels,
I = in channels / group: the importer regroups ONNX's [C_in, O/group, kH, kW]), bias ('' if
none). Attrs: kernel, strides, dilations, pad_begin (top, left), out_hw (the output size, which
output_padding and output_shape decide), group, layout, act. Input pixel (y, x) with tap
(ky, kx) lands on output (y*sh + ky*dh - top, x*sw + kx*dw - left) where that is inside.

int8 (TFLite Micro TRANSPOSE_CONV, reference_integer_ops/transpose_conv.h, per channel; TFLM has
no groups or dilations, the sums per output are the same): ConvTransposeParams mirrors
tc_conv_transpose_params (runtime_c/tc_matmul.h), conv_transpose_s8 is the bit-exact mirror of
tc_conv_transpose_s8, whose int32 accumulator plane is planned scratch (declare scratch_bytes).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

import numpy as np

from ..golden.checks import as_shape
from ..golden.spatial import add_bias_checked, as_hwc, check_quant, requantize_channels
from ..kernels import declare
from ..program import Arg
from ..quant.params import act_range
from ..quant.weights import requant_arrays
from .common import bad_input, ints, unsupported
from .conv import ConvWindow, check_groups, check_window_geometry
from .registry import LayoutClass, OpDef, apply_act, onnx_importer, register


def _scatter(x: np.ndarray, w: np.ndarray, strides, dilations, pad_begin, out_hw, group: int) -> np.ndarray:
    """sum over taps of x scattered by w: x [n][group][ig][h][w] (any numeric dtype), w
    [group][og][ig][kh][kw]; returns [n][group*og][out_h][out_w] in x's dtype."""
    n, _, ig, h, wd = x.shape
    _, og, _, kh, kw = w.shape
    (sh, sw), (dh, dw), (pt, pl), (oh, ow) = strides, dilations, pad_begin, out_hw
    full_h, full_w = (h - 1) * sh + (kh - 1) * dh + 1, (wd - 1) * sw + (kw - 1) * dw + 1
    canvas = np.zeros((n, group, og, max(full_h, pt + oh), max(full_w, pl + ow)), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            canvas[:, :, :, i * dh: i * dh + (h - 1) * sh + 1: sh, j * dw: j * dw + (wd - 1) * sw + 1: sw] += \
                np.einsum("ngchw,goc->ngohw", x, w[:, :, :, i, j])
    return canvas[:, :, :, pt: pt + oh, pl: pl + ow].reshape(n, group * og, oh, ow)


def conv_transpose_nchw(x, w, b, strides, dilations, pad_begin, out_hw, group) -> np.ndarray:
    """Float reference in float64: NCHW input, OIHW weights (I = in channels / group)."""
    n, c, h, wd = x.shape
    o, ig, kh, kw = w.shape
    xg = x.astype(np.float64).reshape(n, group, ig, h, wd)
    wg = w.astype(np.float64).reshape(group, o // group, ig, kh, kw)
    y = _scatter(xg, wg, strides, dilations, pad_begin, out_hw, group)
    if b is not None:
        y = y + b.astype(np.float64).reshape(1, -1, 1, 1)
    return y


@register
class ConvTranspose(OpDef):
    name = "ConvTranspose"
    layout_class = LayoutClass.SPATIAL
    fuses_activation = True

    def infer(self, g, node):
        x = g.tensors[node.inputs[0]]
        out_c = g.tensors[node.inputs[1]].shape[0]
        oh, ow = node.attrs["out_hw"]
        return [((x.shape[0], oh, ow, out_c) if node.attrs["layout"] == "NHWC" else (x.shape[0], out_c, oh, ow),
                 x.dtype)]

    def run_float(self, node, xs):
        x, w, b = xs[0], xs[1], xs[2] if len(xs) > 2 else None
        a = node.attrs
        nhwc = a["layout"] == "NHWC"
        if nhwc:
            x, w = x.transpose(0, 3, 1, 2), w.transpose(0, 3, 1, 2)
        y = conv_transpose_nchw(x, w, b, a["strides"], a["dilations"], a["pad_begin"], a["out_hw"], a["group"])
        if nhwc:
            y = y.transpose(0, 2, 3, 1)
        return [apply_act(y.astype(np.float32), a.get("act"))]

    def macs(self, g, node):
        x = g.tensors[node.inputs[0]]
        w = g.tensors[node.inputs[1]]
        return x.size // x.shape[0] * w.shape[0] // node.attrs["group"] * int(np.prod(node.attrs["kernel"]))

    def to_nhwc(self, g, node):
        w = g.tensors[node.inputs[1]].data
        g.rewrite_const_input(node, 1, w.transpose(0, 2, 3, 1), "w_ohwi", {0: 0, 1: 3, 2: 1, 3: 2})
        node.attrs["layout"] = "NHWC"

    def bias_axis(self, g, node):
        return 1 if node.attrs["layout"] == "NCHW" else 3

    def layer_class(self, step):
        return "conv"

    def lower_int8(self, lc, node):
        x, y = node.inputs[0], node.outputs[0]
        a = node.attrs
        ih, iw, ic = lc.hwc(x)
        oh, ow, oc = lc.hwc(y)
        s_in, zp_in = lc.qp(x)
        s_out, zp_out = lc.qp(y)
        enc = lc.weights(node, s_in)  # OHWI codes, per-channel scales, int32 bias
        mult, shift = requant_arrays(s_in, enc.qp.scale, s_out, oc)
        act_min, act_max = act_range(a.get("act"), lc.tensor(y).quant)
        (kh, kw), (sh, sw), (dh, dw), (pt, pl) = a["kernel"], a["strides"], a["dilations"], a["pad_begin"]
        p = ConvTransposeParams(in_h=ih, in_w=iw, in_c=ic, out_h=oh, out_w=ow, out_c=oc, k_h=kh, k_w=kw, stride_h=sh,
                                stride_w=sw, dil_h=dh, dil_w=dw, pad_top=pt, pad_left=pl, groups=a["group"],
                                in_zp=zp_in, out_zp=zp_out, act_min=act_min, act_max=act_max)
        args = [Arg("in", x), Arg("const", lc.blob(np.ascontiguousarray(enc.q), node, "w")),
                Arg("const", lc.blob(enc.bias, node, "bias")), Arg("const", lc.blob(mult, node, "mult")),
                Arg("const", lc.blob(shift, node, "shift")),
                Arg("scratch", "", conv_transpose_scratch_bytes(p)), Arg("out", y)]
        lc.add_step(node, "tc_conv_transpose_s8", p, args,
                    lambda xv, w, b, m, s: conv_transpose_s8(p, xv.reshape(ih, iw, ic), w, b, m, s),
                    macs=self.macs(lc.g, node))


def _attr_str(attrs, key, default):
    v = attrs.get(key, default)
    return v.decode() if isinstance(v, bytes) else v


def transpose_conv_geometry(onode, attrs, in_sizes, k, strides, dil) -> tuple[list[int], list[int]]:
    """(begin pads, output sizes) per spatial axis from ONNX pads / output_padding /
    output_shape / auto_pad (the ConvTranspose spec's total_padding rule)."""
    spatial = len(in_sizes)
    out_pad = [int(v) for v in attrs.get("output_padding", [0] * spatial)]
    if len(out_pad) != spatial or min(out_pad) < 0:
        raise bad_input(onode, f"output_padding={out_pad} ({spatial} values >= 0)")
    full = [s * (n - 1) + op + (kk - 1) * d + 1 for n, kk, s, d, op in zip(in_sizes, k, strides, dil, out_pad)]
    auto_pad = _attr_str(attrs, "auto_pad", "NOTSET") or "NOTSET"
    if auto_pad not in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
        raise unsupported(onode, f"auto_pad={auto_pad!r}")
    if "output_shape" in attrs or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        if "output_shape" in attrs:
            out = [int(v) for v in attrs["output_shape"]][-spatial:]
        else:
            out = [n * s for n, s in zip(in_sizes, strides)]
        total = [f - o for f, o in zip(full, out)]
        if auto_pad == "SAME_UPPER":
            begin = [t // 2 for t in total]
        else:
            begin = [t - t // 2 for t in total]
    elif auto_pad == "VALID":
        begin, out = [0] * spatial, full
    else:
        pads = [int(v) for v in attrs.get("pads", [0] * 2 * spatial)]
        if len(pads) != 2 * spatial or min(pads) < 0:
            raise bad_input(onode, f"pads={pads} ({2 * spatial} values >= 0)")
        begin = pads[:spatial]
        out = [f - pb - pe for f, pb, pe in zip(full, pads[:spatial], pads[spatial:])]
    if min(out) < 1:
        raise bad_input(onode, f"the output would have size {out}")
    if min(begin) < 0:
        raise unsupported(onode, f"output_shape {out} larger than the full transposed convolution {full} "
                                 "at its start (negative begin padding)")
    return begin, out


@onnx_importer("ConvTranspose", revisions={22: {}})  # 22: bfloat16 admitted
def import_conv_transpose(ctx, onode, attrs):
    x, w = onode.input[0], onode.input[1]
    b = onode.input[2] if len(onode.input) > 2 else ""
    wdata = ctx.require_const(onode, w, "the weight")
    shape = ctx.shape(x)
    rank = len(shape)
    if rank not in (3, 4):
        raise unsupported(onode, f"{rank - 2}-D transposed convolution (1-D and 2-D are supported)")
    if wdata.ndim != rank:
        raise bad_input(onode, f"weight of shape {list(wdata.shape)} for an input of rank {rank}")
    group = int(attrs.get("group", 1))
    in_c = shape[1]
    if group < 1 or in_c % group or wdata.shape[0] != in_c:
        raise bad_input(onode, f"group={group} and weight {list(wdata.shape)} do not fit {in_c} input channels")
    spatial = rank - 2
    k = tuple(int(v) for v in attrs.get("kernel_shape", wdata.shape[2:]))
    strides = tuple(int(v) for v in attrs.get("strides", [1] * spatial))
    dil = tuple(int(v) for v in attrs.get("dilations", [1] * spatial))
    for name, values in (("kernel_shape", k), ("strides", strides), ("dilations", dil)):
        if len(values) != spatial or min(values) < 1:
            raise bad_input(onode, f"{name}={list(values)} ({spatial} values of at least 1)")
    if k != tuple(wdata.shape[2:]):
        raise unsupported(onode, f"kernel_shape {k} does not match the weight shape {wdata.shape}")
    out_c = wdata.shape[1] * group
    if b and ctx.require_const(onode, b, "the bias").shape != (out_c,):
        raise bad_input(onode, f"bias of shape {list(ctx.const(b).shape)} for {out_c} output channels")
    begin, out = transpose_conv_geometry(onode, attrs, shape[2:], k, strides, dil)
    # ONNX [C_in, O/group, k...] -> [O, C_in/group, k...] (output channels first, like Conv)
    ig, og = in_c // group, wdata.shape[1]
    wr = wdata.reshape(group, ig, og, *k).swapaxes(1, 2).reshape(out_c, ig, *k)
    if spatial == 1:  # lift to 2-D with H = 1
        k, strides, dil, begin, out = (1,) + k, (1,) + strides, (1,) + dil, [0] + begin, [1] + out
        wr = wr.reshape(out_c, ig, 1, k[1])
        x = ctx.add("Reshape", [x], None, onode, "to2d", shape=(shape[0], in_c, 1, shape[2]))[0]
    wq = ctx.graph.tensors[w].quant
    if group > 1 and wq is not None and wq.axis is not None:
        raise unsupported(onode, f"per-axis quantized weights with group={group}")
    wname = ctx.derive_const(w, np.ascontiguousarray(wr), "w_oihw", {0: 1, 1: 0, 2: 2, 3: 3})
    outs = [onode.output[0]] if spatial == 2 else None
    y = ctx.add("ConvTranspose", [x, wname, b], outs, onode, kernel=ints(k), strides=ints(strides),
                dilations=ints(dil), pad_begin=ints(begin), out_hw=ints(out), group=group, layout="NCHW", act=None)[0]
    if spatial == 1:
        ctx.add("Reshape", [y], [onode.output[0]], onode, "to1d", shape=(shape[0], out_c, out[1]))


# ---- integer reference (runtime_c/tc_conv_transpose_s8.c) -----------------------------------------
@dataclass(frozen=True)
class ConvTransposeParams(ConvWindow):
    """tc_conv_transpose_params: NHWC input, OHWI weights [out_c][k_h][k_w][in_c / groups]."""

    C_STRUCT: ClassVar[str] = "tc_conv_transpose_params"
    groups: int
    in_zp: int
    out_zp: int
    act_min: int
    act_max: int

    def validate(self) -> None:
        check_window_geometry(self)
        check_groups(self)
        check_quant(self.in_zp, self.out_zp, self.act_min, self.act_max)


def conv_transpose_scratch_bytes(p: ConvTransposeParams) -> int:
    """tc_conv_transpose_s8_scratch_size: the int32 accumulator plane."""
    return 4 * p.out_h * p.out_w * p.out_c


def conv_transpose_acc(p: ConvTransposeParams, x, w, bias: Optional[np.ndarray] = None) -> np.ndarray:
    """int64 accumulators [out_h][out_w][out_c] of tc_conv_transpose_s8 (bias included)."""
    p.validate()
    ig, og = p.in_c // p.groups, p.out_c // p.groups
    xv = as_hwc(x, p.in_h, p.in_w, p.in_c, "input").astype(np.int64) - p.in_zp
    wv = as_shape(w, (p.out_c, p.k_h, p.k_w, ig), "weights").astype(np.int64)
    xg = xv.transpose(2, 0, 1).reshape(1, p.groups, ig, p.in_h, p.in_w)
    wg = wv.transpose(0, 3, 1, 2).reshape(p.groups, og, ig, p.k_h, p.k_w)
    acc = _scatter(xg, wg, (p.stride_h, p.stride_w), (p.dil_h, p.dil_w), (p.pad_top, p.pad_left),
                   (p.out_h, p.out_w), p.groups)[0].transpose(1, 2, 0)
    return add_bias_checked(acc, bias, p.out_c)


def conv_transpose_s8(p: ConvTransposeParams, x, w, bias, mult, shift) -> np.ndarray:
    """Mirror of tc_conv_transpose_s8: int8 [out_h][out_w][out_c]."""
    return requantize_channels(conv_transpose_acc(p, x, w, bias), p, mult, shift, p.out_c)


# ---- C kernels (tinycc/kernels.py) ---------------------------------------------------------------
declare("tc_conv_transpose_s8", header="tc_matmul.h", params=ConvTransposeParams, golden=conv_transpose_s8,
        args=("in", "const", "const", "const", "const", "scratch", "out"), sources=("tc_conv_transpose_s8.c",),
        scratch_bytes=conv_transpose_scratch_bytes)
