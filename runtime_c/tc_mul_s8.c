/*
 * int8 MUL with broadcasting, bit-exact with TFLM's reference kernel
 * (reference/integer_ops/mul.h MulElementwise / BroadcastMul4DSlow).
 */
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
static void mul_row(const tc_mul_params *p, const int8_t *in1, int32_t stride1,
                    const int8_t *in2, int32_t stride2, int8_t *out, int32_t n) {
    int32_t i;
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
    int32_t s1[4], s2[4];
    int32_t i0, i1, i2;
    if (!mul_params_valid(p)) return TC_ARG_ERROR;
    tc_broadcast_strides(p->in1_dims, s1);
    tc_broadcast_strides(p->in2_dims, s2);
    for (i0 = 0; i0 < p->out_dims[0]; ++i0) {
        for (i1 = 0; i1 < p->out_dims[1]; ++i1) {
            for (i2 = 0; i2 < p->out_dims[2]; ++i2) {
                const int8_t *a = in1 + i0 * s1[0] + i1 * s1[1] + i2 * s1[2];
                const int8_t *b = in2 + i0 * s2[0] + i1 * s2[1] + i2 * s2[2];
                mul_row(p, a, s1[3], b, s2[3], out, p->out_dims[3]);
                out += p->out_dims[3];
            }
        }
    }
    return TC_OK;
}
