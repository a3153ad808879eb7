"""Softmax and LogSoftmax along one axis (opset < 13 semantics are imported via Reshape).

int8: Softmax is TFLite Micro's (reference_ops softmax.h, gemmlowp fixed point, output fixed at
(1/256, -128)); LogSoftmax is tinycc's own integer kernel (exp table + integer log2, output
(16/256, 127) by default). Over an axis other than the innermost, int8 transposes that axis
innermost, runs the same kernel and transposes back. Params, make_* and the bit-exact
references are at the end.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from ..errors import Unsupported
from ..golden.arith import INT32_MAX, quantize_multiplier, rdbpot, round_half_away, srdhm
from ..golden.checks import as_int8, checked_scale, f32, is_int8, require
from ..golden.fixedpoint import fp_exp_on_negative_values_q5, fp_get_reciprocal
from ..kernels import declare
from ..program import Arg
from ..quant.params import fixed_qparams
from .common import norm_axis
from .requantize import make_requantize_params, requantize_s8
from .shape import make_transpose_params, transpose_s8

# Output quantization fixed by the TFLite spec; the compiler must assign exactly this.
SOFTMAX_OUTPUT_SCALE = 1.0 / 256.0
SOFTMAX_OUTPUT_ZERO_POINT = -128
# TFLite fixes LOG_SOFTMAX's output to (16/256, 127); the kernel accepts any output scale.
LOG_SOFTMAX_OUTPUT_SCALE = 16.0 / 256.0
LOG_SOFTMAX_OUTPUT_ZERO_POINT = 127
from .registry import LayoutClass, OpDef, onnx_importer, register, same_as_input


class _SoftmaxBase(OpDef):
    layout_class = LayoutClass.AXIS
    axis_attrs = {"axis": "axis"}

    def infer(self, g, node):
        return same_as_input(g, node)

    def run_float(self, node, xs):
        x = xs[0].astype(np.float64)
        ax = node.attrs["axis"]
        z = x - x.max(axis=ax, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=ax, keepdims=True))
        y = z - lse if self.name == "LogSoftmax" else np.exp(z - lse)
        return [y.astype(np.float32)]

    def int8_output(self, g, node):
        return _FIXED_OUTPUT[self.name]

    def lower_int8(self, lc, node):
        x, y = node.inputs[0], node.outputs[0]
        shape = lc.tensor(x).shape
        axis = node.attrs["axis"]
        qparams = (lc.qp(x)[0], *lc.qp(y))
        if axis == len(shape) - 1:
            self._lower_last_axis(lc, node, x, y, shape, *qparams)
            return
        # Over another axis: transpose that axis innermost, the innermost kernel, transpose back
        # (two copies of the tensor; the kernels stay TFLM's, and the result is the same integers
        # a strided kernel would give, since each row is the same set of values).
        perm = [a for a in range(len(shape)) if a != axis] + [axis]
        back = [perm.index(a) for a in range(len(shape))]
        moved = tuple(shape[a] for a in perm)
        try:
            to_last, from_last = make_transpose_params(shape, perm), make_transpose_params(moved, back)
        except ValueError as exc:
            raise Unsupported(f"{self.name} node {node.onnx_name or node.name!r}: {exc}") from None
        xt = _internal_tensor(lc, x, f"{y}/{self.name.lower()}_in_t", moved)
        yt = _internal_tensor(lc, y, f"{y}/{self.name.lower()}_out_t", moved)
        lc.add_step(node, "tc_transpose_s8", to_last, [Arg("in", x), Arg("out", xt)],
                    lambda v: transpose_s8(to_last, v), note=f"axis {axis} innermost")
        self._lower_last_axis(lc, node, xt, yt, moved, *qparams)
        lc.add_step(node, "tc_transpose_s8", from_last, [Arg("in", yt), Arg("out", y)],
                    lambda v: transpose_s8(from_last, v), note=f"axis {axis} back")

    def _lower_last_axis(self, lc, node, x, y, shape, s_in, s_out, zp_out):
        outer, depth = int(np.prod(shape[:-1])), shape[-1]
        if self.name == "LogSoftmax":
            _lower_log_softmax_int8(lc, node, x, y, s_in, s_out, zp_out, outer, depth)
            return
        try:
            p = make_softmax_params(s_in, outer, depth)
        except ValueError as exc:  # an input scale below 2^-26 (TFLM's QuantizeMultiplierGreaterThanOne CHECK)
            raise Unsupported(f"Softmax node {node.onnx_name or node.name!r}: {exc}") from None
        if (np.float32(s_out), zp_out) == (np.float32(SOFTMAX_OUTPUT_SCALE), SOFTMAX_OUTPUT_ZERO_POINT):
            lc.add_step(node, "tc_softmax_s8", p, [Arg("in", x), Arg("out", y)], lambda xv: softmax_s8(p, xv),
                        inplace_inputs=(0,))
            return
        # Other output params (onnxruntime's quantize_static): TFLite's softmax into its fixed
        # (1/256, -128), then requantized to the model's params (at most one more rounding).
        tmp = _fixed_softmax_tensor(lc, y)
        lc.add_step(node, "tc_softmax_s8", p, [Arg("in", x), Arg("out", tmp)], lambda xv: softmax_s8(p, xv),
                    inplace_inputs=(0,))
        r = make_requantize_params(SOFTMAX_OUTPUT_SCALE, SOFTMAX_OUTPUT_ZERO_POINT, s_out, zp_out, outer * depth)
        lc.add_step(node, "tc_requantize_s8", r, [Arg("in", tmp), Arg("out", y)], lambda tv: requantize_s8(r, tv),
                    inplace_inputs=(0,), note="softmax output params")


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


# ---- int8 lowering helpers ----------------------------------------------------------------------
_FIXED_OUTPUT = {"Softmax": ("fixed", SOFTMAX_OUTPUT_SCALE, SOFTMAX_OUTPUT_ZERO_POINT),
                 "LogSoftmax": ("fixed", LOG_SOFTMAX_OUTPUT_SCALE, LOG_SOFTMAX_OUTPUT_ZERO_POINT)}


def _fixed_softmax_tensor(lc, y: str) -> str:
    """A program tensor like `y` with TFLite's softmax output params (1/256, -128)."""
    name = f"{y}/softmax_1_256"
    info = lc.program.tensors[y]
    lc.program.tensors[name] = replace(info, name=name, quant=fixed_qparams(SOFTMAX_OUTPUT_SCALE, SOFTMAX_OUTPUT_ZERO_POINT))
    return name


def _internal_tensor(lc, like: str, name: str, shape) -> str:
    """A program tensor of `shape` with the quantization of `like` (a transposed copy)."""
    info = lc.program.tensors[like]
    lc.program.tensors[name] = replace(info, name=name, shape=tuple(shape), perm=None, logical_shape=tuple(shape))
    return name


def _lower_log_softmax_int8(lc, node, x, y, s_in, s_out, zp_out, outer, depth):
    """Integer log-softmax (tc_log_softmax.h) with an exp(-k * s_in) table as a constant blob.

    The quantizer assigns TFLite's (16/256, 127); pre-quantized models may bring any output
    quantization the kernel's multipliers can express."""
    try:
        p = make_log_softmax_params(s_in, outer, depth, s_out, zp_out)
    except ValueError as exc:
        raise Unsupported(f"LogSoftmax node {node.onnx_name or node.name!r}: {exc}") from None
    table = make_log_softmax_exp_table(s_in)
    args = [Arg("const", lc.blob(table, node, "exp")), Arg("in", x), Arg("out", y)]
    lc.add_step(node, "tc_log_softmax_s8", p, args, lambda t, xv: log_softmax_s8(p, t, xv),
                inplace_inputs=(0,), note="exp table")


# ---- integer reference (runtime_c/tc_softmax_s8.c: TFLM; tc_log_softmax_s8.c) --------------------
SOFTMAX_SCALED_DIFF_INTEGER_BITS = 5
SOFTMAX_ACCUMULATION_INTEGER_BITS = 12


@dataclass(frozen=True)
class SoftmaxParams:
    """tc_softmax_params: softmax over the last axis, output (1/256, -128)."""

    C_STRUCT: ClassVar[str] = "tc_softmax_params"
    input_multiplier: int
    input_left_shift: int
    diff_min: int
    outer: int
    depth: int

    def validate(self) -> None:
        require(self.outer >= 0 and self.depth >= 1, "need outer >= 0 and depth >= 1")
        require(0 <= self.input_multiplier <= INT32_MAX and 0 <= self.input_left_shift <= 31,
                "input_multiplier must be >= 0 and input_left_shift in [0, 31]")
        require(self.diff_min <= 0, f"diff_min must be <= 0, got {self.diff_min}")
        require((-self.diff_min) << self.input_left_shift <= INT32_MAX,
                "diff_min << input_left_shift must fit in int32")


def _quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    """TFLM QuantizeMultiplierGreaterThanOne: real > 1, shift in [0, 31]."""
    require(real > 1.0, f"softmax input multiplier {real!r} must exceed 1")
    q, shift = math.frexp(real)
    q_fixed = int(round_half_away(q * (1 << 31)))
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    return q_fixed, shift


def make_softmax_params(in_scale: float, outer: int, depth: int,
                        beta: float = 1.0) -> SoftmaxParams:
    """TFLM CalculateSoftmaxParams for int8: PreprocessSoftmaxScaling + CalculateInputRadius."""
    bits = SOFTMAX_SCALED_DIFF_INTEGER_BITS
    real = min(f32(beta) * checked_scale(in_scale, "in_scale") * (1 << (31 - bits)),
               float((1 << 31) - 1))
    mult, left_shift = _quantize_multiplier_greater_than_one(real)
    radius = math.floor(1.0 * ((1 << bits) - 1) * (1 << (31 - bits)) / (1 << left_shift))
    p = SoftmaxParams(input_multiplier=mult, input_left_shift=left_shift, diff_min=-radius,
                      outer=int(outer), depth=int(depth))
    p.validate()
    return p


def softmax_s8(p: SoftmaxParams, x) -> np.ndarray:
    """TFLM reference int8 softmax over rows of `depth`; returns an array shaped like x."""
    p.validate()
    rows = as_int8(x, p.outer * p.depth, "input").reshape(p.outer, p.depth).astype(np.int64)
    diff = rows - rows.max(axis=1, keepdims=True)
    in_range = diff >= p.diff_min
    # Differences below diff_min are never rescaled (they could overflow); 0 stands in.
    shifted = np.where(in_range, diff, 0) << p.input_left_shift
    exp_q0 = fp_exp_on_negative_values_q5(srdhm(shifted, p.input_multiplier))
    terms = np.where(in_range, rdbpot(exp_q0, SOFTMAX_ACCUMULATION_INTEGER_BITS), 0)
    # Terms are >= 0, so the C kernel's saturating running sum is min(sum, INT32_MAX).
    sum_of_exps = np.minimum(terms.sum(axis=1, keepdims=True), INT32_MAX)
    shifted_scale, num_bits_over_unit = fp_get_reciprocal(sum_of_exps,
                                                          SOFTMAX_ACCUMULATION_INTEGER_BITS)
    exponent = num_bits_over_unit + 31 - 8
    # Exponents above 31 (TFLM aborts there) round every non-negative int32 to 0.
    unsat = np.where(exponent > 31, 0,
                     rdbpot(srdhm(shifted_scale, exp_q0), np.minimum(exponent, 31)))
    out = np.where(in_range, np.clip(unsat - 128, -128, 127), -128)
    return out.astype(np.int8).reshape(np.shape(x))


# Log-softmax (tc_log_softmax.h): integer only, not a TFLM port.
LOG_SOFTMAX_EXP_ONE = 1 << 30       # TC_LOG_SOFTMAX_EXP_ONE: exp table entries are Q30
_LOG_SOFTMAX_LOG2_FRACTION_BITS = 24
_LOG_SOFTMAX_STEP_FRACTION_BITS = 20
_LOG_SOFTMAX_SATURATING_STEPS = 256
# s_in / s_out above this is capped: one input step below the maximum is then 512 output
# steps below zero, -128 for every zero point, as the exact value is.
_LOG_SOFTMAX_MAX_DIFF_RATIO = 512.0


@dataclass(frozen=True)
class LogSoftmaxParams:
    """tc_log_softmax_params: s_in / s_out and ln(2) / s_out as QuantizeMultiplier pairs."""

    C_STRUCT: ClassVar[str] = "tc_log_softmax_params"
    diff_multiplier: int
    diff_shift: int
    log2_multiplier: int
    log2_shift: int
    out_zp: int
    outer: int
    depth: int

    def validate(self) -> None:
        require(self.outer >= 0 and self.depth >= 1, "need outer >= 0 and depth >= 1")
        require(0 <= self.diff_multiplier <= INT32_MAX and -31 <= self.diff_shift <= 10,
                f"(diff_multiplier, diff_shift) = ({self.diff_multiplier}, {self.diff_shift}) "
                "out of range (s_in / s_out must be capped at 512)")
        require(0 <= self.log2_multiplier <= INT32_MAX and -27 <= self.log2_shift <= 30,
                f"(log2_multiplier, log2_shift) = ({self.log2_multiplier}, {self.log2_shift}) "
                "out of range (output scale too large or too small)")
        require(is_int8(self.out_zp), f"out_zp must be in [-128, 127], got {self.out_zp}")


def make_log_softmax_exp_table(in_scale: float) -> np.ndarray:
    """exp(-k * s_in) in Q30 for k = 0..255, rounded half away from zero (int32[256])."""
    k = np.arange(256, dtype=np.float64)
    table = round_half_away(np.exp(-k * checked_scale(in_scale, "in_scale")) * LOG_SOFTMAX_EXP_ONE)
    return table.astype(np.int32)


def make_log_softmax_params(in_scale: float, outer: int, depth: int,
                            out_scale: float = LOG_SOFTMAX_OUTPUT_SCALE,
                            out_zp: int = LOG_SOFTMAX_OUTPUT_ZERO_POINT) -> LogSoftmaxParams:
    """Multipliers in double from the float32 scales; s_in / s_out is capped at 512."""
    s_in, s_out = checked_scale(in_scale, "in_scale"), checked_scale(out_scale, "out_scale")
    diff_multiplier, diff_shift = quantize_multiplier(min(s_in / s_out,
                                                          _LOG_SOFTMAX_MAX_DIFF_RATIO))
    log2_multiplier, log2_shift = quantize_multiplier(math.log(2.0) / s_out)
    p = LogSoftmaxParams(diff_multiplier=diff_multiplier, diff_shift=diff_shift,
                         log2_multiplier=log2_multiplier, log2_shift=log2_shift,
                         out_zp=int(out_zp), outer=int(outer), depth=int(depth))
    p.validate()
    return p


def _rounding_shift_right(x: np.ndarray, exponent: int) -> np.ndarray:
    """round(x / 2^exponent), half up, for non-negative int64 x and exponent in [1, 62]."""
    return (x + (1 << (exponent - 1))) >> exponent


def _floor_log2(x: np.ndarray) -> np.ndarray:
    """Position of the top set bit of positive int64 values."""
    x = np.asarray(x, dtype=np.int64).copy()
    position = np.zeros(x.shape, dtype=np.int64)
    for step in (32, 16, 8, 4, 2, 1):
        above = (x >> step) > 0
        x = np.where(above, x >> step, x)
        position += np.where(above, step, 0)
    return position


def log_softmax_log2_q24(sum_q30) -> np.ndarray:
    """log2(sum / 2^30) in Q24 for sums >= 2^30: integer part from the top bit, one fraction
    bit per squaring of the Q30 mantissa (the C log2_of_sum_q24)."""
    sum_q30 = np.asarray(sum_q30, dtype=np.int64)
    require(bool(np.all(sum_q30 >= LOG_SOFTMAX_EXP_ONE)), "sums must be >= 2^30")
    exponent = _floor_log2(sum_q30) - 30
    mantissa = sum_q30 >> exponent
    fraction = np.zeros(sum_q30.shape, dtype=np.int64)
    for _ in range(_LOG_SOFTMAX_LOG2_FRACTION_BITS):
        mantissa = _rounding_shift_right(mantissa * mantissa, 30)
        bit = mantissa >= (2 << 30)
        mantissa = np.where(bit, mantissa >> 1, mantissa)
        fraction = (fraction << 1) | bit
    return (exponent << _LOG_SOFTMAX_LOG2_FRACTION_BITS) | fraction


def log_softmax_s8(p: LogSoftmaxParams, exp_table, x) -> np.ndarray:
    """Integer log-softmax over rows of `depth`; returns an array shaped like x.

    The golden requires a table the offline builder can produce (256 int32 in [0, 2^30],
    first entry 2^30); the C kernel only checks the first entry.
    """
    p.validate()
    t = np.asarray(exp_table)
    require(t.dtype == np.int32 and t.shape == (256,), "exp_table must be 256 int32 values")
    require(int(t[0]) == LOG_SOFTMAX_EXP_ONE and bool(np.all((t >= 0) & (t <= t[0]))),
            "exp_table entries must be in [0, 2^30] with exp_table[0] == 2^30")
    rows = as_int8(x, p.outer * p.depth, "input").reshape(p.outer, p.depth).astype(np.int64)
    distance = rows.max(axis=1, keepdims=True) - rows                       # [0, 255]
    sum_q30 = t.astype(np.int64)[distance].sum(axis=1, keepdims=True)      # < 2^61
    fraction_bits = _LOG_SOFTMAX_STEP_FRACTION_BITS
    log_sum_q20 = _rounding_shift_right(
        log_softmax_log2_q24(sum_q30) * p.log2_multiplier,
        31 - p.log2_shift + _LOG_SOFTMAX_LOG2_FRACTION_BITS - fraction_bits)
    distance_q20 = _rounding_shift_right(distance * p.diff_multiplier,
                                         31 - p.diff_shift - fraction_bits)
    steps = _rounding_shift_right(distance_q20 + log_sum_q20, fraction_bits)
    out = p.out_zp - np.minimum(steps, _LOG_SOFTMAX_SATURATING_STEPS)
    return np.clip(out, -128, 127).astype(np.int8).reshape(np.shape(x))


# ---- C kernels (tinycc/kernels.py): the runtime_c functions this module lowers to ------------
declare("tc_softmax_s8", header="tc_eltwise.h", params=SoftmaxParams, golden=softmax_s8, args=("in", "out"),
        sources=("tc_softmax_s8.c",))
declare("tc_log_softmax_s8", header="tc_log_softmax.h", params=LogSoftmaxParams, golden=log_softmax_s8,
        args=("const", "in", "out"), sources=("tc_log_softmax_s8.c",))  # exp table, in, out
