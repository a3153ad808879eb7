"""Pooling: MaxPool, AveragePool (pads, ceil_mode, count_include_pad; 1-D as 2-D with H = 1, 3-D
as a 2-D pool of each depth slice then a pool over depth), GlobalAveragePool, GlobalMaxPool.
NCHW or NHWC via attrs['layout'].

Attrs of MaxPool/AveragePool: kernel, strides, dilations, pads (t, l, b, r: real padding),
ceil_extra (bottom, right: overflow windows of ceil_mode, never counted), count_include_pad.

int8 (TFLite Micro MAX_POOL_2D / AVERAGE_POOL_2D; global average pooling as TFLite MEAN):
MaxPoolParams / AvgPoolParams mirror tc_maxpool_params / tc_avgpool_params, maxpool_s8 /
avgpool_s8 are the bit-exact references of tc_maxpool_s8 / tc_avgpool_s8.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..golden.arith import INT32_MAX, requantize_to_int8, trunc_div
from ..golden.checks import check_act_range, require
from ..golden.spatial import as_hwc, windows
from ..kernels import DSP, Variant, declare
from ..program import Arg
from ..quant.params import act_range
from .common import bad_input, ints, pool_out_size, spatial_pads, unsupported, unsupported_int8
from . import reduce as reduce_ops
from .registry import LayoutClass, OpDef, apply_act, onnx_importer, register


def _hw(shape, layout):
    return (shape[1], shape[2]) if layout == "NHWC" else (shape[2], shape[3])


def _windows(x, a):
    """Yield (i, j, patch, valid) over kernel taps; x NCHW float64 padded with NaN outside."""
    kh, kw = a["kernel"]
    sh, sw = a["strides"]
    dh, dw = a["dilations"]
    pt, pl, pb, pr = a["pads"]
    eb, er = a["ceil_extra"]
    n, c, h, w = x.shape
    oh = (h + pt + pb + eb - dh * (kh - 1) - 1) // sh + 1
    ow = (w + pl + pr + er - dw * (kw - 1) - 1) // sw + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb + eb), (pl, pr + er)), constant_values=np.nan)
    # padded-but-real region (for count_include_pad): inside [-pt, h+pb)
    inpad = np.zeros((h + pt + pb + eb, w + pl + pr + er), dtype=bool)
    inpad[: h + pt + pb, : w + pl + pr] = True
    for i in range(kh):
        for j in range(kw):
            ys = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
            xs = slice(j * dw, j * dw + sw * (ow - 1) + 1, sw)
            yield xp[:, :, ys, xs], inpad[ys, xs]


class _WindowPool(OpDef):
    """Shared by MaxPool and AveragePool; subclasses define `_nchw` (the float reduction)."""

    layout_class = LayoutClass.SPATIAL

    def infer(self, g, node):
        return [_pool_shape(g, node)]

    def run_float(self, node, xs):
        return [_nhwc_wrap(node, xs[0], self._nchw)]

    def to_nhwc(self, g, node):
        node.attrs["layout"] = "NHWC"

    def int8_output(self, g, node):
        return "same_as_input"


@register
class MaxPool(_WindowPool):
    name = "MaxPool"
    fuses_activation = True

    def _nchw(self, node, x):
        best = None
        for patch, _ in _windows(x, node.attrs):
            p = np.where(np.isnan(patch), -np.inf, patch)
            best = p if best is None else np.maximum(best, p)
        return apply_act(best, node.attrs.get("act"))

    def lower_int8(self, lc, node):
        _maxpool_step(lc, node, _pool_geometry(lc, node))


@register
class AveragePool(_WindowPool):
    name = "AveragePool"

    def _nchw(self, node, x):
        total = count = 0
        for patch, inpad in _windows(x, node.attrs):
            valid = ~np.isnan(patch)
            total = total + np.where(valid, patch, 0.0)
            count = count + (inpad[None, None] if node.attrs["count_include_pad"] else valid)
        return total / count

    def lower_int8(self, lc, node):
        x, y = node.inputs[0], node.outputs[0]
        s_in, zp_in = lc.qp(x)
        s_out, zp_out = lc.qp(y)
        geo = _pool_geometry(lc, node)
        include = bool(node.attrs["count_include_pad"]) and any(node.attrs["pads"])
        if include and any(node.attrs["ceil_extra"]):
            raise unsupported_int8(node, "count_include_pad with ceil_mode overhang")
        if (s_in, zp_in) != (s_out, zp_out):
            raise unsupported_int8(node, "different input and output quantization")
        p = AvgPoolParams(**geo, count_include_pad=int(include), use_requant=0, in_zp=zp_in, out_zp=zp_out,
                          mult=0, shift=0, act_min=-128, act_max=127)
        _avgpool_step(lc, node, p)


def _nhwc_wrap(node, x, fn):
    x = x.astype(np.float64)
    if node.attrs["layout"] == "NHWC":
        return fn(node, x.transpose(0, 3, 1, 2)).transpose(0, 2, 3, 1).astype(np.float32)
    return fn(node, x).astype(np.float32)


def _pool_shape(g, node):
    x = g.tensors[node.inputs[0]]
    a = node.attrs
    h, w = _hw(x.shape, a["layout"])
    kh, kw = a["kernel"]
    pt, pl, pb, pr = a["pads"]
    eb, er = a["ceil_extra"]
    oh = (h + pt + pb + eb - a["dilations"][0] * (kh - 1) - 1) // a["strides"][0] + 1
    ow = (w + pl + pr + er - a["dilations"][1] * (kw - 1) - 1) // a["strides"][1] + 1
    n = x.shape[0]
    c = x.shape[3] if a["layout"] == "NHWC" else x.shape[1]
    return ((n, oh, ow, c) if a["layout"] == "NHWC" else (n, c, oh, ow)), x.dtype


class _GlobalPool(OpDef):
    layout_class = LayoutClass.SPATIAL

    def infer(self, g, node):
        x = g.tensors[node.inputs[0]]
        if node.attrs["layout"] == "NHWC":
            return [((x.shape[0], 1, 1, x.shape[3]), x.dtype)]
        return [((x.shape[0], x.shape[1], 1, 1), x.dtype)]

    def run_float(self, node, xs):
        axes = (1, 2) if node.attrs["layout"] == "NHWC" else (2, 3)
        x = xs[0].astype(np.float64)
        y = x.mean(axis=axes, keepdims=True) if self.name == "GlobalAveragePool" else x.max(axis=axes, keepdims=True)
        return [y.astype(np.float32)]

    def to_nhwc(self, g, node):
        node.attrs["layout"] = "NHWC"

    def int8_output(self, g, node):
        # the max keeps its input's params; the average gets its own (narrower) range
        return "same_as_input" if self.name == "GlobalMaxPool" else "calibrated"

    def lower_int8(self, lc, node):
        x, y = node.inputs[0], node.outputs[0]
        h, w, c = lc.hwc(x)
        geo = dict(in_h=h, in_w=w, channels=c, out_h=1, out_w=1, k_h=h, k_w=w, stride_h=1, stride_w=1,
                   pad_top=0, pad_left=0)
        if self.name == "GlobalMaxPool":
            _maxpool_step(lc, node, geo)
            return
        s_in, zp_in = lc.qp(x)
        s_out, zp_out = lc.qp(y)
        mult, shift = reduce_ops.mean_multiplier(s_in, s_out, h * w)  # TFLite MEAN's derivation, not s_in/(s_out*h*w)
        p = AvgPoolParams(**geo, count_include_pad=1, use_requant=1, in_zp=zp_in, out_zp=zp_out,
                          mult=mult, shift=shift, act_min=-128, act_max=127)
        _avgpool_step(lc, node, p)


GlobalAveragePool = register(type("GlobalAveragePool", (_GlobalPool,), {"name": "GlobalAveragePool"}))
GlobalMaxPool = register(type("GlobalMaxPool", (_GlobalPool,), {"name": "GlobalMaxPool"}))


def _nd_pads(onode, attrs, sizes, k, strides, dil) -> list[tuple[int, int]]:
    """(begin, end) pads per spatial axis from ONNX pads / auto_pad, for any number of axes
    (common.spatial_pads's rules)."""
    n = len(sizes)
    if n == 2:
        t, l, b, r = spatial_pads(onode, attrs, sizes, k, strides, dil)
        return [(t, b), (l, r)]
    # one axis at a time through the 2-D rule, with a neutral second axis
    flat = list(attrs.get("pads", [0] * 2 * n))
    if len(flat) != 2 * n:
        raise bad_input(onode, f"pads={flat} ({2 * n} values for a {n}-D pool)")
    out = []
    for i in range(n):
        a = dict(attrs)
        if "pads" in attrs:
            a["pads"] = [flat[i], 0, flat[n + i], 0]
        t, _, b, _ = spatial_pads(onode, a, (sizes[i], 1), (k[i], 1), (strides[i], 1), (dil[i], 1))
        out.append((t, b))
    return out


@onnx_importer("MaxPool", "AveragePool", revisions={22: {}})  # 22: bfloat16 admitted
def import_pool(ctx, onode, attrs):
    """2-D pools directly; 1-D as 2-D with H = 1; 3-D as a pool over (H, W) of every depth
    slice, then over D (a box window is separable: the max of maxima, and the mean of means,
    the count of valid taps of a box being the product of the per-axis counts)."""
    x = onode.input[0]
    shape = ctx.shape(x)
    spatial = len(shape) - 2
    if spatial not in (1, 2, 3):
        raise unsupported(onode, f"{spatial}-D pooling (1-D, 2-D and 3-D are supported)")
    if onode.op_type == "MaxPool" and len(onode.output) > 1 and onode.output[1]:
        raise unsupported(onode, "the Indices output")
    if attrs.get("storage_order", 0):
        raise unsupported(onode, "storage_order=1")
    k = tuple(int(v) for v in attrs["kernel_shape"])
    strides = tuple(int(v) for v in attrs.get("strides", [1] * spatial))
    dil = tuple(int(v) for v in attrs.get("dilations", [1] * spatial))
    for name, values in (("kernel_shape", k), ("strides", strides), ("dilations", dil)):
        if len(values) != spatial or min(values) < 1:
            raise bad_input(onode, f"{name}={list(values)} ({spatial} values of at least 1 for a {spatial}-D pool)")
    for name in ("ceil_mode", "count_include_pad"):
        if attrs.get(name, 0) not in (0, 1):
            raise bad_input(onode, f"{name}={attrs[name]} (must be 0 or 1)")
    pads = _nd_pads(onode, attrs, shape[2:], k, strides, dil)
    if any(pb >= kk or pe >= kk for (pb, pe), kk in zip(pads, k)):  # onnxruntime and PyTorch refuse it too
        raise bad_input(onode, f"pads {[p for pair in zip(*pads) for p in pair]} must be smaller than the kernel {list(k)}")
    ceil = bool(attrs.get("ceil_mode", 0))
    axes = [(shape[2 + i], k[i], strides[i], dil[i], pads[i]) for i in range(spatial)]
    if spatial == 1:  # [N, C, L] -> [N, C, 1, L]
        n, c, length = shape
        x4 = ctx.add("Reshape", [x], None, onode, "to2d", shape=(n, c, 1, length))[0]
        y4 = _pool2d(ctx, onode, attrs, x4, ((1, 1, 1, 1, (0, 0)), axes[0]), ceil, None, "")
        ctx.add("Reshape", [y4], [onode.output[0]], onode, "to1d", shape=(n, c, ctx.shape(y4)[3]))
        return
    if spatial == 2:
        _pool2d(ctx, onode, attrs, x, (axes[0], axes[1]), ceil, [onode.output[0]], "")
        return
    n, c, d, h, w = shape  # [N, C*D, H, W] pooled over (H, W), then [N, C, D, H'*W'] over D
    hw = ctx.add("Reshape", [x], None, onode, "slices", shape=(n, c * d, h, w))[0]
    hw = _pool2d(ctx, onode, attrs, hw, (axes[1], axes[2]), ceil, None, "hw")
    oh, ow = ctx.shape(hw)[2:]
    dd = ctx.add("Reshape", [hw], None, onode, "depth", shape=(n, c, d, oh * ow))[0]
    dd = _pool2d(ctx, onode, attrs, dd, (axes[0], (oh * ow, 1, 1, 1, (0, 0))), ceil, None, "d")
    ctx.add("Reshape", [dd], [onode.output[0]], onode, "to3d", shape=(n, c, ctx.shape(dd)[2], oh, ow))


def _pool2d(ctx, onode, attrs, x, axes, ceil, outs, hint) -> str:
    """One 2-D MaxPool / AveragePool node; axes: (size, kernel, stride, dilation, (pad begin,
    pad end)) for H and W."""
    (h, kh, sh, dh, (pt, pb)), (w, kw, sw, dw, (pl, pr)) = axes
    oh, eb = pool_out_size(h, kh, sh, dh, pt, pb, ceil)
    ow, er = pool_out_size(w, kw, sw, dw, pl, pr, ceil)
    if oh <= 0 or ow <= 0:
        raise unsupported(onode, f"pooling window larger than the input {ctx.shape(onode.input[0])}")
    extra = {"count_include_pad": bool(attrs.get("count_include_pad", 0))} if onode.op_type == "AveragePool" else {"act": None}
    return ctx.add(onode.op_type, [x], outs, onode, hint, kernel=(kh, kw), strides=(sh, sw), dilations=(dh, dw),
                   pads=(pt, pl, pb, pr), ceil_extra=(eb, er), layout="NCHW", **extra)[0]


@onnx_importer("GlobalAveragePool", "GlobalMaxPool", revisions={22: {}})  # 22: bfloat16 admitted
def import_global_pool(ctx, onode, attrs):
    rank = len(ctx.shape(onode.input[0]))
    if rank < 3:
        raise unsupported(onode, f"{rank}-D input (at least 3-D: batch, channels, spatial axes)")
    if rank != 4:
        from .reduce import import_global_pool_as_reduce

        import_global_pool_as_reduce(ctx, onode)
        return
    ctx.add(onode.op_type, [onode.input[0]], [onode.output[0]], onode, layout="NCHW")


# ---- int8 ---------------------------------------------------------------------------------------
def _pool_geometry(lc, node):
    x, y = node.inputs[0], node.outputs[0]
    ih, iw, c = lc.hwc(x)
    oh, ow, _ = lc.hwc(y)
    a = node.attrs
    if tuple(a.get("dilations", (1, 1))) != (1, 1):
        raise unsupported_int8(node, "dilated pooling")
    return dict(in_h=ih, in_w=iw, channels=c, out_h=oh, out_w=ow, k_h=a["kernel"][0], k_w=a["kernel"][1],
                stride_h=a["strides"][0], stride_w=a["strides"][1], pad_top=a["pads"][0], pad_left=a["pads"][1])


def _maxpool_step(lc, node, geo):
    x, y = node.inputs[0], node.outputs[0]
    lo, hi = act_range(node.attrs.get("act"), lc.tensor(y).quant)
    p = MaxPoolParams(**geo, act_min=lo, act_max=hi)
    shape = (geo["in_h"], geo["in_w"], geo["channels"])
    lc.add_step(node, "tc_maxpool_s8", p, [Arg("in", x), Arg("out", y)],
                lambda xv: maxpool_s8(p, xv.reshape(shape)))


def _avgpool_step(lc, node, p):
    shape = (p.in_h, p.in_w, p.channels)
    lc.add_step(node, "tc_avgpool_s8", p, [Arg("in", node.inputs[0]), Arg("out", node.outputs[0])],
                lambda xv: avgpool_s8(p, xv.reshape(shape)))


# ---- integer reference (runtime_c/tc_maxpool_s8.c, tc_avgpool_s8.c) ------------------------------
def _pool_axis_ok(in_size: int, out_size: int, k: int, stride: int, pad: int) -> bool:
    if min(in_size, out_size, k, stride) < 1 or pad < 0:
        return False
    return pad < k and (out_size - 1) * stride - pad < in_size


def _pool_axis_inside(in_size: int, out_size: int, k: int, stride: int, pad: int) -> bool:
    return pad == 0 and (out_size - 1) * stride + k <= in_size


def _check_pool_geometry(p) -> None:
    require(p.channels >= 1, "channels must be >= 1")
    require(_pool_axis_ok(p.in_h, p.out_h, p.k_h, p.stride_h, p.pad_top)
            and _pool_axis_ok(p.in_w, p.out_w, p.k_w, p.stride_w, p.pad_left),
            "every pooling window must contain an in-image tap (and sizes/strides >= 1)")
    check_act_range(p.act_min, p.act_max)


@dataclass(frozen=True)
class _PoolWindow:
    """The fields tc_maxpool_params and tc_avgpool_params both start with, in their C order."""

    in_h: int
    in_w: int
    channels: int
    out_h: int
    out_w: int
    k_h: int
    k_w: int
    stride_h: int
    stride_w: int
    pad_top: int
    pad_left: int


@dataclass(frozen=True)
class MaxPoolParams(_PoolWindow):
    """tc_maxpool_params (same quantization in and out)."""

    C_STRUCT: ClassVar[str] = "tc_maxpool_params"
    act_min: int
    act_max: int

    def validate(self) -> None:
        _check_pool_geometry(self)


@dataclass(frozen=True)
class AvgPoolParams(_PoolWindow):
    """tc_avgpool_params; see runtime_c/tc_pool.h for the two arithmetic modes.

    use_requant=0: TFLM AveragePool on raw values (out_zp/mult/shift ignored); with
    count_include_pad the divisor is k_h*k_w and each padded tap adds in_zp (real 0).
    use_requant=1: sum of (x - in_zp) requantized with (mult, shift), a multiplier for
    in_scale / (out_scale * k_h * k_w); needs count_include_pad or windows entirely inside the
    image. Global average pooling takes TFLite MEAN's (ops.reduce.mean_multiplier).
    """

    C_STRUCT: ClassVar[str] = "tc_avgpool_params"
    count_include_pad: int
    use_requant: int
    in_zp: int
    out_zp: int
    mult: int
    shift: int
    act_min: int
    act_max: int

    def validate(self) -> None:
        _check_pool_geometry(self)
        require(-128 <= self.in_zp <= 127, f"in_zp must be in [-128, 127], got {self.in_zp}")
        if not self.use_requant:
            return
        require(-128 <= self.out_zp <= 127, f"out_zp must be in [-128, 127], got {self.out_zp}")
        require(0 <= self.mult <= INT32_MAX and -31 <= self.shift <= 30,
                f"bad requantization multiplier ({self.mult}, {self.shift})")
        require(bool(self.count_include_pad)
                or (_pool_axis_inside(self.in_h, self.out_h, self.k_h, self.stride_h,
                                      self.pad_top)
                    and _pool_axis_inside(self.in_w, self.out_w, self.k_w, self.stride_w,
                                          self.pad_left)),
                "use_requant folds one divisor into the multiplier: windows must not cross the"
                " border unless count_include_pad is set")


def _pool_windows(p, x: np.ndarray, fill) -> np.ndarray:
    return windows(x, p.out_h, p.out_w, p.k_h, p.k_w, p.stride_h, p.stride_w, 1, 1,
                   p.pad_top, p.pad_left, fill=fill)


def maxpool_s8(p: MaxPoolParams, x) -> np.ndarray:
    """Mirror of tc_maxpool_s8: int8 [out_h][out_w][channels]."""
    p.validate()
    x = as_hwc(x, p.in_h, p.in_w, p.channels, "input").astype(np.int16)
    # Below any int8 value, so padded taps never win (every window has an in-image tap).
    win = _pool_windows(p, x, fill=-32768)
    return np.clip(win.max(axis=(2, 3)), p.act_min, p.act_max).astype(np.int8)


def avgpool_s8(p: AvgPoolParams, x) -> np.ndarray:
    """Mirror of tc_avgpool_s8: int8 [out_h][out_w][channels]."""
    p.validate()
    x = as_hwc(x, p.in_h, p.in_w, p.channels, "input").astype(np.int64)
    raw_sum = _pool_windows(p, x, fill=0).sum(axis=(2, 3))
    ones = np.ones((p.in_h, p.in_w, 1), dtype=np.int64)
    taps = _pool_windows(p, ones, fill=0).sum(axis=(2, 3))  # in-image taps, [out_h][out_w][1]
    if p.use_requant:
        return requantize_to_int8(raw_sum - taps * p.in_zp, p.mult, p.shift, p.out_zp,
                                  p.act_min, p.act_max)
    if p.count_include_pad:
        n = p.k_h * p.k_w
        acc = raw_sum + (n - taps) * p.in_zp
    else:
        n, acc = taps, raw_sum
    mean = np.where(acc > 0, trunc_div(acc + n // 2, n), trunc_div(acc - n // 2, n))
    return np.clip(mean, p.act_min, p.act_max).astype(np.int8)


# ---- C kernels (tinycc/kernels.py) ---------------------------------------------------------------
declare("tc_maxpool_s8", header="tc_pool.h", params=MaxPoolParams, golden=maxpool_s8, args=("in", "out"),
        sources=("tc_maxpool_s8.c",), variants=(Variant(DSP, ("tc_maxpool_s8_dsp.c",)),))
declare("tc_avgpool_s8", header="tc_pool.h", params=AvgPoolParams, golden=avgpool_s8, args=("in", "out"),
        sources=("tc_avgpool_s8.c",), variants=(Variant(DSP, ("tc_avgpool_s8_dsp.c",)),))
