/*
 * tinycc runtime: int8 GRU over a whole sequence (tinycc's scheme built from TFLite Micro's
 * int16 LSTM pieces; see tinycc/ops/recurrent.py, whose gru_s8 mirrors this file).
 */
#include "tc_recurrent.h"

int32_t tc_gru_s8_scratch_size(const tc_gru_params *p) {
    return 2 * (3 * p->hidden_size) * 2 + 2 * p->hidden_size + 2 * ((p->hidden_size + 1) / 2 * 2);
}

/* round(mix / 2^15), half away from zero; |mix| < 2^30. */
static int16_t tc_gru_round_q15(int32_t mix) {
    const int32_t r = mix >= 0 ? (mix + (1 << 14)) >> 15 : -((-mix + (1 << 14)) >> 15);
    return (int16_t)tc_clamp_i32(r, -32768, 32767);
}

tc_status tc_gru_s8(const tc_gru_params *p, const int8_t *in, const int8_t *w, const int8_t *r,
                    const int32_t *bias, const int32_t *r_bias, const int32_t *w_mult,
                    const int32_t *w_shift, const int32_t *r_mult, const int32_t *r_shift,
                    int8_t *scratch, int8_t *out) {
    int32_t b, k, j;
    int16_t *xg, *hg, *h16;
    int8_t *h8, *rh8;
    if (p == NULL || in == NULL || w == NULL || r == NULL || bias == NULL || r_bias == NULL ||
        w_mult == NULL || w_shift == NULL || r_mult == NULL || r_shift == NULL || scratch == NULL ||
        out == NULL) {
        return TC_ARG_ERROR;
    }
    if (!tc_rnn_args_ok(p->steps, p->batch, p->directions, p->direction, p->input_size, p->hidden_size, p->reverse,
                        p->in_zp, p->hidden_zp, 3 * p->hidden_size, w_mult, w_shift, r_mult, r_shift) ||
        (p->linear_before_reset != 0 && p->linear_before_reset != 1) || p->reset_multiplier < 0 ||
        p->hidden_multiplier < 0 || p->reset_shift < -31 || p->reset_shift > 30 || p->hidden_shift < -31 ||
        p->hidden_shift > 30) {
        return TC_ARG_ERROR;
    }
    {
        const int32_t n = p->hidden_size;
        const int32_t n_even = (n + 1) / 2 * 2;
        /* scratch: input part [3n] | recurrent part [3n] | state [n] (int16) | h8 | r * h8 (int8) */
        xg = (int16_t *)(void *)scratch;
        hg = xg + 3 * n;
        h16 = hg + 3 * n;
        h8 = (int8_t *)(void *)(h16 + n);
        rh8 = h8 + n_even;
        for (b = 0; b < p->batch; ++b) {
            for (j = 0; j < n; ++j) {
                h16[j] = 0;
                h8[j] = (int8_t)p->hidden_zp;
            }
            for (k = 0; k < p->steps; ++k) {
                const int32_t t = p->reverse ? p->steps - 1 - k : k;
                const int32_t row = t * p->batch + b;
                int8_t *y = out + ((t * p->directions + p->direction) * p->batch + b) * n;
                tc_rnn_fc_q12(in + row * p->input_size, p->in_zp, p->input_size, w, bias, w_mult, w_shift, 3 * n, xg);
                /* z and r rows, and with linear_before_reset the n rows: R h8 (+ r_bias) */
                tc_rnn_fc_q12(h8, p->hidden_zp, n, r, r_bias, r_mult, r_shift, p->linear_before_reset ? 3 * n : 2 * n,
                              hg);
                if (!p->linear_before_reset) {
                    for (j = 0; j < n; ++j) {
                        const int16_t reset = tc_rnn_sigmoid_q15(tc_rnn_add16(xg[n + j], hg[n + j]));
                        rh8[j] = (int8_t)tc_rnn_mul(reset, h8[j], -p->hidden_zp, p->reset_multiplier, p->reset_shift,
                                                    p->hidden_zp, -128, 127);
                    }
                    tc_rnn_fc_q12(rh8, p->hidden_zp, n, r + 2 * n * n, r_bias + 2 * n, r_mult + 2 * n, r_shift + 2 * n,
                                  n, hg + 2 * n);
                }
                for (j = 0; j < n; ++j) {
                    const int16_t z = tc_rnn_sigmoid_q15(tc_rnn_add16(xg[j], hg[j]));
                    int32_t hn = hg[2 * n + j];
                    int16_t cand;
                    if (p->linear_before_reset) {
                        const int16_t reset = tc_rnn_sigmoid_q15(tc_rnn_add16(xg[n + j], hg[n + j]));
                        hn = tc_rnn_mul(reset, hn, 0, p->reset_multiplier, p->reset_shift, 0, -32768, 32767);
                    }
                    cand = tc_rnn_tanh_q15(tc_rnn_add16(xg[2 * n + j], hn), 0, 0);
                    h16[j] = tc_gru_round_q15((32768 - (int32_t)z) * cand + (int32_t)z * h16[j]);
                    y[j] = (int8_t)tc_clamp_i32(tc_mbqm(h16[j], p->hidden_multiplier, p->hidden_shift) + p->hidden_zp,
                                                -128, 127);
                }
                for (j = 0; j < n; ++j) {
                    h8[j] = y[j];
                }
            }
        }
    }
    return TC_OK;
}
