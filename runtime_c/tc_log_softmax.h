/*
 * tinycc runtime: int8 log-softmax over the last axis, integer only. TFLite fixes the output
 * quantization of LOG_SOFTMAX to (16/256, 127); the kernel takes any output scale through its
 * multipliers. The golden model is tinycc/golden/kernels_eltwise.py (LogSoftmaxParams,
 * log_softmax_s8), bit for bit.
 *
 * Per row, with d = x - max(row) in [-255, 0] and output steps of s_out:
 *   1. sum     = sum over the row of exp_table[-d], where exp_table[k] = round(exp(-k s_in) 2^30)
 *                is built offline (exp_table[0] = 2^30 is the maximum's own term), in uint64.
 *   2. log2sum = log2(sum / 2^30) in Q24: the integer part from the position of the top bit,
 *                24 fraction bits by repeated squaring of the mantissa.
 *   3. lse     = ln(sum / 2^30) / s_out = log2sum * ln(2) / s_out, in Q20 output steps.
 *   4. out     = clamp(out_zp - round((-d s_in / s_out + lse), half up), -128, 127), the sum in
 *                Q20 output steps, i.e. round(y / s_out) + out_zp with y = log_softmax(x) <= 0
 *                rounded half away from zero.
 * Everything is non-negative, so only unsigned shifts occur. The Q20 and Q24 intermediates are
 * accurate to about 1e-5 output steps; the output is the correctly rounded float log-softmax
 * except within that distance of a rounding boundary.
 */
#ifndef TC_LOG_SOFTMAX_H
#define TC_LOG_SOFTMAX_H

#include "tc_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* exp_table[0]: exp(0) in the table's Q30. */
#define TC_LOG_SOFTMAX_EXP_ONE (INT32_C(1) << 30)

/*
 * `outer` rows of `depth` elements. (diff_multiplier, diff_shift) is s_in / s_out and
 * (log2_multiplier, log2_shift) is ln(2) / s_out, both as TFLM QuantizeMultiplier pairs
 * (real = multiplier * 2^(shift - 31)). s_in / s_out is capped at 512 offline (an element one
 * input step below the maximum is then -128 for any zero point), so diff_shift <= 10.
 */
typedef struct {
    int32_t diff_multiplier;
    int32_t diff_shift;
    int32_t log2_multiplier;
    int32_t log2_shift;
    int32_t out_zp;
    int32_t outer;
    int32_t depth;
} tc_log_softmax_params;

/*
 * `exp_table` has 256 entries in [0, 2^30] with exp_table[0] == 2^30 (TC_ARG_ERROR otherwise;
 * the other entries are not checked, and no table causes undefined behaviour). In place
 * (out == in) is allowed.
 */
tc_status tc_log_softmax_s8(const tc_log_softmax_params *p, const int32_t *exp_table,
                            const int8_t *in, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* TC_LOG_SOFTMAX_H */
