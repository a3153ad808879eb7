"""TFLite / TFLM integer requantization arithmetic, vectorised in numpy.

This is the single Python definition of the arithmetic that runtime_c/tc_common.h implements.
Everything is computed in int64 and mirrors the C exactly (see quantization.md §2.2-2.3):
double rounding = gemmlowp SaturatingRoundingDoublingHighMul then RoundingDivideByPOT.
"""
from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


class MultiplierRangeError(ValueError):
    """A ratio of quantization scales that no int32 fixed-point multiplier expresses: a property
    of the model's scales (lowering names the node), not of the arithmetic."""


# The largest multiplier QuantizeMultiplier expresses: (2^31 - 1) * 2^(30 - 31).
MAX_MULTIPLIER = ((1 << 31) - 1) / 2


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLM QuantizeMultiplier: real = mult * 2^(shift-31), mult in [2^30, 2^31-1].

    `real` must be a Python float (double) computed from the float32 scales in double.
    """
    if real == 0.0:
        return 0, 0
    if real < 0 or not math.isfinite(real):
        raise MultiplierRangeError(f"requantization multiplier must be finite and >= 0, got {real!r}")
    q, shift = math.frexp(real)
    q_fixed = _round_half_away(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift = 0
        q_fixed = 0
    if shift > 30:
        # TFLM leaves this to the int32 left shift; we refuse multipliers >= 2^30 instead.
        raise MultiplierRangeError(f"requantization multiplier {real!r} is too large")
    return int(q_fixed), int(shift)


def quantize_multiplier_array(reals) -> tuple[np.ndarray, np.ndarray]:
    pairs = [quantize_multiplier(float(r)) for r in np.asarray(reals, dtype=np.float64).ravel()]
    mult = np.array([p[0] for p in pairs], dtype=np.int32)
    shift = np.array([p[1] for p in pairs], dtype=np.int32)
    return mult, shift


def _round_half_away(x: float) -> int:
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def round_half_away(x) -> np.ndarray:
    """std::round / TfLiteRound on arrays (half away from zero)."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def trunc_div(n, d) -> np.ndarray:
    """C integer division (truncation toward zero) of int64 n by a positive d."""
    n = np.asarray(n, dtype=np.int64)
    q = np.abs(n) // d
    return np.where(n >= 0, q, -q)


def _trunc_div_pow2(n: np.ndarray, e: int) -> np.ndarray:
    """C integer division of int64 n by 2^e (truncation toward zero)."""
    return np.where(n >= 0, n >> e, -((-n) >> e))


def srdhm(a, b) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 values (returned as int64)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    overflow = (a == b) & (a == INT32_MIN)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    r = _trunc_div_pow2(ab + nudge, 31)
    return np.where(overflow, INT32_MAX, r)


def rdbpot(x, exponent) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: arithmetic shift right, rounding half away from zero."""
    x = np.asarray(x, dtype=np.int64)
    e = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << e) - 1
    rem = x & mask
    thr = (mask >> 1) + (x < 0)
    return (x >> e) + (rem > thr)


def saturate_int32(x) -> np.ndarray:
    return np.clip(np.asarray(x, dtype=np.int64), INT32_MIN, INT32_MAX)


def mbqm(x, mult, shift) -> np.ndarray:
    """TFLM MultiplyByQuantizedMultiplier (double rounding). Broadcasts mult/shift over x.

    The left shift (only for multipliers >= 1) saturates to int32 instead of overflowing,
    the one place where C would otherwise hit undefined behaviour; C does the same.
    """
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    ls = np.maximum(shift, 0)
    rs = np.maximum(-shift, 0)
    return rdbpot(srdhm(saturate_int32(x << ls), mult), rs)


def requantize_to_int8(acc, mult, shift, out_zp, act_min=-128, act_max=127) -> np.ndarray:
    """acc (int32 accumulator) -> int8, the tail of every conv/fc kernel."""
    y = mbqm(acc, mult, shift) + int(out_zp)
    return np.clip(y, act_min, act_max).astype(np.int8)
