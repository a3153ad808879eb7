"""BatchNormalization (inference form): y = (x - mean) / sqrt(var + eps) * scale + bias on `axis`.

Normally folded into the preceding Conv/Dense (passes.fold_batchnorm); a standalone one is
rewritten into Mul + Add by passes.decompose_batchnorm.
"""
from __future__ import annotations

import numpy as np

from .common import bad_input, unsupported
from .registry import LayoutClass, OpDef, onnx_importer, register, same_as_input


def bn_scale_shift(scale, bias, mean, var, eps):
    """Per-channel (a, b) with y = a * x + b, in float64."""
    a = scale.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
    b = bias.astype(np.float64) - mean.astype(np.float64) * a
    return a, b


@register
class BatchNorm(OpDef):
    name = "BatchNorm"
    layout_class = LayoutClass.AXIS
    axis_attrs = {"axis": "axis"}

    def infer(self, g, node):
        return same_as_input(g, node)

    def run_float(self, node, xs):
        x = xs[0]
        a, b = bn_scale_shift(xs[1], xs[2], xs[3], xs[4], node.attrs["epsilon"])
        shape = [1] * x.ndim
        shape[node.attrs["axis"]] = -1
        return [(x * a.reshape(shape) + b.reshape(shape)).astype(np.float32)]


@onnx_importer("BatchNormalization")
def import_bn(ctx, onode, attrs):
    if len([o for o in onode.output if o]) > 1:
        raise unsupported(onode, "training-mode outputs (running mean/var)")
    if attrs.get("training_mode", 0):
        raise unsupported(onode, "training_mode=1")
    if len(ctx.shape(onode.input[0])) < 2:
        raise unsupported(onode, "input of rank < 2")
    channels = ctx.shape(onode.input[0])[1]
    for name, what in zip(onode.input[1:], ("scale", "bias", "mean", "var")):
        if ctx.require_const(onode, name, what).shape != (channels,):
            raise bad_input(onode, f"{what} of shape {list(ctx.const(name).shape)} for {channels} channels")
    epsilon = float(attrs.get("epsilon", 1e-5))
    if not np.all(ctx.const(onode.input[4]).astype(np.float64) + epsilon > 0):
        raise bad_input(onode, f"var + epsilon ({epsilon}) must be positive (its square root divides)")
    ctx.add("BatchNorm", list(onode.input[:5]), [onode.output[0]], onode,
            epsilon=epsilon, axis=1)
