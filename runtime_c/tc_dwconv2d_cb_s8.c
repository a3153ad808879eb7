/*
 * tinycc runtime: depthwise convolution on codebook weights (tc_codebook.h), the arithmetic of
 * tc_dwconv2d_s8 on the decoded int8 weights. Mirrored by tinycc/ops/conv.py::dwconv2d_cb_s8.
 *
 * tile_oc output channels' k_h * k_w taps are decoded at a time ([channel][ky][kx] in the
 * scratch), then those channels are computed over every output pixel. Channel by channel over
 * all rows, like the int8 kernel's portable path, so the same overlap of output and input holds.
 * With TC_HAVE_DSP, 3x3 layers of 4-channel groups take tc_dwconv2d_cb_s8_dsp.c (4 channels
 * at a time over all rows: the same overlap holds).
 */
#include "tc_arm_dsp.h" /* TC_HAVE_DSP */
#include "tc_codebook.h"

#include <stddef.h>

/* tc_conv2d_s8's geometry checks (tc_conv.h) on the layer seen as a convolution of in_c groups,
 * then the channel multiplier and the codebook's fields. */
static int dwconv2d_cb_args_ok(const tc_dwconv2d_cb_params *p) {
    const tc_conv2d_params conv = {
        p->in_h, p->in_w, p->in_c, p->out_h, p->out_w, p->out_c,
        p->k_h, p->k_w, p->stride_h, p->stride_w, p->dil_h, p->dil_w, p->pad_top, p->pad_left,
        p->in_c, /* groups */
        p->in_zp, p->out_zp, p->act_min, p->act_max};
    if (!tc_conv2d_args_ok(&conv)) return 0;
    if (p->depth_mult < 1 || p->out_c != p->in_c * p->depth_mult) return 0;
    return tc_cb_args_ok(p->bits, p->palette_oc, p->tile_oc, p->out_c);
}

int32_t tc_dwconv2d_cb_s8_scratch_size(const tc_dwconv2d_cb_params *p) {
    return p->tile_oc * p->k_h * p->k_w;
}

int32_t tc_dwconv2d_cb_s8_inplace_scratch_size(const tc_dwconv2d_cb_params *p) {
    return p->tile_oc * p->k_h * p->k_w + p->in_h * p->in_w;
}

/* Kernel indices k in [*lo, *hi) whose input coordinate start + k * dil lies in [0, size). */
static void dwconv2d_cb_tap_range(int32_t start, int32_t dil, int32_t size, int32_t k_size,
                                  int32_t *lo, int32_t *hi) {
    const int32_t first = start >= 0 ? 0 : (dil - 1 - start) / dil;
    const int32_t end = start >= size ? 0 : (size - start + dil - 1) / dil;
    *lo = TC_MIN(first, k_size);
    *hi = TC_MAX(*lo, TC_MIN(end, k_size));
}

/* One output pixel of a channel whose input values are plane[(iy * in_w + ix) * stride]: the
 * window's in-image taps (clipped once, not tested per tap) against the decoded taps w_oc. */
static int32_t dwconv2d_cb_pixel_acc(const tc_dwconv2d_cb_params *p, const int8_t *plane,
                                     int32_t stride, const int8_t *w_oc, int32_t in_y0,
                                     int32_t in_x0) {
    const int32_t col_step = p->dil_w * stride;
    int32_t acc = 0;
    int32_t ky, kx, ky0, ky1, kx0, kx1;
    dwconv2d_cb_tap_range(in_y0, p->dil_h, p->in_h, p->k_h, &ky0, &ky1);
    dwconv2d_cb_tap_range(in_x0, p->dil_w, p->in_w, p->k_w, &kx0, &kx1);
    if (kx0 == kx1) return 0; /* (x below would point outside the plane) */
    for (ky = ky0; ky < ky1; ++ky) {
        const int8_t *x = plane + ((in_y0 + ky * p->dil_h) * p->in_w + in_x0 + kx0 * p->dil_w) * stride;
        const int8_t *w = w_oc + ky * p->k_w;
        for (kx = kx0; kx < kx1; ++kx, x += col_step) {
            acc += (int32_t)w[kx] * ((int32_t)*x - p->in_zp);
        }
    }
    return acc;
}

/* Output channel oc over every pixel, its input values plane[(iy * in_w + ix) * stride]. */
static void dwconv2d_cb_channel(const tc_dwconv2d_cb_params *p, const int8_t *plane,
                                int32_t stride, const int8_t *w_oc, int32_t oc,
                                const int32_t *bias, const int32_t *mult, const int32_t *shift,
                                int8_t *out) {
    const int32_t b = bias != NULL ? bias[oc] : 0;
    int32_t oy, ox;
    for (oy = 0; oy < p->out_h; ++oy) {
        const int32_t in_y0 = oy * p->stride_h - p->pad_top;
        int8_t *y = out + oy * p->out_w * p->out_c + oc;
        for (ox = 0; ox < p->out_w; ++ox, y += p->out_c) {
            const int32_t acc =
                dwconv2d_cb_pixel_acc(p, plane, stride, w_oc, in_y0, ox * p->stride_w - p->pad_left);
            *y = tc_requant_s8_nonneg(acc + b, mult[oc], shift[oc], p->out_zp, p->act_min,
                                      p->act_max);
        }
    }
}

static int dwconv2d_cb_call_ok(const tc_dwconv2d_cb_params *p, const int8_t *in,
                               const uint8_t *idx, const int8_t *palette, const int32_t *mult,
                               const int32_t *shift, const int8_t *scratch, const int8_t *out) {
    if (p == NULL || in == NULL || idx == NULL || palette == NULL || mult == NULL ||
        shift == NULL || scratch == NULL || out == NULL) {
        return 0;
    }
    return dwconv2d_cb_args_ok(p) &&
           tc_conv_quant_args_ok(p->in_zp, p->out_zp, p->act_min, p->act_max, mult, shift,
                                 p->out_c);
}

tc_status tc_dwconv2d_cb_s8(const tc_dwconv2d_cb_params *p, const int8_t *in,
                            const uint8_t *idx, const int8_t *palette, const int32_t *bias,
                            const int32_t *mult, const int32_t *shift, int8_t *scratch,
                            int8_t *out) {
    int32_t c0, oc, taps;
    if (!dwconv2d_cb_call_ok(p, in, idx, palette, mult, shift, scratch, out)) return TC_ARG_ERROR;
#if TC_HAVE_DSP
    if (tc_dwconv2d_cb_s8_quad_applicable(p, out == in)) {
        tc_dwconv2d_cb_s8_quad(p, in, idx, palette, bias, mult, shift, out);
        return TC_OK;
    }
#endif
    taps = p->k_h * p->k_w;
    for (c0 = 0; c0 < p->out_c; c0 += p->tile_oc) {
        const int32_t c1 = TC_MIN(c0 + p->tile_oc, p->out_c);
        tc_cb_decode_rows(idx, palette, p->bits, taps, p->palette_oc, c0, c1 - c0, scratch);
        for (oc = c0; oc < c1; ++oc) {
            dwconv2d_cb_channel(p, in + oc / p->depth_mult, p->in_c, scratch + (oc - c0) * taps,
                                oc, bias, mult, shift, out);
        }
    }
    return TC_OK;
}

tc_status tc_dwconv2d_cb_s8_inplace(const tc_dwconv2d_cb_params *p, const int8_t *in,
                                    const uint8_t *idx, const int8_t *palette,
                                    const int32_t *bias, const int32_t *mult,
                                    const int32_t *shift, int8_t *scratch, int8_t *out) {
    int32_t c0, oc, taps, i;
    int8_t *plane;
    if (!dwconv2d_cb_call_ok(p, in, idx, palette, mult, shift, scratch, out)) return TC_ARG_ERROR;
    if (p->depth_mult != 1 || (out == in && p->out_h * p->out_w > p->in_h * p->in_w)) {
        return TC_ARG_ERROR;
    }
#if TC_HAVE_DSP
    if (tc_dwconv2d_cb_s8_quad_applicable(p, out == in)) { /* no plane copy: the ring instead */
        tc_dwconv2d_cb_s8_quad(p, in, idx, palette, bias, mult, shift, out);
        return TC_OK;
    }
#endif
    taps = p->k_h * p->k_w;
    plane = scratch + p->tile_oc * taps;
    for (c0 = 0; c0 < p->out_c; c0 += p->tile_oc) {
        const int32_t c1 = TC_MIN(c0 + p->tile_oc, p->out_c);
        tc_cb_decode_rows(idx, palette, p->bits, taps, p->palette_oc, c0, c1 - c0, scratch);
        for (oc = c0; oc < c1; ++oc) {
            /* channel oc's input saved first: its output overwrites only channel-oc slots */
            for (i = 0; i < p->in_h * p->in_w; ++i) plane[i] = in[i * p->in_c + oc];
            dwconv2d_cb_channel(p, plane, 1, scratch + (oc - c0) * taps, oc, bias, mult, shift,
                                out);
        }
    }
    return TC_OK;
}
