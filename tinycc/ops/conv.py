"""Conv: 2-D convolution (standard, grouped, depthwise), NCHW or NHWC, with fused clamp.

IR inputs: x, w (OIHW for NCHW / OHWI for NHWC, O = out channels, I = in channels / group),
bias ('' if none). Attrs: kernel, strides, dilations, pads (t, l, b, r), group, layout, act.

int8 (TFLite Micro CONV_2D / DEPTHWISE_CONV_2D per channel): Conv2dParams / DwConv2dParams mirror
tc_conv2d_params / tc_dwconv2d_params; conv2d_s8 / dwconv2d_s8 (and the int64 accumulators
*_acc) are the bit-exact references of the portable C kernels, which every DSP / assembly
variant matches. The overlap licences say how far the planner may overlap output and input.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import ClassVar, Optional

import numpy as np

from ..golden.checks import as_shape, require
from ..golden.spatial import add_bias_checked, as_hwc, check_quant, requantize_channels, windows
from ..kernels import ASM, DSP, FAST, PrunableCode, Variant, declare, lookup
from ..program import Arg
from ..quant.params import act_range
from ..quant import ternary
from ..quant.codebook import decode_codebook, tile_channels
from ..quant.weights import TERNARY, requant_arrays
from .common import bad_input, ints, spatial_pads, unsupported
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
    oh = conv_output_size(h, kh, sh, dh, pt, pb)
    ow = conv_output_size(wd, kw, sw, dw, pl, pr)
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
    fuses_activation = True

    def infer(self, g, node):
        x = g.tensors[node.inputs[0]]
        a = node.attrs
        nhwc = a["layout"] == "NHWC"
        n, h, w = (x.shape[0], x.shape[1], x.shape[2]) if nhwc else (x.shape[0], x.shape[2], x.shape[3])
        wt = g.tensors[node.inputs[1]]
        out_c = wt.shape[0]
        kh, kw = a["kernel"]
        pt, pl, pb, pr = a["pads"]
        oh = conv_output_size(h, kh, a["strides"][0], a["dilations"][0], pt, pb)
        ow = conv_output_size(w, kw, a["strides"][1], a["dilations"][1], pl, pr)
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

    def bias_axis(self, g, node):
        return 1 if node.attrs["layout"] == "NCHW" else 3

    def absorb_zero_pad(self, g, node, pads):
        if len(pads) != 8:
            return False
        h_ax, w_ax = (1, 2) if node.attrs["layout"] == "NHWC" else (2, 3)
        if any(pads[i] or pads[i + 4] for i in range(4) if i not in (h_ax, w_ax)):
            return False
        t, l, b, r = node.attrs["pads"]
        node.attrs["pads"] = (t + pads[h_ax], l + pads[w_ax], b + pads[h_ax + 4], r + pads[w_ax + 4])
        return True

    def layer_class(self, step):
        if step.kernel.startswith(("tc_dwconv2d_s8", "tc_dwconv2d_cb_s8")):
            return "depthwise"
        if step.kernel.startswith("tc_pw_ternary_s8"):
            return "ternary pointwise"
        p = step.params
        return "pointwise" if p.k_h == 1 and p.k_w == 1 and p.groups == 1 else "conv"

    @staticmethod
    def is_depthwise(g, node) -> bool:
        w = g.tensors[node.inputs[1]]
        in_c = w.shape[1] * node.attrs["group"] if node.attrs["layout"] == "NCHW" else w.shape[3] * node.attrs["group"]
        return node.attrs["group"] == in_c and node.attrs["group"] > 1

    def lower_int8(self, lc, node):
        x, y = node.inputs[0], node.outputs[0]
        a = node.attrs
        ih, iw, ic = lc.hwc(x)
        oh, ow, oc = lc.hwc(y)
        s_in, zp_in = lc.qp(x)
        s_out, zp_out = lc.qp(y)
        enc = lc.weights(node, s_in)  # OHWI codes, per-channel scales, int32 bias
        wq, bias = enc.q, enc.bias
        mult, shift = requant_arrays(s_in, enc.qp.scale, s_out, oc)
        act_min, act_max = act_range(a.get("act"), lc.tensor(y).quant)
        if enc.scheme.name == TERNARY:  # PROM: a pointwise conv (quant/ternary.py picks only those)
            p = make_pw_ternary_params(ih * iw, ic, oc, zp_in, zp_out, act_min, act_max,
                                       ternary.choose_format(ic, oc, lc.ternary_formats))
            codes = wq.reshape(oc, ic)
            args = [Arg("in", x), Arg("const", lc.blob(ternary.pack(codes, p.format), node, "w")),
                    Arg("const", lc.blob(fold_input_zero_point(bias, codes, zp_in), node, "bias")),
                    Arg("const", lc.blob(mult, node, "mult")), Arg("const", lc.blob(shift, node, "shift")),
                    Arg("out", y)]
            kernel = pw_ternary_kernel(p)
            licence = dict(overlap_delta=pw_ternary_overlap_delta(p))
            if kernel != "tc_pw_ternary_s8":
                args.insert(5, Arg("scratch", "", lookup(kernel).scratch_bytes(p)))
            if kernel == "tc_pw_ternary_s8_expand":
                # tc_conv2d_s8 runs it on a 1 x pixels image: its licence is that call's, not the
                # layer's H x W rows (its paths stream whole rows: the fast portable one re-reads
                # the row for each pair of output channels, the DSP one pairs pixels)
                licence = conv2d_overlap_licence(Conv2dParams(1, p.pixels, ic, 1, p.pixels, oc, 1, 1, 1, 1, 1, 1,
                                                              0, 0, 1, 0, zp_out, act_min, act_max))
            lc.add_step(node, kernel, p, args,
                        lambda xv, w, b, m, s: pw_ternary_s8(p, xv, w, b, m, s).reshape(oh, ow, oc),
                        macs=self.macs(lc.g, node), **licence)
            return
        (kh, kw), (sh, sw), (dh, dw) = a["kernel"], a["strides"], a["dilations"]
        pt, pl = a["pads"][0], a["pads"][1]
        group = a["group"]
        geometry = dict(in_h=ih, in_w=iw, in_c=ic, out_h=oh, out_w=ow, out_c=oc, k_h=kh, k_w=kw,
                        stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw, pad_top=pt, pad_left=pl)
        quant = dict(in_zp=zp_in, out_zp=zp_out, act_min=act_min, act_max=act_max)
        if enc.codebook is not None:
            lower_codebook_conv(lc, node, enc, geometry, quant, group, mult, shift, self.macs(lc.g, node))
            return
        if group == ic and group > 1:
            p = DwConv2dParams(**geometry, depth_mult=oc // ic, **quant)
            wblob = lc.blob(np.ascontiguousarray(wq[:, :, :, 0].transpose(1, 2, 0)), node, "w")
            kernel, fn = "tc_dwconv2d_s8", dwconv2d_s8
        else:
            p = Conv2dParams(**geometry, groups=group, **quant)
            wblob = lc.blob(np.ascontiguousarray(wq), node, "w")
            kernel, fn = "tc_conv2d_s8", conv2d_s8
        args = [Arg("in", x), Arg("const", wblob), Arg("const", lc.blob(bias, node, "bias")),
                Arg("const", lc.blob(mult, node, "mult")), Arg("const", lc.blob(shift, node, "shift")), Arg("out", y)]
        inplace = {}
        if kernel == "tc_dwconv2d_s8" and oc == ic and oh * ow <= ih * iw and ih * iw < oh * ow * oc:
            # TinyEngine-style: one channel plane of scratch instead of a second activation buffer
            scratch = Arg("scratch", "", lookup("tc_dwconv2d_s8_inplace").scratch_bytes(p))
            inplace = dict(inplace_inputs=(0,), inplace_kernel="tc_dwconv2d_s8_inplace",
                           inplace_args=args[:5] + [scratch] + args[5:])
        licence = conv2d_overlap_licence(p) if kernel == "tc_conv2d_s8" else dwconv2d_overlap_licence(p)
        lc.add_step(node, kernel, p, args, lambda xv, w, b, m, s: fn(p, xv.reshape(ih, iw, ic), w, b, m, s),
                    macs=self.macs(lc.g, node), **licence, **inplace)


@onnx_importer("Conv", revisions={22: {}})  # 22: bfloat16 admitted
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


# ---- how far an output may overlap its input: what the C kernel that runs really honours ----------
# Every path of runtime_c/tc_conv2d_s8.c and tc_dwconv2d_s8.c that some build (host portable,
# host DSP emulation, Cortex-M DSP) may take for the params must be safe under the licence.
CONV2D_CHUNK = 144  # tc_conv2d_s8_dsp.c: windows deeper than this take conv2d_s8_chunked on DSP builds


def row_overlap_delta(in_h: int, in_w: int, in_c: int, out_h: int, out_w: int, out_c: int,
                      stride_h: int, pad_top: int, lookahead_pixels: int = 0) -> int:
    """Lowest safe output start relative to the input start for a row-streaming NHWC kernel.

    Output row r is written after reading input rows >= r*stride - pad only, so its last byte
    must stay below input row max(0, r*stride - pad). A kernel that writes up to
    `lookahead_pixels` output pixels of the next row while it still reads for row r (pixel pairs
    across a row end) must keep those below that input row too."""
    row_in, row_out = in_w * in_c, out_w * out_c
    return min(max(0, r * stride_h - pad_top) * row_in - (r + 1) * row_out
               - (lookahead_pixels * out_c if r + 1 < out_h else 0) for r in range(out_h))


def conv2d_overlap_licence(p) -> dict:
    """tc_conv2d_s8 writes whole output pixels in row-major order on every path (portable per
    pixel; DSP pixel pairs), so it streams rows. The fast portable pointwise path pairs the last
    pixels of two rows of odd width after the lower row's other pixels: it reads the upper one from
    a stack copy taken before the lower row is written, so the same bound holds. One exception: on
    DSP builds, windows deeper than CONV2D_CHUNK (conv2d_s8_chunked, groups == 1, dil_w == 1) go
    in pixel pairs that may span a row end, and re-read both windows for each block of output
    channels after writing a block of both: the next row's first pixel is written while the row's
    last window is still read. (First layers whose channels take two passes of
    tc_conv2d_s8_first_dsp.c: on overlapping buffers that path stages each block once and runs
    both passes over it, re-widening their weights, when their requantization fits (<= 16
    channels, IC's stem), and declines buffers that overlap otherwise, so the licence stays;
    denying it would cost the zoo MobileNetV3 8.6 KB of peak SRAM.)"""
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
    if p.depth_mult != 1:
        return {}
    delta = row_overlap_delta(p.in_h, p.in_w, p.in_c, p.out_h, p.out_w, p.out_c, p.stride_h, p.pad_top)
    return dict(overlap_delta=delta, overlap_modulus=p.in_c)


# ---- integer reference (runtime_c/tc_conv2d_s8.c, tc_dwconv2d_s8.c) ---------------------------
def conv_output_size(in_size: int, k: int, stride: int = 1, dil: int = 1, pad_begin: int = 0,
                     pad_end: int = 0) -> int:
    """Output length along one axis for explicit padding (ONNX/TFLite floor mode)."""
    return (in_size + pad_begin + pad_end - dil * (k - 1) - 1) // stride + 1


def check_window_geometry(p) -> None:
    require(min(p.in_h, p.in_w, p.in_c, p.out_h, p.out_w, p.out_c) >= 1,
            "all tensor sizes must be >= 1")
    require(min(p.k_h, p.k_w, p.stride_h, p.stride_w, p.dil_h, p.dil_w) >= 1,
            "kernel size, stride and dilation must be >= 1")
    require(p.pad_top >= 0 and p.pad_left >= 0, "pads must be >= 0")


def check_groups(p) -> None:
    require(p.groups >= 1 and p.in_c % p.groups == 0 and p.out_c % p.groups == 0,
            f"groups={p.groups} must divide in_c={p.in_c} and out_c={p.out_c}")


@dataclass(frozen=True)
class ConvWindow:
    """The fields tc_conv2d_params, tc_dwconv2d_params and tc_conv_transpose_params start with,
    in their C order."""

    in_h: int
    in_w: int
    in_c: int
    out_h: int
    out_w: int
    out_c: int
    k_h: int
    k_w: int
    stride_h: int
    stride_w: int
    dil_h: int
    dil_w: int
    pad_top: int
    pad_left: int


@dataclass(frozen=True)
class Conv2dParams(ConvWindow):
    """tc_conv2d_params: regular or grouped conv; weights OHWI [out_c][k_h][k_w][in_c/groups]."""

    C_STRUCT: ClassVar[str] = "tc_conv2d_params"
    groups: int
    in_zp: int
    out_zp: int
    act_min: int
    act_max: int

    def validate(self) -> None:
        check_window_geometry(self)
        check_groups(self)
        check_quant(self.in_zp, self.out_zp, self.act_min, self.act_max)


@dataclass(frozen=True)
class DwConv2dParams(ConvWindow):
    """tc_dwconv2d_params: depthwise conv; weights [k_h][k_w][out_c], oc = ic*depth_mult + m."""

    C_STRUCT: ClassVar[str] = "tc_dwconv2d_params"
    # The fields after depth_mult repeat Conv2dParams': the C structs end alike (data, not logic).
    depth_mult: int
    in_zp: int
    out_zp: int
    act_min: int
    act_max: int

    def validate(self) -> None:
        check_window_geometry(self)
        require(self.depth_mult >= 1 and self.out_c == self.in_c * self.depth_mult,
                f"out_c={self.out_c} must equal in_c={self.in_c} * depth_mult={self.depth_mult}")
        check_quant(self.in_zp, self.out_zp, self.act_min, self.act_max)


def conv2d_acc(p: Conv2dParams, x, w, bias: Optional[np.ndarray] = None) -> np.ndarray:
    """int64 accumulators [out_h][out_w][out_c] of tc_conv2d_s8 (bias included), before requant."""
    p.validate()
    x = as_hwc(x, p.in_h, p.in_w, p.in_c, "input").astype(np.int64) - p.in_zp
    group_c, group_oc = p.in_c // p.groups, p.out_c // p.groups
    w = as_shape(w, (p.out_c, p.k_h, p.k_w, group_c), "weights").astype(np.int64)
    # Zero in the (x - in_zp) domain is exactly a skipped tap.
    win = windows(x, p.out_h, p.out_w, p.k_h, p.k_w, p.stride_h, p.stride_w, p.dil_h, p.dil_w,
                  p.pad_top, p.pad_left, fill=0)
    win = win.reshape(p.out_h * p.out_w, p.k_h, p.k_w, p.groups, group_c)
    w = w.reshape(p.groups, group_oc, p.k_h, p.k_w, group_c)
    acc = np.empty((p.out_h * p.out_w, p.groups, group_oc), dtype=np.int64)
    for g in range(p.groups):
        cols = win[:, :, :, g, :].reshape(p.out_h * p.out_w, -1)  # im2col (copies)
        acc[:, g, :] = cols @ w[g].reshape(group_oc, -1).T
    return add_bias_checked(acc.reshape(p.out_h, p.out_w, p.out_c), bias, p.out_c)


def conv2d_s8(p: Conv2dParams, x, w, bias, mult, shift) -> np.ndarray:
    """Mirror of tc_conv2d_s8: int8 [out_h][out_w][out_c]."""
    return requantize_channels(conv2d_acc(p, x, w, bias), p, mult, shift, p.out_c)


def dwconv2d_acc(p: DwConv2dParams, x, w, bias: Optional[np.ndarray] = None) -> np.ndarray:
    """int64 accumulators [out_h][out_w][out_c] of tc_dwconv2d_s8 (bias included)."""
    p.validate()
    x = as_hwc(x, p.in_h, p.in_w, p.in_c, "input").astype(np.int64) - p.in_zp
    w = as_shape(w, (p.k_h, p.k_w, p.out_c), "weights").astype(np.int64)
    win = windows(x, p.out_h, p.out_w, p.k_h, p.k_w, p.stride_h, p.stride_w, p.dil_h, p.dil_w,
                  p.pad_top, p.pad_left, fill=0)
    if p.depth_mult > 1:
        win = win[..., np.arange(p.out_c) // p.depth_mult]  # output channel oc reads oc // mult
    acc = np.einsum("hwyxc,yxc->hwc", win, w)
    return add_bias_checked(acc, bias, p.out_c)


def dwconv2d_s8(p: DwConv2dParams, x, w, bias, mult, shift) -> np.ndarray:
    """Mirror of tc_dwconv2d_s8: int8 [out_h][out_w][out_c]."""
    return requantize_channels(dwconv2d_acc(p, x, w, bias), p, mult, shift, p.out_c)


def dwconv2d_s8_inplace_scratch_size(p: DwConv2dParams) -> int:
    """Mirror of tc_dwconv2d_s8_inplace_scratch_size: bytes of one input channel plane."""
    return p.in_h * p.in_w


def dwconv2d_s8_inplace(p: DwConv2dParams, x, w, bias, mult, shift) -> np.ndarray:
    """Mirror of tc_dwconv2d_s8_inplace called with out == in (same values as dwconv2d_s8).

    The result occupies the first out_h*out_w*out_c bytes of the input buffer.
    """
    p.validate()
    require(p.depth_mult == 1, "in-place depthwise needs depth_mult == 1")
    require(p.out_h * p.out_w <= p.in_h * p.in_w,
            "in-place depthwise needs out_h*out_w <= in_h*in_w")
    return dwconv2d_s8(p, x, w, bias, mult, shift)


# ---- PROM ternary pointwise conv (runtime_c/tc_pw_ternary_s8.c; quant/ternary.py) --------------
@dataclass(frozen=True)
class PwTernaryParams:
    """tc_pw_ternary_params: a 1x1, stride-1, unpadded, group-1 conv over `pixels` NHWC pixels
    whose weights are in {-1, 0, 1}, packed per output channel row in `format` (2-bit or
    base-3, quant/ternary.py). The input zero point is folded into the bias offline
    (fold_input_zero_point), so the kernel sums raw activations: adds and subtracts only."""

    C_STRUCT: ClassVar[str] = "tc_pw_ternary_params"
    pixels: int
    in_c: int
    out_c: int
    format: int
    out_zp: int
    act_min: int
    act_max: int

    def validate(self) -> None:
        require(min(self.pixels, self.in_c, self.out_c) >= 1, "all tensor sizes must be >= 1")
        require(self.format in ternary.FORMAT_NAMES, f"format {self.format} (0: 2-bit, 1: base-3)")
        check_quant(0, self.out_zp, self.act_min, self.act_max)


def make_pw_ternary_params(pixels: int, in_c: int, out_c: int, in_zp: int, out_zp: int, act_min: int,
                           act_max: int, fmt: int) -> PwTernaryParams:
    """in_zp only bounds the folded bias here (it is in the bias, not in the struct)."""
    require(-128 <= in_zp <= 127, f"in_zp={in_zp} must be in [-128, 127]")
    return PwTernaryParams(pixels, in_c, out_c, fmt, out_zp, act_min, act_max)


def fold_input_zero_point(bias: np.ndarray, codes: np.ndarray, in_zp: int) -> np.ndarray:
    """bias - in_zp * sum_k t[o, k] (int32): then sum_k t * (x - in_zp) + bias equals
    sum_k t * x + folded bias, TFLM's accumulator exactly (quantization.md §1.6)."""
    folded = bias.astype(np.int64) - int(in_zp) * codes.astype(np.int64).sum(axis=1)
    require(np.all(np.abs(folded) < 2**31 - 128 * codes.shape[1]), "bias too large for an int32 accumulator")
    return folded.astype(np.int32)


def pw_ternary_acc(p: PwTernaryParams, x, w, bias) -> np.ndarray:
    """int64 accumulators [pixels][out_c] of tc_pw_ternary_s8: sum of t * raw x, plus the
    folded bias."""
    p.validate()
    x = as_shape(np.asarray(x).reshape(-1), (p.pixels * p.in_c,), "input").reshape(p.pixels, p.in_c)
    require(np.asarray(w).size == p.out_c * ternary.row_bytes(p.in_c, p.format), "packed weight size")
    codes = ternary.unpack(w, p.format, p.out_c, p.in_c).astype(np.int64)
    return add_bias_checked(x.astype(np.int64) @ codes.T, bias, p.out_c)


def pw_ternary_s8(p: PwTernaryParams, x, w, bias, mult, shift) -> np.ndarray:
    """Mirror of tc_pw_ternary_s8: int8 [pixels][out_c]."""
    return requantize_channels(pw_ternary_acc(p, x, w, bias), p, mult, shift, p.out_c)


# Which kernel runs a ternary layer, by its shape (benchmarks/bench_prom.py --each-kernel
# measures the three on the Cortex-M4): the table kernel (tc_pw_ternary_s8_lut) on wide layers
# (its tables cost about 270 instructions per 4 input channels and pixel pair whatever out_c;
# from 64 inputs and 128 outputs it beats expanding, e.g. VWW's 64x128 on 6x6 pixels: 1.43 vs
# 1.53, 128x128: 1.21-1.24 vs 1.39 instructions per MAC, the expansion's decoding spread over few
# pixels); other layers whose int8 weights fit in 8 KB of scratch are expanded and run by the
# int8 kernel (tc_pw_ternary_s8_expand, at tc_conv2d_s8's speed: VWW 8x16 1.87, 32x32 1.72,
# MobileNetV2 16x96 2.07, against int8 2.00, 1.68, 2.09); the remaining wide-output layers by
# tables, the rest by tc_pw_ternary_s8 (no scratch).
# A ternary scale (mean |w| of the kept weights) makes multipliers ~64x int8's, so narrow layers
# get requantization shifts -1..1; tc_conv2d_s8's DSP paths take them (tc_dot_s8_dsp.h
# tc_dsp_rq_near in tc_conv2d_pairs_near_asm, tc_dsp_rq2 on the shallow path; before, such
# layers ran its C loop: VWW 8x16 8.36 per MAC). Expanding to +-2^k with shift - k instead is
# not bit-exact (TFLM's SRDHM-then-RDBPOT double rounding moves to another bit): checked over
# every reachable accumulator of the VWW / MobileNetV2 narrow layers, no channel whose shift moved
# matched (0 of 16 ... 0 of 192), not even with the multiplier nudged by up to +-64.
PW_TERNARY_EXPAND_MAX_BYTES = 8192
PW_TERNARY_LUT_MIN_OUT_C = 64
PW_TERNARY_LUT_GROUPS = 4  # TC_PW_TERNARY_LUT_GROUPS: 256-word tables per chunk


def pw_ternary_kernel(p: PwTernaryParams) -> str:
    """The kernel that runs a ternary layer, by its shape."""
    tables = p.format == ternary.FORMAT_2BIT and p.in_c >= 4 and p.out_c >= PW_TERNARY_LUT_MIN_OUT_C
    if tables and p.in_c >= 64 and p.out_c >= 128:
        return "tc_pw_ternary_s8_lut"
    if p.out_c * p.in_c <= PW_TERNARY_EXPAND_MAX_BYTES:
        return "tc_pw_ternary_s8_expand"
    return "tc_pw_ternary_s8_lut" if tables else "tc_pw_ternary_s8"


def pw_ternary_lut_scratch_size(p: PwTernaryParams) -> int:
    """Mirror of tc_pw_ternary_s8_lut_scratch_size: the chunk's tables and int32 sums of a pixel pair."""
    return PW_TERNARY_LUT_GROUPS * 256 * 4 + p.out_c * 8


def pw_ternary_expand_scratch_size(p: PwTernaryParams) -> int:
    """Mirror of tc_pw_ternary_s8_expand_scratch_size: the int8 weights."""
    return p.out_c * p.in_c


def pw_ternary_overlap_delta(p: PwTernaryParams) -> int:
    """tc_pw_ternary_s8 writes pixel i after reading it (every path: the DSP one reads pixel
    pairs, i and i+1, before writing either), so an output may start at or below the input
    when it never runs ahead of the reads: pixel i's output ends at (i+1)*out_c, below the
    next unread input (i+2)*in_c for a pair."""
    return row_overlap_delta(p.pixels, 1, p.in_c, p.pixels, 1, p.out_c, 1, 0, lookahead_pixels=1)
# ---- codebook weights (quant/codebook.py): decoded a tile of output channels at a time ---------
@dataclass(frozen=True)
class Conv2dCbParams(Conv2dParams):
    """tc_conv2d_cb_params: tc_conv2d_params, then the codebook: `bits` per index, `palette_oc`
    output channels per palette, `tile_oc` output channels decoded into the scratch at a time."""

    C_STRUCT: ClassVar[str] = "tc_conv2d_cb_params"
    bits: int
    palette_oc: int
    tile_oc: int
    band_h: int  # output rows per decoded tile (see codebook_conv_tiling)

    @property
    def depth(self) -> int:
        return self.k_h * self.k_w * (self.in_c // self.groups)

    def validate(self) -> None:
        super().validate()
        _check_codebook(self)
        require(1 <= self.band_h <= self.out_h, f"band_h={self.band_h} must be in 1..out_h={self.out_h}")


@dataclass(frozen=True)
class DwConv2dCbParams(DwConv2dParams):
    """tc_dwconv2d_cb_params: tc_dwconv2d_params, then the codebook (as Conv2dCbParams); a row is
    one output channel's k_h * k_w taps."""

    C_STRUCT: ClassVar[str] = "tc_dwconv2d_cb_params"
    bits: int
    palette_oc: int
    tile_oc: int

    @property
    def depth(self) -> int:
        return self.k_h * self.k_w

    def validate(self) -> None:
        super().validate()
        _check_codebook(self)


def _check_codebook(p) -> None:
    """The C kernels' checks of the codebook fields (tc_codebook.h tc_cb_args_ok)."""
    require(2 <= p.bits <= 6, f"bits={p.bits} must be in 2..6")
    require(p.palette_oc >= 1 and p.out_c % p.palette_oc == 0,
            f"palette_oc={p.palette_oc} must divide out_c={p.out_c}")
    require(1 <= p.tile_oc <= p.out_c, f"tile_oc={p.tile_oc} must be in 1..out_c={p.out_c}")


def _int8_params(p, cls):
    """The int8 kernel's params inside a codebook kernel's (the fields they share)."""
    from dataclasses import fields

    return cls(**{f.name: getattr(p, f.name) for f in fields(cls)})


# What a tiled codebook conv may spend over the int8 kernel at its step: the decoded tile plus
# the output rows a band gives up of the int8 kernel's overlap with the input (the issue allows
# 1 KiB of peak SRAM over int8).
CONV_EXTRA_BYTES = 1024


def codebook_conv_tiling(out_h: int, out_w: int, out_c: int, depth: int) -> tuple[int, int]:
    """(tile_oc, band_h) of tc_conv2d_cb_s8. Every rows decoded once when they fit (band_h 1:
    pixel-major, the int8 kernel's order and overlap). Otherwise each band decodes every row
    again (about 2 instructions per weight, 2 / (band_h * out_w) per MAC) and each tile costs
    about 50 instructions per pixel pair (2 * tile_oc * depth MACs); the cheapest estimate whose
    tile and 4 times the lost overlap ((band_h - 1) output rows) stay within CONV_EXTRA_BYTES wins."""
    if out_c * depth <= CONV_EXTRA_BYTES:
        return out_c, 1
    row_out = out_w * out_c
    best = None
    for tile in range(1, out_c):
        if tile * depth > CONV_EXTRA_BYTES:
            break
        if tile % 2 and tile > 1:
            continue  # the DSP path takes channels in pairs
        # each row given up is counted 4 times: the planner chains overlaps across layers (on
        # MLPerf KWS twice was not enough to stay within 1 KiB of int8)
        band = max(1, min(out_h, (CONV_EXTRA_BYTES - tile * depth) // (4 * row_out) + 1))
        cost = 2.0 / (band * out_w) + 50.0 / (2 * tile * depth)
        if best is None or cost < best[0]:
            best = (cost, tile, band)
    return (best[1], best[2]) if best else (1, 1)


def codebook_band_overlap_delta(p) -> int:
    """Lowest safe output start relative to the input start for tc_conv2d_cb_s8: output rows
    [r0, r1) of a band are written while input rows from max(0, r0 * stride - pad) on are read
    (band_h 1: row_overlap_delta's row-streaming bound; the DSP path pairs pixels within a row).
    With every row in one tile (tile_oc == out_c) tc_conv2d_s8 runs: its licence."""
    if p.tile_oc == p.out_c:
        return conv2d_overlap_licence(p)["overlap_delta"]
    row_in, row_out = p.in_w * p.in_c, p.out_w * p.out_c
    return min(max(0, r0 * p.stride_h - p.pad_top) * row_in - min(r0 + p.band_h, p.out_h) * row_out
               for r0 in range(0, p.out_h, p.band_h))


def retiled_step(step, tile_oc: int, band_h: int):
    """A tc_conv2d_cb_s8 step with another tiling: its scratch and overlap licence follow."""
    p = replace(step.params, tile_oc=tile_oc, band_h=band_h)
    args = [Arg("scratch", "", codebook_scratch_bytes(p)) if a.kind == "scratch" else a for a in step.args]
    return replace(step, params=p, args=args, overlap_delta=codebook_band_overlap_delta(p))


def slack_tilings(p, slack: int) -> list[tuple[int, int]]:
    """The (tile_oc, band_h) worth trying for a tiled codebook conv given `slack` bytes of arena
    beyond what its step holds live (input, output and its tile counted apart, as if they did not
    overlap), fastest first: every row at once (tc_conv2d_s8 runs) when they fit; then one band
    (each tile decoded once per layer instead of once per band; the output may then not overlap
    the input, which the live bytes already assume) with the widest even tile the slack holds,
    then half and a quarter of it. Never more rows than the slack holds."""
    extra = slack + p.tile_oc * p.depth  # scratch bytes the step may hold
    if p.out_c * p.depth <= extra:
        return [(p.out_c, 1)]
    tilings, tile = [], min(p.out_c - 1, extra // p.depth)
    for _ in range(3):  # the widest first, then halved: the planner may not place the widest
        even = tile - (tile % 2 if tile > 1 else 0)  # the DSP path takes channels in pairs
        if even < p.tile_oc or (even == p.tile_oc and p.band_h == p.out_h):
            break
        tilings.append((even, p.out_h))
        tile = even // 2
    return tilings


def tiling_cost(p, tile: int, band: int) -> float:
    """Estimated Cortex-M4 instructions per MAC of tc_conv2d_cb_s8's tiled path beyond the 2x2 loop
    (measured on MLPerf IC/KWS): every row decoded once per band (about 3.5 instructions per
    weight, used by band * out_w pixels), each pixel's window widened once per tile (about 1.5
    per value, used by tile channels), and an odd band's last pixel computed twice (pairs)."""
    pixels = band * p.out_w if band < p.out_h else p.out_h * p.out_w
    waste = (pixels + pixels % 2) / pixels
    return 3.5 / pixels + 1.5 / tile + (waste - 1.0) * (1.25 + 1.5 / tile)


def band_tilings(p, limit: int = 3) -> list[tuple[int, int]]:
    """Tilings of a conv whose step has no slack: taller bands with narrower tiles, cheaper by
    tiling_cost than (tile_oc, band_h), where the output gives up no more of its overlap with the
    input (codebook_band_overlap_delta) than the narrower tile saves of scratch; the best `limit`
    first (the planner has the last word)."""
    now = tiling_cost(p, p.tile_oc, p.band_h)
    delta = codebook_band_overlap_delta(p)
    out = []
    for band in range(p.band_h + 1, p.out_h + 1):
        for tile in range(p.tile_oc - 1, 0, -1):
            if tile > 1 and tile % 2:
                continue  # channel pairs
            lost = delta - codebook_band_overlap_delta(replace(p, tile_oc=tile, band_h=band))
            cost = tiling_cost(p, tile, band)
            if lost <= (p.tile_oc - tile) * p.depth and cost < 0.9 * now:
                out.append((cost, tile, band))
    return [(t, b) for _, t, b in sorted(out)[:limit]]


def widen_codebook_tiles(program, mem, replan):
    """(program, memory plan) with tiled codebook convs given larger tiles wherever the plan has
    room: lowering keeps every tile within CONV_EXTRA_BYTES (it cannot know which steps are at the
    peak), so a layer off the peak may decode every row at once, or else decode each tile once per
    layer (one band) with as many rows as its slack holds (slack_tilings); a layer at the peak may
    trade tile width for taller bands (band_tilings). Greedy, the layers with the most MACs first:
    a step's tiling is kept when the plan made again (`replan`) has an arena no larger than
    before."""
    arena = mem.arena_bytes
    order = sorted((k for k, s in enumerate(program.steps)
                    if s.kernel == "tc_conv2d_cb_s8" and s.params.tile_oc < s.params.out_c),
                   key=lambda k: -program.steps[k].macs)
    for k in order:
        step = program.steps[k]
        slack = arena - mem.live_bytes[k]
        tilings = slack_tilings(step.params, slack) if slack >= 0 else []
        for tiling in tilings or band_tilings(step.params):
            trial = copy.copy(program)
            trial.steps = list(program.steps)
            trial.steps[k] = retiled_step(step, *tiling)
            trial_mem = replan(trial)
            if trial_mem.arena_bytes <= arena:
                program, mem = trial, trial_mem
                break
    return program, mem


def codebook_scratch_bytes(p) -> int:
    """Mirror of tc_conv2d_cb_s8_scratch_size / tc_dwconv2d_cb_s8_scratch_size: tile_oc decoded rows."""
    return p.tile_oc * p.depth


def dwconv2d_cb_s8_inplace_scratch_size(p: DwConv2dCbParams) -> int:
    """Mirror of tc_dwconv2d_cb_s8_inplace_scratch_size: the decoded tile and one input plane."""
    return p.tile_oc * p.depth + p.in_h * p.in_w


def conv2d_cb_s8(p: Conv2dCbParams, x, idx, palette, bias, mult, shift) -> np.ndarray:
    """Mirror of tc_conv2d_cb_s8: tc_conv2d_s8 on the decoded weights."""
    p.validate()
    w = decode_codebook(palette, idx, p.bits, p.depth, p.palette_oc)
    return conv2d_s8(_int8_params(p, Conv2dParams), x, w.reshape(p.out_c, p.k_h, p.k_w, p.in_c // p.groups),
                     bias, mult, shift)


def dwconv2d_cb_s8(p: DwConv2dCbParams, x, idx, palette, bias, mult, shift) -> np.ndarray:
    """Mirror of tc_dwconv2d_cb_s8: tc_dwconv2d_s8 on the decoded weights ([k_h][k_w][out_c])."""
    p.validate()
    w = decode_codebook(palette, idx, p.bits, p.depth, p.palette_oc)
    return dwconv2d_s8(_int8_params(p, DwConv2dParams), x, w.T.reshape(p.k_h, p.k_w, p.out_c), bias, mult, shift)


def dwconv2d_cb_s8_inplace(p: DwConv2dCbParams, x, idx, palette, bias, mult, shift) -> np.ndarray:
    """Mirror of tc_dwconv2d_cb_s8_inplace called with out == in (the values of dwconv2d_cb_s8)."""
    require(p.depth_mult == 1, "in-place depthwise needs depth_mult == 1")
    require(p.out_h * p.out_w <= p.in_h * p.in_w, "in-place depthwise needs out_h*out_w <= in_h*in_w")
    return dwconv2d_cb_s8(p, x, idx, palette, bias, mult, shift)


def lower_codebook_conv(lc, node, enc, geometry: dict, quant: dict, group: int, mult, shift, macs: int) -> None:
    """A conv or depthwise layer with codebook weights: tc_conv2d_cb_s8 / tc_dwconv2d_cb_s8, the
    packed indices and palettes in flash, `tile_oc` decoded rows in the step's scratch."""
    cb = enc.codebook
    x, y = node.inputs[0], node.outputs[0]
    ih, iw, ic = geometry["in_h"], geometry["in_w"], geometry["in_c"]
    oc = geometry["out_c"]
    code = dict(bits=cb.bits, palette_oc=cb.palette_oc, tile_oc=tile_channels(oc, cb.depth))
    inplace = False
    if group == ic and group > 1:
        p = DwConv2dCbParams(**geometry, depth_mult=oc // ic, **quant, **code)
        kernel, fn = "tc_dwconv2d_cb_s8", dwconv2d_cb_s8
        # channels tile by tile, each over all rows: the int8 kernel's channel-wise licence holds
        licence = dwconv2d_overlap_licence(p)
        if oc == ic and p.out_h * p.out_w <= ih * iw < p.out_h * p.out_w * oc:  # as the int8 lowering
            inplace = True
    else:
        code["tile_oc"], band_h = codebook_conv_tiling(geometry["out_h"], geometry["out_w"], oc, cb.depth)
        p = Conv2dCbParams(**geometry, groups=group, **quant, **code, band_h=band_h)
        kernel, fn = "tc_conv2d_cb_s8", conv2d_cb_s8
        licence = dict(overlap_delta=codebook_band_overlap_delta(p))
    args = [Arg("in", x), Arg("const", lc.blob(cb.indices, node, "windex")),
            Arg("const", lc.blob(cb.palette, node, "wpalette")), Arg("const", lc.blob(enc.bias, node, "bias")),
            Arg("const", lc.blob(mult, node, "mult")), Arg("const", lc.blob(shift, node, "shift")),
            Arg("scratch", "", lookup(kernel).scratch_bytes(p)), Arg("out", y)]
    if inplace:  # one channel plane of scratch instead of a second activation buffer (TinyEngine)
        twin = "tc_dwconv2d_cb_s8_inplace"
        licence.update(inplace_inputs=(0,), inplace_kernel=twin,
                       inplace_args=args[:6] + [Arg("scratch", "", lookup(twin).scratch_bytes(p))] + args[7:])
    lc.add_step(node, kernel, p, args, lambda xv, i, pal, b, m, s: fn(p, xv.reshape(ih, iw, ic), i, pal, b, m, s),
                macs=macs, note=f"codebook {cb.bits}-bit ({cb.method})", **licence)


# ---- C kernels (tinycc/kernels.py) ---------------------------------------------------------------
_CONV_ARGS = ("in", "const", "const", "const", "const", "out")  # in, w, bias, mult, shift, out


def conv2d_first_groups(p: Conv2dParams) -> int:
    """tc_conv2d_s8_first_dsp.c's 4-value groups per window (first_make_layout): every kernel
    row's whole words, then the values left at the rows' ends, collected."""
    row_len = p.k_w * p.in_c
    return p.k_h * (row_len // 4) + (p.k_h * (row_len % 4) + 3) // 4


FIRST_WORDS, FIRST_MAX_PAIRS, FIRST_MIN_BLOCK, FIRST_MAX_PASSES = 224, 8, 8, 2  # tc_conv2d_s8_first_dsp.c


def conv2d_first_pass_pairs(p: Conv2dParams) -> int:
    """first_pass_pairs of tc_conv2d_s8_first_dsp.c: the output channel pairs whose widened
    weights the path holds at once beside a block of FIRST_MIN_BLOCK pixels (0: none fit)."""
    fit = FIRST_WORDS // (4 * conv2d_first_groups(p)) - FIRST_MIN_BLOCK // 2
    return max(min((p.out_c + 1) // 2, FIRST_MAX_PAIRS, fit), 0)


def conv2d_first_passes(p: Conv2dParams) -> int:
    """How many times the first-layer path stages the whole input (one pass per set of channel
    pairs that fits); above 1 the layer must not overlap its input (conv2d_overlap_licence)."""
    pairs = conv2d_first_pass_pairs(p)
    return -(-((p.out_c + 1) // 2) // pairs) if pairs else 0


def conv2d_first_may_run(p: Conv2dParams) -> bool:
    """Whether tc_conv2d_s8_first_dsp.c's first-layer path may run the layer: the geometry of
    tc_conv2d_s8_first_dsp_applicable (groups 1, dil_w 1, in_c <= 4, at least 2 taps, at most 16
    four-value groups per window, the channels in at most two passes of channel
    pairs whose widened weights fit beside an 8-pixel block in 224 words); the C also checks the
    shifts at run time."""
    return (p.groups == 1 and p.dil_w == 1 and p.in_c <= 4 and p.k_h * p.k_w >= 2
            and p.out_c <= 2 * FIRST_MAX_PAIRS * FIRST_MAX_PASSES and conv2d_first_groups(p) <= 16
            and 1 <= conv2d_first_passes(p) <= FIRST_MAX_PASSES)


# TC_CONV2D_FIRST (tc_conv.h): a project without such a layer compiles that path out.
declare("tc_conv2d_s8", header="tc_conv.h", params=Conv2dParams, golden=conv2d_s8, args=_CONV_ARGS,
        sources=("tc_conv2d_s8.c",),
        variants=(Variant(DSP, ("tc_conv2d_s8_dsp.c", "tc_conv2d_s8_first_dsp.c")), Variant(ASM, ("tc_conv2d_s8_asm.c",), "TC_DSP_ASM"),
                  Variant(FAST, ("tc_conv2d_s8_fast.c",), "TC_FAST_PORTABLE")),
        prunable=(PrunableCode("TC_CONV2D_FIRST", conv2d_first_may_run),))
_DWCONV_VARIANTS = (Variant(DSP, ("tc_dwconv2d_s8_dsp.c",)), Variant(ASM, ("tc_dwconv2d_s8_asm.c",), "TC_DSP_ASM"),
                    Variant(FAST, ("tc_dwconv2d_s8_fast.c",), "TC_FAST_PORTABLE"))


def dwconv2d_k57_may_run(p: DwConv2dParams) -> bool:
    """Whether tc_dwconv2d_s8_k's code for kernels 5 and 7 wide (the unrolled 5x5 / 7x7 assembly
    of tc_dwconv2d_s8_asm.c, about 7.5 KB, and the C rows dwk_row_5 / dwk_row_7 of
    tc_dwconv2d_s8_dsp.c) may run the layer: a kernel 5 or 7 wide that dwk_applicable (C) takes,
    dilation 1 and depth_mult 1 (a superset: the C checks the rest at run time)."""
    return p.k_w in (5, 7) and p.dil_h == 1 and p.dil_w == 1 and p.depth_mult == 1


# TC_DWCONV2D_K57 (tc_conv.h): a project without such a layer compiles that code out.
_DWCONV_PRUNABLE = (PrunableCode("TC_DWCONV2D_K57", dwconv2d_k57_may_run),)
declare("tc_dwconv2d_s8", header="tc_conv.h", params=DwConv2dParams, golden=dwconv2d_s8, args=_CONV_ARGS,
        sources=("tc_dwconv2d_s8.c",), variants=_DWCONV_VARIANTS, inplace="tc_dwconv2d_s8_inplace",
        prunable=_DWCONV_PRUNABLE)
declare("tc_dwconv2d_s8_inplace", header="tc_conv.h", params=DwConv2dParams, golden=dwconv2d_s8_inplace,
        args=_CONV_ARGS[:5] + ("scratch", "out"), sources=("tc_dwconv2d_s8.c",), variants=_DWCONV_VARIANTS,
        scratch_bytes=dwconv2d_s8_inplace_scratch_size, prunable=_DWCONV_PRUNABLE)
declare("tc_pw_ternary_s8", header="tc_conv.h", params=PwTernaryParams, golden=pw_ternary_s8, args=_CONV_ARGS,
        sources=("tc_pw_ternary_s8.c",), variants=(Variant(DSP, ("tc_pw_ternary_s8_dsp.c",)),))
declare("tc_pw_ternary_s8_lut", header="tc_conv.h", params=PwTernaryParams, golden=pw_ternary_s8,
        args=_CONV_ARGS[:5] + ("scratch", "out"), sources=("tc_pw_ternary_s8_lut.c",),
        scratch_bytes=pw_ternary_lut_scratch_size)
declare("tc_pw_ternary_s8_expand", header="tc_conv.h", params=PwTernaryParams, golden=pw_ternary_s8,
        args=_CONV_ARGS[:5] + ("scratch", "out"), sources=("tc_pw_ternary_s8_expand.c",),
        calls=("tc_conv2d_s8",), scratch_bytes=pw_ternary_expand_scratch_size)
_CB_ARGS = ("in", "const", "const", "const", "const", "const", "scratch", "out")  # in, indices, palette, ...
declare("tc_conv2d_cb_s8", header="tc_codebook.h", params=Conv2dCbParams, golden=conv2d_cb_s8, args=_CB_ARGS,
        sources=("tc_conv2d_cb_s8.c", "tc_codebook.c"), variants=(Variant(DSP, ("tc_conv2d_cb_s8_dsp.c",)),),
        calls=("tc_conv2d_s8",),  # with tile_oc == out_c it decodes once and runs tc_conv2d_s8
        scratch_bytes=codebook_scratch_bytes)
_DWCONV_CB_VARIANTS = (Variant(DSP, ("tc_dwconv2d_cb_s8_dsp.c",)),  # the int8 3x3 pixel-pair assembly:
                       Variant(ASM, ("tc_dwconv2d_s8_asm.c",), "TC_DSP_ASM"))
declare("tc_dwconv2d_cb_s8", header="tc_codebook.h", params=DwConv2dCbParams, golden=dwconv2d_cb_s8,
        args=_CB_ARGS, sources=("tc_dwconv2d_cb_s8.c", "tc_codebook.c"), variants=_DWCONV_CB_VARIANTS,
        scratch_bytes=codebook_scratch_bytes, inplace="tc_dwconv2d_cb_s8_inplace")
declare("tc_dwconv2d_cb_s8_inplace", header="tc_codebook.h", params=DwConv2dCbParams, golden=dwconv2d_cb_s8_inplace,
        args=_CB_ARGS, sources=("tc_dwconv2d_cb_s8.c", "tc_codebook.c"), variants=_DWCONV_CB_VARIANTS,
        scratch_bytes=dwconv2d_cb_s8_inplace_scratch_size)
