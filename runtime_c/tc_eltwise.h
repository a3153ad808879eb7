/*
 * tinycc runtime: element-wise int8 kernels (ADD, SUB, MUL with broadcasting, table lookup,
 * softmax). Arithmetic is bit-exact with the TFLite Micro reference kernels; the golden model
 * is tinycc/golden/kernels_eltwise.py, whose dataclasses mirror the structs below field by field.
 *
 * Every parameter struct is filled offline by the compiler (const, in flash). Kernels only make
 * cheap consistency checks and return TC_ARG_ERROR when they fail, writing nothing.
 */
#ifndef TC_ELTWISE_H
#define TC_ELTWISE_H

#include "tc_arm_dsp.h"
#include "tc_common.h"
#include "tc_tensor.h"

/* TC_FAST_PORTABLE: the fast portable variants (tc_*_fast.c), as tc_conv.h defines it: taken on
 * cores without the DSP extension unless TC_PORTABLE_SPEC keeps the readable reference. */
#ifndef TC_FAST_PORTABLE
#if !TC_HAVE_DSP && !defined(TC_PORTABLE_SPEC)
#define TC_FAST_PORTABLE 1
#else
#define TC_FAST_PORTABLE 0
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* TFLM shifts int8 ADD/SUB operands left by 20 bits before rescaling them to a common scale. */
#define TC_ADD_LEFT_SHIFT 20

/*
 * Broadcast shapes of a binary element-wise op: 4-D, row-major, numpy broadcasting. Each input
 * dimension equals the output dimension or is 1. All dimensions are >= 1. The compiler pads
 * lower ranks with leading 1s and may merge adjacent dimensions that broadcast alike, e.g. a
 * squeeze-excite scale [1,H,W,C] * [1,1,1,C] becomes [1,1,H*W,C] * [1,1,1,C].
 */

/*
 * ADD and SUB (TFLM `add_common.cc` / `sub_common.cc`, reference `integer_ops/add.h`, `sub.h`):
 *   a   = MBQM((x1 - in1_zp) << 20, in1_multiplier, in1_shift)
 *   b   = MBQM((x2 - in2_zp) << 20, in2_multiplier, in2_shift)
 *   out = clamp(MBQM(a +/- b, out_multiplier, out_shift) + out_zp, act_min, act_max)
 * All shifts are <= 0 (every multiplier is below one). Zero points in [-128, 127].
 */
typedef struct {
    int32_t in1_zp;
    int32_t in1_multiplier;
    int32_t in1_shift;
    int32_t in2_zp;
    int32_t in2_multiplier;
    int32_t in2_shift;
    int32_t out_multiplier;
    int32_t out_shift;
    int32_t out_zp;
    int32_t act_min;
    int32_t act_max;
    int32_t in1_dims[4];
    int32_t in2_dims[4];
    int32_t out_dims[4];
} tc_add_params;

/*
 * MUL (TFLM `mul_common.cc`, reference `integer_ops/mul.h`):
 *   out = clamp(MBQM((x1 - in1_zp) * (x2 - in2_zp), out_multiplier, out_shift) + out_zp,
 *               act_min, act_max)
 */
/* Its fields repeat tc_add_params' without the per-input rescaling: data, not logic. */
typedef struct {
    int32_t in1_zp;
    int32_t in2_zp;
    int32_t out_multiplier;
    int32_t out_shift;
    int32_t out_zp;
    int32_t act_min;
    int32_t act_max;
    int32_t in1_dims[4];
    int32_t in2_dims[4];
    int32_t out_dims[4];
} tc_mul_params;

/* Table lookup: out[i] = table[in[i] + 128] for `size` elements. */
typedef struct {
    int32_t size;
} tc_lut_params;

/*
 * Softmax over the last axis: `outer` rows of `depth` elements. TFLM reference int8 softmax
 * (`reference/softmax.h`, gemmlowp fixed point). Output quantization is fixed: (1/256, -128).
 * input_multiplier / input_left_shift / diff_min come from PreprocessSoftmaxScaling and
 * CalculateInputRadius with 5 integer bits; left shift in [0, 31], diff_min <= 0.
 */
typedef struct {
    int32_t input_multiplier;
    int32_t input_left_shift;
    int32_t diff_min;
    int32_t outer;
    int32_t depth;
} tc_softmax_params;

/*
 * Binary kernels. `out` holds out_dims elements; it may alias an input whose dims equal
 * out_dims (in-place), never a broadcast one.
 */
tc_status tc_add_s8(const tc_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out);
/* out = in1 - in2, same parameters as ADD (TFLM SUB subtracts the rescaled operands). */
tc_status tc_sub_s8(const tc_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out);
tc_status tc_mul_s8(const tc_mul_params *p, const int8_t *in1, const int8_t *in2, int8_t *out);

/*
 * ADD or SUB with the operands' rescaling precomputed (tc_add_s8_table.c): `tables` holds 512
 * int32, the doubled rescaled operands indexed by the input + 128, in1's then in2's (negated for
 * SUB), built by the compiler (tinycc/ops/eltwise.py add_tables). Bit-exact with tc_add_s8 /
 * tc_sub_s8 with the same parameters; the operands' multipliers, shifts and zero points are not
 * read. In place as tc_add_s8.
 */
tc_status tc_add_s8_table(const tc_add_params *p, const int32_t *tables, const int8_t *in1,
                          const int8_t *in2, int8_t *out);

/* `table` has 256 entries, indexed by input + 128. In place (out == in) is allowed. */
tc_status tc_lut_s8(const tc_lut_params *p, const int8_t *table, const int8_t *in, int8_t *out);

/* In place (out == in) is allowed. */
tc_status tc_softmax_s8(const tc_softmax_params *p, const int8_t *in, int8_t *out);

/* Internal: the SIMD variants of the rows of ADD/SUB and MUL (tc_add_s8_dsp.c,
 * tc_mul_s8_dsp.c; only with TC_HAVE_DSP, tc_arm_dsp.h), called by the portable row functions
 * for the layers whose shifts they take (a stride is 1, or 0 for a broadcast input). */
int tc_add_s8_dsp_applies(const tc_add_params *p);
void tc_add_s8_row_dsp(const tc_add_params *p, int32_t sign2, const int8_t *in1,
                       int32_t stride1, const int8_t *in2, int32_t stride2, int8_t *out,
                       int32_t n);
/* Internal: the fast portable variant of the rows of ADD/SUB (tc_add_s8_fast.c; only with
 * TC_FAST_PORTABLE), called by the portable row function for rows of contiguous inputs. */
void tc_add_s8_row_fast(const tc_add_params *p, int32_t sign2, const int8_t *in1,
                        const int8_t *in2, int8_t *out, int32_t n);
/* Internal: the SIMD variant of tc_add_s8_table's rows (tc_add_s8_dsp.c), for contiguous
 * inputs; t1, t2: the tables at their entry for input 0. */
int tc_add_s8_table_dsp_applies(const tc_add_params *p);
void tc_add_s8_table_row_dsp(const tc_add_params *p, const int32_t *t1, const int32_t *t2,
                             const int8_t *in1, const int8_t *in2, int8_t *out, int32_t n);
/* Internal: the fast portable variant of tc_add_s8_table's rows (tc_add_s8_fast.c; only with
 * TC_FAST_PORTABLE), for contiguous inputs and output shifts below 0. */
void tc_add_s8_table_row_fast(const tc_add_params *p, const int32_t *t1, const int32_t *t2,
                              const int8_t *in1, const int8_t *in2, int8_t *out, int32_t n);
int tc_mul_s8_dsp_applies(const tc_mul_params *p);
void tc_mul_s8_row_dsp(const tc_mul_params *p, const int8_t *in1, int32_t stride1,
                       const int8_t *in2, int32_t stride2, int8_t *out, int32_t n);

/* ---- helpers shared by the broadcasting kernels (not part of the public API) ---- */

/* True when every input dimension is 1 or the output's, and all dimensions are >= 1. */
static inline int tc_broadcast_dims_valid(const int32_t in1_dims[4], const int32_t in2_dims[4],
                                          const int32_t out_dims[4]) {
    int i;
    for (i = 0; i < 4; ++i) {
        if (out_dims[i] < 1 || in1_dims[i] < 1 || in2_dims[i] < 1) return 0;
        if (in1_dims[i] != 1 && in1_dims[i] != out_dims[i]) return 0;
        if (in2_dims[i] != 1 && in2_dims[i] != out_dims[i]) return 0;
    }
    return 1;
}

/* Element strides of a row-major 4-D tensor, 0 along broadcast (size-1) dimensions. */
static inline void tc_broadcast_strides(const int32_t dims[4], int32_t strides[4]) {
    int32_t stride = 1;
    int i;
    for (i = 3; i >= 0; --i) {
        strides[i] = dims[i] == 1 ? 0 : stride;
        stride *= dims[i];
    }
}

/* One innermost row of a broadcast: n outputs from a and b, whose strides are 1, or 0 where
 * that input is broadcast along the row; ctx: the kernel's parameters. */
typedef void (*tc_broadcast_row_fn)(const void *ctx, const int8_t *a, int32_t a_stride,
                                    const int8_t *b, int32_t b_stride, int8_t *out, int32_t n);

/* The loop of every broadcasting binary kernel (ADD, SUB, MUL): `row` over the innermost rows of
 * out_dims in order, in1 and in2 broadcast to them (tc_broadcast_strides). Always inlined, with a
 * constant `row`: the row function is called (or inlined) directly, as in a loop written out. */
static inline TC_ALWAYS_INLINE void tc_broadcast_rows(const int32_t in1_dims[4],
                                                      const int32_t in2_dims[4],
                                                      const int32_t out_dims[4],
                                                      const int8_t *in1, const int8_t *in2,
                                                      int8_t *out, tc_broadcast_row_fn row,
                                                      const void *ctx) {
    int32_t s1[4], s2[4];
    int32_t i0, i1, i2;
    tc_broadcast_strides(in1_dims, s1);
    tc_broadcast_strides(in2_dims, s2);
    for (i0 = 0; i0 < out_dims[0]; ++i0) {
        for (i1 = 0; i1 < out_dims[1]; ++i1) {
            for (i2 = 0; i2 < out_dims[2]; ++i2) {
                const int8_t *a = in1 + i0 * s1[0] + i1 * s1[1] + i2 * s1[2];
                const int8_t *b = in2 + i0 * s2[0] + i1 * s2[1] + i2 * s2[2];
                row(ctx, a, s1[3], b, s2[3], out, out_dims[3]);
                out += out_dims[3];
            }
        }
    }
}

#ifdef __cplusplus
}
#endif

#endif /* TC_ELTWISE_H */
