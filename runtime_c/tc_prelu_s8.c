/*
 * int8 PRELU with broadcasting, bit-exact with TFLM's reference kernel
 * (reference/prelu.h BroadcastPrelu4DSlow): two multipliers, one per sign of the input.
 */
#include "tc_eltwise_ext.h"

static int prelu_params_valid(const tc_prelu_params *p) {
    return tc_broadcast_dims_valid(p->in_dims, p->alpha_dims, p->out_dims) && tc_is_int8(p->in_zp) &&
           tc_is_int8(p->alpha_zp) && tc_is_int8(p->out_zp) &&
           tc_requant_pair_valid(p->mult_pos, p->shift_pos) &&
           tc_requant_pair_valid(p->mult_neg, p->shift_neg);
}

/* |v| <= 255 and |alpha - alpha_zp| <= 255: the product fits in int32. */
static void prelu_row(const void *ctx, const int8_t *in, int32_t in_stride, const int8_t *alpha,
                      int32_t alpha_stride, int8_t *out, int32_t n) {
    const tc_prelu_params *p = (const tc_prelu_params *)ctx;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t v = (int32_t)in[i * in_stride] - p->in_zp;
        int32_t y;
        int64_t z;
        if (v >= 0) {
            y = tc_mbqm(v, p->mult_pos, p->shift_pos);
        } else {
            const int32_t a = (int32_t)alpha[i * alpha_stride] - p->alpha_zp;
            y = tc_mbqm(v * a, p->mult_neg, p->shift_neg);
        }
        z = (int64_t)y + p->out_zp; /* y may be near INT32_MAX: add in 64 bits */
        out[i] = (int8_t)(z < -128 ? -128 : (z > 127 ? 127 : z));
    }
}

tc_status tc_prelu_s8(const tc_prelu_params *p, const int8_t *in, const int8_t *alpha, int8_t *out) {
    if (!prelu_params_valid(p) || alpha == NULL) return TC_ARG_ERROR;
    tc_broadcast_rows(p->in_dims, p->alpha_dims, p->out_dims, in, alpha, out, prelu_row, p);
    return TC_OK;
}
