/*
 * tinycc runtime: int8 data-movement kernels (concatenation, requantization, pad, transpose,
 * strided slice, nearest-neighbour resize). Tensors are row-major and at most 4-D; the compiler
 * pads lower ranks with leading 1s. The golden model is tinycc/golden/kernels_eltwise.py, whose
 * dataclasses mirror the structs below field by field.
 *
 * Every parameter struct is filled offline by the compiler (const, in flash). Kernels only make
 * cheap consistency checks and return TC_ARG_ERROR when they fail, writing nothing.
 */
#ifndef TC_TENSOR_H
#define TC_TENSOR_H

#include "tc_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* QuantizeMultiplier(1.0): the (multiplier, shift) pair of a rescale between equal scales.
 * MBQM(x, TC_UNIT_MULTIPLIER, TC_UNIT_SHIFT) == x exactly, so kernels may skip it. */
#define TC_UNIT_MULTIPLIER (INT32_C(1) << 30)
#define TC_UNIT_SHIFT 1

/*
 * REQUANTIZE (TFLM QUANTIZE int8 -> int8, reference `requantize.h`), `size` elements:
 *   out = clamp(MBQM(x - in_zp, multiplier, shift) + out_zp, act_min, act_max)
 * multiplier/shift = QuantizeMultiplier(in_scale / out_scale). Equal scales give the unit pair
 * above and the kernel reduces to a zero-point shift; equal scales and zero points to a copy.
 */
typedef struct {
    int32_t size;
    int32_t in_zp;
    int32_t multiplier;
    int32_t shift;
    int32_t out_zp;
    int32_t act_min;
    int32_t act_max;
} tc_requantize_params;

/*
 * One input of a concatenation. Viewed as [outer][in_inner] (in_inner = this input's extent
 * along the axis times everything after it), the input is copied into columns
 * [out_offset, out_offset + in_inner) of the output viewed as [outer][out_inner].
 * The copy requantizes with REQUANTIZE semantics (clamped to int8) unless the unit pair and
 * equal zero points say it is a plain copy. Calling this once per input builds the output.
 */
typedef struct {
    int32_t outer;
    int32_t in_inner;
    int32_t out_inner;
    int32_t out_offset;
    int32_t in_zp;
    int32_t multiplier;
    int32_t shift;
    int32_t out_zp;
} tc_concat_part_params;

/*
 * Constant pad: out_dims[i] = in_dims[i] + pad_before[i] + (pads after); cells outside the
 * copied input get pad_value (the output zero point for zero padding). Pads are >= 0.
 */
typedef struct {
    int32_t in_dims[4];
    int32_t out_dims[4];
    int32_t pad_before[4];
    int32_t pad_value;
} tc_pad_params;

/* Transpose: output axis i is input axis perm[i] (perm is a permutation of 0..3). */
typedef struct {
    int32_t in_dims[4];
    int32_t perm[4];
} tc_transpose_params;

/* Strided slice: out[i0..i3] = in[begin[k] + i_k * stride[k]], begin >= 0, stride >= 1. */
typedef struct {
    int32_t in_dims[4];
    int32_t begin[4];
    int32_t stride[4];
    int32_t out_dims[4];
} tc_slice_params;

/*
 * Nearest-neighbour resize of an NHWC tensor. The compiler computes the source row of every
 * output row (y_index, out_h entries in [0, in_h)) and the source column of every output
 * column (x_index, out_w entries in [0, in_w)) from the ONNX coordinate transformation and
 * rounding modes.
 */
typedef struct {
    int32_t batch;
    int32_t in_h;
    int32_t in_w;
    int32_t channels;
    int32_t out_h;
    int32_t out_w;
} tc_resize_nearest_params;

/* In place (out == in) is allowed. */
tc_status tc_requantize_s8(const tc_requantize_params *p, const int8_t *in, int8_t *out);
/* `out` is the whole concatenated output; only this input's columns are written. */
tc_status tc_concat_s8_part(const tc_concat_part_params *p, const int8_t *in, int8_t *out);
tc_status tc_pad_s8(const tc_pad_params *p, const int8_t *in, int8_t *out);
tc_status tc_transpose_s8(const tc_transpose_params *p, const int8_t *in, int8_t *out);
tc_status tc_slice_s8(const tc_slice_params *p, const int8_t *in, int8_t *out);
tc_status tc_resize_nearest_s8(const tc_resize_nearest_params *p, const int32_t *y_index,
                               const int32_t *x_index, const int8_t *in, int8_t *out);

/* ---- helpers shared by the kernels (not part of the public API) ---- */

static inline int tc_is_int8(int32_t v) { return v >= -128 && v <= 127; }

/* A fused-activation clamp range inside int8. */
static inline int tc_act_range_valid(int32_t act_min, int32_t act_max) {
    return act_min >= -128 && act_max <= 127 && act_min <= act_max;
}

/* A (multiplier, shift) pair from QuantizeMultiplier that tc_mbqm accepts. */
static inline int tc_requant_pair_valid(int32_t multiplier, int32_t shift) {
    return multiplier >= 0 && shift >= -31 && shift <= 30;
}

/* Every dimension >= 1. */
static inline int tc_dims_valid(const int32_t dims[4]) {
    return dims[0] >= 1 && dims[1] >= 1 && dims[2] >= 1 && dims[3] >= 1;
}

/* Element strides of a dense row-major 4-D tensor. */
static inline void tc_dense_strides(const int32_t dims[4], int32_t strides[4]) {
    strides[3] = 1;
    strides[2] = dims[3];
    strides[1] = dims[3] * dims[2];
    strides[0] = dims[3] * dims[2] * dims[1];
}

/* The REQUANTIZE element function. */
static inline int8_t tc_requantize_one(int32_t x, int32_t in_zp, int32_t multiplier,
                                       int32_t shift, int32_t out_zp, int32_t act_min,
                                       int32_t act_max) {
    return tc_requant_s8(x - in_zp, multiplier, shift, out_zp, act_min, act_max);
}

/* True when a rescale changes only the zero point (TFLM's `same_scale` test). */
static inline int tc_is_unit_rescale(int32_t multiplier, int32_t shift) {
    return multiplier == TC_UNIT_MULTIPLIER && shift == TC_UNIT_SHIFT;
}

#ifdef __cplusplus
}
#endif

#endif /* TC_TENSOR_H */
