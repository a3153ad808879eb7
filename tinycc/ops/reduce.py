"""ReduceMean / ReduceMax over any axes. Over the spatial axes of a 4-D tensor they import as
GlobalAveragePool / GlobalMaxPool; GlobalAveragePool / GlobalMaxPool of other ranks (1-D and 3-D
pooling heads) import as these. In int8 both run tc_reduce_s8 (TFLite Micro MEAN / REDUCE_MAX),
an int8 mean or max over any set of axes.

The mean is TFLite Micro's MEAN (tensorflow/lite/kernels/internal/reference/reduce.h,
QuantizedMeanOrSum): the sum of (x - in_zp) over the reduced elements, times a multiplier that
TFLM derives in two steps (`mean_multiplier`), not QuantizeMultiplier(s_in / (s_out * n)). The
max is TFLM's REDUCE_MAX on int8, which requires the same quantization in and out. ReduceParams
mirrors tc_reduce_params and reduce_s8 is the bit-exact reference of tc_reduce_s8.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..golden.arith import INT32_MAX, quantize_multiplier, requantize_to_int8
from ..golden.checks import require
from ..kernels import declare
from ..program import Arg
from .common import bad_input, norm_axis, unsupported_int8
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

    def keeps_nhwc(self, g, node):
        return bool(node.attrs["keepdims"])

    def int8_output(self, g, node):
        # TFLite REDUCE_MAX keeps its input's params; MEAN gets its own (narrower) range
        return "same_as_input" if self.name == "ReduceMax" else "calibrated"

    def lower_int8(self, lc, node):
        x, y = node.inputs[0], node.outputs[0]
        shape = lc.tensor(x).shape
        axes = tuple(node.attrs["axes"])
        s_in, zp_in = lc.qp(x)
        s_out, zp_out = lc.qp(y)
        try:
            if self.name == "ReduceMax":
                if (np.float32(s_in), zp_in) != (np.float32(s_out), zp_out):
                    raise unsupported_int8(node, "different input and output quantization")
                p = ReduceParams.make(OP_MAX, shape, axes)
            else:
                count = int(np.prod([shape[a] for a in axes], dtype=np.int64))
                mult, shift = mean_multiplier(s_in, s_out, count)
                p = ReduceParams.make(OP_MEAN, shape, axes, zp_in, zp_out, mult, shift)
        except ValueError as exc:
            raise unsupported_int8(node, str(exc)) from None
        lc.add_step(node, "tc_reduce_s8", p, [Arg("in", x), Arg("out", y)], lambda xv: reduce_s8(p, xv))


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


def import_global_pool_as_reduce(ctx, onode) -> None:
    """GlobalAveragePool / GlobalMaxPool of a tensor that is not 4-D: a mean / max over every
    axis after the channels, keeping them (1-D heads such as AdaptiveAvgPool1d(1))."""
    rank = len(ctx.shape(onode.input[0]))
    op = {v: k for k, v in GLOBAL_POOL.items()}[onode.op_type]
    ctx.add(op, [onode.input[0]], [onode.output[0]], onode, axes=tuple(range(2, rank)), keepdims=1)


# ---- integer reference (runtime_c/tc_reduce_s8.c) -----------------------------------------------
MAX_DIMS = 8  # TC_REDUCE_MAX_DIMS
MAX_COUNT = 1 << 23  # elements per output: |sum - in_zp * count| < 2^31 in int32
OP_MEAN, OP_MAX = 0, 1


def mean_multiplier(in_scale: float, out_scale: float, count: int) -> tuple[int, int]:
    """TFLM MEAN's (multiplier, shift) for the sum of `count` zero-point-corrected inputs.

    TFLM first takes QuantizeMultiplier(s_in / s_out) (float32 scales divided in double), then
    folds 1/count in: with k = floor(log2(count)) capped at 32 and at 31 + shift, the multiplier
    becomes (mult << k) // count in int64 and the shift shift - k. The result differs from
    QuantizeMultiplier(s_in / (s_out * count)) in the last bits, which moves outputs by one LSB."""
    if count < 1:
        raise ValueError(f"a mean needs at least one element, got {count}")
    mult, shift = quantize_multiplier(float(np.float64(np.float32(in_scale)) / np.float64(np.float32(out_scale))))
    k = min(count.bit_length() - 1, 32, 31 + shift)
    return int((mult << k) // count), shift - k


def merge_axes(shape, axes) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(dims, reduced flags) of the same reduction over fewer axes: size-1 axes dropped and
    neighbouring axes that are both reduced or both kept merged (row-major order is kept)."""
    dims: list[int] = []
    flags: list[int] = []
    for i, d in enumerate(shape):
        if d == 1:
            continue
        r = int(i in axes)
        if flags and flags[-1] == r:
            dims[-1] *= int(d)
        else:
            dims.append(int(d))
            flags.append(r)
    if not dims:
        dims, flags = [1], [1]
    return tuple(dims), tuple(flags)


@dataclass(frozen=True)
class ReduceParams:
    """tc_reduce_params (runtime_c/tc_reduce.h). dims/reduced are padded to MAX_DIMS."""

    C_STRUCT: ClassVar[str] = "tc_reduce_params"
    op: int
    rank: int
    dims: tuple[int, ...]
    reduced: tuple[int, ...]
    count: int
    in_zp: int
    out_zp: int
    mult: int
    shift: int

    @classmethod
    def make(cls, op: int, shape, axes, in_zp: int = 0, out_zp: int = 0, mult: int = 0,
             shift: int = 0) -> "ReduceParams":
        dims, flags = merge_axes(shape, axes)
        require(len(dims) <= MAX_DIMS, f"reduction over {len(dims)} alternating axis groups "
                f"(at most {MAX_DIMS})")
        count = int(np.prod([d for d, r in zip(dims, flags) if r], dtype=np.int64))
        pad = MAX_DIMS - len(dims)
        return cls(op, len(dims), dims + (1,) * pad, flags + (0,) * pad, count, int(in_zp), int(out_zp),
                   int(mult), int(shift))

    def validate(self) -> None:
        require(self.op in (OP_MEAN, OP_MAX), f"op must be {OP_MEAN} (mean) or {OP_MAX} (max)")
        require(1 <= self.rank <= MAX_DIMS, f"rank must be in [1, {MAX_DIMS}]")
        require(len(self.dims) == MAX_DIMS and len(self.reduced) == MAX_DIMS, "dims/reduced need MAX_DIMS entries")
        require(all(d >= 1 for d in self.dims[:self.rank]), "dims must be >= 1")
        require(all(r in (0, 1) for r in self.reduced[:self.rank]), "reduced flags must be 0 or 1")
        total = int(np.prod(self.dims[:self.rank], dtype=np.int64))
        require(total <= INT32_MAX, "the input must have fewer than 2^31 elements")
        count = int(np.prod([d for d, r in zip(self.dims[:self.rank], self.reduced) if r], dtype=np.int64))
        require(count == self.count, f"count {self.count} is not the product of the reduced dims ({count})")
        require(1 <= self.count <= MAX_COUNT, f"at most {MAX_COUNT} elements per output, got {self.count}")
        require(-128 <= self.in_zp <= 127 and -128 <= self.out_zp <= 127, "zero points must be in [-128, 127]")
        if self.op == OP_MEAN:
            require(0 <= self.mult <= INT32_MAX, "the multiplier must be in [0, 2^31-1]")
            require(-31 <= self.shift <= 30, "the shift must be in [-31, 30]")

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.dims[:self.rank])

    @property
    def axes(self) -> tuple[int, ...]:
        return tuple(i for i in range(self.rank) if self.reduced[i])


def reduce_s8(p: ReduceParams, x) -> np.ndarray:
    """Mirror of tc_reduce_s8: int8 outputs in row-major order of the kept axes."""
    p.validate()
    x = np.asarray(x)
    require(x.size == int(np.prod(p.in_shape)), f"input has {x.size} values, expected {int(np.prod(p.in_shape))}")
    v = x.reshape(p.in_shape).astype(np.int64)
    if p.op == OP_MAX:
        return v.max(axis=p.axes).astype(np.int8).reshape(-1)
    acc = v.sum(axis=p.axes) - p.in_zp * p.count
    return requantize_to_int8(acc, p.mult, p.shift, p.out_zp).reshape(-1)


# ---- C kernels (tinycc/kernels.py) ---------------------------------------------------------------
declare("tc_reduce_s8", header="tc_reduce.h", params=ReduceParams, golden=reduce_s8, args=("in", "out"),
        sources=("tc_reduce_s8.c",))
