/* int8 transposed convolution (TFLM TRANSPOSE_CONV arithmetic, per channel; any groups and
 * dilations): scatter every input pixel into an int32 accumulator plane, then requantize. */
#include "tc_matmul.h"

static int conv_transpose_params_valid(const tc_conv_transpose_params *p) {
    if (p->in_h < 1 || p->in_w < 1 || p->in_c < 1 || p->out_h < 1 || p->out_w < 1 || p->out_c < 1) return 0;
    if (p->k_h < 1 || p->k_w < 1 || p->stride_h < 1 || p->stride_w < 1 || p->dil_h < 1 || p->dil_w < 1) return 0;
    if (p->pad_top < 0 || p->pad_left < 0 || p->groups < 1) return 0;
    if (p->in_c % p->groups != 0 || p->out_c % p->groups != 0) return 0;
    if (p->in_zp < -128 || p->in_zp > 127 || p->out_zp < -128 || p->out_zp > 127) return 0;
    return p->act_min >= -128 && p->act_max <= 127 && p->act_min <= p->act_max;
}

int32_t tc_conv_transpose_s8_scratch_size(const tc_conv_transpose_params *p) {
    return p->out_h * p->out_w * p->out_c * (int32_t)sizeof(int32_t);
}

tc_status tc_conv_transpose_s8(const tc_conv_transpose_params *p, const int8_t *in, const int8_t *w,
                               const int32_t *bias, const int32_t *mult, const int32_t *shift, void *scratch,
                               int8_t *out) {
    int32_t *acc = (int32_t *)scratch;
    int32_t y, x, ky, kx, g, o, i, n;
    int32_t in_per_group, out_per_group;
    if (p == NULL || in == NULL || w == NULL || mult == NULL || shift == NULL || scratch == NULL || out == NULL ||
        !conv_transpose_params_valid(p)) {
        return TC_ARG_ERROR;
    }
    for (o = 0; o < p->out_c; ++o) {
        if (mult[o] < 0 || shift[o] < -31 || shift[o] > 30) return TC_ARG_ERROR;
    }
    in_per_group = p->in_c / p->groups;
    out_per_group = p->out_c / p->groups;
    n = p->out_h * p->out_w * p->out_c;
    for (i = 0; i < n; ++i) acc[i] = 0;
    for (y = 0; y < p->in_h; ++y) {
        for (x = 0; x < p->in_w; ++x) {
            const int8_t *px = in + (y * p->in_w + x) * p->in_c;
            for (ky = 0; ky < p->k_h; ++ky) {
                const int32_t oy = y * p->stride_h + ky * p->dil_h - p->pad_top;
                if (oy < 0 || oy >= p->out_h) continue;
                for (kx = 0; kx < p->k_w; ++kx) {
                    const int32_t ox = x * p->stride_w + kx * p->dil_w - p->pad_left;
                    int32_t *dst;
                    if (ox < 0 || ox >= p->out_w) continue;
                    dst = acc + (oy * p->out_w + ox) * p->out_c;
                    for (g = 0; g < p->groups; ++g) {
                        const int8_t *src = px + g * in_per_group;
                        for (o = g * out_per_group; o < (g + 1) * out_per_group; ++o) {
                            const int8_t *tap = w + ((o * p->k_h + ky) * p->k_w + kx) * in_per_group;
                            int32_t sum = 0;
                            for (i = 0; i < in_per_group; ++i) sum += (int32_t)tap[i] * ((int32_t)src[i] - p->in_zp);
                            dst[o] += sum;
                        }
                    }
                }
            }
        }
    }
    for (i = 0; i < n; i += p->out_c) {
        for (o = 0; o < p->out_c; ++o) {
            out[i + o] = tc_requant_s8(acc[i + o] + (bias != NULL ? bias[o] : 0), mult[o], shift[o], p->out_zp,
                                       p->act_min, p->act_max);
        }
    }
    return TC_OK;
}
