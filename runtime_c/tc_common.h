/*
 * tinycc runtime: shared integer arithmetic (TFLite int8 requantization, double rounding).
 * C99, no floating point, no undefined behaviour on any int32 input.
 * Mirrors tinycc/golden/arith.py bit for bit.
 */
#ifndef TC_COMMON_H
#define TC_COMMON_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { TC_OK = 0, TC_ARG_ERROR = -1 } tc_status;

#define TC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TC_MAX(a, b) ((a) > (b) ? (a) : (b))

/* A 32-bit register's bits as int32 (two's complement, without implementation-defined
 * conversions). */
static inline int32_t tc_wrap_i32(uint32_t bits) {
    return bits <= (uint32_t)INT32_MAX ? (int32_t)bits : -(int32_t)(~bits) - 1;
}

/* For a static inline helper that takes a function pointer (tc_broadcast_rows): inlined before
 * the compiler's loop optimizations, so the pointer is a constant there and the code is what the
 * loop written out in the caller gives. */
#if defined(__GNUC__)
#define TC_ALWAYS_INLINE __attribute__((always_inline))
#else
#define TC_ALWAYS_INLINE
#endif

static inline int32_t tc_clamp_i32(int32_t x, int32_t lo, int32_t hi) {
    return x < lo ? lo : (x > hi ? hi : x);
}

/* gemmlowp SaturatingRoundingDoublingHighMul: round(a*b / 2^31), half toward +inf.
 * gemmlowp adds a sign-dependent nudge and divides with truncation; for every int64 product
 * that equals floor((a*b + 2^30) / 2^31), computed here with one arithmetic shift (as
 * CMSIS-NN's arm_nn_doubling_high_mult_no_sat does). Right shifts of negative values are
 * arithmetic on every compiler we target (gcc, clang, arm-none-eabi-gcc). */
static inline int32_t tc_srdhm(int32_t a, int32_t b) {
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
}

/* gemmlowp RoundingDivideByPOT: x / 2^e rounded half away from zero, e in [0, 31]. */
static inline int32_t tc_rdbpot(int32_t x, int32_t e) {
    const int32_t mask = (int32_t)(((int64_t)1 << e) - 1);
    const int32_t rem = x & mask;
    const int32_t thr = (mask >> 1) + (x < 0 ? 1 : 0);
    /* Right shift of a negative value is implementation-defined in C99; every compiler we
     * target (gcc, clang, arm-none-eabi-gcc) does an arithmetic shift. */
    return (x >> e) + (rem > thr ? 1 : 0);
}

/* TFLM MultiplyByQuantizedMultiplier with double rounding. The left shift (multipliers >= 1,
 * shift > 0, rare) saturates instead of overflowing int32. */
static inline int32_t tc_mbqm(int32_t x, int32_t mult, int32_t shift) {
    int64_t shifted;
    if (shift <= 0) {
        return tc_rdbpot(tc_srdhm(x, mult), -shift);
    }
    shifted = (int64_t)x * ((int64_t)1 << shift);
    if (shifted > INT32_MAX) shifted = INT32_MAX;
    if (shifted < INT32_MIN) shifted = INT32_MIN;
    return tc_srdhm((int32_t)shifted, mult);
}

/* acc -> int8 with output zero point and fused activation clamp. */
static inline int8_t tc_requant_s8(int32_t acc, int32_t mult, int32_t shift, int32_t out_zp,
                                   int32_t act_min, int32_t act_max) {
    int32_t y = tc_mbqm(acc, mult, shift);
    /* y is at most |INT32|; adding a zero point in [-128, 127] can overflow only at the extremes. */
    int64_t z = (int64_t)y + out_zp;
    if (z < act_min) z = act_min;
    if (z > act_max) z = act_max;
    return (int8_t)z;
}

/*
 * tc_mbqm for shift < 0 and mult >= 0 (every QuantizeMultiplier result), with one 64-bit
 * multiply-accumulate (SMLAL on Arm) and a 32-bit shift instead of two roundings. With
 * e = -shift, P = x*mult + 2^30, v = floor(P / 2^31) = tc_srdhm(x, mult) and s = [v < 0],
 * RoundingDivideByPOT(v, e) = floor((v + 2^(e-1) - s) / 2^e)
 *                           = floor((P + (2^(e-1) - s) * 2^31) / 2^(31+e))   (floor(floor(y)+c)/n
 *                             = floor((y+c)/n) for integer c)
 *                           = ((P + (2^(e-1) - s) * 2^31) >> 32) >> (e - 1).
 * s may be taken as [x < 0]: with mult >= 0 they differ only when x < 0 and v = 0, and there
 * both give 0. No overflow: |x*mult| < 2^62 and the added term is at most 2^61 + 2^30.
 */
static inline int32_t tc_mbqm_right(int32_t x, int32_t mult, uint32_t half, int32_t e_minus_1) {
    const uint32_t half_minus_s = half - (x < 0 ? 1u : 0u);
    /* (2^(e-1) - s) * 2^31 + 2^30 as a bit pattern (both terms are >= 0, their bits disjoint) */
    const int64_t rounding = (int64_t)(((uint64_t)half_minus_s << 31) | (UINT64_C(1) << 30));
    return (int32_t)(((int64_t)x * mult + rounding) >> 32) >> e_minus_1;
}

/* The above with half = 2^(e-1) and e_minus_1 = e - 1 derived from shift (= -e) in [-31, -1];
 * loops over one channel pass them precomputed to tc_mbqm_right. */
static inline int32_t tc_mbqm_shift_right(int32_t x, int32_t mult, int32_t shift) {
    return tc_mbqm_right(x, mult, UINT32_C(1) << (-shift - 1), -shift - 1);
}

/* The output stage of the conv, depthwise and FC kernels: tc_requant_s8 for mult >= 0 (which
 * their argument checks guarantee), clamped in 32 bits. clamp(y + out_zp, act_min, act_max) ==
 * clamp(y, act_min - out_zp, act_max - out_zp) + out_zp, and the second form cannot overflow. */
static inline int8_t tc_requant_s8_nonneg(int32_t acc, int32_t mult, int32_t shift,
                                          int32_t out_zp, int32_t act_min, int32_t act_max) {
    int32_t y = shift < 0 ? tc_mbqm_shift_right(acc, mult, shift) : tc_mbqm(acc, mult, shift);
    y = TC_MAX(y, act_min - out_zp);
    y = TC_MIN(y, act_max - out_zp);
    return (int8_t)(y + out_zp);
}

#ifdef __cplusplus
}
#endif

#endif /* TC_COMMON_H */
