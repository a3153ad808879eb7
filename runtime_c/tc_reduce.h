/*
 * tinycc runtime: int8 mean or max over any set of axes (ONNX ReduceMean / ReduceMax,
 * TFLite MEAN / REDUCE_MAX). Mirrored bit for bit by tinycc/golden/kernels_reduce.py
 * (ReduceParams, reduce_s8), whose dataclass has the fields of tc_reduce_params in order.
 *
 * The input is a row-major tensor of `rank` dims; reduced[i] != 0 marks a reduced axis. The
 * compiler drops size-1 axes and merges neighbouring axes that are both reduced or both kept,
 * so rank <= TC_REDUCE_MAX_DIMS covers any ONNX tensor. The output holds the kept axes in
 * row-major order (keepdims only changes the shape, not the bytes).
 *
 * TC_REDUCE_MEAN (TFLM reference_ops::QuantizedMeanOrSum):
 *   out = tc_requant_s8(sum(x) - in_zp * count, mult, shift, out_zp, -128, 127)
 *   where count is the number of reduced elements per output and (mult, shift) is what TFLM
 *   computes: QuantizeMultiplier(s_in / s_out), then with k = min(floor(log2 count), 32,
 *   31 + shift): mult = (mult << k) / count (int64), shift -= k. count <= 2^23, so the int32 sum
 *   and its zero-point correction cannot overflow.
 * TC_REDUCE_MAX (TFLM REDUCE_MAX on int8): the largest raw value; input and output share scale
 *   and zero point, so mult, shift, in_zp and out_zp are not used.
 *
 * The output must not overlap the input. TC_ARG_ERROR (nothing written) after cheap checks.
 */
#ifndef TC_REDUCE_H
#define TC_REDUCE_H

#include "tc_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TC_REDUCE_MAX_DIMS 8
#define TC_REDUCE_MAX_COUNT (INT32_C(1) << 23)

enum { TC_REDUCE_MEAN = 0, TC_REDUCE_MAX = 1 };

typedef struct {
    int32_t op;                          /* TC_REDUCE_MEAN or TC_REDUCE_MAX */
    int32_t rank;                        /* 1..TC_REDUCE_MAX_DIMS */
    int32_t dims[TC_REDUCE_MAX_DIMS];    /* input dims, each >= 1 (entries past rank unused) */
    int32_t reduced[TC_REDUCE_MAX_DIMS]; /* 1: axis reduced, 0: kept */
    int32_t count;                       /* product of the reduced dims, 1..TC_REDUCE_MAX_COUNT */
    int32_t in_zp, out_zp;               /* [-128, 127] */
    int32_t mult, shift;                 /* mean: mult >= 0, shift in [-31, 30] */
} tc_reduce_params;

/**
 * @param in   input, the product of dims[0..rank) values
 * @param out  output, the product of the kept dims values
 * @return TC_OK, or TC_ARG_ERROR
 */
tc_status tc_reduce_s8(const tc_reduce_params *p, const int8_t *in, int8_t *out);

/* Shared by tc_reduce_s8.c and tc_reduce_ext_s8.c (every reduction walks the tensor the same way). */

/* The checks every reduction makes: rank, dims >= 1, reduced[] flags 0/1, the element count fits
 * int32, and count == the product of the reduced dims <= TC_REDUCE_MAX_COUNT. */
static inline int tc_reduce_shape_ok(const tc_reduce_params *p) {
    int32_t i;
    int64_t total = 1, count = 1;
    if (p->rank < 1 || p->rank > TC_REDUCE_MAX_DIMS) return 0;
    for (i = 0; i < p->rank; ++i) {
        if (p->dims[i] < 1 || (p->reduced[i] != 0 && p->reduced[i] != 1)) return 0;
        total *= p->dims[i];
        if (total > INT32_MAX) return 0;
        if (p->reduced[i]) count *= p->dims[i];
    }
    return count == p->count && count <= TC_REDUCE_MAX_COUNT;
}

/* Row-major strides of the input: stride[rank - 1] = 1. */
static inline void tc_reduce_strides(const tc_reduce_params *p, int32_t *stride) {
    int32_t i;
    stride[p->rank - 1] = 1;
    for (i = p->rank - 1; i > 0; --i) stride[i - 1] = stride[i] * p->dims[i];
}

/* Advance the odometer idx[] over the axes with reduced[i] == want (last axis fastest); the flat
 * input offset moves with it. Returns 0 once every combination has been visited (idx[] is then
 * all zeros again and the offset back where it started). Walking the kept axes (want 0) in the
 * outer loop and the reduced axes (want 1) in the inner one visits the outputs in row-major order. */
static inline int tc_reduce_next(const tc_reduce_params *p, const int32_t *stride, int32_t want,
                                 int32_t *idx, int32_t *offset) {
    int32_t i;
    for (i = p->rank - 1; i >= 0; --i) {
        if (p->reduced[i] != want) continue;
        if (++idx[i] < p->dims[i]) {
            *offset += stride[i];
            return 1;
        }
        *offset -= (idx[i] - 1) * stride[i];
        idx[i] = 0;
    }
    return 0;
}

#ifdef __cplusplus
}
#endif

#endif /* TC_REDUCE_H */
