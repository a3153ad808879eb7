"""Shared parts of the integer references of the window and MAC kernels (conv, depthwise,
fully connected, pooling): zero-point/activation checks, window views over an HWC image, int32
accumulator checks and the per-channel requantization tail.

Accumulators are computed in int64 and checked to fit int32: where they would not, C would
overflow (undefined behaviour), so the references refuse instead of guessing.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .arith import INT32_MAX, INT32_MIN, requantize_to_int8
from .checks import as_shape, check_act_range, require


def check_quant(in_zp: int, out_zp: int, act_min: int, act_max: int) -> None:
    require(-128 <= in_zp <= 127 and -128 <= out_zp <= 127,
            f"zero points must be in [-128, 127], got in_zp={in_zp} out_zp={out_zp}")
    check_act_range(act_min, act_max)


def check_requant_arrays(mult, shift, channels: int) -> tuple[np.ndarray, np.ndarray]:
    mult = np.asarray(mult, dtype=np.int64).reshape(-1)
    shift = np.asarray(shift, dtype=np.int64).reshape(-1)
    require(mult.shape == (channels,) and shift.shape == (channels,),
            f"mult/shift must have {channels} entries, got {mult.shape} and {shift.shape}")
    require(bool(np.all(mult >= 0)) and bool(np.all(mult <= INT32_MAX)),
            "requantization multipliers must be in [0, 2^31-1]")
    require(bool(np.all((shift >= -31) & (shift <= 30))), "shifts must be in [-31, 30]")
    return mult, shift


def as_hwc(x, h: int, w: int, c: int, name: str) -> np.ndarray:
    x = np.asarray(x)
    require(x.shape == (h, w, c), f"{name} must have shape {(h, w, c)}, got {x.shape}")
    return x


def windows(x: np.ndarray, out_h: int, out_w: int, k_h: int, k_w: int, stride_h: int,
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


def check_int32(acc: np.ndarray) -> None:
    if acc.size and (acc.min() < INT32_MIN or acc.max() > INT32_MAX):
        raise ValueError("int32 accumulator overflow: the C kernel would be undefined here")


def add_bias_checked(acc: np.ndarray, bias, channels: int) -> np.ndarray:
    check_int32(acc)
    if bias is not None:
        acc = acc + as_shape(bias, (channels,), "bias").astype(np.int64)
        check_int32(acc)
    return acc


def requantize_channels(acc: np.ndarray, p, mult, shift, channels: int) -> np.ndarray:
    mult, shift = check_requant_arrays(mult, shift, channels)
    return requantize_to_int8(acc, mult, shift, p.out_zp, p.act_min, p.act_max)
