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

#ifdef __cplusplus
}
#endif

#endif /* TC_MATMUL_H */
