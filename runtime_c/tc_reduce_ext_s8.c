/*
 * tinycc runtime: int8 min / arg max / arg min over any set of axes (see tc_reduce_ext.h). The
 * odometer walks the kept axes (outer loop) and the reduced axes (inner loop) as tc_reduce_s8.
 */
#include "tc_reduce_ext.h"

static int reduce_ext_args_ok(const tc_reduce_params *p) {
    int32_t i;
    int64_t total = 1, count = 1;
    if (p->op != TC_REDUCE_MIN && p->op != TC_REDUCE_ARGMAX && p->op != TC_REDUCE_ARGMIN) return 0;
    if (p->rank < 1 || p->rank > TC_REDUCE_MAX_DIMS) return 0;
    for (i = 0; i < p->rank; ++i) {
        if (p->dims[i] < 1 || (p->reduced[i] != 0 && p->reduced[i] != 1)) return 0;
        total *= p->dims[i];
        if (total > INT32_MAX) return 0;
        if (p->reduced[i]) count *= p->dims[i];
    }
    if (count != p->count || count > TC_REDUCE_MAX_COUNT) return 0;
    return p->op == TC_REDUCE_MIN || count <= TC_REDUCE_ARG_MAX_COUNT;
}

/* The odometer of tc_reduce_s8.c: advance idx[] over the axes with reduced[i] == want (last
 * axis fastest), moving the flat offset along; 0 once every combination has been visited. */
static int next_index(const tc_reduce_params *p, const int32_t *stride, int32_t want, int32_t *idx,
                      int32_t *offset) {
    int32_t i;
    for (i = p->rank - 1; i >= 0; --i) {
        if (p->reduced[i] != want) continue;
        if (++idx[i] < p->dims[i]) {
            *offset += stride[i];
            return 1;
        }
        *offset -= (idx[i] - 1) * stride[i];
        idx[i] = 0;
    }
    return 0;
}

tc_status tc_reduce_ext_s8(const tc_reduce_params *p, const int8_t *in, int8_t *out) {
    int32_t stride[TC_REDUCE_MAX_DIMS];
    int32_t kept[TC_REDUCE_MAX_DIMS] = {0};
    int32_t red[TC_REDUCE_MAX_DIMS] = {0};
    int32_t i, base = 0;
    if (p == NULL || in == NULL || out == NULL || !reduce_ext_args_ok(p)) return TC_ARG_ERROR;
    stride[p->rank - 1] = 1;
    for (i = p->rank - 1; i > 0; --i) stride[i - 1] = stride[i] * p->dims[i];
    do {
        int32_t offset = base;
        int32_t best = in[offset], best_at = 0, at = 0;
        /* sign = +1 keeps the largest, -1 the smallest; a later equal value never wins */
        const int32_t sign = p->op == TC_REDUCE_ARGMAX ? 1 : -1;
        while (next_index(p, stride, 1, red, &offset)) {
            const int32_t v = in[offset];
            ++at;
            if (sign * v > sign * best) {
                best = v;
                best_at = at;
            }
        }
        *out++ = (int8_t)(p->op == TC_REDUCE_MIN ? best : best_at);
    } while (next_index(p, stride, 0, kept, &base));
    return TC_OK;
}
