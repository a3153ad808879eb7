"""Pooling: MaxPool, AveragePool (pads, ceil_mode, count_include_pad), GlobalAveragePool,
GlobalMaxPool. NCHW or NHWC via attrs['layout'].

Attrs of MaxPool/AveragePool: kernel, strides, dilations, pads (t, l, b, r: real padding),
ceil_extra (bottom, right: overflow windows of ceil_mode, never counted), count_include_pad.
"""
from __future__ import annotations

import numpy as np

from .common import ints, pool_out_size, spatial_pads, unsupported
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


@register
class MaxPool(OpDef):
    name = "MaxPool"
    layout_class = LayoutClass.SPATIAL

    def infer(self, g, node):
        return [_pool_shape(g, node)]

    def run_float(self, node, xs):
        return [_nhwc_wrap(node, xs[0], self._nchw)]

    def _nchw(self, node, x):
        best = None
        for patch, _ in _windows(x, node.attrs):
            p = np.where(np.isnan(patch), -np.inf, patch)
            best = p if best is None else np.maximum(best, p)
        return apply_act(best, node.attrs.get("act"))

    def to_nhwc(self, g, node):
        node.attrs["layout"] = "NHWC"


@register
class AveragePool(OpDef):
    name = "AveragePool"
    layout_class = LayoutClass.SPATIAL

    def infer(self, g, node):
        return [_pool_shape(g, node)]

    def run_float(self, node, xs):
        return [_nhwc_wrap(node, xs[0], self._nchw)]

    def _nchw(self, node, x):
        total = count = 0
        for patch, inpad in _windows(x, node.attrs):
            valid = ~np.isnan(patch)
            total = total + np.where(valid, patch, 0.0)
            count = count + (inpad[None, None] if node.attrs["count_include_pad"] else valid)
        return total / count

    def to_nhwc(self, g, node):
        node.attrs["layout"] = "NHWC"


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


register(type("GlobalAveragePool", (_GlobalPool,), {"name": "GlobalAveragePool"}))
register(type("GlobalMaxPool", (_GlobalPool,), {"name": "GlobalMaxPool"}))


@onnx_importer("MaxPool", "AveragePool")
def import_pool(ctx, onode, attrs):
    x = onode.input[0]
    shape = ctx.shape(x)
    if len(shape) != 4:
        raise unsupported(onode, f"{len(shape) - 2}-D pooling (2-D is supported)")
    if onode.op_type == "MaxPool" and len(onode.output) > 1 and onode.output[1]:
        raise unsupported(onode, "the Indices output")
    if attrs.get("storage_order", 0):
        raise unsupported(onode, "storage_order=1")
    k = tuple(attrs["kernel_shape"])
    strides = tuple(attrs.get("strides", [1, 1]))
    dil = tuple(attrs.get("dilations", [1, 1]))
    pads = spatial_pads(onode, attrs, shape[2:], k, strides, dil)
    ceil = bool(attrs.get("ceil_mode", 0))
    oh, eb = pool_out_size(shape[2], k[0], strides[0], dil[0], pads[0], pads[2], ceil)
    ow, er = pool_out_size(shape[3], k[1], strides[1], dil[1], pads[1], pads[3], ceil)
    if oh <= 0 or ow <= 0:
        raise unsupported(onode, f"pooling window larger than the input {shape}")
    extra = {"count_include_pad": bool(attrs.get("count_include_pad", 0))} if onode.op_type == "AveragePool" else {"act": None}
    ctx.add(onode.op_type, [x], [onode.output[0]], onode, kernel=ints(k), strides=ints(strides),
            dilations=ints(dil), pads=ints(pads), ceil_extra=(eb, er), layout="NCHW", **extra)


@onnx_importer("GlobalAveragePool", "GlobalMaxPool")
def import_global_pool(ctx, onode, attrs):
    if len(ctx.shape(onode.input[0])) != 4:
        raise unsupported(onode, "input that is not 4-D")
    ctx.add(onode.op_type, [onode.input[0]], [onode.output[0]], onode, layout="NCHW")
