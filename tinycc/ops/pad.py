"""Pad (constant mode, non-negative pads).

int8: PadParams mirrors tc_pad_params, make_pad_params merges unpadded axes into the kernel's 4-D
form, pad_s8 is the bit-exact reference of tc_pad_s8. A zero Pad in front of a Conv is folded
into the conv's own padding (passes.fold.fold_pad, OpDef.absorb_zero_pad).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np

from ..errors import BadInput
from ..golden.arith import round_half_away
from ..golden.checks import Dims4, as_int8, check_dims4, is_int8, pad4, require
from ..kernels import declare
from ..program import Arg
from .common import norm_axis, unsupported, unsupported_int8
from .registry import NEW_ELEMENT_TYPES_23_TO_25, LayoutClass, OpDef, onnx_importer, register


# ---------------------------------------------------------------------------------------------
@register
class Pad(OpDef):
    """Constant padding; attrs pads = (begin_0..begin_{r-1}, end_0..end_{r-1}), value."""

    name = "Pad"
    layout_class = LayoutClass.AXIS
    axis_attrs = {"pads": "pads"}

    def infer(self, g, node):
        x = g.tensors[node.inputs[0]]
        r = len(x.shape)
        p = node.attrs["pads"]
        return [(tuple(d + p[i] + p[i + r] for i, d in enumerate(x.shape)), x.dtype)]

    def run_float(self, node, xs):
        r = xs[0].ndim
        p = node.attrs["pads"]
        return [np.pad(xs[0], [(p[i], p[i + r]) for i in range(r)], constant_values=node.attrs["value"])]

    def int8_output(self, g, node):
        return "same_as_input"

    def lower_int8(self, lc, node):
        x, y = node.inputs[0], node.outputs[0]
        s, zp = lc.qp(x)
        value = int(np.clip(round_half_away(node.attrs["value"] / s) + zp, -128, 127))
        r = len(lc.tensor(x).shape)
        pads = node.attrs["pads"]
        try:
            p = make_pad_params(lc.tensor(x).shape, pads[:r], pads[r:], value)
        except ValueError as exc:
            raise unsupported_int8(node, str(exc)) from None
        lc.add_step(node, "tc_pad_s8", p, [Arg("in", x), Arg("out", y)], lambda v: pad_s8(p, v))


@onnx_importer("Pad", revisions=NEW_ELEMENT_TYPES_23_TO_25)
def import_pad(ctx, onode, attrs):
    mode = attrs.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "constant":
        raise unsupported(onode, f"mode={mode!r} (constant padding is supported)")
    rank = len(ctx.shape(onode.input[0]))
    if ctx.opset >= 11:
        pads = [int(v) for v in ctx.require_const(onode, onode.input[1], "pads")]
        value = 0.0
        if len(onode.input) > 2 and onode.input[2]:
            value = float(np.asarray(ctx.require_const(onode, onode.input[2], "constant_value")).reshape(()))
        if len(onode.input) > 3 and onode.input[3]:
            axes = [norm_axis(int(a), rank, onode) for a in ctx.require_const(onode, onode.input[3], "axes")]
            full = [0] * (2 * rank)
            for k, a in enumerate(axes):
                full[a], full[a + rank] = pads[k], pads[k + len(axes)]
            pads = full
    else:
        pads, value = list(attrs["pads"]), float(attrs.get("value", 0.0))
    if len(pads) != 2 * rank:
        raise BadInput(f"Pad node {onode.name!r}: {len(pads)} pads for rank {rank}")
    if any(p < 0 for p in pads):
        raise unsupported(onode, f"negative pads {pads} (cropping)")
    if not np.isfinite(value):
        raise BadInput(f"Pad node {onode.name!r}: the constant value {value} is not a finite number")
    ctx.add("Pad", [onode.input[0]], [onode.output[0]], onode, pads=tuple(pads), value=value)


# ---- integer reference (runtime_c/tc_pad_s8.c) --------------------------------------------------
@dataclass(frozen=True)
class PadParams:
    """tc_pad_params: constant pad; pads after = out_dims - in_dims - pad_before."""

    C_STRUCT: ClassVar[str] = "tc_pad_params"
    in_dims: Dims4
    out_dims: Dims4
    pad_before: Dims4
    pad_value: int

    def validate(self) -> None:
        check_dims4(self.in_dims, "in_dims")
        require(is_int8(self.pad_value), f"pad_value must be int8, got {self.pad_value}")
        require(len(self.out_dims) == 4 and len(self.pad_before) == 4, "need 4 dimensions")
        for n, o, b in zip(self.in_dims, self.out_dims, self.pad_before):
            require(b >= 0 and o - n >= b, f"bad pad: in {self.in_dims} out {self.out_dims} "
                    f"before {self.pad_before}")


def make_pad_params(in_shape: Sequence[int], pads_begin: Sequence[int],
                    pads_end: Sequence[int], pad_value: int) -> PadParams:
    """Constant pad (ONNX Pad mode=constant with non-negative pads, TFLite PAD/PADV2).

    An unpadded axis is merged into the axis before it, so NHWC spatial padding copies whole
    W*C rows at a time.
    """
    require(len(in_shape) == len(pads_begin) == len(pads_end), "one pad pair per axis")
    merged: list[list[int]] = []        # [size, before, after]
    for n, b, e in zip(in_shape, pads_begin, pads_end):
        n, b, e = int(n), int(b), int(e)
        require(n >= 1 and b >= 0 and e >= 0, "sizes must be >= 1 and pads >= 0")
        if merged and b == 0 and e == 0:
            merged[-1] = [merged[-1][0] * n, merged[-1][1] * n, merged[-1][2] * n]
        else:
            merged.append([n, b, e])
    in_dims = pad4([m[0] for m in merged])
    before = pad4([m[1] for m in merged], fill=0)
    out_dims = pad4([m[0] + m[1] + m[2] for m in merged])
    p = PadParams(in_dims=in_dims, out_dims=out_dims, pad_before=before, pad_value=int(pad_value))
    p.validate()
    return p


def pad_s8(p: PadParams, x) -> np.ndarray:
    """Returns an array of shape p.out_dims."""
    p.validate()
    a = as_int8(x, int(np.prod(p.in_dims)), "input").reshape(p.in_dims)
    out = np.full(p.out_dims, p.pad_value, dtype=np.int8)
    out[tuple(slice(b, b + n) for b, n in zip(p.pad_before, p.in_dims))] = a
    return out


# ---- C kernels (tinycc/kernels.py) ---------------------------------------------------------------
declare("tc_pad_s8", header="tc_tensor.h", params=PadParams, golden=pad_s8,
        args=("in", "out"), sources=("tc_pad_s8.c",))
