/*
 * tinycc runtime: int8 matrix kernels whose both operands are activations, and the transposed
 * convolution. Mirrored bit for bit by tinycc/ops/matmul.py and tinycc/ops/conv_transpose.py,
 * whose params dataclasses have the fields of the structs below in the same order.
 */
#ifndef TC_MATMUL_H
#define TC_MATMUL_H

#include "tc_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * BATCH_MATMUL (TFLM reference_ops::BatchMatMul, int8): out = lhs @ rhs over up to three batch
 * axes with broadcasting. lhs is [lhs_batch...][rows][depth], rhs [rhs_batch...][depth][cols],
 * out [max(lhs_batch, rhs_batch)...][rows][cols]; a batch extent of 1 on one side is broadcast.
 *   acc = sum_k (lhs - lhs_zp) * (rhs - rhs_zp)                 (int32)
 *   out = clamp(MBQM(acc, multiplier, shift) + out_zp, act_min, act_max)
 * multiplier/shift = QuantizeMultiplier(s_lhs * s_rhs / s_out). depth <= 33025 keeps the int32
 * accumulator exact (255 * 255 * 33025 < 2^31).
 */
typedef struct {
    int32_t lhs_batch[3];
    int32_t rhs_batch[3];
    int32_t rows;
    int32_t depth;
    int32_t cols;
    int32_t lhs_zp;
    int32_t rhs_zp;
    int32_t out_zp;
    int32_t multiplier;
    int32_t shift;
    int32_t act_min;
    int32_t act_max;
} tc_batch_matmul_params;

#define TC_BATCH_MATMUL_MAX_DEPTH 33025

tc_status tc_batch_matmul_s8(const tc_batch_matmul_params *p, const int8_t *lhs, const int8_t *rhs,
                             int8_t *out);

/*
 * TRANSPOSE_CONV (TFLM reference_integer_ops::TransposeConv, per channel), generalised to
 * dilations and groups. Input [in_h][in_w][in_c], weights OHWI [out_c][k_h][k_w][in_c/groups],
 * output [out_h][out_w][out_c]. Input pixel (y, x) tap (ky, kx) lands on output pixel
 * (y*stride_h + ky*dil_h - pad_top, x*stride_w + kx*dil_w - pad_left) when that is inside:
 *   acc[o] = sum of w * (x - in_zp) over what lands on o        (int32 scratch, zeroed first)
 *   out    = tc_requant_s8(acc + bias[oc], mult[oc], shift[oc], out_zp, act_min, act_max)
 * The scratch holds out_h * out_w * out_c int32 (tc_conv_transpose_s8_scratch_size bytes, on a
 * 4-byte boundary). out_h/out_w are the caller's choice (ONNX output_padding and output_shape
 * only change them); pad_top, pad_left >= 0.
 */
typedef struct {
    int32_t in_h, in_w, in_c, out_h, out_w, out_c;
    int32_t k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, groups;
    int32_t in_zp, out_zp, act_min, act_max;
} tc_conv_transpose_params;

int32_t tc_conv_transpose_s8_scratch_size(const tc_conv_transpose_params *p);
tc_status tc_conv_transpose_s8(const tc_conv_transpose_params *p, const int8_t *in, const int8_t *w,
                               const int32_t *bias, const int32_t *mult, const int32_t *shift, void *scratch,
                               int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* TC_MATMUL_H */
