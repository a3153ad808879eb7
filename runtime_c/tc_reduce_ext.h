/*
 * tinycc runtime: more int8 reductions over any set of axes, with tc_reduce_params (tc_reduce.h)
 * and the same axis folding: ONNX ReduceMin (TFLite REDUCE_MIN on int8: the smallest raw value,
 * input and output share their quantization) and ArgMax / ArgMin over one axis (TFLite
 * ARG_MAX / ARG_MIN: the first index of the largest / smallest raw value). Mirrored by
 * tinycc/ops/reduce.py reduce_ext_s8.
 *
 * The index of ArgMax / ArgMin is written as an int8 value: the output tensor has scale 1 and
 * zero point 0, so its int8 code is the index itself (and so is its dequantized value); axes
 * longer than 128 are refused by the compiler (count <= 128 here).
 */
#ifndef TC_REDUCE_EXT_H
#define TC_REDUCE_EXT_H

#include "tc_reduce.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { TC_REDUCE_MIN = 2, TC_REDUCE_ARGMAX = 3, TC_REDUCE_ARGMIN = 4 };
#define TC_REDUCE_ARG_MAX_COUNT 128

/* op is TC_REDUCE_MIN, TC_REDUCE_ARGMAX or TC_REDUCE_ARGMIN; zero points, mult and shift unused.
 * The output must not overlap the input. */
tc_status tc_reduce_ext_s8(const tc_reduce_params *p, const int8_t *in, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* TC_REDUCE_EXT_H */
