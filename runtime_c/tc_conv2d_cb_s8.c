/*
 * tinycc runtime: 2-D convolution on codebook weights (tc_codebook.h), the arithmetic of
 * tc_conv2d_s8 on the decoded int8 weights. Mirrored by tinycc/ops/conv.py::conv2d_cb_s8.
 *
 * Entry point and portable C99 reference: tile_oc rows at a time are decoded into the scratch,
 * then every output pixel's channels of the tile are summed. When every row fits the scratch
 * (tile_oc == out_c) they are decoded once and tc_conv2d_s8 itself runs on them.
 * tc_conv2d_cb_s8_dsp.c (TC_HAVE_DSP) takes the tiles of layers with groups == 1.
 */
#include "tc_arm_dsp.h" /* TC_HAVE_DSP */
#include "tc_codebook.h"

#include <stddef.h>

static int32_t conv2d_cb_depth(const tc_conv2d_cb_params *p) {
    return p->k_h * p->k_w * (p->in_c / p->groups);
}

int32_t tc_conv2d_cb_s8_scratch_size(const tc_conv2d_cb_params *p) {
    return p->tile_oc * conv2d_cb_depth(p);
}

/* The int8 kernel's params: the fields the two structs share. */
static const tc_conv2d_params *conv2d_cb_int8_params(const tc_conv2d_cb_params *p,
                                                     tc_conv2d_params *conv) {
    conv->in_h = p->in_h, conv->in_w = p->in_w, conv->in_c = p->in_c;
    conv->out_h = p->out_h, conv->out_w = p->out_w, conv->out_c = p->out_c;
    conv->k_h = p->k_h, conv->k_w = p->k_w, conv->stride_h = p->stride_h;
    conv->stride_w = p->stride_w, conv->dil_h = p->dil_h, conv->dil_w = p->dil_w;
    conv->pad_top = p->pad_top, conv->pad_left = p->pad_left, conv->groups = p->groups;
    conv->in_zp = p->in_zp, conv->out_zp = p->out_zp;
    conv->act_min = p->act_min, conv->act_max = p->act_max;
    return conv;
}

/* tc_conv2d_s8's checks on the shared fields (tc_conv.h), then the band and the codebook's. */
static int conv2d_cb_args_ok(const tc_conv2d_cb_params *p) {
    tc_conv2d_params conv;
    if (!tc_conv2d_args_ok(conv2d_cb_int8_params(p, &conv))) return 0;
    if (p->band_h < 1 || p->band_h > p->out_h) return 0;
    return tc_cb_args_ok(p->bits, p->palette_oc, p->tile_oc, p->out_c);
}

/* Sum of w * (x - in_zp) over the in-image taps of one output pixel for one output channel
 * (tc_conv2d_s8.c's loop, which is static there). */
static int32_t conv2d_cb_pixel_acc(const tc_conv2d_cb_params *p, const int8_t *in_group,
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

/* Output channels [c0, c0 + n) of output rows [r0, r1), from their decoded rows w. */
static void conv2d_cb_tile_portable(const tc_conv2d_cb_params *p, const int8_t *in,
                                    const int8_t *w, int32_t c0, int32_t n, int32_t r0,
                                    int32_t r1, const int32_t *bias, const int32_t *mult,
                                    const int32_t *shift, int8_t *out) {
    const int32_t group_c = p->in_c / p->groups, group_oc = p->out_c / p->groups;
    const int32_t depth = conv2d_cb_depth(p);
    int32_t oy, ox, c;
    for (oy = r0; oy < r1; ++oy) {
        const int32_t in_y0 = oy * p->stride_h - p->pad_top;
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t in_x0 = ox * p->stride_w - p->pad_left;
            int8_t *y = out + (oy * p->out_w + ox) * p->out_c;
            for (c = c0; c < c0 + n; ++c) {
                const int8_t *in_group = in + (c / group_oc) * group_c;
                int32_t acc = conv2d_cb_pixel_acc(p, in_group, w + (c - c0) * depth, in_y0, in_x0);
                if (bias != NULL) acc += bias[c];
                y[c] = tc_requant_s8_nonneg(acc, mult[c], shift[c], p->out_zp, p->act_min,
                                            p->act_max);
            }
        }
    }
}

tc_status tc_conv2d_cb_s8(const tc_conv2d_cb_params *p, const int8_t *in, const uint8_t *idx,
                          const int8_t *palette, const int32_t *bias, const int32_t *mult,
                          const int32_t *shift, int8_t *scratch, int8_t *out) {
    tc_conv2d_params conv;
    int32_t c0, r0, depth;
    if (p == NULL || in == NULL || idx == NULL || palette == NULL || mult == NULL ||
        shift == NULL || scratch == NULL || out == NULL) {
        return TC_ARG_ERROR;
    }
    if (!conv2d_cb_args_ok(p) ||
        !tc_conv_quant_args_ok(p->in_zp, p->out_zp, p->act_min, p->act_max, mult, shift,
                               p->out_c)) {
        return TC_ARG_ERROR;
    }
    depth = conv2d_cb_depth(p);
    if (p->tile_oc == p->out_c) { /* every row fits the scratch: decoded once */
        /* the whole decoded tensor is tc_conv2d_s8's weights ([out_c][k_h][k_w][in_c / groups]):
         * its fastest path (DSP, assembly) runs as in an int8 build */
        tc_cb_decode_rows(idx, palette, p->bits, depth, p->palette_oc, 0, p->out_c, scratch);
        return tc_conv2d_s8(conv2d_cb_int8_params(p, &conv), in, scratch, bias, mult, shift, out);
    }
    for (r0 = 0; r0 < p->out_h; r0 += p->band_h) {
        const int32_t r1 = TC_MIN(r0 + p->band_h, p->out_h);
        for (c0 = 0; c0 < p->out_c; c0 += p->tile_oc) {
            const int32_t n = TC_MIN(p->tile_oc, p->out_c - c0);
            tc_cb_decode_rows(idx, palette, p->bits, depth, p->palette_oc, c0, n, scratch);
#if TC_HAVE_DSP
            if (p->groups == 1) {
                tc_conv2d_cb_s8_tile_dsp(p, in, scratch, c0, n, r0, r1, bias, mult, shift, out);
                continue;
            }
#endif
            conv2d_cb_tile_portable(p, in, scratch, c0, n, r0, r1, bias, mult, shift, out);
        }
    }
    return TC_OK;
}
