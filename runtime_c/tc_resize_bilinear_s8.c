/* Bilinear resize of an NHWC int8 tensor (TFLM RESIZE_BILINEAR integer arithmetic) with
 * precomputed (lower, upper, Q10 fraction) tables per output row and column. */
#include "tc_structural.h"

#define TC_Q10 1024

static int table_valid(const int32_t *t, int32_t count, int32_t limit) {
    int32_t i;
    if (t == NULL) return 0;
    for (i = 0; i < count; ++i) {
        const int32_t *e = t + 3 * i;
        if (e[0] < 0 || e[0] >= limit || e[1] < 0 || e[1] >= limit || e[2] < 0 || e[2] > TC_Q10) return 0;
    }
    return 1;
}

tc_status tc_resize_bilinear_s8(const tc_resize_bilinear_params *p, const int32_t *y_table,
                                const int32_t *x_table, const int8_t *in, int8_t *out) {
    int32_t n, y, x, c;
    if (p == NULL || in == NULL || out == NULL || p->batch < 1 || p->in_h < 1 || p->in_w < 1 || p->channels < 1 ||
        p->out_h < 1 || p->out_w < 1 || !table_valid(y_table, p->out_h, p->in_h) ||
        !table_valid(x_table, p->out_w, p->in_w)) {
        return TC_ARG_ERROR;
    }
    for (n = 0; n < p->batch; ++n) {
        const int8_t *image = in + n * p->in_h * p->in_w * p->channels;
        for (y = 0; y < p->out_h; ++y) {
            const int32_t fy = y_table[3 * y + 2];
            const int8_t *top = image + y_table[3 * y] * p->in_w * p->channels;
            const int8_t *bottom = image + y_table[3 * y + 1] * p->in_w * p->channels;
            for (x = 0; x < p->out_w; ++x) {
                const int32_t fx = x_table[3 * x + 2];
                const int32_t left = x_table[3 * x] * p->channels;
                const int32_t right = x_table[3 * x + 1] * p->channels;
                for (c = 0; c < p->channels; ++c) {
                    /* |acc| <= 128 * 2^20: int32 */
                    const int32_t upper = top[left + c] * (TC_Q10 - fx) + top[right + c] * fx;
                    const int32_t lower = bottom[left + c] * (TC_Q10 - fx) + bottom[right + c] * fx;
                    const int32_t acc = upper * (TC_Q10 - fy) + lower * fy;
                    *out++ = (int8_t)((acc + (acc > 0 ? (INT32_C(1) << 19) : -(INT32_C(1) << 19))) / (INT32_C(1) << 20));
                }
            }
        }
    }
    return TC_OK;
}
