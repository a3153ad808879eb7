/*
 * tinycc runtime: the gemmlowp fixed-point functions TFLM's int8 softmax uses
 * (gemmlowp fixedpoint/fixedpoint.h, tflite kernels/internal/common.h GetReciprocal),
 * specialised to int32 raw values. Mirrors the fixed-point section of
 * tinycc/golden/kernels_eltwise.py bit for bit.
 *
 * A "Qm" value is a raw int32 with m integer bits and 31 - m fractional bits (gemmlowp
 * FixedPoint<int32_t, m>). gemmlowp's plain additions never overflow for the ranges used here;
 * its saturating shifts and divisions are written without undefined behaviour.
 */
#ifndef TC_FIXEDPOINT_H
#define TC_FIXEDPOINT_H

#include "tc_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* gemmlowp SaturatingRoundingMultiplyByPOT<exponent> for exponent in [1, 30]. */
static inline int32_t tc_fp_saturating_shift_left(int32_t x, int32_t exponent) {
    const int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
    if (x > threshold) return INT32_MAX;
    if (x < -threshold) return INT32_MIN;
    return (int32_t)((int64_t)x * ((int64_t)1 << exponent));
}

/* gemmlowp RoundingHalfSum: (a + b) / 2, rounded half away from zero. */
static inline int32_t tc_fp_rounding_half_sum(int32_t a, int32_t b) {
    const int64_t sum = (int64_t)a + b;
    return (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
}

/* Number of leading zero bits of a 32-bit word (32 for 0). */
static inline int32_t tc_count_leading_zeros_u32(uint32_t x) {
    int32_t n = 0;
    if (x == 0) return 32;
    while ((x & UINT32_C(0x80000000)) == 0) {
        x <<= 1;
        ++n;
    }
    return n;
}

/* exp(a) for a in [-1/4, 0): Q0 in, Q0 out. Taylor expansion around -1/8. */
static inline int32_t tc_fp_exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a) {
    const int32_t constant_term = 1895147668;   /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883; /* 1/3 */
    const int32_t x = a + (INT32_C(1) << 28);    /* a + 1/8 */
    const int32_t x2 = tc_srdhm(x, x);
    const int32_t x3 = tc_srdhm(x2, x);
    const int32_t x4 = tc_srdhm(x2, x2);
    const int32_t x4_over_4 = tc_rdbpot(x4, 2);
    const int32_t x4_over_24_plus_x3_over_6_plus_x2_over_2 =
        tc_rdbpot(tc_srdhm(x4_over_4 + x3, constant_1_over_3) + x2, 1);
    return constant_term + tc_srdhm(constant_term, x + x4_over_24_plus_x3_over_6_plus_x2_over_2);
}

/* exp(a) for a <= 0, a in Q5 (gemmlowp exp_on_negative_values<int32_t, 5>), result in Q0. */
static inline int32_t tc_fp_exp_on_negative_values_q5(int32_t a) {
    /* exp(-2^k) in Q0 for k = -2 .. 4, applied for every set bit of the integer part. */
    static const int32_t barrel_multipliers[7] = {1672461947, 1302514674, 790015084, 290630308,
                                                  39332535,   720401,     242};
    const int32_t one_quarter = INT32_C(1) << 24; /* 1/4 in Q5 */
    const int32_t a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter;
    const int32_t remainder = a_mod_quarter_minus_one_quarter - a;
    /* Rescale<0> from Q5: a value in [-1/4, 0) cannot saturate. */
    int32_t result = tc_fp_exp_on_interval_between_negative_one_quarter_and_0_excl(
        tc_fp_saturating_shift_left(a_mod_quarter_minus_one_quarter, 5));
    int32_t k;
    for (k = 0; k < 7; ++k) {
        if (remainder & (INT32_C(1) << (24 + k))) result = tc_srdhm(result, barrel_multipliers[k]);
    }
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + a) for a in [0, 1): Q0 in, Q0 out. Three Newton-Raphson steps in Q2. */
static inline int32_t tc_fp_one_over_one_plus_x_for_x_in_0_1(int32_t a) {
    const int32_t constant_48_over_17 = 1515870810;      /* Q2 */
    const int32_t constant_neg_32_over_17 = -1010580540; /* Q2 */
    const int32_t one_q2 = INT32_C(1) << 29;
    const int32_t half_denominator = tc_fp_rounding_half_sum(a, INT32_MAX); /* Q0 */
    int32_t x = constant_48_over_17 + tc_srdhm(half_denominator, constant_neg_32_over_17);
    int32_t i;
    for (i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = tc_srdhm(half_denominator, x);
        const int32_t one_minus_half_denominator_times_x = one_q2 - half_denominator_times_x;
        /* Q2 * Q2 = Q4, rescaled back to Q2. */
        x = x + tc_fp_saturating_shift_left(tc_srdhm(x, one_minus_half_denominator_times_x), 2);
    }
    /* x / 2 reinterpreted as Q1, rescaled to Q0. */
    return tc_fp_saturating_shift_left(x, 1);
}

/*
 * TFLM GetReciprocal: for x > 0 in Q(x_integer_digits), returns s in Q0 and sets
 * *num_bits_over_unit so that 1/x = s / 2^num_bits_over_unit.
 */
static inline int32_t tc_fp_get_reciprocal(int32_t x, int32_t x_integer_digits,
                                           int32_t *num_bits_over_unit) {
    const int32_t headroom_plus_one = tc_count_leading_zeros_u32((uint32_t)x);
    /* The shift moves the top set bit to bit 31, which the subtraction removes (x == 0 is
     * outside the contract; it is kept free of undefined behaviour). */
    const uint32_t shifted = headroom_plus_one < 32 ? (uint32_t)x << headroom_plus_one : 0;
    const int32_t shifted_sum_minus_one = (int32_t)((int64_t)shifted - ((int64_t)1 << 31));
    *num_bits_over_unit = x_integer_digits - headroom_plus_one;
    return tc_fp_one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one);
}

#ifdef __cplusplus
}
#endif

#endif /* TC_FIXEDPOINT_H */
