/*
 * tinycc runtime: int8 average pooling, TFLM reference_integer_ops::AveragePool arithmetic,
 * optionally counting padding (ONNX count_include_pad) or requantizing the mean.
 * Mirrored by tinycc/golden/kernels_conv.py::avgpool_s8.
 *
 * This file holds the entry point and the portable C99 reference, the specification its
 * variant matches bit for bit: tc_avgpool_s8_dsp.c (TC_HAVE_DSP: 4 channels per tap summed in
 * int16 lanes with SXTAB16).
 */
#include "tc_arm_dsp.h"
#include "tc_pool.h"

static int avgpool_args_ok(const tc_avgpool_params *p) {
    if (p->channels < 1 || !tc_pool_act_ok(p->act_min, p->act_max) ||
        !tc_pool_axis_ok(p->in_h, p->out_h, p->k_h, p->stride_h, p->pad_top) ||
        !tc_pool_axis_ok(p->in_w, p->out_w, p->k_w, p->stride_w, p->pad_left)) {
        return 0;
    }
    if (p->in_zp < -128 || p->in_zp > 127) return 0;
    if (!p->use_requant) return 1;
    if (p->out_zp < -128 || p->out_zp > 127 || p->mult < 0 || p->shift < -31 ||
        p->shift > 30) {
        return 0;
    }
    /* The multiplier holds 1/n for one fixed n, so no window may have a smaller divisor. */
    return p->count_include_pad ||
           (tc_pool_axis_inside(p->in_h, p->out_h, p->k_h, p->stride_h, p->pad_top) &&
            tc_pool_axis_inside(p->in_w, p->out_w, p->k_w, p->stride_w, p->pad_left));
}

tc_status tc_avgpool_s8(const tc_avgpool_params *p, const int8_t *in, int8_t *out) {
    int32_t oy, ox, c, iy, ix;
    if (p == NULL || in == NULL || out == NULL || !avgpool_args_ok(p)) {
        return TC_ARG_ERROR;
    }
#if TC_HAVE_DSP
    if (p->channels >= 4) {
        tc_avgpool_s8_dsp(p, in, out);
        return TC_OK;
    }
#endif
    for (oy = 0; oy < p->out_h; ++oy) {
        int32_t y_begin, y_end;
        tc_pool_window_range(oy, p->stride_h, p->pad_top, p->k_h, p->in_h, &y_begin, &y_end);
        for (ox = 0; ox < p->out_w; ++ox) {
            int32_t x_begin, x_end;
            tc_pool_window_range(ox, p->stride_w, p->pad_left, p->k_w, p->in_w, &x_begin,
                                 &x_end);
            const int32_t taps = (y_end - y_begin) * (x_end - x_begin);
            int8_t *y = out + (oy * p->out_w + ox) * p->channels;
            for (c = 0; c < p->channels; ++c) {
                int32_t acc = 0;
                for (iy = y_begin; iy < y_end; ++iy) {
                    const int8_t *row = in + iy * p->in_w * p->channels + c;
                    for (ix = x_begin; ix < x_end; ++ix) {
                        acc += row[ix * p->channels];
                    }
                }
                y[c] = tc_avgpool_out(p, acc, taps);
            }
        }
    }
    return TC_OK;
}
