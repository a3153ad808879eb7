/*
 * tinycc runtime: depthwise convolution on codebook weights (tc_codebook.h), the arithmetic of
 * tc_dwconv2d_s8 on the decoded int8 weights. Mirrored by tinycc/ops/conv.py::dwconv2d_cb_s8.
 *
 * tile_oc output channels' k_h * k_w taps are decoded at a time ([channel][ky][kx] in the
 * scratch), then those channels are computed over every output pixel. Channel by channel over
 * all rows, like the int8 kernel's portable path, so the same overlap of output and input holds.
 */
#include "tc_codebook.h"

#include <stddef.h>

static int dwconv2d_cb_args_ok(const tc_dwconv2d_cb_params *p) {
    if (p->in_h < 1 || p->in_w < 1 || p->in_c < 1 || p->out_h < 1 || p->out_w < 1 ||
        p->out_c < 1) {
        return 0;
    }
    if (p->k_h < 1 || p->k_w < 1 || p->stride_h < 1 || p->stride_w < 1 || p->dil_h < 1 ||
        p->dil_w < 1 || p->pad_top < 0 || p->pad_left < 0) {
        return 0;
    }
    if (p->depth_mult < 1 || p->out_c != p->in_c * p->depth_mult) return 0;
    return tc_cb_args_ok(p->bits, p->palette_oc, p->tile_oc, p->out_c);
}

int32_t tc_dwconv2d_cb_s8_scratch_size(const tc_dwconv2d_cb_params *p) {
    return p->tile_oc * p->k_h * p->k_w;
}

/* Output channel oc of one pixel: its in-image taps (kernel rows and columns clipped once). */
static int32_t dwconv2d_cb_pixel_acc(const tc_dwconv2d_cb_params *p, const int8_t *in,
                                     const int8_t *w_oc, int32_t ic, int32_t in_y0,
                                     int32_t in_x0) {
    int32_t acc = 0;
    int32_t ky, kx;
    for (ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = in_y0 + ky * p->dil_h;
        if (iy < 0 || iy >= p->in_h) continue;
        for (kx = 0; kx < p->k_w; ++kx) {
            const int32_t ix = in_x0 + kx * p->dil_w;
            if (ix < 0 || ix >= p->in_w) continue;
            acc += (int32_t)w_oc[ky * p->k_w + kx] *
                   ((int32_t)in[(iy * p->in_w + ix) * p->in_c + ic] - p->in_zp);
        }
    }
    return acc;
}

tc_status tc_dwconv2d_cb_s8(const tc_dwconv2d_cb_params *p, const int8_t *in,
                            const uint8_t *idx, const int8_t *palette, const int32_t *bias,
                            const int32_t *mult, const int32_t *shift, int8_t *scratch,
                            int8_t *out) {
    const int32_t taps = p != NULL ? p->k_h * p->k_w : 0;
    int32_t c0, oc, oy, ox;
    if (p == NULL || in == NULL || idx == NULL || palette == NULL || mult == NULL ||
        shift == NULL || scratch == NULL || out == NULL) {
        return TC_ARG_ERROR;
    }
    if (!dwconv2d_cb_args_ok(p) ||
        !tc_conv_quant_args_ok(p->in_zp, p->out_zp, p->act_min, p->act_max, mult, shift,
                               p->out_c)) {
        return TC_ARG_ERROR;
    }
    for (c0 = 0; c0 < p->out_c; c0 += p->tile_oc) {
        const int32_t c1 = TC_MIN(c0 + p->tile_oc, p->out_c);
        tc_cb_decode_rows(idx, palette, p->bits, taps, p->palette_oc, c0, c1 - c0, scratch);
        for (oc = c0; oc < c1; ++oc) {
            const int8_t *w_oc = scratch + (oc - c0) * taps;
            const int32_t ic = oc / p->depth_mult;
            const int32_t b = bias != NULL ? bias[oc] : 0;
            for (oy = 0; oy < p->out_h; ++oy) {
                const int32_t in_y0 = oy * p->stride_h - p->pad_top;
                int8_t *y = out + oy * p->out_w * p->out_c + oc;
                for (ox = 0; ox < p->out_w; ++ox, y += p->out_c) {
                    const int32_t acc = dwconv2d_cb_pixel_acc(
                        p, in, w_oc, ic, in_y0, ox * p->stride_w - p->pad_left);
                    *y = tc_requant_s8_nonneg(acc + b, mult[oc], shift[oc], p->out_zp,
                                              p->act_min, p->act_max);
                }
            }
        }
    }
    return TC_OK;
}
