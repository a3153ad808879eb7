/*
 * int8 log-softmax over the last axis, integer only (algorithm in tc_log_softmax.h).
 */
#include "tc_log_softmax.h"

#define EXP_TABLE_FRACTION_BITS 30 /* exp_table entries: Q30 */
#define LOG2_FRACTION_BITS 24      /* log2 of the sum: Q24 */
#define STEP_FRACTION_BITS 20      /* distances below zero, in output steps: Q20 */
/* A step count that saturates every zero point: out_zp - 256 < -128. */
#define SATURATING_STEPS 256

static int log_softmax_params_valid(const tc_log_softmax_params *p, const int32_t *exp_table) {
    if (p->outer < 0 || p->depth < 1) return 0;
    if (p->diff_multiplier < 0 || p->diff_shift < -31 || p->diff_shift > 10) return 0;
    if (p->log2_multiplier < 0 || p->log2_shift < -27 || p->log2_shift > 30) return 0;
    if (p->out_zp < -128 || p->out_zp > 127) return 0;
    return exp_table[0] == TC_LOG_SOFTMAX_EXP_ONE;
}

static int32_t row_max(const int8_t *row, int32_t depth) {
    int32_t max = -128;
    int32_t c;
    for (c = 0; c < depth; ++c) max = TC_MAX(max, (int32_t)row[c]);
    return max;
}

/* round(x / 2^exponent), half up, for exponent in [1, 63]. */
static inline uint64_t rounding_shift_right_u64(uint64_t x, int32_t exponent) {
    return (x + ((uint64_t)1 << (exponent - 1))) >> exponent;
}

/* Position of the top set bit of x > 0. */
static int32_t floor_log2_u64(uint64_t x) {
    int32_t position = 0;
    int32_t step;
    for (step = 32; step > 0; step >>= 1) {
        if (x >> step) {
            x >>= step;
            position += step;
        }
    }
    return position;
}

/* Sum of exp(s_in * (x - max)) over the row, in Q30: >= 2^30 (the maximum's own term) and
 * below 2^63 for any int32 depth, whatever the table holds beyond its first entry. */
static uint64_t sum_of_exps_q30(const int32_t *exp_table, const int8_t *row, int32_t depth,
                                int32_t max) {
    uint64_t sum = 0;
    int32_t c;
    for (c = 0; c < depth; ++c) sum += (uint32_t)exp_table[max - (int32_t)row[c]];
    return sum;
}

/*
 * log2(sum / 2^30) in Q24, for sum >= 2^30. The mantissa m in [1, 2) (Q30) gives one fraction
 * bit per squaring: log2(m) = log2(m^2) / 2, and m^2 >= 2 sets the bit and halves m^2.
 * Rounding each square to Q30 perturbs the result by about 2^-30; the Q24 truncation dominates.
 */
static uint64_t log2_of_sum_q24(uint64_t sum) {
    const int32_t exponent = floor_log2_u64(sum) - EXP_TABLE_FRACTION_BITS;
    const uint64_t two = (uint64_t)2 << EXP_TABLE_FRACTION_BITS;
    uint64_t mantissa = sum >> exponent; /* [2^30, 2^31) */
    uint64_t fraction = 0;
    int32_t bit;
    for (bit = 0; bit < LOG2_FRACTION_BITS; ++bit) {
        /* mantissa^2 < 2^62; the rounded square stays in [2^30, 2^32). */
        mantissa = rounding_shift_right_u64(mantissa * mantissa, EXP_TABLE_FRACTION_BITS);
        fraction <<= 1;
        if (mantissa >= two) {
            mantissa >>= 1;
            fraction |= 1;
        }
    }
    return ((uint64_t)exponent << LOG2_FRACTION_BITS) | fraction;
}

/* ln(sum / 2^30) / s_out in Q20 output steps. log2 < 2^30 and the multiplier < 2^31. */
static uint64_t log_sum_steps_q20(const tc_log_softmax_params *p, uint64_t sum) {
    const int32_t exponent = 31 - p->log2_shift + LOG2_FRACTION_BITS - STEP_FRACTION_BITS;
    return rounding_shift_right_u64(log2_of_sum_q24(sum) * (uint64_t)p->log2_multiplier,
                                    exponent);
}

/* (max - x) * s_in / s_out in Q20 output steps, for a distance in [0, 255]. */
static inline uint64_t distance_steps_q20(const tc_log_softmax_params *p, int32_t distance) {
    const int32_t exponent = 31 - p->diff_shift - STEP_FRACTION_BITS;
    return rounding_shift_right_u64((uint64_t)distance * (uint64_t)p->diff_multiplier, exponent);
}

static void log_softmax_row(const tc_log_softmax_params *p, const int32_t *exp_table,
                            const int8_t *in, int8_t *out) {
    const int32_t max = row_max(in, p->depth);
    const uint64_t log_sum = log_sum_steps_q20(p, sum_of_exps_q30(exp_table, in, p->depth, max));
    int32_t c;
    for (c = 0; c < p->depth; ++c) {
        const uint64_t below_zero = distance_steps_q20(p, max - (int32_t)in[c]) + log_sum;
        const uint64_t steps = rounding_shift_right_u64(below_zero, STEP_FRACTION_BITS);
        const int32_t capped = steps > SATURATING_STEPS ? SATURATING_STEPS : (int32_t)steps;
        out[c] = (int8_t)tc_clamp_i32(p->out_zp - capped, -128, 127);
    }
}

tc_status tc_log_softmax_s8(const tc_log_softmax_params *p, const int32_t *exp_table,
                            const int8_t *in, int8_t *out) {
    int32_t row;
    if (!log_softmax_params_valid(p, exp_table)) return TC_ARG_ERROR;
    for (row = 0; row < p->outer; ++row) {
        log_softmax_row(p, exp_table, in, out);
        in += p->depth;
        out += p->depth;
    }
    return TC_OK;
}
