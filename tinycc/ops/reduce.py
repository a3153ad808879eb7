"""ReduceMean / ReduceMax over any axes. Over the spatial axes of a 4-D tensor they import as
GlobalAveragePool / GlobalMaxPool; GlobalAveragePool / GlobalMaxPool of other ranks (1-D and 3-D
pooling heads) import as these. In int8 both run tc_reduce_s8 (TFLite Micro MEAN / REDUCE_MAX)."""
from __future__ import annotations

import numpy as np

from .common import bad_input, norm_axis
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

    def int8_output(self, g, node):
        # TFLite REDUCE_MAX keeps its input's params; MEAN gets its own (narrower) range
        return "same_as_input" if self.name == "ReduceMax" else "calibrated"

    def lower_int8(self, lc, node):
        return _lower_reduce_int8(self, lc, node)


register(type("ReduceMean", (_Reduce,), {"name": "ReduceMean"}))
register(type("ReduceMax", (_Reduce,), {"name": "ReduceMax"}))
GLOBAL_POOL = {"ReduceMean": "GlobalAveragePool", "ReduceMax": "GlobalMaxPool"}


@onnx_importer("ReduceMean", "ReduceMax")
def import_reduce(ctx, onode, attrs):
    x = onode.input[0]
    rank = len(ctx.shape(x))
    for name in ("keepdims", "noop_with_empty_axes"):
        if attrs.get(name, 0) not in (0, 1):  # ONNX shape inference reads anything but 1 as false
            raise bad_input(onode, f"{name}={attrs[name]} (must be 0 or 1)")
    if ctx.opset >= 18 and len(onode.input) > 1 and onode.input[1]:
        axes = ctx.require_const(onode, onode.input[1], "axes")
        if axes.ndim != 1:
            raise bad_input(onode, f"axes must be 1-D, not of shape {list(axes.shape)}")
        axes = [int(a) for a in axes]
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


# ---- int8 ---------------------------------------------------------------------------------------
def _lower_reduce_int8(self, lc, node):
    from ..golden import kernels_reduce as R
    from ..program import Arg
    from .common import unsupported_int8

    x, y = node.inputs[0], node.outputs[0]
    shape = lc.tensor(x).shape
    axes = tuple(node.attrs["axes"])
    s_in, zp_in = lc.qp(x)
    s_out, zp_out = lc.qp(y)
    try:
        if self.name == "ReduceMax":
            if (np.float32(s_in), zp_in) != (np.float32(s_out), zp_out):
                raise unsupported_int8(node, "different input and output quantization")
            p = R.ReduceParams.make(R.OP_MAX, shape, axes)
        else:
            count = int(np.prod([shape[a] for a in axes], dtype=np.int64))
            mult, shift = R.mean_multiplier(s_in, s_out, count)
            p = R.ReduceParams.make(R.OP_MEAN, shape, axes, zp_in, zp_out, mult, shift)
    except ValueError as exc:
        raise unsupported_int8(node, str(exc)) from None
    lc.add_step(node, "tc_reduce_s8", p, [Arg("in", x), Arg("out", y)], lambda xv: R.reduce_s8(p, xv))


def import_global_pool_as_reduce(ctx, onode) -> None:
    """GlobalAveragePool / GlobalMaxPool of a tensor that is not 4-D: a mean / max over every
    axis after the channels, keeping them (1-D heads such as AdaptiveAvgPool1d(1))."""
    rank = len(ctx.shape(onode.input[0]))
    op = {v: k for k, v in GLOBAL_POOL.items()}[onode.op_type]
    ctx.add(op, [onode.input[0]], [onode.output[0]], onode, axes=tuple(range(2, rank)), keepdims=1)


# ---- C kernels (tinycc/kernels.py): the runtime_c functions this module lowers to ------------
from ..golden import kernels_reduce as _KR  # noqa: E402
from ..kernels import declare  # noqa: E402

declare("tc_reduce_s8", header="tc_reduce.h", params=_KR.ReduceParams, args=("in", "out"),
        sources=("tc_reduce_s8.c",))
