"""Bit-exact numpy mirrors of the spatial int8 kernels in runtime_c/ (conv, depthwise, fc, pools).

Each `*Params` dataclass has the field names, in the same order, of the C struct named by its
`C_STRUCT` attribute (`dataclasses.asdict` gives the designated initializer the code generator
emits). Each kernel function is the C function name without the `tc_` prefix, takes the same
arrays (NHWC tensors as [H][W][C] numpy arrays, N = 1) and returns what the C writes, as int8.
The kernel functions raise ValueError wherever the C kernel returns TC_ARG_ERROR (struct
checks are each dataclass's `validate()`, multiplier/shift checks happen in the kernel), and on
array-shape mismatches, which the C cannot see.

Accumulators are computed in int64 and checked to fit int32: where they would not, C would
overflow (undefined behaviour), so the mirror refuses instead of guessing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

import numpy as np
from numpy.lib.stride_tricks import as_strided

from tinycc.golden.arith import INT32_MAX, INT32_MIN, requantize_to_int8

__all__ = [
    "Conv2dParams", "DwConv2dParams", "FcParams", "MaxPoolParams", "AvgPoolParams",
    "conv_output_size",
    "conv2d_acc", "conv2d_s8",
    "dwconv2d_acc", "dwconv2d_s8", "dwconv2d_s8_inplace", "dwconv2d_s8_inplace_scratch_size",
    "fc_acc", "fc_s8",
    "maxpool_s8", "avgpool_s8",
]


def conv_output_size(in_size: int, k: int, stride: int = 1, dil: int = 1, pad_begin: int = 0,
                     pad_end: int = 0) -> int:
    """Output length along one axis for explicit padding (ONNX/TFLite floor mode)."""
    return (in_size + pad_begin + pad_end - dil * (k - 1) - 1) // stride + 1


# ---------------------------------------------------------------------------------------------
# Parameter structs


def _require(cond: bool, what: str) -> None:
    if not cond:
        raise ValueError(what)


def _check_quant(in_zp: int, out_zp: int, act_min: int, act_max: int) -> None:
    _require(-128 <= in_zp <= 127 and -128 <= out_zp <= 127,
             f"zero points must be in [-128, 127], got in_zp={in_zp} out_zp={out_zp}")
    _require(-128 <= act_min <= act_max <= 127,
             f"need -128 <= act_min <= act_max <= 127, got [{act_min}, {act_max}]")


def _check_requant_arrays(mult, shift, channels: int) -> tuple[np.ndarray, np.ndarray]:
    mult = np.asarray(mult, dtype=np.int64).reshape(-1)
    shift = np.asarray(shift, dtype=np.int64).reshape(-1)
    _require(mult.shape == (channels,) and shift.shape == (channels,),
             f"mult/shift must have {channels} entries, got {mult.shape} and {shift.shape}")
    _require(bool(np.all(mult >= 0)) and bool(np.all(mult <= INT32_MAX)),
             "requantization multipliers must be in [0, 2^31-1]")
    _require(bool(np.all((shift >= -31) & (shift <= 30))), "shifts must be in [-31, 30]")
    return mult, shift


def _check_window_geometry(p) -> None:
    _require(min(p.in_h, p.in_w, p.in_c, p.out_h, p.out_w, p.out_c) >= 1,
             "all tensor sizes must be >= 1")
    _require(min(p.k_h, p.k_w, p.stride_h, p.stride_w, p.dil_h, p.dil_w) >= 1,
             "kernel size, stride and dilation must be >= 1")
    _require(p.pad_top >= 0 and p.pad_left >= 0, "pads must be >= 0")


@dataclass(frozen=True)
class Conv2dParams:
    """tc_conv2d_params: regular or grouped conv; weights OHWI [out_c][k_h][k_w][in_c/groups]."""

    C_STRUCT: ClassVar[str] = "tc_conv2d_params"
    in_h: int
    in_w: int
    in_c: int
    out_h: int
    out_w: int
    out_c: int
    k_h: int
    k_w: int
    stride_h: int
    stride_w: int
    dil_h: int
    dil_w: int
    pad_top: int
    pad_left: int
    groups: int
    in_zp: int
    out_zp: int
    act_min: int
    act_max: int

    def validate(self) -> None:
        _check_window_geometry(self)
        _require(self.groups >= 1 and self.in_c % self.groups == 0
                 and self.out_c % self.groups == 0,
                 f"groups={self.groups} must divide in_c={self.in_c} and out_c={self.out_c}")
        _check_quant(self.in_zp, self.out_zp, self.act_min, self.act_max)


@dataclass(frozen=True)
class DwConv2dParams:
    """tc_dwconv2d_params: depthwise conv; weights [k_h][k_w][out_c], oc = ic*depth_mult + m."""

    C_STRUCT: ClassVar[str] = "tc_dwconv2d_params"
    in_h: int
    in_w: int
    in_c: int
    out_h: int
    out_w: int
    out_c: int
    k_h: int
    k_w: int
    stride_h: int
    stride_w: int
    dil_h: int
    dil_w: int
    pad_top: int
    pad_left: int
    depth_mult: int
    in_zp: int
    out_zp: int
    act_min: int
    act_max: int

    def validate(self) -> None:
        _check_window_geometry(self)
        _require(self.depth_mult >= 1 and self.out_c == self.in_c * self.depth_mult,
                 f"out_c={self.out_c} must equal in_c={self.in_c} * depth_mult={self.depth_mult}")
        _check_quant(self.in_zp, self.out_zp, self.act_min, self.act_max)


@dataclass(frozen=True)
class FcParams:
    """tc_fc_params: input [rows][in_features], weights [out_features][in_features]."""

    C_STRUCT: ClassVar[str] = "tc_fc_params"
    rows: int
    in_features: int
    out_features: int
    in_zp: int
    out_zp: int
    act_min: int
    act_max: int
    per_channel: int = 1  # 0: one (mult, shift) for the whole layer

    def validate(self) -> None:
        _require(min(self.rows, self.in_features, self.out_features) >= 1,
                 "rows, in_features and out_features must be >= 1")
        _check_quant(self.in_zp, self.out_zp, self.act_min, self.act_max)


def _pool_axis_ok(in_size: int, out_size: int, k: int, stride: int, pad: int) -> bool:
    if min(in_size, out_size, k, stride) < 1 or pad < 0:
        return False
    return pad < k and (out_size - 1) * stride - pad < in_size


def _pool_axis_inside(in_size: int, out_size: int, k: int, stride: int, pad: int) -> bool:
    return pad == 0 and (out_size - 1) * stride + k <= in_size


def _check_pool_geometry(p) -> None:
    _require(p.channels >= 1, "channels must be >= 1")
    _require(_pool_axis_ok(p.in_h, p.out_h, p.k_h, p.stride_h, p.pad_top)
             and _pool_axis_ok(p.in_w, p.out_w, p.k_w, p.stride_w, p.pad_left),
             "every pooling window must contain an in-image tap (and sizes/strides >= 1)")
    _require(-128 <= p.act_min <= p.act_max <= 127,
             f"need -128 <= act_min <= act_max <= 127, got [{p.act_min}, {p.act_max}]")


@dataclass(frozen=True)
class MaxPoolParams:
    """tc_maxpool_params (same quantization in and out)."""

    C_STRUCT: ClassVar[str] = "tc_maxpool_params"
    in_h: int
    in_w: int
    channels: int
    out_h: int
    out_w: int
    k_h: int
    k_w: int
    stride_h: int
    stride_w: int
    pad_top: int
    pad_left: int
    act_min: int
    act_max: int

    def validate(self) -> None:
        _check_pool_geometry(self)


@dataclass(frozen=True)
class AvgPoolParams:
    """tc_avgpool_params; see runtime_c/tc_pool.h for the two arithmetic modes.

    use_requant=0: TFLM AveragePool on raw values (out_zp/mult/shift ignored); with
    count_include_pad the divisor is k_h*k_w and each padded tap adds in_zp (real 0).
    use_requant=1: sum of (x - in_zp) requantized with (mult, shift), a multiplier for
    in_scale / (out_scale * k_h * k_w); needs count_include_pad or windows entirely inside the
    image. Global average pooling takes TFLite MEAN's (kernels_reduce.mean_multiplier).
    """

    C_STRUCT: ClassVar[str] = "tc_avgpool_params"
    in_h: int
    in_w: int
    channels: int
    out_h: int
    out_w: int
    k_h: int
    k_w: int
    stride_h: int
    stride_w: int
    pad_top: int
    pad_left: int
    count_include_pad: int
    use_requant: int
    in_zp: int
    out_zp: int
    mult: int
    shift: int
    act_min: int
    act_max: int

    def validate(self) -> None:
        _check_pool_geometry(self)
        _require(-128 <= self.in_zp <= 127, f"in_zp must be in [-128, 127], got {self.in_zp}")
        if not self.use_requant:
            return
        _require(-128 <= self.out_zp <= 127, f"out_zp must be in [-128, 127], got {self.out_zp}")
        _require(0 <= self.mult <= INT32_MAX and -31 <= self.shift <= 30,
                 f"bad requantization multiplier ({self.mult}, {self.shift})")
        _require(bool(self.count_include_pad)
                 or (_pool_axis_inside(self.in_h, self.out_h, self.k_h, self.stride_h,
                                       self.pad_top)
                     and _pool_axis_inside(self.in_w, self.out_w, self.k_w, self.stride_w,
                                           self.pad_left)),
                 "use_requant folds one divisor into the multiplier: windows must not cross the"
                 " border unless count_include_pad is set")


# ---------------------------------------------------------------------------------------------
# Shared helpers


def _as_hwc(x, h: int, w: int, c: int, name: str) -> np.ndarray:
    x = np.asarray(x)
    _require(x.shape == (h, w, c), f"{name} must have shape {(h, w, c)}, got {x.shape}")
    return x


def _as_shape(a, shape: tuple, name: str) -> np.ndarray:
    a = np.asarray(a)
    _require(a.shape == shape, f"{name} must have shape {shape}, got {a.shape}")
    return a


def _windows(x: np.ndarray, out_h: int, out_w: int, k_h: int, k_w: int, stride_h: int,
             stride_w: int, dil_h: int, dil_w: int, pad_top: int, pad_left: int,
             fill) -> np.ndarray:
    """Read-only view [out_h][out_w][k_h][k_w][C] of the taps of every window.

    Taps outside the image read `fill`. The image is embedded in a canvas that spans exactly
    the rows/columns the windows reach, so bottom/right padding (or cropping) follows from
    out_h/out_w as in the C kernels.
    """
    in_h, in_w, c = x.shape
    rows = (out_h - 1) * stride_h + (k_h - 1) * dil_h + 1
    cols = (out_w - 1) * stride_w + (k_w - 1) * dil_w + 1
    canvas = np.full((rows, cols, c), fill, dtype=x.dtype)
    src_h = min(in_h, rows - pad_top)
    src_w = min(in_w, cols - pad_left)
    if src_h > 0 and src_w > 0:
        canvas[pad_top:pad_top + src_h, pad_left:pad_left + src_w] = x[:src_h, :src_w]
    sr, sc, sch = canvas.strides
    return as_strided(canvas, shape=(out_h, out_w, k_h, k_w, c),
                      strides=(sr * stride_h, sc * stride_w, sr * dil_h, sc * dil_w, sch),
                      writeable=False)


def _check_int32(acc: np.ndarray) -> None:
    if acc.size and (acc.min() < INT32_MIN or acc.max() > INT32_MAX):
        raise ValueError("int32 accumulator overflow: the C kernel would be undefined here")


def _add_bias_checked(acc: np.ndarray, bias, channels: int) -> np.ndarray:
    _check_int32(acc)
    if bias is not None:
        acc = acc + _as_shape(bias, (channels,), "bias").astype(np.int64)
        _check_int32(acc)
    return acc


def _requantize(acc: np.ndarray, p, mult, shift, channels: int) -> np.ndarray:
    mult, shift = _check_requant_arrays(mult, shift, channels)
    return requantize_to_int8(acc, mult, shift, p.out_zp, p.act_min, p.act_max)


def _trunc_div(a: np.ndarray, n) -> np.ndarray:
    """C99 integer division (truncation toward zero) of int64 arrays."""
    q = np.abs(a) // n
    return np.where(a < 0, -q, q)


# ---------------------------------------------------------------------------------------------
# Convolutions and fully connected


def conv2d_acc(p: Conv2dParams, x, w, bias: Optional[np.ndarray] = None) -> np.ndarray:
    """int64 accumulators [out_h][out_w][out_c] of tc_conv2d_s8 (bias included), before requant."""
    p.validate()
    x = _as_hwc(x, p.in_h, p.in_w, p.in_c, "input").astype(np.int64) - p.in_zp
    group_c, group_oc = p.in_c // p.groups, p.out_c // p.groups
    w = _as_shape(w, (p.out_c, p.k_h, p.k_w, group_c), "weights").astype(np.int64)
    # Zero in the (x - in_zp) domain is exactly a skipped tap.
    win = _windows(x, p.out_h, p.out_w, p.k_h, p.k_w, p.stride_h, p.stride_w, p.dil_h, p.dil_w,
                   p.pad_top, p.pad_left, fill=0)
    win = win.reshape(p.out_h * p.out_w, p.k_h, p.k_w, p.groups, group_c)
    w = w.reshape(p.groups, group_oc, p.k_h, p.k_w, group_c)
    acc = np.empty((p.out_h * p.out_w, p.groups, group_oc), dtype=np.int64)
    for g in range(p.groups):
        cols = win[:, :, :, g, :].reshape(p.out_h * p.out_w, -1)  # im2col (copies)
        acc[:, g, :] = cols @ w[g].reshape(group_oc, -1).T
    return _add_bias_checked(acc.reshape(p.out_h, p.out_w, p.out_c), bias, p.out_c)


def conv2d_s8(p: Conv2dParams, x, w, bias, mult, shift) -> np.ndarray:
    """Mirror of tc_conv2d_s8: int8 [out_h][out_w][out_c]."""
    return _requantize(conv2d_acc(p, x, w, bias), p, mult, shift, p.out_c)


def dwconv2d_acc(p: DwConv2dParams, x, w, bias: Optional[np.ndarray] = None) -> np.ndarray:
    """int64 accumulators [out_h][out_w][out_c] of tc_dwconv2d_s8 (bias included)."""
    p.validate()
    x = _as_hwc(x, p.in_h, p.in_w, p.in_c, "input").astype(np.int64) - p.in_zp
    w = _as_shape(w, (p.k_h, p.k_w, p.out_c), "weights").astype(np.int64)
    win = _windows(x, p.out_h, p.out_w, p.k_h, p.k_w, p.stride_h, p.stride_w, p.dil_h, p.dil_w,
                   p.pad_top, p.pad_left, fill=0)
    if p.depth_mult > 1:
        win = win[..., np.arange(p.out_c) // p.depth_mult]  # output channel oc reads oc // mult
    acc = np.einsum("hwyxc,yxc->hwc", win, w)
    return _add_bias_checked(acc, bias, p.out_c)


def dwconv2d_s8(p: DwConv2dParams, x, w, bias, mult, shift) -> np.ndarray:
    """Mirror of tc_dwconv2d_s8: int8 [out_h][out_w][out_c]."""
    return _requantize(dwconv2d_acc(p, x, w, bias), p, mult, shift, p.out_c)


def dwconv2d_s8_inplace_scratch_size(p: DwConv2dParams) -> int:
    """Mirror of tc_dwconv2d_s8_inplace_scratch_size: bytes of one input channel plane."""
    return p.in_h * p.in_w


def dwconv2d_s8_inplace(p: DwConv2dParams, x, w, bias, mult, shift) -> np.ndarray:
    """Mirror of tc_dwconv2d_s8_inplace called with out == in (same values as dwconv2d_s8).

    The result occupies the first out_h*out_w*out_c bytes of the input buffer.
    """
    p.validate()
    _require(p.depth_mult == 1, "in-place depthwise needs depth_mult == 1")
    _require(p.out_h * p.out_w <= p.in_h * p.in_w,
             "in-place depthwise needs out_h*out_w <= in_h*in_w")
    return dwconv2d_s8(p, x, w, bias, mult, shift)


def fc_acc(p: FcParams, x, w, bias: Optional[np.ndarray] = None) -> np.ndarray:
    """int64 accumulators [rows][out_features] of tc_fc_s8 (bias included)."""
    p.validate()
    x = _as_shape(x, (p.rows, p.in_features), "input").astype(np.int64) - p.in_zp
    w = _as_shape(w, (p.out_features, p.in_features), "weights").astype(np.int64)
    return _add_bias_checked(x @ w.T, bias, p.out_features)


def fc_s8(p: FcParams, x, w, bias, mult, shift) -> np.ndarray:
    """Mirror of tc_fc_s8: int8 [rows][out_features]."""
    if p.per_channel:
        return _requantize(fc_acc(p, x, w, bias), p, mult, shift, p.out_features)
    mult, shift = _check_requant_arrays(mult, shift, 1)
    return requantize_to_int8(fc_acc(p, x, w, bias), mult[0], shift[0], p.out_zp, p.act_min, p.act_max)


# ---------------------------------------------------------------------------------------------
# Pooling


def _pool_windows(p, x: np.ndarray, fill) -> np.ndarray:
    return _windows(x, p.out_h, p.out_w, p.k_h, p.k_w, p.stride_h, p.stride_w, 1, 1,
                    p.pad_top, p.pad_left, fill=fill)


def maxpool_s8(p: MaxPoolParams, x) -> np.ndarray:
    """Mirror of tc_maxpool_s8: int8 [out_h][out_w][channels]."""
    p.validate()
    x = _as_hwc(x, p.in_h, p.in_w, p.channels, "input").astype(np.int16)
    # Below any int8 value, so padded taps never win (every window has an in-image tap).
    win = _pool_windows(p, x, fill=-32768)
    return np.clip(win.max(axis=(2, 3)), p.act_min, p.act_max).astype(np.int8)


def avgpool_s8(p: AvgPoolParams, x) -> np.ndarray:
    """Mirror of tc_avgpool_s8: int8 [out_h][out_w][channels]."""
    p.validate()
    x = _as_hwc(x, p.in_h, p.in_w, p.channels, "input").astype(np.int64)
    raw_sum = _pool_windows(p, x, fill=0).sum(axis=(2, 3))
    ones = np.ones((p.in_h, p.in_w, 1), dtype=np.int64)
    taps = _pool_windows(p, ones, fill=0).sum(axis=(2, 3))  # in-image taps, [out_h][out_w][1]
    if p.use_requant:
        return requantize_to_int8(raw_sum - taps * p.in_zp, p.mult, p.shift, p.out_zp,
                                  p.act_min, p.act_max)
    if p.count_include_pad:
        n = p.k_h * p.k_w
        acc = raw_sum + (n - taps) * p.in_zp
    else:
        n, acc = taps, raw_sum
    mean = np.where(acc > 0, _trunc_div(acc + n // 2, n), _trunc_div(acc - n // 2, n))
    return np.clip(mean, p.act_min, p.act_max).astype(np.int8)

