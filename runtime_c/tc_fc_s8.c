/*
 * tinycc runtime: int8 fully connected layer, TFLM FullyConnected arithmetic with per-channel
 * requantization. Mirrored by tinycc/golden/kernels_conv.py::fc_s8.
 *
 * With TC_HAVE_DSP (tc_arm_dsp.h) and in_features >= 4 the layer runs as the SIMD matrix
 * product tc_dsp_matmul_s8, bit-exact with the portable loop below.
 */
#include "tc_conv.h"
#include "tc_dot_s8_dsp.h"

tc_status tc_fc_s8(const tc_fc_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                   const int32_t *mult, const int32_t *shift, int8_t *out) {
    int32_t r, o, i;
    if (p == NULL || in == NULL || w == NULL || mult == NULL || shift == NULL || out == NULL) {
        return TC_ARG_ERROR;
    }
    if (p->rows < 1 || p->in_features < 1 || p->out_features < 1 ||
        !tc_conv_quant_args_ok(p->in_zp, p->out_zp, p->act_min, p->act_max, mult, shift,
                               p->per_channel ? p->out_features : 1)) {
        return TC_ARG_ERROR;
    }
#if TC_HAVE_DSP
    if (p->in_features >= 4) {
        tc_dsp_requant q = tc_dsp_make_requant(bias, mult, shift, p->out_zp, p->act_min, p->act_max);
        if (!p->per_channel) q.channel_mask = 0;
        tc_dsp_matmul_s8(in, w, p->rows, p->out_features, p->in_features, p->in_zp, &q, out);
        return TC_OK;
    }
#endif
    for (r = 0; r < p->rows; ++r) {
        const int8_t *x = in + r * p->in_features;
        int8_t *y = out + r * p->out_features;
        for (o = 0; o < p->out_features; ++o) {
            const int8_t *w_o = w + o * p->in_features;
            int32_t acc = 0;
            for (i = 0; i < p->in_features; ++i) {
                acc += (int32_t)w_o[i] * ((int32_t)x[i] - p->in_zp);
            }
            const int32_t c = p->per_channel ? o : 0;
            if (bias != NULL) acc += bias[o];
            y[o] = tc_requant_s8_nonneg(acc, mult[c], shift[c], p->out_zp, p->act_min,
                                        p->act_max);
        }
    }
    return TC_OK;
}
