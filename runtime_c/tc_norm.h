/*
 * tinycc runtime: int8 layer / instance / group normalisation (ONNX LayerNormalization,
 * InstanceNormalization, GroupNormalization). TFLite Micro has no such kernel: the scheme is
 * tinycc's own, documented in tinycc/ops/norm.py and mirrored bit for bit by its norm_s8.
 *
 * The input is [outer][r1][mid][r2] int8 values (row-major); each (outer, mid) pair is one group
 * of count = r1 * r2 values, normalised with integer statistics and an integer square root:
 *   d = x - in_zp, S = sum d, Q = sum d^2, V = count * Q - S^2 + eps_term       (int64)
 *   k = (62 - bitlength(V)) / 2, sd = isqrt(V << 2k), recip = 2^60 / sd         (per group)
 *   e = 60 - 20 - k, z = ((count * d - S) * recip + 2^(e-1)) >> e               (Q20, int32)
 *   out = clamp(out_zp + bias[c] + MBQM(z, mult[c], shift[c]), -128, 127),  c = mid_i * r2 + r2_i
 * mult may be negative (a negative scale); eps_term = eps_hi * 2^31 + eps_lo <= 2^60;
 * count <= 2^20. In place (out == in) is allowed: a group's statistics are complete before any
 * of its values is written, and groups do not share elements.
 */
#ifndef TC_NORM_H
#define TC_NORM_H

#include "tc_common.h"
#include "tc_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TC_NORM_Z_FRAC_BITS 20
#define TC_NORM_MAX_COUNT (1L << 20)

typedef struct {
    int32_t outer;
    int32_t r1;
    int32_t mid;
    int32_t r2;
    int32_t in_zp;
    int32_t out_zp;
    int32_t eps_hi;
    int32_t eps_lo;
} tc_norm_params;

tc_status tc_norm_s8(const tc_norm_params *p, const int8_t *in, const int32_t *mult,
                     const int32_t *shift, const int32_t *bias, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* TC_NORM_H */
