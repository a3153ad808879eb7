"""TFLite's QUANTIZE / DEQUANTIZE reference kernels: the float <-> int8 conversions at a model's
boundary (the generated `*_invoke_f32` does the same in C)."""
from __future__ import annotations

import numpy as np

from .arith import round_half_away
from .checks import checked_scale


def quantize(x, scale: float, zero_point: int) -> np.ndarray:
    """float -> int8 exactly as the generated `*_invoke_f32` (tc_quantize_f32 in model.c) and
    TFLite Micro's QUANTIZE do it: x / scale divided in float32 (TFLM AffineQuantize:
    `val / static_cast<float>(scale)`), rounded half away from zero, + zero point, saturated.

    A double division rounds differently where the float32 quotient lands on a half (2 LSB at
    the output of real models). Defined where C would not be: NaN gives the zero point (real
    0), +-Inf and huge values saturate.
    """
    s = np.float32(checked_scale(scale))
    with np.errstate(over="ignore", invalid="ignore"):
        v = np.asarray(x, dtype=np.float32) / s
    v = np.clip(np.where(np.isnan(v), np.float32(0), v), np.float32(-512), np.float32(512))
    q = round_half_away(v.astype(np.float64)) + int(zero_point)
    return np.clip(q, -128, 127).astype(np.int8)


def dequantize(q, scale: float, zero_point: int) -> np.ndarray:
    """int8 -> float32: scale * (q - zero_point), computed in double and rounded to float32."""
    s = checked_scale(scale)
    return (s * (np.asarray(q, dtype=np.int64) - int(zero_point))).astype(np.float32)
