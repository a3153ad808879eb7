/*
 * tinycc runtime: int8 LSTM, TFLite Micro's UNIDIRECTIONAL_SEQUENCE_LSTM integer step
 * (micro/kernels/lstm_eval.h LstmStep) over a whole sequence. Mirrored by
 * tinycc/ops/recurrent.py::lstm_s8.
 */
#include "tc_recurrent.h"

int32_t tc_lstm_s8_scratch_size(const tc_lstm_params *p) {
    return 2 * (4 * p->hidden_size) * 2 + 2 * p->hidden_size + (p->hidden_size + 1) / 2 * 2;
}

tc_status tc_lstm_s8(const tc_lstm_params *p, const int8_t *in, const int8_t *w, const int8_t *r,
                     const int32_t *bias, const int32_t *w_mult, const int32_t *w_shift,
                     const int32_t *r_mult, const int32_t *r_shift, int8_t *scratch, int8_t *out) {
    int32_t b, k, j;
    int16_t *gates, *recurrent, *cell;
    int8_t *h8;
    if (p == NULL || in == NULL || w == NULL || r == NULL || bias == NULL || w_mult == NULL ||
        w_shift == NULL || r_mult == NULL || r_shift == NULL || scratch == NULL || out == NULL) {
        return TC_ARG_ERROR;
    }
    if (!tc_rnn_args_ok(p->steps, p->batch, p->directions, p->direction, p->input_size, p->hidden_size, p->reverse,
                        p->in_zp, p->hidden_zp, 4 * p->hidden_size, w_mult, w_shift, r_mult, r_shift) ||
        (p->cell_tanh_multiplier != 0 && p->cell_tanh_multiplier != 3) || p->cell_tanh_shift < 0 ||
        p->cell_tanh_shift > (p->cell_tanh_multiplier == 0 ? 14 : 15) || p->forget_shift > 0 || p->input_shift > 0 || p->hidden_shift > 0 ||
        p->forget_shift < -31 || p->input_shift < -31 || p->hidden_shift < -31 || p->forget_multiplier < 0 ||
        p->input_multiplier < 0 || p->hidden_multiplier < 0) {
        return TC_ARG_ERROR;
    }
    {
        const int32_t n = p->hidden_size;
        /* scratch: gates [4n] | recurrent part [4n] | cell [n] (int16) | hidden state [n] (int8) */
        gates = (int16_t *)(void *)scratch;
        recurrent = gates + 4 * n;
        cell = recurrent + 4 * n;
        h8 = (int8_t *)(void *)(cell + n);
        for (b = 0; b < p->batch; ++b) {
            for (j = 0; j < n; ++j) {
                cell[j] = 0;
                h8[j] = (int8_t)p->hidden_zp; /* a zero state (TFLM resets variable tensors to zp) */
            }
            for (k = 0; k < p->steps; ++k) {
                const int32_t t = p->reverse ? p->steps - 1 - k : k;
                const int32_t row = t * p->batch + b;
                int8_t *y = out + ((t * p->directions + p->direction) * p->batch + b) * n;
                tc_rnn_fc_q12(in + row * p->input_size, p->in_zp, p->input_size, w, bias, w_mult, w_shift, 4 * n,
                              gates);
                tc_rnn_fc_q12(h8, p->hidden_zp, n, r, NULL, r_mult, r_shift, 4 * n, recurrent);
                for (j = 0; j < n; ++j) {
                    const int16_t i_gate = tc_rnn_sigmoid_q15(tc_rnn_add16(gates[j], recurrent[j]));
                    const int16_t o_gate = tc_rnn_sigmoid_q15(tc_rnn_add16(gates[n + j], recurrent[n + j]));
                    const int16_t f_gate = tc_rnn_sigmoid_q15(tc_rnn_add16(gates[2 * n + j], recurrent[2 * n + j]));
                    /* lstm_internal::Tanh(-12): input left shift 0, multiplier 3 */
                    const int16_t c_gate = tc_rnn_tanh_q15(tc_rnn_add16(gates[3 * n + j], recurrent[3 * n + j]), 0, 0);
                    const int32_t kept = tc_rnn_mul(f_gate, cell[j], 0, p->forget_multiplier, p->forget_shift, 0,
                                                    -32768, 32767);
                    const int32_t added = tc_rnn_mul(i_gate, c_gate, 0, p->input_multiplier, p->input_shift, 0,
                                                     -32768, 32767);
                    int16_t tanh_c;
                    cell[j] = tc_rnn_add16(kept, added);
                    tanh_c = tc_rnn_tanh_q15(cell[j], p->cell_tanh_multiplier, p->cell_tanh_shift);
                    y[j] = (int8_t)tc_rnn_mul(o_gate, tanh_c, 0, p->hidden_multiplier, p->hidden_shift, p->hidden_zp,
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
