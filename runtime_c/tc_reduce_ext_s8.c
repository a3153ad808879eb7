/*
 * tinycc runtime: int8 min / arg max / arg min over any set of axes (see tc_reduce_ext.h). The
 * odometer of tc_reduce.h walks the kept axes (outer loop) and the reduced axes (inner loop).
 */
#include "tc_reduce_ext.h"

static int reduce_ext_args_ok(const tc_reduce_params *p) {
    if (p->op != TC_REDUCE_MIN && p->op != TC_REDUCE_ARGMAX && p->op != TC_REDUCE_ARGMIN) return 0;
    if (!tc_reduce_shape_ok(p)) return 0;
    return p->op == TC_REDUCE_MIN || p->count <= TC_REDUCE_ARG_MAX_COUNT;
}

tc_status tc_reduce_ext_s8(const tc_reduce_params *p, const int8_t *in, int8_t *out) {
    int32_t stride[TC_REDUCE_MAX_DIMS];
    int32_t kept[TC_REDUCE_MAX_DIMS] = {0};
    int32_t red[TC_REDUCE_MAX_DIMS] = {0};
    int32_t base = 0;
    if (p == NULL || in == NULL || out == NULL || !reduce_ext_args_ok(p)) return TC_ARG_ERROR;
    tc_reduce_strides(p, stride);
    do {
        int32_t offset = base;
        int32_t best = in[offset], best_at = 0, at = 0;
        /* sign = +1 keeps the largest, -1 the smallest; a later equal value never wins */
        const int32_t sign = p->op == TC_REDUCE_ARGMAX ? 1 : -1;
        while (tc_reduce_next(p, stride, 1, red, &offset)) {
            const int32_t v = in[offset];
            ++at;
            if (sign * v > sign * best) {
                best = v;
                best_at = at;
            }
        }
        *out++ = (int8_t)(p->op == TC_REDUCE_MIN ? best : best_at);
    } while (tc_reduce_next(p, stride, 0, kept, &base));
    return TC_OK;
}
