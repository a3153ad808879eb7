/*
 * tinycc runtime: the fast portable variant of tc_add_s8 / tc_sub_s8's rows (tc_add_s8.c) and
 * of tc_add_s8_table's (tc_add_s8_table.c, at the end), for
 * cores without the DSP extension (Cortex-M0+/M3, RISC-V, ESP32, the host): plain C99,
 * bit-exact with the portable reference, whose row function calls it for rows of contiguous
 * inputs when TC_FAST_PORTABLE (tc_eltwise.h).
 *
 * TFLM's three MultiplyByQuantizedMultiplier calls per element (each a saturating rounding
 * doubling high multiply, then a rounding right shift) become one 32 x 32 -> 64-bit multiply
 * each, with their constants hoisted out of the loop:
 *  - an operand: SRDHM((x - zp) << 20, m) = floor(((x - zp) << 20) * m + 2^30) / 2^31)
 *                                         = floor((((x - zp) << 21) * m + 2^31) / 2^32)
 *    (|x - zp| <= 255: (x - zp) << 21 < 2^29, and SRDHM's one saturating case, both factors
 *    INT32_MIN, cannot occur); its rounding right shift by e >= 1 is
 *    floor((v + 2^(e-1) - [v < 0]) / 2^e), gemmlowp's RoundingDivideByPOT (tc_rdbpot);
 *  - the output: tc_mbqm_right (one multiply-accumulate with the rounding of both steps), or
 *    SRDHM alone for a shift of 0; the fused activation clamps before the zero point is added
 *    (|y| < 2^30: the sum of two operands below 2^29 times a multiplier below one).
 */
#include "tc_eltwise.h"

#if TC_FAST_PORTABLE

/* One operand's rescaling: zero point, multiplier, e = -shift and 2^(e-1) (0 for e = 0). */
typedef struct {
    int32_t zp, mult, e, half;
} add_fast_operand;

static add_fast_operand add_fast_operand_of(int32_t zp, int32_t mult, int32_t shift) {
    add_fast_operand o;
    o.zp = zp;
    o.mult = mult;
    o.e = -shift;
    o.half = shift < 0 ? INT32_C(1) << (-shift - 1) : 0;
    return o;
}

/* MBQM((x - zp) << 20, mult, -e), as the reference's rescale_operand. */
static TC_ALWAYS_INLINE inline int32_t add_fast_rescale(int32_t x, const add_fast_operand *o) {
    const int32_t d21 = (x - o->zp) * (INT32_C(1) << (TC_ADD_LEFT_SHIFT + 1));
    const int32_t v = (int32_t)(((int64_t)d21 * o->mult + INT64_C(0x80000000)) >> 32);
    if (o->e == 0) return v;
    return (v + o->half - (v < 0 ? 1 : 0)) >> o->e;
}

void tc_add_s8_row_fast(const tc_add_params *p, int32_t sign2, const int8_t *in1,
                        const int8_t *in2, int8_t *out, int32_t n) {
    const add_fast_operand o1 = add_fast_operand_of(p->in1_zp, p->in1_multiplier, p->in1_shift);
    const add_fast_operand o2 = add_fast_operand_of(p->in2_zp, p->in2_multiplier, p->in2_shift);
    const int32_t mult = p->out_multiplier, out_zp = p->out_zp, out_shift = p->out_shift;
    const int32_t lo = p->act_min - out_zp, hi = p->act_max - out_zp;
    const int32_t e_minus_1 = p->out_shift < 0 ? -p->out_shift - 1 : 0;
    const uint32_t half = UINT32_C(1) << e_minus_1;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t a = add_fast_rescale(in1[i], &o1);
        const int32_t b = add_fast_rescale(in2[i], &o2);
        const int32_t sum = sign2 > 0 ? a + b : a - b;
        const int32_t y = out_shift < 0 ? tc_mbqm_right(sum, mult, half, e_minus_1)
                                           : tc_srdhm(sum, mult);
        out[i] = (int8_t)(TC_MIN(TC_MAX(y, lo), hi) + out_zp);
    }
}

/* tc_add_s8_table's rows (tc_add_s8_table.c) for output shifts -e < 0: acc2 = t1[x1] + t2[x2]
 * is the doubled sum, so tc_mbqm_right's multiply-accumulate takes it with its constant doubled,
 * (2^(e-1) - s) * 2^32 + 2^31 (s = [acc2 < 0]), and the shift one bit longer: one SMULL-class
 * multiply-accumulate per element, no halving and no 64-bit rounding constant built from bits. */
void tc_add_s8_table_row_fast(const tc_add_params *p, const int32_t *t1, const int32_t *t2,
                              const int8_t *in1, const int8_t *in2, int8_t *out, int32_t n) {
    const int32_t mult = p->out_multiplier, out_zp = p->out_zp, e = -p->out_shift;
    const int32_t lo = p->act_min - out_zp, hi = p->act_max - out_zp;
    const int32_t half = INT32_C(1) << (e - 1);
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t acc2 = t1[in1[i]] + t2[in2[i]];
        const int64_t rounding = (int64_t)(half - (acc2 < 0 ? 1 : 0)) * ((int64_t)1 << 32) +
                                 INT64_C(0x80000000);
        const int32_t y = (int32_t)(((int64_t)acc2 * mult + rounding) >> 32) >> e;
        out[i] = (int8_t)(TC_MIN(TC_MAX(y, lo), hi) + out_zp);
    }
}

#endif /* TC_FAST_PORTABLE */
