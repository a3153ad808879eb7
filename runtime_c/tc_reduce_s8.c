/*
 * tinycc runtime: int8 mean / max over any set of axes (see tc_reduce.h).
 * Mirrored by tinycc/golden/kernels_reduce.py::reduce_s8.
 */
#include "tc_reduce.h"

static int reduce_args_ok(const tc_reduce_params *p) {
    int32_t i;
    int64_t total = 1, count = 1;
    if (p->op != TC_REDUCE_MEAN && p->op != TC_REDUCE_MAX) return 0;
    if (p->rank < 1 || p->rank > TC_REDUCE_MAX_DIMS) return 0;
    for (i = 0; i < p->rank; ++i) {
        if (p->dims[i] < 1 || (p->reduced[i] != 0 && p->reduced[i] != 1)) return 0;
        total *= p->dims[i];
        if (total > INT32_MAX) return 0;
        if (p->reduced[i]) count *= p->dims[i];
    }
    if (count != p->count || count > TC_REDUCE_MAX_COUNT) return 0;
    if (p->in_zp < -128 || p->in_zp > 127 || p->out_zp < -128 || p->out_zp > 127) return 0;
    if (p->op == TC_REDUCE_MEAN && (p->mult < 0 || p->shift < -31 || p->shift > 30)) return 0;
    return 1;
}

/* Advance the odometer idx[] over the axes with reduced[i] == want (last axis fastest); the
 * flat input offset moves with it. Returns 0 once every combination has been visited. */
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

tc_status tc_reduce_s8(const tc_reduce_params *p, const int8_t *in, int8_t *out) {
    int32_t stride[TC_REDUCE_MAX_DIMS];
    int32_t kept[TC_REDUCE_MAX_DIMS] = {0};
    int32_t red[TC_REDUCE_MAX_DIMS] = {0};
    int32_t i, base = 0;
    if (p == NULL || in == NULL || out == NULL || !reduce_args_ok(p)) return TC_ARG_ERROR;
    stride[p->rank - 1] = 1;
    for (i = p->rank - 1; i > 0; --i) stride[i - 1] = stride[i] * p->dims[i];
    do {
        int32_t offset = base;
        if (p->op == TC_REDUCE_MAX) {
            int32_t best = -128;
            do {
                best = TC_MAX(best, (int32_t)in[offset]);
            } while (next_index(p, stride, 1, red, &offset));
            *out++ = (int8_t)best;
        } else {
            int32_t sum = 0;
            do {
                sum += in[offset];
            } while (next_index(p, stride, 1, red, &offset));
            *out++ = tc_requant_s8(sum - p->in_zp * p->count, p->mult, p->shift, p->out_zp, -128, 127);
        }
    } while (next_index(p, stride, 0, kept, &base));
    return TC_OK;
}
