/*
 * tinycc runtime: the SIMD variant of tc_conv2d_cb_s8 (ARMv7E-M DSP extension, or its host
 * emulation), bit-exact with the portable reference in tc_conv2d_cb_s8.c, which calls it for
 * each decoded tile of a layer with groups == 1 and dil_w == 1.
 *
 * A window's in-image taps are one run of contiguous values per kernel row (tc_dsp_taps), laid
 * out alike in the input and in the decoded rows. Pixels go in pairs along an output row where
 * both windows have the same in-image taps (everywhere but near the left and right borders),
 * channels in pairs: 2x2 blocks of tc_dsp_taps_2x2, requantized together.
 */
#include "tc_codebook.h"
#include "tc_dot_s8_dsp.h"

#include <stddef.h>

#if TC_HAVE_DSP

/* The in-image taps of the window of output pixel (oy, ox) and where they start in the input
 * and in a decoded row. */
typedef struct {
    tc_dsp_taps t;
    int32_t x_offset, w_offset;
    int32_t ky0, kx0, kx1;
} conv2d_cb_window;

static conv2d_cb_window conv2d_cb_window_at(const tc_conv2d_cb_params *p, int32_t oy,
                                            int32_t ox) {
    const int32_t iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
    conv2d_cb_window win;
    int32_t ky1;
    tc_dsp_tap_range(iy0, p->dil_h, p->in_h, p->k_h, &win.ky0, &ky1);
    tc_dsp_tap_range(ix0, 1, p->in_w, p->k_w, &win.kx0, &win.kx1);
    win.t.rows = ky1 - win.ky0;
    win.t.runs = 1;
    win.t.run_len = (win.kx1 - win.kx0) * p->in_c;
    win.t.x_row = p->dil_h * p->in_w * p->in_c;
    win.t.w_row = p->k_w * p->in_c;
    win.t.x_run = win.t.w_run = 0;
    win.x_offset = ((iy0 + win.ky0 * p->dil_h) * p->in_w + ix0 + win.kx0) * p->in_c;
    win.w_offset = (win.ky0 * p->k_w + win.kx0) * p->in_c;
    return win;
}

static int conv2d_cb_same_taps(const conv2d_cb_window *a, const conv2d_cb_window *b) {
    return a->ky0 == b->ky0 && a->t.rows == b->t.rows && a->kx0 == b->kx0 && a->kx1 == b->kx1;
}

void tc_conv2d_cb_s8_tile_dsp(const tc_conv2d_cb_params *p, const int8_t *in, const int8_t *w,
                              int32_t c0, int32_t n, int32_t r0, int32_t r1,
                              const int32_t *bias, const int32_t *mult, const int32_t *shift,
                              int8_t *out) {
    const tc_dsp_requant q =
        tc_dsp_make_requant(bias, mult, shift, p->out_zp, p->act_min, p->act_max);
    const int32_t depth = p->k_h * p->k_w * p->in_c;
    const int32_t x_step = p->stride_w * p->in_c;
    int32_t oy, ox, c;
    for (oy = r0; oy < r1; ++oy) {
        int8_t *y = out + oy * p->out_w * p->out_c;
        for (ox = 0; ox < p->out_w; ++ox, y += p->out_c) {
            const conv2d_cb_window a = conv2d_cb_window_at(p, oy, ox);
            const int8_t *x = in + a.x_offset;
            const int8_t *wa = w + a.w_offset;
            if (a.t.rows == 0 || a.t.run_len == 0) { /* no tap in the image: bias only */
                for (c = 0; c < n; ++c) y[c0 + c] = tc_dsp_output_call(&q, c0 + c, 0);
                continue;
            }
            if (ox + 1 < p->out_w) {
                const conv2d_cb_window b = conv2d_cb_window_at(p, oy, ox + 1);
                if (conv2d_cb_same_taps(&a, &b)) {
                    int8_t *y1 = y + p->out_c;
                    for (c = 0; c + 2 <= n; c += 2) {
                        int32_t acc[4];
                        int8_t o[4];
                        tc_dsp_taps_2x2(&a.t, x, x_step, wa + c * depth, depth, p->in_zp, acc);
                        tc_dsp_output_2x2(&q, c0 + c, acc, o);
                        y[c0 + c] = o[0];
                        y[c0 + c + 1] = o[1];
                        y1[c0 + c] = o[2];
                        y1[c0 + c + 1] = o[3];
                    }
                    if (c < n) {
                        y[c0 + c] = tc_dsp_output_call(
                            &q, c0 + c, tc_dsp_taps_1x1(&a.t, x, wa + c * depth, p->in_zp));
                        y1[c0 + c] = tc_dsp_output_call(
                            &q, c0 + c, tc_dsp_taps_1x1(&a.t, x + x_step, wa + c * depth, p->in_zp));
                    }
                    ++ox;
                    y += p->out_c;
                    continue;
                }
            }
            for (c = 0; c < n; ++c) {
                y[c0 + c] = tc_dsp_output_call(&q, c0 + c,
                                               tc_dsp_taps_1x1(&a.t, x, wa + c * depth, p->in_zp));
            }
        }
    }
}

#endif /* TC_HAVE_DSP */
