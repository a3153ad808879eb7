/*
 * int8 MUL with broadcasting, bit-exact with TFLM's reference kernel
 * (reference/integer_ops/mul.h MulElementwise / BroadcastMul4DSlow).
 *
 * This file holds the entry point and the portable C99 reference, the specification its
 * variant matches bit for bit: tc_mul_s8_dsp.c (TC_HAVE_DSP: tc_dsp_rq's single SMLAL).
 */
#include "tc_arm_dsp.h"
#include "tc_eltwise.h"

static int mul_params_valid(const tc_mul_params *p) {
    return tc_broadcast_dims_valid(p->in1_dims, p->in2_dims, p->out_dims) &&
           tc_is_int8(p->in1_zp) && tc_is_int8(p->in2_zp) && tc_is_int8(p->out_zp) &&
           tc_act_range_valid(p->act_min, p->act_max) &&
           tc_requant_pair_valid(p->out_multiplier, p->out_shift);
}

/* |(x1 - zp1) * (x2 - zp2)| <= 255 * 255: the product always fits in int32. */
static inline int8_t mul_one(const tc_mul_params *p, int32_t centered1, int32_t centered2) {
    return tc_requant_s8(centered1 * centered2, p->out_multiplier, p->out_shift, p->out_zp,
                         p->act_min, p->act_max);
}

/* One innermost row of n outputs; an input stride is 1, or 0 when that input is broadcast. */
static void mul_row(const void *ctx, const int8_t *in1, int32_t stride1, const int8_t *in2,
                    int32_t stride2, int8_t *out, int32_t n) {
    const tc_mul_params *p = (const tc_mul_params *)ctx;
    int32_t i;
#if TC_HAVE_DSP
    if (tc_mul_s8_dsp_applies(p)) {
        tc_mul_s8_row_dsp(p, in1, stride1, in2, stride2, out, n);
        return;
    }
#endif
    if (stride1 == 0) {
        const int32_t a = in1[0] - p->in1_zp;
        for (i = 0; i < n; ++i) out[i] = mul_one(p, a, in2[i * stride2] - p->in2_zp);
    } else if (stride2 == 0) {
        const int32_t b = in2[0] - p->in2_zp;
        for (i = 0; i < n; ++i) out[i] = mul_one(p, in1[i] - p->in1_zp, b);
    } else {
        for (i = 0; i < n; ++i) out[i] = mul_one(p, in1[i] - p->in1_zp, in2[i] - p->in2_zp);
    }
}

tc_status tc_mul_s8(const tc_mul_params *p, const int8_t *in1, const int8_t *in2, int8_t *out) {
    if (!mul_params_valid(p)) return TC_ARG_ERROR;
    tc_broadcast_rows(p->in1_dims, p->in2_dims, p->out_dims, in1, in2, out, mul_row, p);
    return TC_OK;
}
