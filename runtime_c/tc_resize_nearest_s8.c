/* Nearest-neighbour resize of an NHWC int8 tensor with precomputed source index tables. */
#include <string.h>

#include "tc_tensor.h"

static int indices_valid(const int32_t *index, int32_t count, int32_t limit) {
    int32_t i;
    if (index == NULL) return 0;
    for (i = 0; i < count; ++i) {
        if (index[i] < 0 || index[i] >= limit) return 0;
    }
    return 1;
}

static int resize_params_valid(const tc_resize_nearest_params *p, const int32_t *y_index,
                               const int32_t *x_index) {
    return p->batch >= 1 && p->in_h >= 1 && p->in_w >= 1 && p->channels >= 1 &&
           p->out_h >= 1 && p->out_w >= 1 && indices_valid(y_index, p->out_h, p->in_h) &&
           indices_valid(x_index, p->out_w, p->in_w);
}

static void resize_row(const tc_resize_nearest_params *p, const int32_t *x_index,
                       const int8_t *in_row, int8_t *out_row) {
    const size_t pixel = (size_t)p->channels;
    int32_t x;
    for (x = 0; x < p->out_w; ++x) {
        memcpy(out_row + x * p->channels, in_row + x_index[x] * p->channels, pixel);
    }
}

tc_status tc_resize_nearest_s8(const tc_resize_nearest_params *p, const int32_t *y_index,
                               const int32_t *x_index, const int8_t *in, int8_t *out) {
    const int32_t in_row = p->in_w * p->channels;
    const int32_t out_row = p->out_w * p->channels;
    int32_t n, y;
    if (!resize_params_valid(p, y_index, x_index)) return TC_ARG_ERROR;
    for (n = 0; n < p->batch; ++n) {
        const int8_t *in_image = in + n * p->in_h * in_row;
        int8_t *out_image = out + n * p->out_h * out_row;
        for (y = 0; y < p->out_h; ++y) {
            int8_t *dst = out_image + y * out_row;
            if (y > 0 && y_index[y] == y_index[y - 1]) {
                /* Upsampling repeats source rows: copy the finished row instead. */
                memcpy(dst, dst - out_row, (size_t)out_row);
            } else {
                resize_row(p, x_index, in_image + y_index[y] * in_row, dst);
            }
        }
    }
    return TC_OK;
}
