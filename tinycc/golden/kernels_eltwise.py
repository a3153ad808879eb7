"""Bit-exact numpy mirrors of the element-wise and data-movement int8 kernels in runtime_c/.

C side: tc_eltwise.h (add, sub, mul, lut, softmax), tc_tensor.h (requantize, concat, pad,
transpose, slice, resize_nearest), tc_fixedpoint.h (gemmlowp fixed point used by softmax).

Each `*Params` dataclass has the field names, in the same order, of the C struct named by its
`C_STRUCT` attribute; `dataclasses.asdict` gives the designated initializer the code generator
emits (array fields are 4-tuples -> `{a, b, c, d}`). Each kernel function is the C function
name without the `tc_` prefix and returns what the C writes, as int8. `validate()` raises
ValueError exactly where the C kernel returns TC_ARG_ERROR.

The `make_*` helpers do all the floating-point work offline, the way TFLite Micro's Prepare
functions do it (double arithmetic on the float32 scales), and fold shapes into the kernels'
4-D form, merging dimensions where that lengthens the inner loop. `quantize` / `dequantize`
are TFLite's boundary conversions; the float activation functions build lookup tables.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, ClassVar, Optional, Sequence

import numpy as np

from tinycc.golden.arith import (INT32_MAX, INT32_MIN, mbqm, quantize_multiplier, rdbpot,
                                 requantize_to_int8, round_half_away, srdhm)

__all__ = [
    # boundary conversions and float references
    "quantize", "dequantize",
    "sigmoid", "tanh", "hardswish", "hardsigmoid", "leaky_relu", "relu", "clip",
    # parameter structs
    "AddParams", "MulParams", "LutParams", "SoftmaxParams", "RequantizeParams",
    "ConcatPartParams", "PadParams", "TransposeParams", "SliceParams", "ResizeNearestParams",
    # offline parameter helpers
    "broadcast_dims", "make_add_params", "make_sub_params", "make_mul_params", "make_lut",
    "make_softmax_params", "make_requantize_params", "make_concat_params", "make_pad_params",
    "make_transpose_params", "make_slice_params", "onnx_slice_params", "make_split_params",
    "nearest_indices", "make_resize_nearest_params",
    # kernels
    "add_s8", "sub_s8", "mul_s8", "lut_s8", "softmax_s8", "requantize_s8", "concat_s8_part",
    "pad_s8", "transpose_s8", "slice_s8", "resize_nearest_s8",
    # gemmlowp fixed point (tc_fixedpoint.h)
    "fp_saturating_shift_left", "fp_rounding_half_sum",
    "fp_exp_on_interval_between_negative_one_quarter_and_0_excl", "fp_exp_on_negative_values_q5",
    "fp_one_over_one_plus_x_for_x_in_0_1", "fp_get_reciprocal",
]

ADD_LEFT_SHIFT = 20               # TC_ADD_LEFT_SHIFT
UNIT_MULTIPLIER = 1 << 30         # TC_UNIT_MULTIPLIER: QuantizeMultiplier(1.0)
UNIT_SHIFT = 1                    # TC_UNIT_SHIFT
SOFTMAX_SCALED_DIFF_INTEGER_BITS = 5
SOFTMAX_ACCUMULATION_INTEGER_BITS = 12
# Softmax output quantization is fixed (TFLite spec); the compiler must assign exactly this.
SOFTMAX_OUTPUT_SCALE = 1.0 / 256.0
SOFTMAX_OUTPUT_ZERO_POINT = -128

Dims4 = tuple[int, int, int, int]


def _require(cond: bool, what: str) -> None:
    if not cond:
        raise ValueError(what)


def _f32(value: float) -> float:
    """A scale as TFLite stores it (float32), widened to double for offline arithmetic."""
    return float(np.float32(value))


def _scale(value: float, name: str = "scale") -> float:
    s = _f32(value)
    _require(math.isfinite(s) and s > 0.0, f"{name} must be a finite positive float, got {value!r}")
    return s


def _is_int8(v: int) -> bool:
    return -128 <= v <= 127


def _check_act_range(act_min: int, act_max: int) -> None:
    _require(-128 <= act_min <= act_max <= 127,
             f"need -128 <= act_min <= act_max <= 127, got [{act_min}, {act_max}]")


def _check_requant_pair(multiplier: int, shift: int) -> None:
    _require(0 <= multiplier <= INT32_MAX and -31 <= shift <= 30,
             f"(multiplier, shift) = ({multiplier}, {shift}) out of range")


def _pad4(values: Sequence[int], fill: int = 1) -> Dims4:
    """Left-pad to 4 entries (leading size-1 axes, or `fill` for per-axis attributes)."""
    values = [int(v) for v in values]
    _require(len(values) <= 4, f"at most 4 dimensions after merging, got {values}")
    return tuple([fill] * (4 - len(values)) + values)


def _as_int8(x, size: int, name: str) -> np.ndarray:
    a = np.asarray(x)
    _require(a.dtype == np.int8, f"{name} must be int8, got {a.dtype}")
    _require(a.size == size, f"{name} has {a.size} elements, the parameters say {size}")
    return a.reshape(-1)


# ---------------------------------------------------------------------------------------------
# Boundary conversions (TFLite QUANTIZE / DEQUANTIZE reference kernels)


def quantize(x, scale: float, zero_point: int) -> np.ndarray:
    """float -> int8 exactly as the generated `*_invoke_f32` (tc_quantize_f32 in model.c) and
    TFLite Micro's QUANTIZE do it: x / scale divided in float32 (TFLM AffineQuantize:
    `val / static_cast<float>(scale)`), rounded half away from zero, + zero point, saturated.

    A double division rounds differently where the float32 quotient lands on a half (2 LSB at
    the output of real models). Defined where C would not be: NaN gives the zero point (real
    0), +-Inf and huge values saturate.
    """
    s = np.float32(_scale(scale))
    with np.errstate(over="ignore", invalid="ignore"):
        v = np.asarray(x, dtype=np.float32) / s
    v = np.clip(np.where(np.isnan(v), np.float32(0), v), np.float32(-512), np.float32(512))
    q = round_half_away(v.astype(np.float64)) + int(zero_point)
    return np.clip(q, -128, 127).astype(np.int8)


def dequantize(q, scale: float, zero_point: int) -> np.ndarray:
    """int8 -> float32: scale * (q - zero_point), computed in double and rounded to float32."""
    s = _scale(scale)
    return (s * (np.asarray(q, dtype=np.int64) - int(zero_point))).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Float activation references (float64), used to build lookup tables


def sigmoid(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * x))     # overflow-free form of 1 / (1 + exp(-x))


def tanh(x) -> np.ndarray:
    return np.tanh(np.asarray(x, dtype=np.float64))


def relu(x) -> np.ndarray:
    return np.maximum(np.asarray(x, dtype=np.float64), 0.0)


def clip(x, lo: float, hi: float) -> np.ndarray:
    return np.clip(np.asarray(x, dtype=np.float64), lo, hi)


def hardswish(x) -> np.ndarray:
    """x * relu6(x + 3) / 6 (ONNX HardSwish)."""
    x = np.asarray(x, dtype=np.float64)
    return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0


def hardsigmoid(x, alpha: float = 0.2, beta: float = 0.5) -> np.ndarray:
    """max(0, min(1, alpha * x + beta)) (ONNX HardSigmoid defaults)."""
    x = np.asarray(x, dtype=np.float64)
    return np.clip(alpha * x + beta, 0.0, 1.0)


def leaky_relu(x, alpha: float = 0.01) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.where(x >= 0.0, x, alpha * x)


# ---------------------------------------------------------------------------------------------
# Parameter structs


def _check_broadcast(in1_dims: Dims4, in2_dims: Dims4, out_dims: Dims4) -> None:
    for a, b, o in zip(in1_dims, in2_dims, out_dims):
        _require(min(a, b, o) >= 1 and a in (1, o) and b in (1, o),
                 f"dims {in1_dims} and {in2_dims} do not broadcast to {out_dims}")


def _check_dims4(dims: Sequence[int], name: str) -> None:
    _require(len(dims) == 4 and all(int(d) >= 1 for d in dims),
             f"{name} must be 4 dimensions >= 1, got {dims}")


@dataclass(frozen=True)
class AddParams:
    """tc_add_params: ADD and SUB with broadcasting (TFLM fixed-point pipeline, left shift 20)."""

    C_STRUCT: ClassVar[str] = "tc_add_params"
    in1_zp: int
    in1_multiplier: int
    in1_shift: int
    in2_zp: int
    in2_multiplier: int
    in2_shift: int
    out_multiplier: int
    out_shift: int
    out_zp: int
    act_min: int
    act_max: int
    in1_dims: Dims4
    in2_dims: Dims4
    out_dims: Dims4

    def validate(self) -> None:
        _check_binary(self)
        for m, s in ((self.in1_multiplier, self.in1_shift), (self.in2_multiplier, self.in2_shift),
                     (self.out_multiplier, self.out_shift)):
            _require(0 <= m <= INT32_MAX and -31 <= s <= 0,
                     f"ADD/SUB multipliers must be below one: (multiplier, shift) = ({m}, {s})")


def _check_binary(p) -> None:
    """Shape and quantization checks shared by ADD/SUB and MUL (tc_eltwise.h)."""
    for d in (p.in1_dims, p.in2_dims, p.out_dims):
        _check_dims4(d, "dims")
    _check_broadcast(p.in1_dims, p.in2_dims, p.out_dims)
    _require(all(_is_int8(z) for z in (p.in1_zp, p.in2_zp, p.out_zp)), "zero points must be in [-128, 127]")
    _check_act_range(p.act_min, p.act_max)


@dataclass(frozen=True)
class MulParams:
    """tc_mul_params: MUL with broadcasting."""

    C_STRUCT: ClassVar[str] = "tc_mul_params"
    in1_zp: int
    in2_zp: int
    out_multiplier: int
    out_shift: int
    out_zp: int
    act_min: int
    act_max: int
    in1_dims: Dims4
    in2_dims: Dims4
    out_dims: Dims4

    def validate(self) -> None:
        _check_binary(self)
        _check_requant_pair(self.out_multiplier, self.out_shift)


@dataclass(frozen=True)
class LutParams:
    """tc_lut_params: out[i] = table[in[i] + 128]."""

    C_STRUCT: ClassVar[str] = "tc_lut_params"
    size: int

    def validate(self) -> None:
        _require(self.size >= 0, f"size must be >= 0, got {self.size}")


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
        _require(self.outer >= 0 and self.depth >= 1, "need outer >= 0 and depth >= 1")
        _require(0 <= self.input_multiplier <= INT32_MAX and 0 <= self.input_left_shift <= 31,
                 "input_multiplier must be >= 0 and input_left_shift in [0, 31]")
        _require(self.diff_min <= 0, f"diff_min must be <= 0, got {self.diff_min}")
        _require((-self.diff_min) << self.input_left_shift <= INT32_MAX,
                 "diff_min << input_left_shift must fit in int32")


@dataclass(frozen=True)
class RequantizeParams:
    """tc_requantize_params: out = clamp(MBQM(x - in_zp, multiplier, shift) + out_zp)."""

    C_STRUCT: ClassVar[str] = "tc_requantize_params"
    size: int
    in_zp: int
    multiplier: int
    shift: int
    out_zp: int
    act_min: int
    act_max: int

    def validate(self) -> None:
        _require(self.size >= 0, f"size must be >= 0, got {self.size}")
        _require(_is_int8(self.in_zp) and _is_int8(self.out_zp),
                 "zero points must be in [-128, 127]")
        _check_act_range(self.act_min, self.act_max)
        _check_requant_pair(self.multiplier, self.shift)


@dataclass(frozen=True)
class ConcatPartParams:
    """tc_concat_part_params: one input's [outer][in_inner] block into its output columns."""

    C_STRUCT: ClassVar[str] = "tc_concat_part_params"
    outer: int
    in_inner: int
    out_inner: int
    out_offset: int
    in_zp: int
    multiplier: int
    shift: int
    out_zp: int

    def validate(self) -> None:
        _require(self.outer >= 0 and self.in_inner >= 0 and self.out_offset >= 0
                 and self.out_offset + self.in_inner <= self.out_inner,
                 "input columns must lie inside the output row")
        _require(_is_int8(self.in_zp) and _is_int8(self.out_zp),
                 "zero points must be in [-128, 127]")
        _check_requant_pair(self.multiplier, self.shift)

    @property
    def plain_copy(self) -> bool:
        return (self.multiplier, self.shift) == (UNIT_MULTIPLIER, UNIT_SHIFT) \
            and self.in_zp == self.out_zp


@dataclass(frozen=True)
class PadParams:
    """tc_pad_params: constant pad; pads after = out_dims - in_dims - pad_before."""

    C_STRUCT: ClassVar[str] = "tc_pad_params"
    in_dims: Dims4
    out_dims: Dims4
    pad_before: Dims4
    pad_value: int

    def validate(self) -> None:
        _check_dims4(self.in_dims, "in_dims")
        _require(_is_int8(self.pad_value), f"pad_value must be int8, got {self.pad_value}")
        _require(len(self.out_dims) == 4 and len(self.pad_before) == 4, "need 4 dimensions")
        for n, o, b in zip(self.in_dims, self.out_dims, self.pad_before):
            _require(b >= 0 and o - n >= b, f"bad pad: in {self.in_dims} out {self.out_dims} "
                     f"before {self.pad_before}")


@dataclass(frozen=True)
class TransposeParams:
    """tc_transpose_params: output axis i is input axis perm[i]."""

    C_STRUCT: ClassVar[str] = "tc_transpose_params"
    in_dims: Dims4
    perm: Dims4

    def validate(self) -> None:
        _check_dims4(self.in_dims, "in_dims")
        _require(sorted(self.perm) == [0, 1, 2, 3], f"perm must permute 0..3, got {self.perm}")

    @property
    def out_dims(self) -> Dims4:
        return tuple(self.in_dims[a] for a in self.perm)


@dataclass(frozen=True)
class SliceParams:
    """tc_slice_params: out[i] = in[begin + i * stride] along each of 4 axes."""

    C_STRUCT: ClassVar[str] = "tc_slice_params"
    in_dims: Dims4
    begin: Dims4
    stride: Dims4
    out_dims: Dims4

    def validate(self) -> None:
        _check_dims4(self.in_dims, "in_dims")
        _check_dims4(self.out_dims, "out_dims")
        for n, b, s, o in zip(self.in_dims, self.begin, self.stride, self.out_dims):
            _require(b >= 0 and s >= 1 and b + (o - 1) * s < n,
                     f"slice begin {self.begin} stride {self.stride} out {self.out_dims} "
                     f"leaves the input {self.in_dims}")


@dataclass(frozen=True)
class ResizeNearestParams:
    """tc_resize_nearest_params: NHWC nearest-neighbour resize with source index tables."""

    C_STRUCT: ClassVar[str] = "tc_resize_nearest_params"
    batch: int
    in_h: int
    in_w: int
    channels: int
    out_h: int
    out_w: int

    def validate(self) -> None:
        _require(min(self.batch, self.in_h, self.in_w, self.channels, self.out_h,
                     self.out_w) >= 1, "all sizes must be >= 1")

    def validate_indices(self, y_index, x_index) -> tuple[np.ndarray, np.ndarray]:
        y = np.asarray(y_index, dtype=np.int64).reshape(-1)
        x = np.asarray(x_index, dtype=np.int64).reshape(-1)
        _require(y.size == self.out_h and x.size == self.out_w,
                 f"need {self.out_h} row and {self.out_w} column indices")
        in_range = np.all((y >= 0) & (y < self.in_h)) and np.all((x >= 0) & (x < self.in_w))
        _require(bool(in_range), "source indices out of range")
        return y, x


# ---------------------------------------------------------------------------------------------
# Offline parameter helpers


def broadcast_dims(shape1: Sequence[int], shape2: Sequence[int],
                   out_shape: Optional[Sequence[int]] = None) -> tuple[Dims4, Dims4, Dims4]:
    """Numpy-broadcast two shapes and fold them into the kernels' 4-D form.

    Size-1 output axes are dropped and neighbouring axes along which each input is either
    complete or broadcast in the same way are merged, so equal shapes become one flat axis and
    a squeeze-excite [1,H,W,C] * [1,1,1,C] becomes [1,1,H*W,C] * [1,1,1,C].
    """
    shape1, shape2 = [int(d) for d in shape1], [int(d) for d in shape2]
    if out_shape is None:
        out_shape = np.broadcast_shapes(tuple(shape1), tuple(shape2))
    out_shape = [int(d) for d in out_shape]
    rank = max(len(shape1), len(shape2), len(out_shape))
    a = [1] * (rank - len(shape1)) + shape1
    b = [1] * (rank - len(shape2)) + shape2
    o = [1] * (rank - len(out_shape)) + out_shape
    for da, db, do in zip(a, b, o):
        _require(min(da, db, do) >= 1 and da in (1, do) and db in (1, do),
                 f"shapes {shape1} and {shape2} do not broadcast to {out_shape}")
    merged: list[list[int]] = []        # [a, b, out] per merged axis
    pattern = None
    for da, db, do in zip(a, b, o):
        if do == 1:
            continue
        kind = (da == do, db == do)
        if kind == pattern:
            merged[-1] = [merged[-1][0] * da, merged[-1][1] * db, merged[-1][2] * do]
        else:
            merged.append([da, db, do])
            pattern = kind
    _require(len(merged) <= 4, f"broadcast of {shape1} and {shape2} needs more than 4 axes")
    return (_pad4([m[0] for m in merged]), _pad4([m[1] for m in merged]),
            _pad4([m[2] for m in merged]))


def _quantize_multiplier_smaller_than_one(real: float) -> tuple[int, int]:
    """TFLM QuantizeMultiplierSmallerThanOneExp: 0 < real < 1, shift <= 0."""
    _require(0.0 < real < 1.0, f"multiplier must be in (0, 1), got {real!r}")
    mult, shift = quantize_multiplier(real)
    _require(shift <= 0, f"multiplier {real!r} rounds up to 1")
    return mult, shift


def _add_sub_params(reals: tuple[float, float, float], zp1: int, zp2: int, zp_out: int,
                    shape1, shape2, out_shape, act_min: int, act_max: int) -> AddParams:
    (m1, s1), (m2, s2), (mo, so) = (_quantize_multiplier_smaller_than_one(r) for r in reals)
    in1_dims, in2_dims, out_dims = broadcast_dims(shape1, shape2, out_shape)
    p = AddParams(in1_zp=int(zp1), in1_multiplier=m1, in1_shift=s1, in2_zp=int(zp2),
                  in2_multiplier=m2, in2_shift=s2, out_multiplier=mo, out_shift=so,
                  out_zp=int(zp_out), act_min=int(act_min), act_max=int(act_max),
                  in1_dims=in1_dims, in2_dims=in2_dims, out_dims=out_dims)
    p.validate()
    return p


def make_add_params(s1: float, zp1: int, s2: float, zp2: int, s_out: float, zp_out: int,
                    shape1: Sequence[int], shape2: Sequence[int],
                    out_shape: Optional[Sequence[int]] = None,
                    act_min: int = -128, act_max: int = 127) -> AddParams:
    """TFLM CalculateOpDataAdd: the real multipliers are computed in double."""
    s1, s2, s_out = _scale(s1, "s1"), _scale(s2, "s2"), _scale(s_out, "s_out")
    twice_max_input_scale = 2.0 * max(s1, s2)
    reals = (s1 / twice_max_input_scale, s2 / twice_max_input_scale,
             twice_max_input_scale / ((1 << ADD_LEFT_SHIFT) * s_out))
    return _add_sub_params(reals, zp1, zp2, zp_out, shape1, shape2, out_shape, act_min, act_max)


def make_sub_params(s1: float, zp1: int, s2: float, zp2: int, s_out: float, zp_out: int,
                    shape1: Sequence[int], shape2: Sequence[int],
                    out_shape: Optional[Sequence[int]] = None,
                    act_min: int = -128, act_max: int = 127) -> AddParams:
    """TFLM CalculateOpDataSub: unlike ADD, the real multipliers are computed in float32."""
    f1, f2, fo = (np.float32(_scale(s, n)) for s, n in ((s1, "s1"), (s2, "s2"), (s_out, "s_out")))
    twice_max_input_scale = np.float32(2) * max(f1, f2)
    reals = (float(f1 / twice_max_input_scale), float(f2 / twice_max_input_scale),
             float(twice_max_input_scale / (np.float32(1 << ADD_LEFT_SHIFT) * fo)))
    return _add_sub_params(reals, zp1, zp2, zp_out, shape1, shape2, out_shape, act_min, act_max)


def make_mul_params(s1: float, zp1: int, s2: float, zp2: int, s_out: float, zp_out: int,
                    shape1: Sequence[int], shape2: Sequence[int],
                    out_shape: Optional[Sequence[int]] = None,
                    act_min: int = -128, act_max: int = 127) -> MulParams:
    """TFLM CalculateOpDataMul: real multiplier s1 * s2 / s_out in double."""
    real = _scale(s1, "s1") * _scale(s2, "s2") / _scale(s_out, "s_out")
    mult, shift = quantize_multiplier(real)
    in1_dims, in2_dims, out_dims = broadcast_dims(shape1, shape2, out_shape)
    p = MulParams(in1_zp=int(zp1), in2_zp=int(zp2), out_multiplier=mult, out_shift=shift,
                  out_zp=int(zp_out), act_min=int(act_min), act_max=int(act_max),
                  in1_dims=in1_dims, in2_dims=in2_dims, out_dims=out_dims)
    p.validate()
    return p


def make_lut(fn: Callable[[np.ndarray], np.ndarray], in_scale: float, in_zp: int,
             out_scale: float, out_zp: int, act_min: int = -128, act_max: int = 127) -> np.ndarray:
    """The 256-entry table of tc_lut_s8 (index = input + 128), built in float64.

    Each int8 input is dequantized, mapped through `fn`, quantized (round half away from
    zero) and clamped to [act_min, act_max]. Use functools.partial for parameterised
    activations, e.g. make_lut(partial(leaky_relu, alpha=0.1), ...).
    """
    _check_act_range(act_min, act_max)
    _require(_is_int8(in_zp) and _is_int8(out_zp), "zero points must be in [-128, 127]")
    x = _scale(in_scale, "in_scale") * (np.arange(-128, 128, dtype=np.float64) - in_zp)
    y = np.asarray(fn(x), dtype=np.float64)
    _require(y.shape == (256,) and not np.isnan(y).any(), "fn must map 256 inputs to numbers")
    q = round_half_away(y / _scale(out_scale, "out_scale")) + out_zp
    return np.clip(q, act_min, act_max).astype(np.int8)


def _quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    """TFLM QuantizeMultiplierGreaterThanOne: real > 1, shift in [0, 31]."""
    _require(real > 1.0, f"softmax input multiplier {real!r} must exceed 1")
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
    real = min(_f32(beta) * _scale(in_scale, "in_scale") * (1 << (31 - bits)),
               float((1 << 31) - 1))
    mult, left_shift = _quantize_multiplier_greater_than_one(real)
    radius = math.floor(1.0 * ((1 << bits) - 1) * (1 << (31 - bits)) / (1 << left_shift))
    p = SoftmaxParams(input_multiplier=mult, input_left_shift=left_shift, diff_min=-radius,
                      outer=int(outer), depth=int(depth))
    p.validate()
    return p


def _rescale_pair(in_scale: float, out_scale: float) -> tuple[int, int]:
    """TFLM PrepareQuantizeReference: QuantizeMultiplier(double(in) / double(out))."""
    return quantize_multiplier(_scale(in_scale, "in_scale") / _scale(out_scale, "out_scale"))


def make_requantize_params(in_scale: float, in_zp: int, out_scale: float, out_zp: int,
                           size: int, act_min: int = -128,
                           act_max: int = 127) -> RequantizeParams:
    mult, shift = _rescale_pair(in_scale, out_scale)
    p = RequantizeParams(size=int(size), in_zp=int(in_zp), multiplier=mult, shift=shift,
                         out_zp=int(out_zp), act_min=int(act_min), act_max=int(act_max))
    p.validate()
    return p


def make_concat_params(in_shapes: Sequence[Sequence[int]], axis: int,
                       in_quant: Optional[Sequence[tuple[float, int]]] = None,
                       out_quant: Optional[tuple[float, int]] = None) -> list[ConcatPartParams]:
    """One ConcatPartParams per input of a concatenation along `axis` (negative counts back).

    `in_quant` / `out_quant` are (scale, zero_point) pairs; without them every part is a plain
    copy. An input whose scale equals the output's gets the unit rescale (a zero-point shift,
    or a plain copy when the zero points match too).
    """
    shapes = [[int(d) for d in s] for s in in_shapes]
    _require(len(shapes) >= 1, "need at least one input")
    rank = len(shapes[0])
    axis = axis + rank if axis < 0 else axis
    _require(0 <= axis < rank, f"axis out of range for rank {rank}")
    for s in shapes:
        _require(len(s) == rank and s[:axis] == shapes[0][:axis]
                 and s[axis + 1:] == shapes[0][axis + 1:],
                 f"shapes {shapes} cannot be concatenated along axis {axis}")
    outer = int(np.prod(shapes[0][:axis], dtype=np.int64))
    inners = [int(np.prod(s[axis:], dtype=np.int64)) for s in shapes]
    out_inner = sum(inners)
    if (in_quant is None) != (out_quant is None):
        raise ValueError("give both in_quant and out_quant, or neither")
    parts, offset = [], 0
    for k, inner in enumerate(inners):
        if in_quant is None:
            in_zp = out_zp = 0
            mult, shift = UNIT_MULTIPLIER, UNIT_SHIFT
        else:
            (s_in, in_zp), (s_out, out_zp) = in_quant[k], out_quant
            mult, shift = _rescale_pair(s_in, s_out)
        p = ConcatPartParams(outer=outer, in_inner=inner, out_inner=out_inner, out_offset=offset,
                             in_zp=int(in_zp), multiplier=mult, shift=shift, out_zp=int(out_zp))
        p.validate()
        parts.append(p)
        offset += inner
    return parts


def make_pad_params(in_shape: Sequence[int], pads_begin: Sequence[int],
                    pads_end: Sequence[int], pad_value: int) -> PadParams:
    """Constant pad (ONNX Pad mode=constant with non-negative pads, TFLite PAD/PADV2).

    An unpadded axis is merged into the axis before it, so NHWC spatial padding copies whole
    W*C rows at a time.
    """
    _require(len(in_shape) == len(pads_begin) == len(pads_end), "one pad pair per axis")
    merged: list[list[int]] = []        # [size, before, after]
    for n, b, e in zip(in_shape, pads_begin, pads_end):
        n, b, e = int(n), int(b), int(e)
        _require(n >= 1 and b >= 0 and e >= 0, "sizes must be >= 1 and pads >= 0")
        if merged and b == 0 and e == 0:
            merged[-1] = [merged[-1][0] * n, merged[-1][1] * n, merged[-1][2] * n]
        else:
            merged.append([n, b, e])
    in_dims = _pad4([m[0] for m in merged])
    before = _pad4([m[1] for m in merged], fill=0)
    out_dims = _pad4([m[0] + m[1] + m[2] for m in merged])
    p = PadParams(in_dims=in_dims, out_dims=out_dims, pad_before=before, pad_value=int(pad_value))
    p.validate()
    return p


def make_transpose_params(in_shape: Sequence[int], perm: Sequence[int]) -> TransposeParams:
    """Transpose of any rank whose non-trivial axes fold into at most 4.

    Size-1 axes are dropped and input axes that stay adjacent and in order are merged.
    """
    shape = [int(d) for d in in_shape]
    perm = [int(a) for a in perm]
    rank = len(shape)
    _require(sorted(perm) == list(range(rank)),
             f"perm {perm} is not a permutation of 0..{rank - 1}")
    _require(all(d >= 1 for d in shape), "sizes must be >= 1")
    kept = [a for a in perm if shape[a] != 1]
    groups: list[list[int]] = []        # runs of input axes that move together, in output order
    for a in kept:
        if groups and a == groups[-1][-1] + 1:
            groups[-1].append(a)
        else:
            groups.append([a])
    _require(len(groups) <= 4, f"transpose {perm} of {shape} needs more than 4 axes")
    by_input_order = sorted(range(len(groups)), key=lambda g: groups[g][0])
    in_dims = [int(np.prod([shape[a] for a in groups[g]])) for g in by_input_order]
    new_perm = [by_input_order.index(g) for g in range(len(groups))]
    lead = 4 - len(groups)
    p = TransposeParams(in_dims=_pad4(in_dims),
                        perm=tuple(list(range(lead)) + [lead + a for a in new_perm]))
    p.validate()
    return p


def make_slice_params(in_shape: Sequence[int], begin: Sequence[int], stride: Sequence[int],
                      out_shape: Sequence[int]) -> SliceParams:
    """Strided slice with non-negative begins and positive strides.

    An axis taken whole is merged into the axis before it when that one has stride 1.
    """
    _require(len(in_shape) == len(begin) == len(stride) == len(out_shape), "one entry per axis")
    merged: list[list[int]] = []        # [in, begin, stride, out]
    for n, b, s, o in zip(in_shape, begin, stride, out_shape):
        n, b, s, o = int(n), int(b), int(s), int(o)
        _require(n >= 1 and o >= 1 and b >= 0 and s >= 1 and b + (o - 1) * s < n,
                 f"slice begin {list(begin)} stride {list(stride)} out {list(out_shape)} "
                 f"leaves the input {list(in_shape)}")
        whole = b == 0 and o == n and (s == 1 or n == 1)
        if merged and whole and merged[-1][2] == 1:
            merged[-1] = [merged[-1][0] * n, merged[-1][1] * n, 1, merged[-1][3] * n]
        else:
            merged.append([n, b, s if o > 1 else 1, o])
    _require(len(merged) <= 4, "slice needs more than 4 axes")
    lead = [[1, 0, 1, 1]] * (4 - len(merged))
    rows = lead + merged
    p = SliceParams(in_dims=tuple(r[0] for r in rows), begin=tuple(r[1] for r in rows),
                    stride=tuple(r[2] for r in rows), out_dims=tuple(r[3] for r in rows))
    p.validate()
    return p


def onnx_slice_params(in_shape: Sequence[int], starts: Sequence[int], ends: Sequence[int],
                      axes: Optional[Sequence[int]] = None,
                      steps: Optional[Sequence[int]] = None) -> SliceParams:
    """ONNX Slice semantics (negative indices count from the end, out-of-range clamps)."""
    shape = [int(d) for d in in_shape]
    rank = len(shape)
    axes = list(range(len(starts))) if axes is None else [int(a) for a in axes]
    steps = [1] * len(starts) if steps is None else [int(s) for s in steps]
    _require(len(starts) == len(ends) == len(axes) == len(steps), "starts/ends/axes/steps differ")
    begin, stride, out = [0] * rank, [1] * rank, list(shape)
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = axis + rank if axis < 0 else axis
        _require(0 <= axis < rank, f"axis {axis} out of range")
        _require(step >= 1, f"only positive slice steps are supported, got {step}")
        n = shape[axis]
        start = min(max(start + n if start < 0 else start, 0), n)
        end = min(max(end + n if end < 0 else end, 0), n)
        count = max(0, -(-(end - start) // step))
        _require(count >= 1, f"slice of axis {axis} is empty")
        begin[axis], stride[axis], out[axis] = start, step, count
    return make_slice_params(shape, begin, stride, out)


def make_split_params(in_shape: Sequence[int], axis: int,
                      sizes: Sequence[int]) -> list[SliceParams]:
    """ONNX Split: one slice per output."""
    shape = [int(d) for d in in_shape]
    axis = axis + len(shape) if axis < 0 else axis
    _require(0 <= axis < len(shape) and sum(sizes) == shape[axis] and min(sizes) >= 1,
             f"split sizes {list(sizes)} do not partition axis {axis} of {shape}")
    parts, start = [], 0
    for size in sizes:
        begin = [0] * len(shape)
        begin[axis] = start
        out = list(shape)
        out[axis] = int(size)
        parts.append(make_slice_params(shape, begin, [1] * len(shape), out))
        start += int(size)
    return parts


_HALF_TIE_TOLERANCE = 1e-6
_COORDINATE_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                     "asymmetric", "tf_half_pixel_for_nn")
_NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _original_coordinates(x: np.ndarray, scale: np.float32, length_resized: np.float32,
                          length_original: np.float32, mode: str) -> np.ndarray:
    f32 = np.float32
    half = f32(0.5)
    if mode == "half_pixel":
        return (x + half) / scale - half
    if mode == "pytorch_half_pixel":
        return (x + half) / scale - half if length_resized > 1 else np.zeros_like(x)
    if mode == "tf_half_pixel_for_nn":
        return (x + half) / scale
    if mode == "asymmetric":
        return x / scale
    if mode == "align_corners":
        if length_resized == 1:
            return np.zeros_like(x)
        return x * (length_original - f32(1)) / (length_resized - f32(1))
    # half_pixel_symmetric: float32 setup, final expression in double (0.5 is a double there)
    output_width = scale * length_original
    adjustment = length_resized / output_width
    center = length_original / f32(2)
    offset = center * (f32(1) - adjustment)
    orig = np.float64(offset) + (x.astype(np.float64) + 0.5) / np.float64(scale) - 0.5
    return orig.astype(np.float32)


def nearest_indices(in_size: int, out_size: int, scale: Optional[float] = None,
                    coordinate_transformation_mode: str = "half_pixel",
                    nearest_mode: str = "round_prefer_floor") -> np.ndarray:
    """Source index of every output position along one axis of an ONNX Resize (mode=nearest).

    Follows the ONNX spec as onnxruntime's CPU kernel computes it: float32 coordinates, a scale
    of exactly 1 maps every index to itself, and the round_prefer_* modes treat coordinates
    within 1e-6 of a half as ties. `scale` is the ONNX scale for the axis; None means
    out_size / in_size (the `sizes` input). tf_crop_and_resize is not supported.
    """
    _require(in_size >= 1 and out_size >= 1, "sizes must be >= 1")
    _require(coordinate_transformation_mode in _COORDINATE_MODES,
             f"unsupported coordinate_transformation_mode {coordinate_transformation_mode!r}")
    _require(nearest_mode in _NEAREST_MODES, f"unsupported nearest_mode {nearest_mode!r}")
    f32 = np.float32
    s = f32(out_size) / f32(in_size) if scale is None else f32(scale)
    _require(bool(np.isfinite(s)) and s > 0, f"scale must be positive, got {scale!r}")
    if s == f32(1):
        _require(out_size == in_size, "a scale of 1 needs out_size == in_size")
        return np.arange(out_size, dtype=np.int32)
    x = np.arange(out_size, dtype=np.float32)
    orig = _original_coordinates(x, s, f32(out_size), f32(in_size),
                                 coordinate_transformation_mode)
    if nearest_mode in ("round_prefer_floor", "round_prefer_ceil"):
        # A coordinate within 1e-6 of a half is a tie: float32 noise must not decide it
        # (onnxruntime since microsoft/onnxruntime#28291; e.g. 7 -> 2 asymmetric gives 3.4999998).
        floor = np.floor(orig)
        tie = np.abs((orig - floor) - f32(0.5)) <= f32(_HALF_TIE_TOLERANCE)
        prefer = floor if nearest_mode == "round_prefer_floor" else floor + 1
        idx = np.where(tie, prefer, round_half_away(orig))
    elif nearest_mode == "floor":
        idx = np.floor(orig)
    else:
        idx = np.ceil(orig)
    return np.clip(idx, 0, in_size - 1).astype(np.int32)


def make_resize_nearest_params(in_shape_nhwc: Sequence[int], out_h: int,
                               out_w: int) -> ResizeNearestParams:
    n, h, w, c = (int(d) for d in in_shape_nhwc)
    p = ResizeNearestParams(batch=n, in_h=h, in_w=w, channels=c, out_h=int(out_h),
                            out_w=int(out_w))
    p.validate()
    return p


# ---------------------------------------------------------------------------------------------
# gemmlowp fixed point (tc_fixedpoint.h). Raw int32 values carried in int64 arrays.

_EXP_BARREL_MULTIPLIERS = (1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242)


def _trunc_div(n: np.ndarray, d: int) -> np.ndarray:
    """C integer division (truncation toward zero) of int64 n by a positive d."""
    q = np.abs(n) // d
    return np.where(n >= 0, q, -q)


def fp_saturating_shift_left(x, exponent: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent>, exponent in [1, 30]."""
    x = np.asarray(x, dtype=np.int64)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))


def fp_rounding_half_sum(a, b) -> np.ndarray:
    s = np.asarray(a, dtype=np.int64) + np.asarray(b, dtype=np.int64)
    return _trunc_div(s + np.where(s >= 0, 1, -1), 2)


def fp_exp_on_interval_between_negative_one_quarter_and_0_excl(a) -> np.ndarray:
    """exp(a) for a in [-1/4, 0), Q0 in and out."""
    constant_term, constant_1_over_3 = 1895147668, 715827883
    x = np.asarray(a, dtype=np.int64) + (1 << 28)
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rdbpot(x4, 2)
    poly = rdbpot(srdhm(x4_over_4 + x3, constant_1_over_3) + x2, 1)
    return constant_term + srdhm(constant_term, x + poly)


def fp_exp_on_negative_values_q5(a) -> np.ndarray:
    """exp(a) for a <= 0 in Q5, result in Q0 (gemmlowp exp_on_negative_values<int32_t, 5>)."""
    a = np.asarray(a, dtype=np.int64)
    one_quarter = 1 << 24
    a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter
    remainder = a_mod_quarter_minus_one_quarter - a
    result = fp_exp_on_interval_between_negative_one_quarter_and_0_excl(
        fp_saturating_shift_left(a_mod_quarter_minus_one_quarter, 5))
    for k, multiplier in enumerate(_EXP_BARREL_MULTIPLIERS):
        result = np.where(remainder & (1 << (24 + k)), srdhm(result, multiplier), result)
    return np.where(a == 0, INT32_MAX, result)


def fp_one_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """1 / (1 + a) for a in [0, 1), Q0 in and out (three Newton-Raphson steps in Q2)."""
    half_denominator = fp_rounding_half_sum(a, INT32_MAX)
    x = 1515870810 + srdhm(half_denominator, -1010580540)
    for _ in range(3):
        one_minus_half_denominator_times_x = (1 << 29) - srdhm(half_denominator, x)
        x = x + fp_saturating_shift_left(srdhm(x, one_minus_half_denominator_times_x), 2)
    return fp_saturating_shift_left(x, 1)


def _count_leading_zeros_u32(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64) & 0xFFFFFFFF
    bits = np.zeros(x.shape, dtype=np.int64)
    for k in range(32):
        bits += (x >> k) > 0
    return 32 - bits


def fp_get_reciprocal(x, x_integer_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLM GetReciprocal: returns (Q0 reciprocal of the normalised x, num_bits_over_unit)."""
    x = np.asarray(x, dtype=np.int64)
    headroom_plus_one = _count_leading_zeros_u32(x)
    shifted = np.where(headroom_plus_one < 32,
                       ((x & 0xFFFFFFFF) << np.minimum(headroom_plus_one, 31)) & 0xFFFFFFFF, 0)
    shifted_sum_minus_one = shifted - (1 << 31)
    return (fp_one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one),
            x_integer_digits - headroom_plus_one)


# ---------------------------------------------------------------------------------------------
# Kernels


def _binary_operands(p, in1, in2) -> tuple[np.ndarray, np.ndarray]:
    a = _as_int8(in1, int(np.prod(p.in1_dims)), "in1").reshape(p.in1_dims).astype(np.int64)
    b = _as_int8(in2, int(np.prod(p.in2_dims)), "in2").reshape(p.in2_dims).astype(np.int64)
    return a, b


def _add_or_sub(p: AddParams, in1, in2, sign2: int) -> np.ndarray:
    p.validate()
    a, b = _binary_operands(p, in1, in2)
    ra = mbqm((a - p.in1_zp) << ADD_LEFT_SHIFT, p.in1_multiplier, p.in1_shift)
    rb = mbqm((b - p.in2_zp) << ADD_LEFT_SHIFT, p.in2_multiplier, p.in2_shift)
    raw = np.broadcast_to(ra + sign2 * rb, p.out_dims)
    return requantize_to_int8(raw, p.out_multiplier, p.out_shift, p.out_zp, p.act_min, p.act_max)


def add_s8(p: AddParams, in1, in2) -> np.ndarray:
    """Returns the output as an array of shape p.out_dims."""
    return _add_or_sub(p, in1, in2, 1)


def sub_s8(p: AddParams, in1, in2) -> np.ndarray:
    """in1 - in2; returns an array of shape p.out_dims."""
    return _add_or_sub(p, in1, in2, -1)


def mul_s8(p: MulParams, in1, in2) -> np.ndarray:
    """Returns the output as an array of shape p.out_dims."""
    p.validate()
    a, b = _binary_operands(p, in1, in2)
    acc = np.broadcast_to((a - p.in1_zp) * (b - p.in2_zp), p.out_dims)
    return requantize_to_int8(acc, p.out_multiplier, p.out_shift, p.out_zp, p.act_min, p.act_max)


def lut_s8(p: LutParams, table, x) -> np.ndarray:
    """Returns an array shaped like x."""
    p.validate()
    t = np.asarray(table)
    _require(t.dtype == np.int8 and t.shape == (256,), "table must be 256 int8 values")
    flat = _as_int8(x, p.size, "input")
    return t[flat.astype(np.int64) + 128].reshape(np.shape(x))


def softmax_s8(p: SoftmaxParams, x) -> np.ndarray:
    """TFLM reference int8 softmax over rows of `depth`; returns an array shaped like x."""
    p.validate()
    rows = _as_int8(x, p.outer * p.depth, "input").reshape(p.outer, p.depth).astype(np.int64)
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


def requantize_s8(p: RequantizeParams, x) -> np.ndarray:
    """Returns an array shaped like x."""
    p.validate()
    flat = _as_int8(x, p.size, "input").astype(np.int64)
    out = requantize_to_int8(flat - p.in_zp, p.multiplier, p.shift, p.out_zp, p.act_min,
                             p.act_max)
    return out.reshape(np.shape(x))


def concat_s8_part(p: ConcatPartParams, x, out: np.ndarray) -> np.ndarray:
    """Writes this input's columns into `out` (the whole output, int8, C-contiguous, any
    shape with outer * out_inner elements) in place, as the C kernel does, and returns it."""
    p.validate()
    _require(isinstance(out, np.ndarray) and out.dtype == np.int8 and out.flags["C_CONTIGUOUS"]
             and out.size == p.outer * p.out_inner,
             f"out must be a C-contiguous int8 array of {p.outer * p.out_inner} elements")
    block = _as_int8(x, p.outer * p.in_inner, "input").reshape(p.outer, p.in_inner)
    if not p.plain_copy:
        block = requantize_to_int8(block.astype(np.int64) - p.in_zp, p.multiplier, p.shift,
                                   p.out_zp)
    rows = out.reshape(p.outer, p.out_inner)
    rows[:, p.out_offset:p.out_offset + p.in_inner] = block
    return out


def pad_s8(p: PadParams, x) -> np.ndarray:
    """Returns an array of shape p.out_dims."""
    p.validate()
    a = _as_int8(x, int(np.prod(p.in_dims)), "input").reshape(p.in_dims)
    out = np.full(p.out_dims, p.pad_value, dtype=np.int8)
    out[tuple(slice(b, b + n) for b, n in zip(p.pad_before, p.in_dims))] = a
    return out


def transpose_s8(p: TransposeParams, x) -> np.ndarray:
    """Returns an array of shape p.out_dims."""
    p.validate()
    a = _as_int8(x, int(np.prod(p.in_dims)), "input").reshape(p.in_dims)
    return np.ascontiguousarray(a.transpose(p.perm))


def slice_s8(p: SliceParams, x) -> np.ndarray:
    """Returns an array of shape p.out_dims."""
    p.validate()
    a = _as_int8(x, int(np.prod(p.in_dims)), "input").reshape(p.in_dims)
    index = tuple(slice(b, b + (o - 1) * s + 1, s)
                  for b, s, o in zip(p.begin, p.stride, p.out_dims))
    return np.ascontiguousarray(a[index])


def resize_nearest_s8(p: ResizeNearestParams, y_index, x_index, x) -> np.ndarray:
    """Returns an array of shape (batch, out_h, out_w, channels)."""
    p.validate()
    y, xi = p.validate_indices(y_index, x_index)
    a = _as_int8(x, p.batch * p.in_h * p.in_w * p.channels, "input").reshape(
        p.batch, p.in_h, p.in_w, p.channels)
    return np.ascontiguousarray(a[:, y][:, :, xi])


# ---------------------------------------------------------------------------------------------
# Log-softmax (tc_log_softmax.h): integer only, not a TFLM port. TFLite fixes the output
# quantization of LOG_SOFTMAX to (16/256, 127); the kernel accepts any output scale.

LOG_SOFTMAX_OUTPUT_SCALE = 16.0 / 256.0
LOG_SOFTMAX_OUTPUT_ZERO_POINT = 127
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
        _require(self.outer >= 0 and self.depth >= 1, "need outer >= 0 and depth >= 1")
        _require(0 <= self.diff_multiplier <= INT32_MAX and -31 <= self.diff_shift <= 10,
                 f"(diff_multiplier, diff_shift) = ({self.diff_multiplier}, {self.diff_shift}) "
                 "out of range (s_in / s_out must be capped at 512)")
        _require(0 <= self.log2_multiplier <= INT32_MAX and -27 <= self.log2_shift <= 30,
                 f"(log2_multiplier, log2_shift) = ({self.log2_multiplier}, {self.log2_shift}) "
                 "out of range (output scale too large or too small)")
        _require(_is_int8(self.out_zp), f"out_zp must be in [-128, 127], got {self.out_zp}")


def make_log_softmax_exp_table(in_scale: float) -> np.ndarray:
    """exp(-k * s_in) in Q30 for k = 0..255, rounded half away from zero (int32[256])."""
    k = np.arange(256, dtype=np.float64)
    table = round_half_away(np.exp(-k * _scale(in_scale, "in_scale")) * LOG_SOFTMAX_EXP_ONE)
    return table.astype(np.int32)


def make_log_softmax_params(in_scale: float, outer: int, depth: int,
                            out_scale: float = LOG_SOFTMAX_OUTPUT_SCALE,
                            out_zp: int = LOG_SOFTMAX_OUTPUT_ZERO_POINT) -> LogSoftmaxParams:
    """Multipliers in double from the float32 scales; s_in / s_out is capped at 512."""
    s_in, s_out = _scale(in_scale, "in_scale"), _scale(out_scale, "out_scale")
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
    _require(bool(np.all(sum_q30 >= LOG_SOFTMAX_EXP_ONE)), "sums must be >= 2^30")
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
    _require(t.dtype == np.int32 and t.shape == (256,), "exp_table must be 256 int32 values")
    _require(int(t[0]) == LOG_SOFTMAX_EXP_ONE and bool(np.all((t >= 0) & (t <= t[0]))),
             "exp_table entries must be in [0, 2^30] with exp_table[0] == 2^30")
    rows = _as_int8(x, p.outer * p.depth, "input").reshape(p.outer, p.depth).astype(np.int64)
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
