"""ReduceMean / ReduceMax. Over the spatial axes of a 4-D tensor they import as
GlobalAveragePool / GlobalMaxPool."""
from __future__ import annotations

import numpy as np

from .common import norm_axis
from .registry import LayoutClass, OpDef, onnx_importer, register


class _Reduce(OpDef):
    layout_class = LayoutClass.AXIS
    axis_attrs = {"axes": "axes"}

    def infer(self, g, node):
        x = g.tensors[node.inputs[0]]
        axes = node.attrs["axes"]
        shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape)) if node.attrs["keepdims"] \
            else tuple(d for i, d in enumerate(x.shape) if i not in axes)
        return [(shape, x.dtype)]

    def run_float(self, node, xs):
        fn = np.mean if self.name == "ReduceMean" else np.max
        y = fn(xs[0].astype(np.float64), axis=tuple(node.attrs["axes"]), keepdims=bool(node.attrs["keepdims"]))
        return [np.asarray(y, dtype=np.float32)]


register(type("ReduceMean", (_Reduce,), {"name": "ReduceMean"}))
register(type("ReduceMax", (_Reduce,), {"name": "ReduceMax"}))
GLOBAL_POOL = {"ReduceMean": "GlobalAveragePool", "ReduceMax": "GlobalMaxPool"}


@onnx_importer("ReduceMean", "ReduceMax")
def import_reduce(ctx, onode, attrs):
    x = onode.input[0]
    rank = len(ctx.shape(x))
    if ctx.opset >= 18 and len(onode.input) > 1 and onode.input[1]:
        axes = [int(a) for a in ctx.require_const(onode, onode.input[1], "axes")]
    else:
        axes = list(attrs.get("axes", []))
    if not axes:
        if attrs.get("noop_with_empty_axes", 0):
            ctx.alias(x, onode.output[0], onode)
            return
        axes = list(range(rank))
    axes = tuple(sorted(norm_axis(a, rank, onode) for a in axes))
    keep = int(attrs.get("keepdims", 1))
    if rank == 4 and axes == (2, 3):
        y = ctx.add(GLOBAL_POOL[onode.op_type], [x], [onode.output[0]] if keep else None, onode, layout="NCHW")[0]
        if not keep:
            ctx.add("Reshape", [y], [onode.output[0]], onode, "squeeze", shape=tuple(ctx.shape(x)[:2]))
        return
    ctx.add(onode.op_type, [x], [onode.output[0]], onode, axes=axes, keepdims=keep)
