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
from .common import bad_input, norm_axis, unsupported, unsupported_int8
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
        fn = {"ReduceMean": np.mean, "ReduceMax": np.max, "ReduceSum": np.sum, "ReduceMin": np.min}[self.name]
        y = fn(xs[0].astype(np.float64), axis=tuple(node.attrs["axes"]), keepdims=bool(node.attrs["keepdims"]))
        return [np.asarray(y, dtype=np.float32)]

    def keeps_nhwc(self, g, node):
        return bool(node.attrs["keepdims"])

    def int8_output(self, g, node):
        # TFLite REDUCE_MAX / REDUCE_MIN keep their input's params; MEAN and SUM get their own range
        return "same_as_input" if self.name in ("ReduceMax", "ReduceMin") else "calibrated"

    def lower_int8(self, lc, node):
        x, y = node.inputs[0], node.outputs[0]
        shape = lc.tensor(x).shape
        axes = tuple(node.attrs["axes"])
        s_in, zp_in = lc.qp(x)
        s_out, zp_out = lc.qp(y)
        try:
            if self.name == "ReduceMin":
                if (np.float32(s_in), zp_in) != (np.float32(s_out), zp_out):
                    raise unsupported_int8(node, "different input and output quantization")
                p = ReduceExtParams.make(OP_MIN, shape, axes)
                lc.add_step(node, "tc_reduce_ext_s8", p, [Arg("in", x), Arg("out", y)],
                            lambda xv: reduce_ext_s8(p, xv))
                return
            if self.name == "ReduceSum":
                # TFLM SUM (QuantizedMeanOrSum, compute_sum): QuantizeMultiplier(s_in / s_out)
                mult, shift = quantize_multiplier(float(np.float64(np.float32(s_in)) / np.float64(np.float32(s_out))))
                p = ReduceParams.make(OP_MEAN, shape, axes, zp_in, zp_out, mult, shift)
            elif self.name == "ReduceMax":
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


for _name in ("ReduceMean", "ReduceMax", "ReduceSum", "ReduceMin"):
    register(type(_name, (_Reduce,), {"name": _name}))
GLOBAL_POOL = {"ReduceMean": "GlobalAveragePool", "ReduceMax": "GlobalMaxPool"}
# the opset from which the axes are an input rather than an attribute
AXES_INPUT_SINCE = {"ReduceMean": 18, "ReduceMax": 18, "ReduceMin": 18, "ReduceSum": 13}


@onnx_importer("ReduceMean", "ReduceMax", "ReduceSum", "ReduceMin")
def import_reduce(ctx, onode, attrs):
    x = onode.input[0]
    rank = len(ctx.shape(x))
    if ctx.graph.tensors[x].dtype != "float32":
        raise unsupported(onode, f"{onode.op_type} of a {ctx.graph.tensors[x].dtype} tensor (float tensors expected)")
    for name in ("keepdims", "noop_with_empty_axes"):
        if attrs.get(name, 0) not in (0, 1):  # ONNX shape inference reads anything but 1 as false
            raise bad_input(onode, f"{name}={attrs[name]} (must be 0 or 1)")
    if ctx.opset >= AXES_INPUT_SINCE[onode.op_type] and len(onode.input) > 1 and onode.input[1]:
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
    if rank == 4 and axes == (2, 3) and onode.op_type in GLOBAL_POOL:
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
OP_MIN, OP_ARGMAX, OP_ARGMIN = 2, 3, 4  # tc_reduce_ext.h
ARG_MAX_COUNT = 128  # TC_REDUCE_ARG_MAX_COUNT: an index must fit an int8 code


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
        self.validate_shape()

    def validate_ext(self) -> None:
        """The checks of tc_reduce_ext_s8 (min, arg max, arg min)."""
        require(self.op in (OP_MIN, OP_ARGMAX, OP_ARGMIN), f"op must be {OP_MIN}, {OP_ARGMAX} or {OP_ARGMIN}")
        self.validate_shape()
        require(self.op == OP_MIN or self.count <= ARG_MAX_COUNT,
                f"an index over more than {ARG_MAX_COUNT} elements does not fit an int8 output (got {self.count})")

    def validate_shape(self) -> None:
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


@dataclass(frozen=True)
class ReduceExtParams(ReduceParams):
    """tc_reduce_params for tc_reduce_ext_s8 (runtime_c/tc_reduce_ext.h): min, arg max, arg min."""

    def validate(self) -> None:
        self.validate_ext()


def reduce_ext_s8(p: ReduceExtParams, x) -> np.ndarray:
    """Mirror of tc_reduce_ext_s8: int8 outputs (values, or first indices) in row-major order of
    the kept axes."""
    p.validate()
    x = np.asarray(x)
    require(x.size == int(np.prod(p.in_shape)), f"input has {x.size} values, expected {int(np.prod(p.in_shape))}")
    v = x.reshape(p.in_shape).astype(np.int64)
    kept = tuple(i for i in range(p.rank) if not p.reduced[i])
    # reduced axes last, in order: each output's values in the order the C odometer visits them
    rows = v.transpose(kept + p.axes).reshape(-1, p.count)
    if p.op == OP_MIN:
        return rows.min(axis=1).astype(np.int8)
    fn = np.argmax if p.op == OP_ARGMAX else np.argmin  # the first of equal values, as C
    return fn(rows, axis=1).astype(np.int8)


class _Arg(OpDef):
    """ArgMax / ArgMin over one axis; the int64 index is exposed in int8 as a tensor with scale 1
    and zero point 0 (its code is the index: axes of at most 128 elements)."""

    layout_class = LayoutClass.AXIS
    axis_attrs = {"axis": "axis"}

    def infer(self, g, node):
        x = g.tensors[node.inputs[0]]
        a = node.attrs["axis"]
        shape = tuple(1 if i == a else d for i, d in enumerate(x.shape)) if node.attrs["keepdims"] \
            else tuple(d for i, d in enumerate(x.shape) if i != a)
        return [(shape, "int64")]

    def run_float(self, node, xs):
        x = np.asarray(xs[0])
        a = node.attrs["axis"]
        if node.attrs["select_last_index"]:
            flipped = np.flip(x, axis=a)
            fn = np.argmax if self.name == "ArgMax" else np.argmin
            idx = x.shape[a] - 1 - fn(flipped, axis=a)
        else:
            idx = (np.argmax if self.name == "ArgMax" else np.argmin)(x, axis=a)
        if node.attrs["keepdims"]:
            idx = np.expand_dims(idx, a)
        return [np.asarray(idx, dtype=np.int64)]

    def keeps_nhwc(self, g, node):
        return bool(node.attrs["keepdims"])

    def int8_output(self, g, node):
        return ("fixed", 1.0, 0)

    def lower_int8(self, lc, node):
        x, y = node.inputs[0], node.outputs[0]
        if node.attrs["select_last_index"]:
            raise unsupported_int8(node, "select_last_index=1")
        op = OP_ARGMAX if self.name == "ArgMax" else OP_ARGMIN
        try:
            p = ReduceExtParams.make(op, lc.tensor(x).shape, (node.attrs["axis"],))
            p.validate()
        except ValueError as exc:
            raise unsupported_int8(node, str(exc)) from None
        lc.add_step(node, "tc_reduce_ext_s8", p, [Arg("in", x), Arg("out", y)], lambda xv: reduce_ext_s8(p, xv))


register(type("ArgMax", (_Arg,), {"name": "ArgMax"}))
register(type("ArgMin", (_Arg,), {"name": "ArgMin"}))


@onnx_importer("ArgMax", "ArgMin")
def import_arg(ctx, onode, attrs):
    x = onode.input[0]
    if ctx.graph.tensors[x].dtype != "float32":
        raise unsupported(onode, f"{onode.op_type} of a {ctx.graph.tensors[x].dtype} tensor (float tensors expected)")
    for name in ("keepdims", "select_last_index"):
        if attrs.get(name, 0) not in (0, 1):
            raise bad_input(onode, f"{name}={attrs[name]} (must be 0 or 1)")
    axis = norm_axis(int(attrs.get("axis", 0)), len(ctx.shape(x)), onode)
    ctx.add(onode.op_type, [x], [onode.output[0]], onode, axis=axis, keepdims=int(attrs.get("keepdims", 1)),
            select_last_index=int(attrs.get("select_last_index", 0)))


# ---- C kernels (tinycc/kernels.py) ---------------------------------------------------------------
declare("tc_reduce_s8", header="tc_reduce.h", params=ReduceParams, golden=reduce_s8, args=("in", "out"),
        sources=("tc_reduce_s8.c",))
declare("tc_reduce_ext_s8", header="tc_reduce_ext.h", params=ReduceExtParams, golden=reduce_ext_s8,
        args=("in", "out"), sources=("tc_reduce_ext_s8.c",))
