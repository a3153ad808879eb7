/*
 * tinycc runtime: fully connected layer on codebook weights (tc_codebook.h), the arithmetic of
 * tc_fc_s8 on the decoded int8 weights. Mirrored by tinycc/ops/dense.py::fc_cb_s8.
 *
 * tile_oc weight rows are decoded at a time; with TC_HAVE_DSP and in_features >= 4 each input
 * row runs against them as tc_fc_s8's SIMD matrix product (tc_dsp_matmul_s8), except for 2-
 * and 4-bit indices, and any width with a single input row, which tc_fc_cb_s8_dsp.c multiplies
 * without decoding: through a 256-word decode table in the scratch where a palette serves
 * enough weights (tc_fc_cb_uses_table), else a lookup per value.
 */
#include "tc_codebook.h"
#include "tc_dot_s8_dsp.h"

#include <stddef.h>

int32_t tc_fc_cb_s8_scratch_size(const tc_fc_cb_params *p) {
    const int32_t rows = p->tile_oc * p->in_features;
    return tc_fc_cb_uses_table(p) ? TC_MAX(rows, TC_FC_CB_TABLE_BYTES) : rows;
}

tc_status tc_fc_cb_s8(const tc_fc_cb_params *p, const int8_t *in, const uint8_t *idx,
                      const int8_t *palette, const int32_t *bias, const int32_t *mult,
                      const int32_t *shift, int8_t *scratch, int8_t *out) {
    int32_t c0, r, o, i;
    if (p == NULL || in == NULL || idx == NULL || palette == NULL || mult == NULL ||
        shift == NULL || scratch == NULL || out == NULL) {
        return TC_ARG_ERROR;
    }
    if (p->rows < 1 || p->in_features < 1 || p->out_features < 1 ||
        !tc_cb_args_ok(p->bits, p->palette_oc, p->tile_oc, p->out_features) ||
        !tc_conv_quant_args_ok(p->in_zp, p->out_zp, p->act_min, p->act_max, mult, shift,
                               p->per_channel ? p->out_features : 1)) {
        return TC_ARG_ERROR;
    }
#if TC_HAVE_DSP
    if (tc_fc_cb_uses_table(p)) {
        tc_fc_cb_s8_table(p, in, idx, palette, bias, mult, shift, (uint32_t *)(void *)scratch, out);
        return TC_OK;
    }
    if ((p->bits == 2 || p->bits == 4 || p->rows == 1) && p->in_features >= 4) {
        tc_fc_cb_s8_dsp(p, in, idx, palette, bias, mult, shift, out);
        return TC_OK;
    }
#endif
    for (c0 = 0; c0 < p->out_features; c0 += p->tile_oc) {
        const int32_t n = TC_MIN(p->tile_oc, p->out_features - c0);
        tc_cb_decode_rows(idx, palette, p->bits, p->in_features, p->palette_oc, c0, n, scratch);
#if TC_HAVE_DSP
        if (p->in_features >= 4) {
            /* the tile's channels as a layer of n outputs: its bias and requantization from c0 */
            const int32_t m = p->per_channel ? c0 : 0;
            tc_dsp_requant q = tc_dsp_make_requant(bias != NULL ? bias + c0 : NULL, mult + m,
                                                   shift + m, p->out_zp, p->act_min, p->act_max);
            if (!p->per_channel) q.channel_mask = 0;
            for (r = 0; r < p->rows; ++r) {
                tc_dsp_matmul_s8(in + r * p->in_features, scratch, 1, n, p->in_features,
                                 p->in_zp, &q, out + r * p->out_features + c0);
            }
            continue;
        }
#endif
        for (r = 0; r < p->rows; ++r) {
            const int8_t *x = in + r * p->in_features;
            int8_t *y = out + r * p->out_features;
            for (o = c0; o < c0 + n; ++o) {
                const int8_t *w_o = scratch + (o - c0) * p->in_features;
                const int32_t c = p->per_channel ? o : 0;
                int32_t acc = 0;
                for (i = 0; i < p->in_features; ++i) {
                    acc += (int32_t)w_o[i] * ((int32_t)x[i] - p->in_zp);
                }
                if (bias != NULL) acc += bias[o];
                y[o] = tc_requant_s8_nonneg(acc, mult[c], shift[c], p->out_zp, p->act_min,
                                            p->act_max);
            }
        }
    }
    return TC_OK;
}
