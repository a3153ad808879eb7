/*
 * tinycc runtime: int8 max and average pooling.
 *
 * Arithmetic follows TFLite Micro's reference_integer_ops::MaxPool / AveragePool, plus an
 * optional requantizing average (global average pooling / ReduceMean with different input and
 * output quantization). Mirrored bit for bit by tinycc/golden/kernels_conv.py, whose parameter
 * dataclasses have the same field names in the same order as the structs below.
 *
 * Conventions
 *  - Activations NHWC with N = 1: input [in_h][in_w][channels], output [out_h][out_w][channels].
 *  - Window (oy, ox) covers input rows oy*stride_h - pad_top + [0, k_h) and columns
 *    ox*stride_w - pad_left + [0, k_w). Only top/left padding is given; bottom/right padding is
 *    implied by out_h/out_w.
 *  - Every window must contain at least one in-image tap (checked: pad_top < k_h,
 *    pad_left < k_w, and the last window starts inside the image), as ONNX and TFLite require.
 *  - -128 <= act_min <= act_max <= 127. The output must not overlap the input.
 *  - Kernels return TC_ARG_ERROR (and write nothing) after cheap checks; TC_OK otherwise.
 */
#ifndef TC_POOL_H
#define TC_POOL_H

#include "tc_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Parameters of tc_maxpool_s8. Input and output share scale and zero point. */
typedef struct {
    int32_t in_h, in_w, channels, out_h, out_w;
    int32_t k_h, k_w, stride_h, stride_w, pad_top, pad_left;
    int32_t act_min, act_max;
} tc_maxpool_params;

/**
 * Parameters of tc_avgpool_s8.
 *
 * use_requant == 0 (AVERAGE_POOL_2D, same scale and zero point in and out):
 *   acc = sum of the raw int8 values of the in-image taps; n = number of in-image taps.
 *   count_include_pad != 0 (ONNX count_include_pad=1): padded taps count as real 0, i.e. add
 *   in_zp each, and n = k_h * k_w. This includes any bottom/right window overhang, so the
 *   divisor only equals ONNX's when windows stay within the explicit pads (no ceil_mode
 *   overhang).
 *   out = clamp(acc > 0 ? (acc + n/2)/n : (acc - n/2)/n, act_min, act_max)   (C division)
 *   out_zp, mult and shift are ignored.
 *
 * use_requant != 0 (output scale/zero point differ from the input's):
 *   acc = sum over in-image taps of (x - in_zp)   (padded taps contribute real 0)
 *   out = tc_requant_s8(acc, mult, shift, out_zp, act_min, act_max)
 *   with (mult, shift) a multiplier for in_scale / (out_scale * n), where n is the divisor,
 *   k_h * k_w; for global average pooling the compiler derives it as TFLite MEAN does (see
 *   tc_reduce.h). Because n is folded into the multiplier it must be the same for every
 *   window: either count_include_pad != 0 (padding counts), or every window lies entirely
 *   inside the image (pad_top == pad_left == 0 and no bottom/right overhang; checked).
 *   Global average pooling: k_h = in_h, k_w = in_w, out_h = out_w = 1, no padding.
 *
 * Ranges: sizes, kernel and strides >= 1; pads >= 0; in_zp, out_zp in [-128, 127];
 * mult >= 0, shift in [-31, 30] (only checked with use_requant).
 */
typedef struct {
    int32_t in_h, in_w, channels, out_h, out_w;
    int32_t k_h, k_w, stride_h, stride_w, pad_top, pad_left;
    int32_t count_include_pad, use_requant;
    int32_t in_zp, out_zp, mult, shift;
    int32_t act_min, act_max;
} tc_avgpool_params;

/**
 * int8 max pooling: max of the in-image taps of each window, clamped to [act_min, act_max].
 * @param in   input  [in_h][in_w][channels]
 * @param out  output [out_h][out_w][channels]
 * @return TC_OK, or TC_ARG_ERROR
 */
tc_status tc_maxpool_s8(const tc_maxpool_params *p, const int8_t *in, int8_t *out);

/**
 * int8 average pooling (see tc_avgpool_params for the two arithmetic modes).
 * @param in   input  [in_h][in_w][channels]
 * @param out  output [out_h][out_w][channels]
 * @return TC_OK, or TC_ARG_ERROR
 */
tc_status tc_avgpool_s8(const tc_avgpool_params *p, const int8_t *in, int8_t *out);

/* Internal: the SIMD variant of tc_maxpool_s8 (tc_maxpool_s8_dsp.c; only with TC_HAVE_DSP,
 * tc_arm_dsp.h), called by the entry point after the argument checks for channels >= 4. */
void tc_maxpool_s8_dsp(const tc_maxpool_params *p, const int8_t *in, int8_t *out);

/* Internal: the SIMD variant of tc_avgpool_s8 (tc_avgpool_s8_dsp.c; only with TC_HAVE_DSP),
 * called by the entry point after the argument checks for channels >= 4. */
void tc_avgpool_s8_dsp(const tc_avgpool_params *p, const int8_t *in, int8_t *out);

/* Internal: window geometry checks shared by the pooling kernels. */
static inline int tc_pool_axis_ok(int32_t in, int32_t out, int32_t k, int32_t stride,
                                  int32_t pad) {
    if (in < 1 || out < 1 || k < 1 || stride < 1 || pad < 0) return 0;
    /* Window starts grow with the output index: first and last windows bound all others. */
    return pad < k && (out - 1) * stride - pad < in;
}

/* Internal: whether every window along one axis lies entirely inside the image. */
static inline int tc_pool_axis_inside(int32_t in, int32_t out, int32_t k, int32_t stride,
                                      int32_t pad) {
    return pad == 0 && (out - 1) * stride + k <= in;
}

/* Internal: the input rows (or columns) [*begin, *end) inside the image that the window of
 * output row (column) o covers; the window starts at o * stride - pad. */
static inline void tc_pool_window_range(int32_t o, int32_t stride, int32_t pad, int32_t k,
                                        int32_t in, int32_t *begin, int32_t *end) {
    const int32_t start = o * stride - pad;
    *begin = TC_MAX(start, 0);
    *end = TC_MIN(start + k, in);
}

static inline int tc_pool_act_ok(int32_t act_min, int32_t act_max) {
    return act_min >= -128 && act_max <= 127 && act_min <= act_max;
}

/* Internal: round acc / n half away from zero, as TFLM AveragePool does (C division truncates). */
static inline int32_t tc_pool_rounded_div(int32_t acc, int32_t n) {
    return acc > 0 ? (acc + n / 2) / n : (acc - n / 2) / n;
}

/* Internal: the output of one average-pooling window from the sum `acc` of its `taps` in-image
 * raw int8 values (tc_avgpool_params gives the two modes); tc_avgpool_s8 and its SIMD variant
 * share it, so they can only differ in how they sum. */
static inline int8_t tc_avgpool_out(const tc_avgpool_params *p, int32_t acc, int32_t taps) {
    if (p->use_requant) {
        return tc_requant_s8(acc - taps * p->in_zp, p->mult, p->shift, p->out_zp, p->act_min,
                             p->act_max);
    }
    if (p->count_include_pad) {
        const int32_t n = p->k_h * p->k_w;
        acc += (n - taps) * p->in_zp;
        return (int8_t)tc_clamp_i32(tc_pool_rounded_div(acc, n), p->act_min, p->act_max);
    }
    return (int8_t)tc_clamp_i32(tc_pool_rounded_div(acc, taps), p->act_min, p->act_max);
}

#ifdef __cplusplus
}
#endif

#endif /* TC_POOL_H */
