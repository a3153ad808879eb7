/*
 * tinycc runtime: int8 max pooling, TFLM reference_integer_ops::MaxPool arithmetic.
 * Mirrored by tinycc/golden/kernels_conv.py::maxpool_s8.
 *
 * This file holds the entry point and the portable C99 reference, the specification its
 * variant matches bit for bit: tc_maxpool_s8_dsp.c (TC_HAVE_DSP: 4 channels per tap with SIMD
 * byte maxima).
 */
#include "tc_arm_dsp.h"
#include "tc_pool.h"

tc_status tc_maxpool_s8(const tc_maxpool_params *p, const int8_t *in, int8_t *out) {
    int32_t oy, ox, c, iy, ix;
    if (p == NULL || in == NULL || out == NULL) {
        return TC_ARG_ERROR;
    }
    if (p->channels < 1 || !tc_pool_act_ok(p->act_min, p->act_max) ||
        !tc_pool_axis_ok(p->in_h, p->out_h, p->k_h, p->stride_h, p->pad_top) ||
        !tc_pool_axis_ok(p->in_w, p->out_w, p->k_w, p->stride_w, p->pad_left)) {
        return TC_ARG_ERROR;
    }
#if TC_HAVE_DSP
    if (p->channels >= 4) {
        tc_maxpool_s8_dsp(p, in, out);
        return TC_OK;
    }
#endif
    /* tc_avgpool_s8's window walk (tc_pool_window_range); the per-window reduction differs. */
    for (oy = 0; oy < p->out_h; ++oy) {
        int32_t y_begin, y_end;
        tc_pool_window_range(oy, p->stride_h, p->pad_top, p->k_h, p->in_h, &y_begin, &y_end);
        for (ox = 0; ox < p->out_w; ++ox) {
            int32_t x_begin, x_end;
            tc_pool_window_range(ox, p->stride_w, p->pad_left, p->k_w, p->in_w, &x_begin,
                                 &x_end);
            int8_t *y = out + (oy * p->out_w + ox) * p->channels;
            for (c = 0; c < p->channels; ++c) {
                int32_t max = INT8_MIN;
                for (iy = y_begin; iy < y_end; ++iy) {
                    const int8_t *row = in + iy * p->in_w * p->channels + c;
                    for (ix = x_begin; ix < x_end; ++ix) {
                        max = TC_MAX(max, (int32_t)row[ix * p->channels]);
                    }
                }
                y[c] = (int8_t)tc_clamp_i32(max, p->act_min, p->act_max);
            }
        }
    }
    return TC_OK;
}
