/*
 * int8 comparisons with broadcasting, bit-exact with TFLM's reference kernel
 * (reference/comparisons.h, quantized path): both inputs shifted left by 8 and rescaled by their
 * own scale, then compared. The output is 0 or 1.
 */
#include "tc_eltwise_ext.h"

static int compare_params_valid(const tc_compare_params *p) {
    return p->op >= TC_CMP_GT && p->op <= TC_CMP_EQ &&
           tc_broadcast_dims_valid(p->in1_dims, p->in2_dims, p->out_dims) && tc_is_int8(p->in1_zp) &&
           tc_is_int8(p->in2_zp) && p->in1_multiplier >= 0 && p->in1_shift >= -31 && p->in1_shift <= 0 &&
           p->in2_multiplier >= 0 && p->in2_shift >= -31 && p->in2_shift <= 0;
}

/* |x - zp| <= 255, so (x - zp) * 2^8 fits easily in int32. */
static inline int32_t scaled(int32_t centered, int32_t mult, int32_t shift) {
    return tc_mbqm(centered * (1 << TC_COMPARE_LEFT_SHIFT), mult, shift);
}

static void compare_row(const void *ctx, const int8_t *a, int32_t a_stride, const int8_t *b,
                        int32_t b_stride, int8_t *out, int32_t n) {
    const tc_compare_params *p = (const tc_compare_params *)ctx;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t va = scaled((int32_t)a[i * a_stride] - p->in1_zp, p->in1_multiplier, p->in1_shift);
        const int32_t vb = scaled((int32_t)b[i * b_stride] - p->in2_zp, p->in2_multiplier, p->in2_shift);
        int r;
        switch (p->op) {
            case TC_CMP_GT: r = va > vb; break;
            case TC_CMP_GE: r = va >= vb; break;
            case TC_CMP_LT: r = va < vb; break;
            case TC_CMP_LE: r = va <= vb; break;
            default: r = va == vb; break;
        }
        out[i] = (int8_t)r;
    }
}

tc_status tc_compare_s8(const tc_compare_params *p, const int8_t *in1, const int8_t *in2, int8_t *out) {
    if (!compare_params_valid(p)) return TC_ARG_ERROR;
    tc_broadcast_rows(p->in1_dims, p->in2_dims, p->out_dims, in1, in2, out, compare_row, p);
    return TC_OK;
}
