/*
 * int8 MAXIMUM / MINIMUM with broadcasting: each input rescaled to the output quantization,
 * then compared (exactly TFLM's raw comparison when the quantizations agree).
 */
#include "tc_eltwise_ext.h"

static int minmax_params_valid(const tc_minmax_params *p) {
    return (p->op == TC_MINMAX_MAX || p->op == TC_MINMAX_MIN) &&
           tc_broadcast_dims_valid(p->in1_dims, p->in2_dims, p->out_dims) && tc_is_int8(p->in1_zp) &&
           tc_is_int8(p->in2_zp) && tc_is_int8(p->out_zp) &&
           tc_requant_pair_valid(p->in1_multiplier, p->in1_shift) &&
           tc_requant_pair_valid(p->in2_multiplier, p->in2_shift);
}

static inline int32_t rescaled(int32_t x, int32_t zp, int32_t mult, int32_t shift, int32_t out_zp) {
    return (int32_t)tc_requant_s8(x - zp, mult, shift, out_zp, -128, 127);
}

/* Both inputs quantized as the output: (2^30, 1) rescales exactly to the identity (MBQM(v, 2^30, 1)
 * = floor(v + 1/2) = v), so the raw values are compared, as TFLM does, without the rescale. */
static int raw_comparison(const tc_minmax_params *p) {
    return p->in1_multiplier == (INT32_C(1) << 30) && p->in1_shift == 1 && p->in1_zp == p->out_zp &&
           p->in2_multiplier == (INT32_C(1) << 30) && p->in2_shift == 1 && p->in2_zp == p->out_zp;
}

static void minmax_raw_row(const void *ctx, const int8_t *a, int32_t a_stride, const int8_t *b,
                           int32_t b_stride, int8_t *out, int32_t n) {
    const tc_minmax_params *p = (const tc_minmax_params *)ctx;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int8_t va = a[i * a_stride], vb = b[i * b_stride];
        out[i] = p->op == TC_MINMAX_MAX ? (va > vb ? va : vb) : (va < vb ? va : vb);
    }
}

static void minmax_row(const void *ctx, const int8_t *a, int32_t a_stride, const int8_t *b,
                       int32_t b_stride, int8_t *out, int32_t n) {
    const tc_minmax_params *p = (const tc_minmax_params *)ctx;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t ra = rescaled(a[i * a_stride], p->in1_zp, p->in1_multiplier, p->in1_shift, p->out_zp);
        const int32_t rb = rescaled(b[i * b_stride], p->in2_zp, p->in2_multiplier, p->in2_shift, p->out_zp);
        out[i] = (int8_t)(p->op == TC_MINMAX_MAX ? TC_MAX(ra, rb) : TC_MIN(ra, rb));
    }
}

tc_status tc_minmax_s8(const tc_minmax_params *p, const int8_t *in1, const int8_t *in2, int8_t *out) {
    if (!minmax_params_valid(p)) return TC_ARG_ERROR;
    if (raw_comparison(p)) {
        tc_broadcast_rows(p->in1_dims, p->in2_dims, p->out_dims, in1, in2, out, minmax_raw_row, p);
    } else {
        tc_broadcast_rows(p->in1_dims, p->in2_dims, p->out_dims, in1, in2, out, minmax_row, p);
    }
    return TC_OK;
}
