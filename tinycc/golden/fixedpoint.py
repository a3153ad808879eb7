"""gemmlowp fixed point (runtime_c/tc_fixedpoint.h), vectorised in numpy: the exp and reciprocal
that TFLM's int8 softmax uses. Raw int32 values are carried in int64 arrays."""
from __future__ import annotations

import numpy as np

from .arith import INT32_MAX, INT32_MIN, rdbpot, srdhm, trunc_div

_EXP_BARREL_MULTIPLIERS = (1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242)


def fp_saturating_shift_left(x, exponent: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent>, exponent in [1, 30]."""
    x = np.asarray(x, dtype=np.int64)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))


def fp_rounding_half_sum(a, b) -> np.ndarray:
    s = np.asarray(a, dtype=np.int64) + np.asarray(b, dtype=np.int64)
    return trunc_div(s + np.where(s >= 0, 1, -1), 2)


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
