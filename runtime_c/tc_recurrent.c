/*
 * tinycc runtime: the arithmetic tc_lstm_s8 and tc_gru_s8 share, TFLite Micro's int16 LSTM
 * pieces (lstm_eval.cc, reference_integer_ops logistic.h / tanh.h / mul.h / fully_connected.h).
 * Mirrored by tinycc/ops/recurrent.py (fc_q12, sigmoid_q15, tanh_q15, mul_elementwise).
 */
#include "tc_recurrent.h"
#include "tc_dot_s8_dsp.h"

/* TFLM sigmoid_table_uint16 (kernels/internal/common.h): sigmoid(i / 24) in 0.16, i = 0..255. */
static const uint16_t tc_rnn_sigmoid_table[256] = {
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498,
    40149, 40794, 41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255,
    46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409, 51865,
    52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174,
    56503, 56823, 57133, 57433, 57724, 58007, 58280, 58544, 58800, 59048, 59288,
    59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110, 61279, 61441,
    61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886,
    62990, 63090, 63186, 63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835,
    63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308, 64357, 64405, 64450,
    64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845,
    64873, 64900, 64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097,
    65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234, 65246, 65258,
    65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360,
    65367, 65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425,
    65429, 65433, 65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465,
    65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508,
    65509, 65510, 65511, 65512, 65513, 65514, 65515, 65516, 65517, 65517, 65518,
    65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524, 65525,
    65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529,
    65529, 65529, 65530, 65530, 65530, 65530, 65531, 65531, 65531, 65531, 65531,
    65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533, 65533, 65533,
    65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534,
    65534, 65534, 65535};

void tc_rnn_fc_q12(const int8_t *x, int32_t zp, int32_t cols, const int8_t *w, const int32_t *bias,
                   const int32_t *mult, const int32_t *shift, int32_t rows, int16_t *out) {
    int32_t o = 0, i;
#if TC_HAVE_DSP
    /* Four gate rows per pass with SMLAD (tc_dot_s8_dsp.h): the same products and sums as the
     * loop below (|terms| <= 255 * 128, far from overflowing int32 for any layer width). */
    for (; o + 4 <= rows; o += 4) {
        int32_t acc[4], k;
        for (k = 0; k < 4; ++k) {
            acc[k] = bias != NULL ? bias[o + k] : 0;
        }
        tc_dsp_dot_1x4(x, w + o * cols, cols, cols, zp, acc);
        for (k = 0; k < 4; ++k) {
            out[o + k] = (int16_t)tc_clamp_i32(tc_mbqm(acc[k], mult[o + k], shift[o + k]), -32768, 32767);
        }
    }
#endif
    for (; o < rows; ++o) {
        const int8_t *w_o = w + o * cols;
        int32_t acc = bias != NULL ? bias[o] : 0;
        for (i = 0; i < cols; ++i) {
            acc += (int32_t)w_o[i] * ((int32_t)x[i] - zp);
        }
        out[o] = (int16_t)tc_clamp_i32(tc_mbqm(acc, mult[o], shift[o]), -32768, 32767);
    }
}

int16_t tc_rnn_sigmoid_q15(int16_t x) {
    /* input_multiplier 0 (power of two): x * 3, the table's 3/4 input scaling folded in. */
    const int32_t v = (int32_t)x * 3;
    const uint32_t a = (uint32_t)(v < 0 ? -v : v);
    const uint32_t uh = a >> 9;
    uint32_t result;
    if (uh >= 255) {
        result = (uint32_t)0x7FFF << 10;
    } else {
        const uint32_t ua = tc_rnn_sigmoid_table[uh];
        const uint32_t ub = tc_rnn_sigmoid_table[uh + 1];
        result = (ua << 9) + (a & 0x1FF) * (ub - ua);
    }
    result = v >= 0 ? result + (1u << 9) : (1u << 25) - result + (1u << 9) - 1u;
    return (int16_t)(result >> 10);
}

int16_t tc_rnn_tanh_q15(int16_t x, int32_t input_multiplier, int32_t input_left_shift) {
    int32_t v, result;
    uint32_t a, uh;
    if (input_multiplier == 0) { /* power of two case */
        input_multiplier = 3 << input_left_shift;
        input_left_shift = 0;
    }
    v = ((int32_t)x * input_multiplier + (input_left_shift > 0 ? 1 << (input_left_shift - 1) : 0))
        >> input_left_shift;
    a = (uint32_t)(v < 0 ? -v : v);
    uh = a >> 8;
    if (uh >= 255) {
        result = 0xFFFF << 8;
    } else {
        const uint32_t ua = tc_rnn_sigmoid_table[uh];
        const uint32_t ub = tc_rnn_sigmoid_table[uh + 1];
        result = (int32_t)((ua << 8) + (a & 0xFF) * (ub - ua));
    }
    result = v >= 0 ? result - (1 << 23) + (1 << 7) : -result + (1 << 23) + (1 << 7) - 1;
    /* Arithmetic right shift of a negative value: floor, on every compiler we target. */
    return (int16_t)(result >> 8);
}

int32_t tc_rnn_mul(int32_t a, int32_t b, int32_t b_offset, int32_t mult, int32_t shift, int32_t out_zp,
                   int32_t lo, int32_t hi) {
    /* |a| <= 2^15 and |b + b_offset| <= 2^15: the product fits int32 (TFLM computes it so). */
    return tc_clamp_i32(tc_mbqm(a * (b + b_offset), mult, shift) + out_zp, lo, hi);
}

int16_t tc_rnn_add16(int32_t a, int32_t b) {
    return (int16_t)tc_clamp_i32(a + b, -32768, 32767);
}

int tc_rnn_args_ok(int32_t steps, int32_t batch, int32_t directions, int32_t direction, int32_t input_size,
                   int32_t hidden_size, int32_t reverse, int32_t in_zp, int32_t hidden_zp, int32_t rows, const int32_t *w_mult, const int32_t *w_shift,
                   const int32_t *r_mult, const int32_t *r_shift) {
    int32_t k;
    if (steps < 1 || batch < 1 || (directions != 1 && directions != 2) || direction < 0 || direction >= directions ||
        input_size < 1 || hidden_size < 1 || (reverse != 0 && reverse != 1) ||
        in_zp < -128 || in_zp > 127 || hidden_zp < -128 || hidden_zp > 127) {
        return 0;
    }
    for (k = 0; k < rows; ++k) {
        if (w_mult[k] < 0 || r_mult[k] < 0 || w_shift[k] < -31 || w_shift[k] > 30 || r_shift[k] < -31 ||
            r_shift[k] > 30) {
            return 0;
        }
    }
    return 1;
}
