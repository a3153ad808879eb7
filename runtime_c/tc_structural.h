/*
 * tinycc runtime: int8 structural kernels of issue 14 (bilinear resize, ...). Mirrored bit for
 * bit by tinycc/ops/resize.py (and the op modules named below), whose params dataclasses have the
 * fields of the structs below in the same order.
 */
#ifndef TC_STRUCTURAL_H
#define TC_STRUCTURAL_H

#include "tc_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * RESIZE_BILINEAR (TFLM reference_ops::ResizeBilinearInteger) of an NHWC tensor. The compiler
 * computes, per output row and column, (lower index, upper index, Q10 fraction towards the
 * upper) from the ONNX coordinate_transformation_mode (tinycc/ops/resize.py: bilinear_table);
 * fractions are in [0, 1024]. Per output value:
 *   acc = (v00 (1024 - fx) + v01 fx) (1024 - fy) + (v10 (1024 - fx) + v11 fx) fy     (Q20)
 *   out = (acc + (acc > 0 ? 2^19 : -2^19)) / 2^20                 (C division, TFLM's rounding)
 * on the raw int8 values: the output has the input's scale and zero point.
 */
typedef struct {
    int32_t batch;
    int32_t in_h;
    int32_t in_w;
    int32_t channels;
    int32_t out_h;
    int32_t out_w;
} tc_resize_bilinear_params;

tc_status tc_resize_bilinear_s8(const tc_resize_bilinear_params *p, const int32_t *y_table,
                                const int32_t *x_table, const int8_t *in, int8_t *out);

/*
 * GATHER along one axis with constant indices (tinycc/ops/slicing.py): the input viewed as
 * [outer][axis_len][inner], out[o][j][i] = in[o][index[j]][i] for j < count; indices are
 * normalised offline to [0, axis_len).
 */
typedef struct {
    int32_t outer;
    int32_t axis_len;
    int32_t inner;
    int32_t count;
} tc_gather_params;

tc_status tc_gather_s8(const tc_gather_params *p, const int32_t *index, const int8_t *in, int8_t *out);

/*
 * TILE / BROADCAST_TO (ONNX Tile and Expand; tinycc/ops/slicing.py): out[i0][i1][i2][i3] =
 * in[i0 % in_dims[0]]...[i3 % in_dims[3]]; every out_dims[k] is a multiple of in_dims[k].
 */
typedef struct {
    int32_t in_dims[4];
    int32_t out_dims[4];
} tc_tile_params;

tc_status tc_tile_s8(const tc_tile_params *p, const int8_t *in, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* TC_STRUCTURAL_H */
