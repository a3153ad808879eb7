/*
 * tinycc runtime: int8 recurrent layers (ONNX LSTM and GRU, one direction, batch 1, a static
 * number of steps). Mirrored by tinycc/ops/recurrent.py (lstm_s8, gru_s8).
 *
 * LSTM is TFLite Micro's UNIDIRECTIONAL_SEQUENCE_LSTM integer path (micro/kernels/lstm_eval.h:
 * int8 activations and weights, int16 gates and cell state): every gate is
 *   sat16(Q12(W x + bias) + Q12(R h8))   (Q12: MultiplyByQuantizedMultiplier to int16 Q3.12)
 * through TFLM's int16 Logistic / Tanh (sigmoid_table_uint16 with interpolation) into Q0.15;
 *   c  = sat16(MulElementwise(f, c) + MulElementwise(i, g))        (cell scale 2^p)
 *   h8 = MulElementwise(o, Tanh_p(c)) -> int8 with the output's scale and zero point.
 * GRU is tinycc's scheme with the same pieces (see recurrent.py), its state kept in Q0.15.
 *
 * The state lives in `scratch` (tc_*_s8_scratch_size bytes, 2-byte aligned, overlapping nothing
 * else) for the duration of the call: the sequence is processed in one call.
 */
#ifndef TC_RECURRENT_H
#define TC_RECURRENT_H

#include "tc_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Parameters of tc_lstm_s8. Input [steps][batch][input_size], output
 * [steps][directions][batch][hidden], of which this call writes the rows of `direction` (a
 * bidirectional layer is two calls, the second with reverse = 1): each batch row is an
 * independent sequence from a zero state (run one after the other, so the scratch holds one
 * state). Weights rows are gates i, o, f, c (ONNX order), hidden_size rows
 * each. reverse != 0 runs the steps from the last to the first (ONNX direction "reverse").
 * cell_tanh_*: TFLM lstm_internal::Tanh for the cell scale (multiplier 0 with a left shift
 * 0..14, so that x * (3 << shift) fits int32, or 3 with a right shift 0..15).
 * forget/input/hidden: MulElementwise requantization of f*c, i*g and o*tanh(c) (shifts <= 0).
 */
typedef struct {
    int32_t steps, batch, directions, direction, input_size, hidden_size, reverse;
    int32_t in_zp, hidden_zp;
    int32_t cell_tanh_multiplier, cell_tanh_shift;
    int32_t forget_multiplier, forget_shift;
    int32_t input_multiplier, input_shift;
    int32_t hidden_multiplier, hidden_shift;
} tc_lstm_params;

/*
 * Parameters of tc_gru_s8. Weight rows are gates z, r, n (ONNX order). linear_before_reset as
 * ONNX. reset_*: requantization of r * (R h) and of r * h8 (2^-15); hidden_*: of the Q0.15
 * state to the int8 output.
 */
typedef struct {
    int32_t steps, batch, directions, direction, input_size, hidden_size, reverse;
    int32_t in_zp, hidden_zp;
    int32_t linear_before_reset;
    int32_t reset_multiplier, reset_shift;
    int32_t hidden_multiplier, hidden_shift;
} tc_gru_params;

/** Bytes of scratch tc_lstm_s8 needs: 2 * 4H int16 gates, H int16 cell, H int8 state (even). */
int32_t tc_lstm_s8_scratch_size(const tc_lstm_params *p);
/** Bytes of scratch tc_gru_s8 needs: 2 * 3H int16 gates, H int16 state, 2 * H int8 (even each). */
int32_t tc_gru_s8_scratch_size(const tc_gru_params *p);

/**
 * int8 LSTM over a whole sequence from a zero state.
 *
 * @param in      input [steps][batch][input_size]
 * @param w       input weights [4 * hidden][input_size], per row scale
 * @param r       recurrent weights [4 * hidden][hidden]
 * @param bias    int32 [4 * hidden] (W and R biases), scale in_scale * w_scale[row]
 * @param w_mult  w_shift: per row in_scale * w_scale[row] / 2^-12
 * @param r_mult  r_shift: per row hidden_scale * r_scale[row] / 2^-12
 * @param scratch tc_lstm_s8_scratch_size(p) bytes, 2-byte aligned
 * @param out     hidden states [steps][directions][batch][hidden] (this direction's rows written);
 *                must not overlap the input
 */
tc_status tc_lstm_s8(const tc_lstm_params *p, const int8_t *in, const int8_t *w, const int8_t *r,
                     const int32_t *bias, const int32_t *w_mult, const int32_t *w_shift,
                     const int32_t *r_mult, const int32_t *r_shift, int8_t *scratch, int8_t *out);

/**
 * int8 GRU over a whole sequence from a zero state. Arguments as tc_lstm_s8 with 3 gates, and
 * r_bias: int32 [3 * hidden], recurrent biases that stay inside the reset product (scale
 * hidden_scale * r_scale[row]; zero rows where they fold into `bias`).
 */
tc_status tc_gru_s8(const tc_gru_params *p, const int8_t *in, const int8_t *w, const int8_t *r,
                    const int32_t *bias, const int32_t *r_bias, const int32_t *w_mult,
                    const int32_t *w_shift, const int32_t *r_mult, const int32_t *r_shift,
                    int8_t *scratch, int8_t *out);

/* Internal: the pieces both kernels share (tc_recurrent.c). */
/* clamp16(MBQM(bias + sum((x - zp) * w), mult, shift)) for `rows` rows (bias may be NULL). */
void tc_rnn_fc_q12(const int8_t *x, int32_t zp, int32_t cols, const int8_t *w, const int32_t *bias,
                   const int32_t *mult, const int32_t *shift, int32_t rows, int16_t *out);
/* TFLM reference_integer_ops::Logistic, int16 Q3.12 -> Q0.15, input_multiplier 0. */
int16_t tc_rnn_sigmoid_q15(int16_t x);
/* TFLM reference_integer_ops::Tanh, int16 -> Q0.15. */
int16_t tc_rnn_tanh_q15(int16_t x, int32_t input_multiplier, int32_t input_left_shift);
/* TFLM MulElementwise: clamp(MBQM(a * (b + b_offset), mult, shift) + out_zp, lo, hi). */
int32_t tc_rnn_mul(int32_t a, int32_t b, int32_t b_offset, int32_t mult, int32_t shift, int32_t out_zp,
                   int32_t lo, int32_t hi);
/* int16 saturating add. */
int16_t tc_rnn_add16(int32_t a, int32_t b);
/* Checks both kernels make: shapes, zero points, per-row requantization pairs. */
int tc_rnn_args_ok(int32_t steps, int32_t batch, int32_t directions, int32_t direction, int32_t input_size,
                   int32_t hidden_size, int32_t reverse, int32_t in_zp, int32_t hidden_zp, int32_t rows, const int32_t *w_mult, const int32_t *w_shift,
                   const int32_t *r_mult, const int32_t *r_shift);

#ifdef __cplusplus
}
#endif

#endif /* TC_RECURRENT_H */
