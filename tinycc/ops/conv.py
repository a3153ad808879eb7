"""Conv: 2-D convolution (standard, grouped, depthwise), NCHW or NHWC, with fused clamp.

IR inputs: x, w (OIHW for NCHW / OHWI for NHWC, O = out channels, I = in channels / group),
bias ('' if none). Attrs: kernel, strides, dilations, pads (t, l, b, r), group, layout, act.
"""
from __future__ import annotations

import numpy as np

from .common import bad_input, conv_out_size, ints, spatial_pads, unsupported
from .registry import LayoutClass, OpDef, apply_act, onnx_importer, register


def conv2d_nchw(x, w, b, strides, dilations, pads, group):
    """Float reference convolution in float64 on NCHW input / OIHW weights (any groups).

    One tensor contraction per kernel tap, batched over the groups."""
    n, c, h, wd = x.shape
    o, ig, kh, kw = w.shape
    pt, pl, pb, pr = pads
    sh, sw = strides
    dh, dw = dilations
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = conv_out_size(h, kh, sh, dh, pt + pb)
    ow = conv_out_size(wd, kw, sw, dw, pl + pr)
    og = o // group
    xg = xp.reshape(n, group, ig, xp.shape[2], xp.shape[3])
    wg = w.astype(np.float64).reshape(group, og, ig, kh, kw)
    out = np.zeros((n, group, og, oh, ow), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = xg[:, :, :, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw]
            out += np.einsum("ngchw,goc->ngohw", patch, wg[:, :, :, i, j])
    out = out.reshape(n, o, oh, ow)
    if b is not None:
        out += b.astype(np.float64).reshape(1, -1, 1, 1)
    return out


@register
class Conv(OpDef):
    name = "Conv"
    layout_class = LayoutClass.SPATIAL

    def infer(self, g, node):
        x = g.tensors[node.inputs[0]]
        a = node.attrs
        nhwc = a["layout"] == "NHWC"
        n, h, w = (x.shape[0], x.shape[1], x.shape[2]) if nhwc else (x.shape[0], x.shape[2], x.shape[3])
        wt = g.tensors[node.inputs[1]]
        out_c = wt.shape[0]
        kh, kw = a["kernel"]
        pt, pl, pb, pr = a["pads"]
        oh = conv_out_size(h, kh, a["strides"][0], a["dilations"][0], pt + pb)
        ow = conv_out_size(w, kw, a["strides"][1], a["dilations"][1], pl + pr)
        return [((n, oh, ow, out_c) if nhwc else (n, out_c, oh, ow), x.dtype)]

    def run_float(self, node, xs):
        x, w, b = xs[0], xs[1], xs[2] if len(xs) > 2 else None
        a = node.attrs
        if a["layout"] == "NHWC":
            x = x.transpose(0, 3, 1, 2)
            w = w.transpose(0, 3, 1, 2)
        y = conv2d_nchw(x, w, b, a["strides"], a["dilations"], a["pads"], a["group"])
        if a["layout"] == "NHWC":
            y = y.transpose(0, 2, 3, 1)
        return [apply_act(y.astype(np.float32), a.get("act"))]

    def macs(self, g, node):
        out = g.tensors[node.outputs[0]]
        w = g.tensors[node.inputs[1]]
        return out.size * int(np.prod(w.shape[1:]))

    def to_nhwc(self, g, node):
        # a new OHWI constant: the OIHW one may feed other nodes too (shared weights)
        w = g.tensors[node.inputs[1]].data
        g.rewrite_const_input(node, 1, w.transpose(0, 2, 3, 1), "w_ohwi", {0: 0, 1: 3, 2: 1, 3: 2})
        node.attrs["layout"] = "NHWC"

    @staticmethod
    def is_depthwise(g, node) -> bool:
        w = g.tensors[node.inputs[1]]
        in_c = w.shape[1] * node.attrs["group"] if node.attrs["layout"] == "NCHW" else w.shape[3] * node.attrs["group"]
        return node.attrs["group"] == in_c and node.attrs["group"] > 1

    def lower_int8(self, lc, node):
        return _lower_conv_int8(self, lc, node)


@onnx_importer("Conv")
def import_conv(ctx, onode, attrs):
    x, w = onode.input[0], onode.input[1]
    b = onode.input[2] if len(onode.input) > 2 else ""
    wdata = ctx.require_const(onode, w, "the weight")
    rank = len(ctx.shape(x))
    if wdata.ndim != rank:
        raise bad_input(onode, f"weight of shape {list(wdata.shape)} for an input of rank {rank}")
    if b and ctx.require_const(onode, b, "the bias").shape != wdata.shape[:1]:
        raise bad_input(onode, f"bias of shape {list(ctx.const(b).shape)} for {wdata.shape[0]} output channels")
    if rank not in (3, 4):
        raise unsupported(onode, f"{rank - 2}-D convolution (1-D and 2-D are supported)")
    one_d = rank == 3
    k = tuple(attrs.get("kernel_shape", wdata.shape[2:]))
    strides = tuple(attrs.get("strides", [1] * len(k)))
    dil = tuple(attrs.get("dilations", [1] * len(k)))
    spatial = rank - 2
    for name, values in (("kernel_shape", k), ("strides", strides), ("dilations", dil)):
        if len(values) != spatial or min(values) < 1:
            raise bad_input(onode, f"{name}={list(values)} ({spatial} values of at least 1 for a {spatial}-D convolution)")
    if len(attrs.get("pads", [0] * 2 * spatial)) != 2 * spatial:
        raise bad_input(onode, f"pads={list(attrs['pads'])} ({2 * spatial} values for a {spatial}-D convolution)")
    if one_d:  # lift to 2-D with H = 1
        attrs = dict(attrs)
        if "pads" in attrs:
            p = list(attrs["pads"])
            attrs["pads"] = [0, p[0], 0, p[1]]
        k, strides, dil = (1,) + k, (1,) + strides, (1,) + dil
        n, c, length = ctx.shape(x)
        x = ctx.add("Reshape", [x], None, onode, "to2d", shape=(n, c, 1, length))[0]
        w = ctx.derive_const(w, wdata.reshape(wdata.shape[0], wdata.shape[1], 1, wdata.shape[2]), "w2d", {0: 0})
        wdata = ctx.const(w)
    if tuple(wdata.shape[2:]) != k:
        raise unsupported(onode, f"kernel_shape {k} does not match the weight shape {wdata.shape}")
    group = int(attrs.get("group", 1))
    if group < 1:
        raise bad_input(onode, f"group={group} (must be at least 1)")
    in_c = ctx.shape(x)[1]
    if in_c % group or wdata.shape[0] % group or wdata.shape[1] * group != in_c:
        raise unsupported(onode, f"group={group} does not divide channels {in_c} -> {wdata.shape[0]}")
    pads = spatial_pads(onode, attrs, ctx.shape(x)[2:], k, strides, dil)
    outs = [onode.output[0]] if not one_d else None
    y = ctx.add("Conv", [x, w, b], outs, onode, kernel=ints(k), strides=ints(strides), dilations=ints(dil),
                pads=ints(pads), group=group, layout="NCHW", act=None)[0]
    if one_d:
        n, o, _, length = ctx.shape(y)
        ctx.add("Reshape", [y], [onode.output[0]], onode, "to1d", shape=(n, o, length))


# ---- int8 ---------------------------------------------------------------------------------------
def _lower_conv_int8(self, lc, node):
    from ..golden import kernels_conv as K
    from ..lower import requant_arrays
    from ..program import Arg
    from ..quant.params import act_range

    x, y = node.inputs[0], node.outputs[0]
    bname = node.inputs[2] if len(node.inputs) > 2 else ""
    a = node.attrs
    ih, iw, ic = lc.hwc(x)
    oh, ow, oc = lc.hwc(y)
    s_in, zp_in = lc.qp(x)
    s_out, zp_out = lc.qp(y)
    wq, wqp, bias = lc.weights_and_bias(node.inputs[1], bname, s_in)  # OHWI
    mult, shift = requant_arrays(s_in, wqp.scale, s_out, oc)
    act_min, act_max = act_range(a.get("act"), lc.tensor(y).quant)
    (kh, kw), (sh, sw), (dh, dw) = a["kernel"], a["strides"], a["dilations"]
    pt, pl = a["pads"][0], a["pads"][1]
    group = a["group"]
    geometry = dict(in_h=ih, in_w=iw, in_c=ic, out_h=oh, out_w=ow, out_c=oc, k_h=kh, k_w=kw,
                    stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw, pad_top=pt, pad_left=pl)
    quant = dict(in_zp=zp_in, out_zp=zp_out, act_min=act_min, act_max=act_max)
    if group == ic and group > 1:
        p = K.DwConv2dParams(**geometry, depth_mult=oc // ic, **quant)
        wblob = lc.blob(np.ascontiguousarray(wq[:, :, :, 0].transpose(1, 2, 0)), node, "w")
        kernel, fn = "tc_dwconv2d_s8", K.dwconv2d_s8
    else:
        p = K.Conv2dParams(**geometry, groups=group, **quant)
        wblob = lc.blob(np.ascontiguousarray(wq), node, "w")
        kernel, fn = "tc_conv2d_s8", K.conv2d_s8
    args = [Arg("in", x), Arg("const", wblob), Arg("const", lc.blob(bias, node, "bias")),
            Arg("const", lc.blob(mult, node, "mult")), Arg("const", lc.blob(shift, node, "shift")), Arg("out", y)]
    inplace = {}
    if kernel == "tc_dwconv2d_s8" and oc == ic and oh * ow <= ih * iw and ih * iw < oh * ow * oc:
        # TinyEngine-style: one channel plane of scratch instead of a second activation buffer
        inplace = dict(inplace_inputs=(0,), inplace_kernel="tc_dwconv2d_s8_inplace",
                       inplace_args=args[:5] + [Arg("scratch", "", ih * iw)] + args[5:])
    licence = conv2d_overlap_licence(p) if kernel == "tc_conv2d_s8" else dwconv2d_overlap_licence(p)
    lc.add_step(node, kernel, p, args, lambda xv, w, b, m, s: fn(p, xv.reshape(ih, iw, ic), w, b, m, s),
                macs=self.macs(lc.g, node), **licence, **inplace)


# ---- how far an output may overlap its input: what the C kernel that runs really honours ----------
# Every path of runtime_c/tc_conv2d_s8.c and tc_dwconv2d_s8.c that some build (host portable,
# host DSP emulation, Cortex-M DSP) may take for the params must be safe under the licence.
CONV2D_CHUNK = 144  # tc_conv2d_s8.c: windows deeper than this take conv2d_s8_chunked on DSP builds


def conv2d_overlap_licence(p) -> dict:
    """tc_conv2d_s8 writes whole output pixels in row-major order on every path (portable per
    pixel; DSP pixel pairs), so it streams rows. One exception: on DSP builds, windows deeper than
    CONV2D_CHUNK (conv2d_s8_chunked, groups == 1, dil_w == 1) go in pixel pairs that may span a
    row end, and re-read both windows for each block of output channels after writing a block of
    both: the next row's first pixel is written while the row's last window is still read."""
    from ..lower import row_overlap_delta

    dsp_gathered = p.groups == 1 and p.dil_w == 1 and p.k_w * p.in_c >= 4
    chunked = dsp_gathered and p.k_h * p.k_w * p.in_c > CONV2D_CHUNK
    delta = row_overlap_delta(p.in_h, p.in_w, p.in_c, p.out_h, p.out_w, p.out_c, p.stride_h, p.pad_top,
                              lookahead_pixels=1 if chunked else 0)
    return dict(overlap_delta=delta)


def dwconv2d_overlap_licence(p) -> dict:
    """tc_dwconv2d_s8 runs channel by channel (or 4 channels at a time) over all rows on the
    portable and 3x3 paths: output row r of channel c may only overwrite input bytes that no later
    pass reads, i.e. channel c's own, in rows < r*stride - pad. With depth_mult 1 (same pixel
    size) that holds when the output starts a multiple of in_c bytes from the input, below the
    row-streaming bound (the DSP pixel-by-pixel path needs only that bound). With depth_mult > 1
    an output pixel is wider than an input pixel, so the channels drift apart: no overlap."""
    from ..lower import row_overlap_delta

    if p.depth_mult != 1:
        return {}
    delta = row_overlap_delta(p.in_h, p.in_w, p.in_c, p.out_h, p.out_w, p.out_c, p.stride_h, p.pad_top)
    return dict(overlap_delta=delta, overlap_modulus=p.in_c)


# ---- C kernels (tinycc/kernels.py): the runtime_c functions this module lowers to ------------
from ..golden import kernels_conv as _KC  # noqa: E402
from ..kernels import ASM, DSP, Variant, declare  # noqa: E402

_CONV_ARGS = ("in", "const", "const", "const", "const", "out")  # in, w, bias, mult, shift, out
declare("tc_conv2d_s8", header="tc_conv.h", params=_KC.Conv2dParams, args=_CONV_ARGS,
        sources=("tc_conv2d_s8.c",),
        variants=(Variant(DSP, ("tc_conv2d_s8_dsp.c",)), Variant(ASM, ("tc_conv2d_s8_asm.c",), "TC_DSP_ASM")))
declare("tc_dwconv2d_s8", header="tc_conv.h", params=_KC.DwConv2dParams, args=_CONV_ARGS,
        sources=("tc_dwconv2d_s8.c",), inplace="tc_dwconv2d_s8_inplace")
declare("tc_dwconv2d_s8_inplace", header="tc_conv.h", params=_KC.DwConv2dParams,
        args=_CONV_ARGS[:5] + ("scratch", "out"), sources=("tc_dwconv2d_s8.c",),
        scratch_bytes=_KC.dwconv2d_s8_inplace_scratch_size)
