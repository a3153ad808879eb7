"""Softmax and LogSoftmax along one axis (opset < 13 semantics are imported via Reshape)."""
from __future__ import annotations

import numpy as np

from .common import norm_axis
from .registry import LayoutClass, OpDef, onnx_importer, register


class _SoftmaxBase(OpDef):
    layout_class = LayoutClass.AXIS
    axis_attrs = {"axis": "axis"}

    def infer(self, g, node):
        x = g.tensors[node.inputs[0]]
        return [(x.shape, x.dtype)]

    def run_float(self, node, xs):
        x = xs[0].astype(np.float64)
        ax = node.attrs["axis"]
        z = x - x.max(axis=ax, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=ax, keepdims=True))
        y = z - lse if self.name == "LogSoftmax" else np.exp(z - lse)
        return [y.astype(np.float32)]

    def int8_output(self, g, node):
        return _int8_output(self, g, node)

    def lower_int8(self, lc, node):
        return _lower_softmax_int8(self, lc, node)


register(type("Softmax", (_SoftmaxBase,), {"name": "Softmax"}))
register(type("LogSoftmax", (_SoftmaxBase,), {"name": "LogSoftmax"}))


@onnx_importer("Softmax", "LogSoftmax")
def import_softmax(ctx, onode, attrs):
    x = onode.input[0]
    shape = ctx.shape(x)
    rank = len(shape)
    default = -1 if ctx.opset >= 13 else 1
    axis = norm_axis(int(attrs.get("axis", default)), rank, onode)
    if ctx.opset >= 13 or axis == rank - 1:
        ctx.add(onode.op_type, [x], [onode.output[0]], onode, axis=axis)
        return
    # opset < 13: softmax over the flattened trailing dims [axis:]
    flat = (int(np.prod(shape[:axis])), int(np.prod(shape[axis:])))
    y = ctx.add("Reshape", [x], None, onode, "flatten", shape=flat)[0]
    y = ctx.add(onode.op_type, [y], None, onode, axis=1)[0]
    ctx.add("Reshape", [y], [onode.output[0]], onode, "unflatten", shape=tuple(shape))


# ---- int8 ---------------------------------------------------------------------------------------
_FIXED_OUTPUT = {"Softmax": ("fixed", 1.0 / 256.0, -128), "LogSoftmax": ("fixed", 16.0 / 256.0, 127)}


def _int8_output(self, g, node):
    return _FIXED_OUTPUT[self.name]


def _lower_softmax_int8(self, lc, node):
    from ..errors import Unsupported
    from ..golden import kernels_eltwise as E
    from ..program import Arg

    x, y = node.inputs[0], node.outputs[0]
    shape = lc.tensor(x).shape
    if node.attrs["axis"] != len(shape) - 1:
        raise Unsupported(f"{self.name} node {node.onnx_name or node.name!r}: int8 {self.name.lower()} "
                          "over a non-innermost axis")
    s_in, _ = lc.qp(x)
    s_out, zp_out = lc.qp(y)
    outer, depth = int(np.prod(shape[:-1])), shape[-1]
    if self.name == "LogSoftmax":
        _lower_log_softmax_int8(lc, node, s_in, s_out, zp_out, outer, depth)
        return
    try:
        p = E.make_softmax_params(s_in, outer, depth)
    except ValueError as exc:  # an input scale below 2^-26 (TFLM's QuantizeMultiplierGreaterThanOne CHECK)
        raise Unsupported(f"Softmax node {node.onnx_name or node.name!r}: {exc}") from None
    if (np.float32(s_out), zp_out) == (np.float32(E.SOFTMAX_OUTPUT_SCALE), E.SOFTMAX_OUTPUT_ZERO_POINT):
        lc.add_step(node, "tc_softmax_s8", p, [Arg("in", x), Arg("out", y)], lambda xv: E.softmax_s8(p, xv),
                    inplace_inputs=(0,))
        return
    # Other output params (onnxruntime's quantize_static): TFLite's softmax into its fixed
    # (1/256, -128), then requantized to the model's params (at most one more rounding).
    tmp = _fixed_softmax_tensor(lc, y)
    lc.add_step(node, "tc_softmax_s8", p, [Arg("in", x), Arg("out", tmp)], lambda xv: E.softmax_s8(p, xv),
                inplace_inputs=(0,))
    r = E.make_requantize_params(E.SOFTMAX_OUTPUT_SCALE, E.SOFTMAX_OUTPUT_ZERO_POINT, s_out, zp_out,
                                 outer * depth)
    lc.add_step(node, "tc_requantize_s8", r, [Arg("in", tmp), Arg("out", y)], lambda tv: E.requantize_s8(r, tv),
                inplace_inputs=(0,), note="softmax output params")


def _fixed_softmax_tensor(lc, y: str) -> str:
    """A program tensor like `y` with TFLite's softmax output params (1/256, -128)."""
    from dataclasses import replace

    from ..golden import kernels_eltwise as E
    from ..quant.params import fixed_qparams

    name = f"{y}/softmax_1_256"
    info = lc.program.tensors[y]
    lc.program.tensors[name] = replace(info, name=name, quant=fixed_qparams(E.SOFTMAX_OUTPUT_SCALE,
                                                                             E.SOFTMAX_OUTPUT_ZERO_POINT))
    return name


def _lower_log_softmax_int8(lc, node, s_in, s_out, zp_out, outer, depth):
    """Integer log-softmax (tc_log_softmax.h) with an exp(-k * s_in) table as a constant blob.

    The quantizer assigns TFLite's (16/256, 127); pre-quantized models may bring any output
    quantization the kernel's multipliers can express."""
    from ..errors import Unsupported
    from ..golden import kernels_eltwise as E
    from ..program import Arg

    x, y = node.inputs[0], node.outputs[0]
    try:
        p = E.make_log_softmax_params(s_in, outer, depth, s_out, zp_out)
    except ValueError as exc:
        raise Unsupported(f"LogSoftmax node {node.onnx_name or node.name!r}: {exc}") from None
    table = E.make_log_softmax_exp_table(s_in)
    args = [Arg("const", lc.blob(table, node, "exp")), Arg("in", x), Arg("out", y)]
    lc.add_step(node, "tc_log_softmax_s8", p, args, lambda t, xv: E.log_softmax_s8(p, t, xv),
                inplace_inputs=(0,), note="exp table")


# ---- C kernels (tinycc/kernels.py): the runtime_c functions this module lowers to ------------
from ..golden import kernels_eltwise as _KE  # noqa: E402
from ..kernels import declare  # noqa: E402

declare("tc_softmax_s8", header="tc_eltwise.h", params=_KE.SoftmaxParams, args=("in", "out"),
        sources=("tc_softmax_s8.c",))
declare("tc_log_softmax_s8", header="tc_log_softmax.h", params=_KE.LogSoftmaxParams,
        args=("const", "in", "out"), sources=("tc_log_softmax_s8.c",))  # exp table, in, out
declare("tc_requantize_s8", header="tc_tensor.h", params=_KE.RequantizeParams, args=("in", "out"),
        sources=("tc_requantize_s8.c",))
