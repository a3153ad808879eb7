/*
 * tinycc runtime: int8 mean / max over any set of axes (see tc_reduce.h).
 * Mirrored by tinycc/golden/kernels_reduce.py::reduce_s8.
 */
#include "tc_reduce.h"

static int reduce_args_ok(const tc_reduce_params *p) {
    if (p->op != TC_REDUCE_MEAN && p->op != TC_REDUCE_MAX) return 0;
    if (!tc_reduce_shape_ok(p)) return 0;
    if (p->in_zp < -128 || p->in_zp > 127 || p->out_zp < -128 || p->out_zp > 127) return 0;
    if (p->op == TC_REDUCE_MEAN && (p->mult < 0 || p->shift < -31 || p->shift > 30)) return 0;
    return 1;
}

tc_status tc_reduce_s8(const tc_reduce_params *p, const int8_t *in, int8_t *out) {
    int32_t stride[TC_REDUCE_MAX_DIMS];
    int32_t kept[TC_REDUCE_MAX_DIMS] = {0};
    int32_t red[TC_REDUCE_MAX_DIMS] = {0};
    int32_t base = 0;
    if (p == NULL || in == NULL || out == NULL || !reduce_args_ok(p)) return TC_ARG_ERROR;
    tc_reduce_strides(p, stride);
    do {
        int32_t offset = base;
        if (p->op == TC_REDUCE_MAX) {
            int32_t best = -128;
            do {
                best = TC_MAX(best, (int32_t)in[offset]);
            } while (tc_reduce_next(p, stride, 1, red, &offset));
            *out++ = (int8_t)best;
        } else {
            int32_t sum = 0;
            do {
                sum += in[offset];
            } while (tc_reduce_next(p, stride, 1, red, &offset));
            *out++ = tc_requant_s8(sum - p->in_zp * p->count, p->mult, p->shift, p->out_zp, -128, 127);
        }
    } while (tc_reduce_next(p, stride, 0, kept, &base));
    return TC_OK;
}
