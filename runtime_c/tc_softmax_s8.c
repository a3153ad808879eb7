/*
 * int8 softmax over the last axis, bit-exact with TFLM's reference kernel
 * (kernels/internal/reference/softmax.h, the int8-in / int8-out instantiation).
 */
#include "tc_eltwise.h"
#include "tc_fixedpoint.h"

/* exp() takes its argument in Q5 (TFLM kScaledDiffIntegerBits); the sum of exponentials
 * accumulates in Q12 (kAccumulationIntegerBits). */
#define ACCUMULATION_INTEGER_BITS 12

static int softmax_params_valid(const tc_softmax_params *p) {
    if (p->outer < 0 || p->depth < 1) return 0;
    if (p->input_multiplier < 0 || p->input_left_shift < 0 || p->input_left_shift > 31) return 0;
    if (p->diff_min > 0) return 0;
    /* Every difference the kernel rescales (>= diff_min) must fit in int32 after the shift. */
    return (-(int64_t)p->diff_min << p->input_left_shift) <= INT32_MAX;
}

static int32_t row_max(const int8_t *row, int32_t depth) {
    int32_t max = -128;
    int32_t c;
    for (c = 0; c < depth; ++c) max = TC_MAX(max, (int32_t)row[c]);
    return max;
}

/* TFLM MultiplyByQuantizedMultiplierGreaterThanOne: (x - max) * beta * scale in Q5. */
static inline int32_t scaled_diff_q5(const tc_softmax_params *p, int32_t diff) {
    const int64_t shifted = (int64_t)diff * ((int64_t)1 << p->input_left_shift);
    return tc_srdhm((int32_t)shifted, p->input_multiplier);
}

/* Sum of exp(x - max) in Q12 over the elements within diff_min of the maximum. The exact sum
 * only reaches INT32_MAX for rows of 4096+ near-maximal elements; saturating there keeps the
 * result at -128 everywhere, which is what the exact sum rounds to as well. */
static int32_t sum_of_exps_q12(const tc_softmax_params *p, const int8_t *row, int32_t max) {
    int32_t sum = 0;
    int32_t c;
    for (c = 0; c < p->depth; ++c) {
        const int32_t diff = (int32_t)row[c] - max;
        if (diff >= p->diff_min) {
            const int32_t exp_q0 = tc_fp_exp_on_negative_values_q5(scaled_diff_q5(p, diff));
            /* gemmlowp Rescale<12>: Q0 -> Q12. */
            const int32_t term = tc_rdbpot(exp_q0, ACCUMULATION_INTEGER_BITS);
            sum = sum > INT32_MAX - term ? INT32_MAX : sum + term;
        }
    }
    return sum;
}

/* x / 2^exponent rounded half away from zero, for x >= 0 and any exponent >= 0. */
static inline int32_t divide_by_pot_nonnegative(int32_t x, int32_t exponent) {
    /* For exponent >= 32 every 0 <= x < 2^31 is below one half. */
    return exponent > 31 ? 0 : tc_rdbpot(x, exponent);
}

static void softmax_row(const tc_softmax_params *p, const int8_t *in, int8_t *out) {
    const int32_t max = row_max(in, p->depth);
    int32_t num_bits_over_unit;
    const int32_t shifted_scale = tc_fp_get_reciprocal(
        sum_of_exps_q12(p, in, max), ACCUMULATION_INTEGER_BITS, &num_bits_over_unit);
    /* TFLM rejects (TFLITE_CHECK) exponents above 31, i.e. exp sums >= 512; the correctly
     * rounded outputs there are all -128, which divide_by_pot_nonnegative produces. */
    const int32_t exponent = num_bits_over_unit + 31 - 8;
    int32_t c;
    for (c = 0; c < p->depth; ++c) {
        const int32_t diff = (int32_t)in[c] - max;
        if (diff >= p->diff_min) {
            const int32_t exp_q0 = tc_fp_exp_on_negative_values_q5(scaled_diff_q5(p, diff));
            const int32_t unsat =
                divide_by_pot_nonnegative(tc_srdhm(shifted_scale, exp_q0), exponent);
            out[c] = (int8_t)tc_clamp_i32(unsat - 128, -128, 127);
        } else {
            out[c] = -128;
        }
    }
}

tc_status tc_softmax_s8(const tc_softmax_params *p, const int8_t *in, int8_t *out) {
    int32_t row;
    if (!softmax_params_valid(p)) return TC_ARG_ERROR;
    for (row = 0; row < p->outer; ++row) {
        softmax_row(p, in + row * p->depth, out + row * p->depth);
    }
    return TC_OK;
}
