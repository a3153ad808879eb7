"""Unary activations and Identity.

Relu and Clip are piecewise-linear clamps: the activation-fusion pass folds them into the
producer's `act` attribute. The others become lookup tables in int8.
"""
from __future__ import annotations

import numpy as np

from .common import bad_input, unsupported
from .registry import LayoutClass, OpDef, onnx_importer, register


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


FLOAT_FUNCS = {
    "Relu": lambda x, a: np.maximum(x, 0),
    "Clip": lambda x, a: np.clip(x, a["min"] if a["min"] is not None else -np.inf,
                                 a["max"] if a["max"] is not None else np.inf),
    "LeakyRelu": lambda x, a: np.where(x >= 0, x, x * a["alpha"]),
    "Sigmoid": lambda x, a: _sigmoid(x),
    "HardSigmoid": lambda x, a: np.clip(a["alpha"] * x + a["beta"], 0, 1),
    "HardSwish": lambda x, a: x * np.clip(x / 6.0 + 0.5, 0, 1),
    "Tanh": lambda x, a: np.tanh(x),
    "Identity": lambda x, a: x,
}


class _Unary(OpDef):
    layout_class = LayoutClass.ELEMENTWISE

    def infer(self, g, node):
        x = g.tensors[node.inputs[0]]
        return [(x.shape, x.dtype)]

    def run_float(self, node, xs):
        x = xs[0]
        if self.name == "Identity":
            return [x]
        y = FLOAT_FUNCS[self.name](x.astype(np.float64), node.attrs)
        return [np.asarray(y, dtype=np.float32)]

    def int8_output(self, g, node):
        return _int8_output(self, g, node)

    def lower_int8(self, lc, node):
        return _lower_unary_int8(self, lc, node)


for _name in FLOAT_FUNCS:
    register(type(_name, (_Unary,), {"name": _name}))


@onnx_importer("Relu", "Sigmoid", "HardSwish", "Tanh")
def import_simple(ctx, onode, attrs):
    ctx.add(onode.op_type, [onode.input[0]], [onode.output[0]], onode)


@onnx_importer("LeakyRelu")
def import_leaky(ctx, onode, attrs):
    ctx.add("LeakyRelu", [onode.input[0]], [onode.output[0]], onode, alpha=float(attrs.get("alpha", 0.01)))


@onnx_importer("HardSigmoid")
def import_hardsigmoid(ctx, onode, attrs):
    ctx.add("HardSigmoid", [onode.input[0]], [onode.output[0]], onode,
            alpha=float(attrs.get("alpha", 0.2)), beta=float(attrs.get("beta", 0.5)))


@onnx_importer("Clip")
def import_clip(ctx, onode, attrs):
    if ctx.opset < 11:
        lo, hi = attrs.get("min"), attrs.get("max")
    else:
        lo = hi = None
        if len(onode.input) > 1 and onode.input[1]:
            lo = ctx.require_const(onode, onode.input[1], "min")
        if len(onode.input) > 2 and onode.input[2]:
            hi = ctx.require_const(onode, onode.input[2], "max")
    if any(bound is not None and np.asarray(bound).size != 1 for bound in (lo, hi)):
        raise bad_input(onode, "min and max must be scalars")
    lo = None if lo is None else float(np.asarray(lo).reshape(()))
    hi = None if hi is None else float(np.asarray(hi).reshape(()))
    if any(bound is not None and np.isnan(bound) for bound in (lo, hi)) or lo == np.inf or hi == -np.inf:
        raise bad_input(onode, f"bounds [{lo}, {hi}] (NaN, or no finite value left)")
    lo = None if lo == -np.inf else lo  # an infinite bound clips nothing
    hi = None if hi == np.inf else hi
    if ctx.graph.tensors[onode.input[0]].dtype != "float32":
        raise unsupported(onode, "Clip on a non-float tensor")
    ctx.add("Clip", [onode.input[0]], [onode.output[0]], onode, min=lo, max=hi)


@onnx_importer("Identity")
def import_identity(ctx, onode, attrs):
    ctx.alias(onode.input[0], onode.output[0], onode)


@onnx_importer("Dropout")
def import_dropout(ctx, onode, attrs):
    if len(onode.output) > 1 and onode.output[1]:
        raise unsupported(onode, "the mask output of Dropout is used")
    # Opset 12+ inputs (data, ratio, training_mode): in training mode Dropout zeroes random
    # elements and scales the rest; only inference mode (or a ratio of 0) is the identity.
    if len(onode.input) > 2 and onode.input[2]:
        training = ctx.require_const(onode, onode.input[2], "training_mode")
        ratio_name = onode.input[1] if len(onode.input) > 1 else ""
        ratio = ctx.require_const(onode, ratio_name, "ratio") if ratio_name else np.float32(0.5)
        if bool(np.any(training)) and float(np.max(ratio)) != 0.0:
            raise unsupported(onode, "Dropout in training mode (random); export the model in inference mode")
    ctx.alias(onode.input[0], onode.output[0], onode)


@onnx_importer("Cast")
def import_cast(ctx, onode, attrs):
    src = ctx.graph.tensors[onode.input[0]].dtype
    import onnx

    to = onnx.helper.tensor_dtype_to_np_dtype(attrs["to"])
    if src == "float32" and to == np.float32:
        ctx.alias(onode.input[0], onode.output[0], onode)
        return
    raise unsupported(onode, f"Cast from {src} to {np.dtype(to)} on a run-time tensor")


# ---- int8: every activation is a 256-entry lookup table built offline ----------------------------
_FIXED_OUTPUT = {"Sigmoid": ("fixed", 1.0 / 256.0, -128), "Tanh": ("fixed", 1.0 / 128.0, 0)}


def _int8_output(self, g, node):
    if self.name == "Identity":
        return "same_as_input"
    return _FIXED_OUTPUT.get(self.name, "calibrated")


def _lower_unary_int8(self, lc, node):
    from ..golden import kernels_eltwise as E
    from ..program import Arg

    x, y = node.inputs[0], node.outputs[0]
    if self.name == "Identity":
        lc.view(y, x)
        return
    s_in, z_in = lc.qp(x)
    s_out, z_out = lc.qp(y)
    table = E.make_lut(lambda v: FLOAT_FUNCS[self.name](v, node.attrs), s_in, z_in, s_out, z_out)
    p = E.LutParams(size=lc.tensor(x).size)
    lc.add_step(node, "tc_lut_s8", p, [Arg("const", lc.blob(table, node, "lut")), Arg("in", x), Arg("out", y)],
                lambda t, xv: E.lut_s8(p, t, xv), inplace_inputs=(0,), note="lookup table")


# ---- C kernels (tinycc/kernels.py): the runtime_c functions this module lowers to ------------
from ..golden import kernels_eltwise as _KE  # noqa: E402
from ..kernels import declare  # noqa: E402

declare("tc_lut_s8", header="tc_eltwise.h", params=_KE.LutParams, args=("const", "in", "out"),  # table, in, out
        sources=("tc_lut_s8.c",))
