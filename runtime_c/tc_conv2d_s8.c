/*
 * tinycc runtime: int8 2-D convolution (regular and grouped), TFLM ConvPerChannel arithmetic.
 * Mirrored by tinycc/golden/kernels_conv.py::conv2d_s8.
 *
 * Two implementations behind the one public function, bit-exact with each other:
 *  - portable C99 (conv2d_pixel_acc below), always compiled;
 *  - with TC_HAVE_DSP (tc_arm_dsp.h: Cortex-M4/M7/M33/M55, or the host emulation), a SIMD path
 *    (conv2d_s8_dsp) taken when a window row holds at least 4 contiguous int8 values to
 *    multiply: groups == 1 and dil_w == 1 with k_w * in_c >= 4, or in_c / groups >= 4.
 */
#include "tc_conv.h"
#include "tc_dot_s8_dsp.h"

static int conv2d_args_ok(const tc_conv2d_params *p) {
    if (p->in_h < 1 || p->in_w < 1 || p->in_c < 1 || p->out_h < 1 || p->out_w < 1 ||
        p->out_c < 1) {
        return 0;
    }
    if (p->k_h < 1 || p->k_w < 1 || p->stride_h < 1 || p->stride_w < 1 || p->dil_h < 1 ||
        p->dil_w < 1 || p->pad_top < 0 || p->pad_left < 0) {
        return 0;
    }
    return p->groups >= 1 && p->in_c % p->groups == 0 && p->out_c % p->groups == 0;
}

/* Sum of w * (x - in_zp) over the in-image taps of one output pixel, for one output channel.
 * `in_group` points at the first input channel of the channel group of `w_oc`. */
static int32_t conv2d_pixel_acc(const tc_conv2d_params *p, const int8_t *in_group,
                                const int8_t *w_oc, int32_t in_y0, int32_t in_x0) {
    const int32_t group_c = p->in_c / p->groups;
    int32_t acc = 0;
    int32_t ky, kx, ic;
    for (ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = in_y0 + ky * p->dil_h;
        if (iy < 0 || iy >= p->in_h) continue;
        for (kx = 0; kx < p->k_w; ++kx) {
            const int32_t ix = in_x0 + kx * p->dil_w;
            const int8_t *x;
            const int8_t *wk;
            if (ix < 0 || ix >= p->in_w) continue;
            x = in_group + (iy * p->in_w + ix) * p->in_c;
            wk = w_oc + (ky * p->k_w + kx) * group_c;
            for (ic = 0; ic < group_c; ++ic) {
                acc += (int32_t)wk[ic] * ((int32_t)x[ic] - p->in_zp);
            }
        }
    }
    return acc;
}

#if TC_HAVE_DSP

static int conv2d_dsp_applicable(const tc_conv2d_params *p) {
    if (p->groups == 1 && p->dil_w == 1) return p->k_w * p->in_c >= 4;
    return p->in_c / p->groups >= 4;
}

/* A 1x1 convolution reading input pixel i for output pixel i: a matrix product. */
static int conv2d_is_dense_pointwise(const tc_conv2d_params *p) {
    return p->k_h == 1 && p->k_w == 1 && p->groups == 1 && p->stride_h == 1 &&
           p->stride_w == 1 && p->pad_top == 0 && p->pad_left == 0 && p->out_w == p->in_w &&
           p->out_h <= p->in_h;
}

/*
 * The in-image taps of one output pixel, as runs of contiguous int8 values laid out alike in
 * the input (from input element x_offset, channel 0 of the first tap) and in every output
 * channel's weights (from w_offset). With groups == 1 and dil_w == 1 the taps of a kernel row
 * are one run of taps * in_c values; otherwise each tap is a run of in_c / groups values.
 */
typedef struct {
    int32_t x_offset, w_offset;
    tc_dsp_taps taps;
} conv2d_window;

static conv2d_window conv2d_make_window(const tc_conv2d_params *p, int32_t oy, int32_t ox) {
    const int32_t group_c = p->in_c / p->groups;
    const int32_t in_y0 = oy * p->stride_h - p->pad_top;
    const int32_t in_x0 = ox * p->stride_w - p->pad_left;
    const int contiguous = p->groups == 1 && p->dil_w == 1;
    int32_t ky_lo, ky_hi, kx_lo, kx_hi, taps_x;
    conv2d_window win;
    tc_dsp_tap_range(in_y0, p->dil_h, p->in_h, p->k_h, &ky_lo, &ky_hi);
    tc_dsp_tap_range(in_x0, p->dil_w, p->in_w, p->k_w, &kx_lo, &kx_hi);
    taps_x = kx_hi - kx_lo;
    win.taps.rows = taps_x > 0 ? ky_hi - ky_lo : 0;
    if (win.taps.rows > 0) {
        win.x_offset =
            ((in_y0 + ky_lo * p->dil_h) * p->in_w + in_x0 + kx_lo * p->dil_w) * p->in_c;
        win.w_offset = (ky_lo * p->k_w + kx_lo) * group_c;
    } else { /* no tap inside the image: nothing is read */
        win.x_offset = win.w_offset = 0;
    }
    win.taps.runs = contiguous ? 1 : taps_x;
    win.taps.run_len = contiguous ? taps_x * p->in_c : group_c;
    win.taps.x_row = p->dil_h * p->in_w * p->in_c;
    win.taps.w_row = p->k_w * group_c;
    win.taps.x_run = p->dil_w * p->in_c;
    win.taps.w_run = group_c;
    return win;
}

static int conv2d_same_taps(const conv2d_window *a, const conv2d_window *b) {
    return a->w_offset == b->w_offset && a->taps.rows == b->taps.rows &&
           a->taps.runs == b->taps.runs && a->taps.run_len == b->taps.run_len;
}

/* All output channels of pixels y and y + out_c, whose windows have the same taps; x and w
 * point at the first tap of the first pixel and of output channel 0. */
static void conv2d_pixel_pair(const tc_conv2d_params *p, const conv2d_window *win,
                              const int8_t *x, int32_t x_step, const int8_t *w,
                              const tc_dsp_requant *q, int8_t *y) {
    const tc_dsp_requant rq = *q; /* a local copy: stores through y cannot change it */
    const int32_t group_c = p->in_c / p->groups;
    const int32_t group_oc = p->out_c / p->groups;
    const int32_t w_oc = p->k_h * p->k_w * group_c;
    int32_t g, oc, acc[4];
    for (g = 0; g < p->groups; ++g) {
        const int8_t *x_g = x + g * group_c;
        const int32_t oc_end = (g + 1) * group_oc;
        for (oc = g * group_oc; oc + 2 <= oc_end; oc += 2) {
            int8_t results[4];
            tc_dsp_taps_2x2(&win->taps, x_g, x_step, w + oc * w_oc, w_oc, p->in_zp, acc);
            tc_dsp_output_2x2(&rq, oc, acc, results);
            y[oc] = results[0];
            y[oc + 1] = results[1];
            y[p->out_c + oc] = results[2];
            y[p->out_c + oc + 1] = results[3];
        }
        if (oc < oc_end) {
            const int8_t *w_oc_ptr = w + oc * w_oc;
            const int32_t acc0 = tc_dsp_taps_1x1(&win->taps, x_g, w_oc_ptr, p->in_zp);
            const int32_t acc1 = tc_dsp_taps_1x1(&win->taps, x_g + x_step, w_oc_ptr, p->in_zp);
            y[oc] = tc_dsp_output_call(&rq, oc, acc0);
            y[p->out_c + oc] = tc_dsp_output_call(&rq, oc, acc1);
        }
    }
}

/* All output channels of the single pixel y (pixels near the left and right borders, and a
 * row's odd last pixel: off the hot path). */
static void conv2d_pixel(const tc_conv2d_params *p, const conv2d_window *win, const int8_t *x,
                         const int8_t *w, const tc_dsp_requant *q, int8_t *y) {
    const tc_dsp_requant rq = *q;
    const int32_t group_c = p->in_c / p->groups;
    const int32_t group_oc = p->out_c / p->groups;
    const int32_t w_oc = p->k_h * p->k_w * group_c;
    int32_t g, oc, c, acc[4];
    for (g = 0; g < p->groups; ++g) {
        const int8_t *x_g = x + g * group_c;
        const int32_t oc_end = (g + 1) * group_oc;
        for (oc = g * group_oc; oc + 4 <= oc_end; oc += 4) {
            tc_dsp_taps_1x4(&win->taps, x_g, w + oc * w_oc, w_oc, p->in_zp, acc);
            for (c = 0; c < 4; ++c) y[oc + c] = tc_dsp_output_call(&rq, oc + c, acc[c]);
        }
        for (; oc < oc_end; ++oc) {
            y[oc] = tc_dsp_output_call(
                &rq, oc, tc_dsp_taps_1x1(&win->taps, x_g, w + oc * w_oc, p->in_zp));
        }
    }
}

/*
 * SIMD path. A dense 1x1 convolution is one matrix product. Otherwise output pixels are taken
 * in pairs along a row where both windows have the same in-image taps (everywhere except near
 * the left and right borders), else one at a time.
 */
static void conv2d_s8_dsp(const tc_conv2d_params *p, const int8_t *in, const int8_t *w,
                          const int32_t *bias, const int32_t *mult, const int32_t *shift,
                          int8_t *out) {
    const tc_dsp_requant q =
        tc_dsp_make_requant(bias, mult, shift, p->out_zp, p->act_min, p->act_max);
    int32_t oy, ox;
    if (conv2d_is_dense_pointwise(p)) {
        tc_dsp_matmul_s8(in, w, p->out_h * p->out_w, p->out_c, p->in_c, p->in_zp, &q, out);
        return;
    }
    for (oy = 0; oy < p->out_h; ++oy) {
        int8_t *y = out + oy * p->out_w * p->out_c;
        for (ox = 0; ox < p->out_w; ++ox, y += p->out_c) {
            const conv2d_window a = conv2d_make_window(p, oy, ox);
            if (ox + 1 < p->out_w) {
                const conv2d_window b = conv2d_make_window(p, oy, ox + 1);
                if (conv2d_same_taps(&a, &b)) {
                    conv2d_pixel_pair(p, &a, in + a.x_offset, b.x_offset - a.x_offset,
                                      w + a.w_offset, &q, y);
                    ++ox;
                    y += p->out_c;
                    continue;
                }
            }
            conv2d_pixel(p, &a, in + a.x_offset, w + a.w_offset, &q, y);
        }
    }
}

#endif /* TC_HAVE_DSP */

tc_status tc_conv2d_s8(const tc_conv2d_params *p, const int8_t *in, const int8_t *w,
                       const int32_t *bias, const int32_t *mult, const int32_t *shift,
                       int8_t *out) {
    int32_t oy, ox, oc;
    int32_t group_c, group_oc, w_oc_size;
    if (p == NULL || in == NULL || w == NULL || mult == NULL || shift == NULL || out == NULL) {
        return TC_ARG_ERROR;
    }
    if (!conv2d_args_ok(p) ||
        !tc_conv_quant_args_ok(p->in_zp, p->out_zp, p->act_min, p->act_max, mult, shift,
                               p->out_c)) {
        return TC_ARG_ERROR;
    }
#if TC_HAVE_DSP
    if (conv2d_dsp_applicable(p)) {
        conv2d_s8_dsp(p, in, w, bias, mult, shift, out);
        return TC_OK;
    }
#endif
    group_c = p->in_c / p->groups;
    group_oc = p->out_c / p->groups;
    w_oc_size = p->k_h * p->k_w * group_c;
    for (oy = 0; oy < p->out_h; ++oy) {
        const int32_t in_y0 = oy * p->stride_h - p->pad_top;
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t in_x0 = ox * p->stride_w - p->pad_left;
            int8_t *y = out + (oy * p->out_w + ox) * p->out_c;
            for (oc = 0; oc < p->out_c; ++oc) {
                const int8_t *in_group = in + (oc / group_oc) * group_c;
                int32_t acc = conv2d_pixel_acc(p, in_group, w + oc * w_oc_size, in_y0, in_x0);
                if (bias != NULL) acc += bias[oc];
                y[oc] = tc_requant_s8_nonneg(acc, mult[oc], shift[oc], p->out_zp, p->act_min,
                                             p->act_max);
            }
        }
    }
    return TC_OK;
}
