/*
 * tinycc runtime: more element-wise int8 kernels with 4-D numpy broadcasting (the shapes as in
 * tc_eltwise.h, whose broadcast loop they share): PRELU (TFLite Micro arithmetic) and
 * MAXIMUM / MINIMUM with a rescale to the output quantization, comparisons (TFLM arithmetic)
 * and Where. Their numpy mirrors are
 * tinycc/ops/eltwise.py prelu_s8 / minmax_s8 and tinycc/ops/compare.py compare_s8 / where_s8, whose dataclasses have these structs' fields.
 */
#ifndef TC_ELTWISE_EXT_H
#define TC_ELTWISE_EXT_H

#include "tc_eltwise.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * PRELU (TFLM `prelu_common.cc`, reference `prelu.h` BroadcastPrelu4DSlow):
 *   v = x - in_zp
 *   out = clamp(out_zp + (v >= 0 ? MBQM(v, mult_pos, shift_pos)
 *                                : MBQM(v * (alpha - alpha_zp), mult_neg, shift_neg)), -128, 127)
 * mult_pos/shift_pos = QuantizeMultiplier(s_in / s_out),
 * mult_neg/shift_neg = QuantizeMultiplier(s_in * s_alpha / s_out), computed in double.
 */
typedef struct {
    int32_t in_zp;
    int32_t alpha_zp;
    int32_t out_zp;
    int32_t mult_pos;
    int32_t shift_pos;
    int32_t mult_neg;
    int32_t shift_neg;
    int32_t in_dims[4];
    int32_t alpha_dims[4];
    int32_t out_dims[4];
} tc_prelu_params;

/*
 * MAXIMUM (op 0) / MINIMUM (op 1): each input rescaled to the output quantization,
 *   r = clamp(out_zp + MBQM(x - zp, mult, shift), -128, 127),
 * then the larger / smaller of the two. Rescaling is monotonic, so this is the max / min of
 * the reals rounded once. With input and output quantization equal, (mult, shift) =
 * (2^30, 1) and r = x exactly: TFLM's MAXIMUM / MINIMUM on raw int8 values.
 */
typedef struct {
    int32_t op;
    int32_t in1_zp;
    int32_t in1_multiplier;
    int32_t in1_shift;
    int32_t in2_zp;
    int32_t in2_multiplier;
    int32_t in2_shift;
    int32_t out_zp;
    int32_t in1_dims[4];
    int32_t in2_dims[4];
    int32_t out_dims[4];
} tc_minmax_params;

#define TC_MINMAX_MAX 0
#define TC_MINMAX_MIN 1

/*
 * Comparisons (TFLM `comparisons_common.cc`, reference `comparisons.h`, int8):
 *   a = MBQM((x1 - in1_zp) << 8, in1_multiplier, in1_shift), b likewise for x2,
 *   out = (a OP b) ? 1 : 0, OP by `op`: 0 >, 1 >=, 2 <, 3 <=, 4 ==.
 * (multiplier, shift) = QuantizeMultiplierSmallerThanOneExp(scale): shift <= 0. The output is
 * ONNX's bool tensor as int8 0 / 1 (quantization: scale 1, zero point 0).
 */
typedef struct {
    int32_t op;
    int32_t in1_zp;
    int32_t in1_multiplier;
    int32_t in1_shift;
    int32_t in2_zp;
    int32_t in2_multiplier;
    int32_t in2_shift;
    int32_t in1_dims[4];
    int32_t in2_dims[4];
    int32_t out_dims[4];
} tc_compare_params;

#define TC_COMPARE_LEFT_SHIFT 8
enum { TC_CMP_GT = 0, TC_CMP_GE = 1, TC_CMP_LT = 2, TC_CMP_LE = 3, TC_CMP_EQ = 4 };

/*
 * Where / select: out = cond != 0 ? r(x) : r(y), r the rescale of MAXIMUM above (the identity
 * when an input's quantization is the output's). cond, x and y broadcast to out_dims (4-D,
 * numpy rules; a size-1 dimension repeats).
 */
typedef struct {
    int32_t x_zp;
    int32_t x_multiplier;
    int32_t x_shift;
    int32_t y_zp;
    int32_t y_multiplier;
    int32_t y_shift;
    int32_t out_zp;
    int32_t cond_dims[4];
    int32_t x_dims[4];
    int32_t y_dims[4];
    int32_t out_dims[4];
} tc_where_params;

/* `out` may alias an input whose dims equal out_dims (in place), never a broadcast one. */
tc_status tc_prelu_s8(const tc_prelu_params *p, const int8_t *in, const int8_t *alpha, int8_t *out);
tc_status tc_minmax_s8(const tc_minmax_params *p, const int8_t *in1, const int8_t *in2, int8_t *out);
tc_status tc_compare_s8(const tc_compare_params *p, const int8_t *in1, const int8_t *in2, int8_t *out);
/* `out` may alias x or y where their dims equal out_dims. */
tc_status tc_where_s8(const tc_where_params *p, const int8_t *cond, const int8_t *x, const int8_t *y,
                      int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* TC_ELTWISE_EXT_H */
