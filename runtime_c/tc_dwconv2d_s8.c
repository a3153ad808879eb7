/*
 * tinycc runtime: int8 depthwise 2-D convolution, TFLM DepthwiseConvPerChannel arithmetic,
 * out-of-place and in-place (TinyEngine-style, one channel plane of scratch).
 * Mirrored by tinycc/golden/kernels_conv.py::dwconv2d_s8 (both entry points).
 */
#include "tc_conv.h"

static int dwconv2d_args_ok(const tc_dwconv2d_params *p) {
    if (p->in_h < 1 || p->in_w < 1 || p->in_c < 1 || p->out_h < 1 || p->out_w < 1) {
        return 0;
    }
    if (p->k_h < 1 || p->k_w < 1 || p->stride_h < 1 || p->stride_w < 1 || p->dil_h < 1 ||
        p->dil_w < 1 || p->pad_top < 0 || p->pad_left < 0) {
        return 0;
    }
    return p->depth_mult >= 1 && p->out_c == p->in_c * p->depth_mult;
}

/*
 * Computes output channel `oc` for every output pixel.
 * `plane` is the input channel feeding oc, `plane_stride` the distance between neighbouring
 * pixels of that channel (in_c for the NHWC tensor, 1 for a gathered plane). `out_oc` points at
 * channel oc of output pixel 0; pixels are out_c apart. Both entry points use this function, so
 * they are bit-exact by construction.
 */
static void dwconv2d_channel(const tc_dwconv2d_params *p, const int8_t *plane,
                             int32_t plane_stride, const int8_t *w, const int32_t *bias,
                             int32_t oc, int32_t mult, int32_t shift, int8_t *out_oc) {
    int32_t oy, ox, ky, kx;
    for (oy = 0; oy < p->out_h; ++oy) {
        const int32_t in_y0 = oy * p->stride_h - p->pad_top;
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t in_x0 = ox * p->stride_w - p->pad_left;
            int32_t acc = 0;
            for (ky = 0; ky < p->k_h; ++ky) {
                const int32_t iy = in_y0 + ky * p->dil_h;
                if (iy < 0 || iy >= p->in_h) continue;
                for (kx = 0; kx < p->k_w; ++kx) {
                    const int32_t ix = in_x0 + kx * p->dil_w;
                    int32_t x;
                    if (ix < 0 || ix >= p->in_w) continue;
                    x = plane[(iy * p->in_w + ix) * plane_stride];
                    acc += (int32_t)w[(ky * p->k_w + kx) * p->out_c + oc] * (x - p->in_zp);
                }
            }
            if (bias != NULL) acc += bias[oc];
            out_oc[(oy * p->out_w + ox) * p->out_c] =
                tc_requant_s8(acc, mult, shift, p->out_zp, p->act_min, p->act_max);
        }
    }
}

tc_status tc_dwconv2d_s8(const tc_dwconv2d_params *p, const int8_t *in, const int8_t *w,
                         const int32_t *bias, const int32_t *mult, const int32_t *shift,
                         int8_t *out) {
    int32_t ic, m;
    if (p == NULL || in == NULL || w == NULL || mult == NULL || shift == NULL || out == NULL) {
        return TC_ARG_ERROR;
    }
    if (!dwconv2d_args_ok(p) ||
        !tc_conv_quant_args_ok(p->in_zp, p->out_zp, p->act_min, p->act_max, mult, shift,
                               p->out_c)) {
        return TC_ARG_ERROR;
    }
    for (ic = 0; ic < p->in_c; ++ic) {
        for (m = 0; m < p->depth_mult; ++m) {
            const int32_t oc = ic * p->depth_mult + m;
            dwconv2d_channel(p, in + ic, p->in_c, w, bias, oc, mult[oc], shift[oc], out + oc);
        }
    }
    return TC_OK;
}

int32_t tc_dwconv2d_s8_inplace_scratch_size(const tc_dwconv2d_params *p) {
    return p != NULL ? p->in_h * p->in_w : 0;
}

tc_status tc_dwconv2d_s8_inplace(const tc_dwconv2d_params *p, const int8_t *in, const int8_t *w,
                                 const int32_t *bias, const int32_t *mult, const int32_t *shift,
                                 int8_t *scratch, int8_t *out) {
    const int32_t plane_size = p != NULL ? p->in_h * p->in_w : 0;
    int32_t c, i;
    if (p == NULL || in == NULL || w == NULL || mult == NULL || shift == NULL ||
        scratch == NULL || out == NULL) {
        return TC_ARG_ERROR;
    }
    if (!dwconv2d_args_ok(p) || p->depth_mult != 1 ||
        !tc_conv_quant_args_ok(p->in_zp, p->out_zp, p->act_min, p->act_max, mult, shift,
                               p->out_c)) {
        return TC_ARG_ERROR;
    }
    /* In place, output pixel i overwrites input pixel i: it must exist. */
    if (out == in && p->out_h * p->out_w > plane_size) {
        return TC_ARG_ERROR;
    }
    for (c = 0; c < p->in_c; ++c) {
        for (i = 0; i < plane_size; ++i) {
            scratch[i] = in[i * p->in_c + c];
        }
        dwconv2d_channel(p, scratch, 1, w, bias, c, mult[c], shift[c], out + c);
    }
    return TC_OK;
}
