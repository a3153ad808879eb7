/*
 * int8 ADD and SUB with the operands' rescaling looked up in tables built by the compiler
 * (tinycc/ops/eltwise.py add_tables), bit-exact with tc_add_s8 / tc_sub_s8 and so with TFLM's
 * reference kernels.
 *
 * TFLM rescales each operand on its own before the sum: a = MBQM((x1 - in1_zp) << 20, ...) is
 * a function of x1 alone, 256 values, and likewise b of x2. The compiler stores them (1 KB per
 * operand, in flash) for the layers large enough to pay for it, and per element the kernel is
 * two lookups, an add and the output's requantization instead of three MBQM:
 *   tables[128 + x1]       = 2 * a(x1)
 *   tables[256 + 128 + x2] = 2 * b(x2) for ADD, -2 * b(x2) for SUB,
 * doubled so that the sum is the doubled accumulator the DSP variant requantizes with one
 * SMMLAR (tc_dsp_rq2); |a|, |b| < 2^28, so the doubled sum stays below 2^30.
 *
 * This file holds the entry point and the portable C99 reference, the specification its
 * variants match bit for bit: tc_add_s8_dsp.c's tc_add_s8_table_row_dsp (TC_HAVE_DSP) and
 * tc_add_s8_fast.c's tc_add_s8_table_row_fast (TC_FAST_PORTABLE: cores without the DSP
 * extension; -DTC_PORTABLE_SPEC keeps this file's rows).
 */
#include "tc_arm_dsp.h"
#include "tc_eltwise.h"

static int add_table_params_valid(const tc_add_params *p) {
    return tc_broadcast_dims_valid(p->in1_dims, p->in2_dims, p->out_dims) &&
           tc_is_int8(p->out_zp) && tc_act_range_valid(p->act_min, p->act_max) &&
           p->out_multiplier >= 0 && p->out_shift <= 0 && p->out_shift >= -31;
}

/* The row function's context: the parameters and the two tables, indexed by x + 128. */
typedef struct {
    const tc_add_params *p;
    const int32_t *t1, *t2;
} add_table_op;

/* One innermost row of n outputs; an input stride is 1, or 0 when that input is broadcast. */
static void add_table_row(const void *ctx, const int8_t *in1, int32_t stride1,
                          const int8_t *in2, int32_t stride2, int8_t *out, int32_t n) {
    const add_table_op *op = (const add_table_op *)ctx;
    const tc_add_params *p = op->p;
    int32_t i;
#if TC_HAVE_DSP
    if (stride1 == 1 && stride2 == 1 && tc_add_s8_table_dsp_applies(p)) {
        tc_add_s8_table_row_dsp(p, op->t1, op->t2, in1, in2, out, n);
        return;
    }
#endif
#if TC_FAST_PORTABLE
    if (stride1 == 1 && stride2 == 1 && p->out_shift < 0) {
        tc_add_s8_table_row_fast(p, op->t1, op->t2, in1, in2, out, n);
        return;
    }
#endif
    for (i = 0; i < n; ++i) {
        /* both table entries are even: the halved sum is exact */
        const int32_t sum = (op->t1[in1[i * stride1]] + op->t2[in2[i * stride2]]) / 2;
        out[i] = tc_requant_s8(sum, p->out_multiplier, p->out_shift, p->out_zp, p->act_min,
                               p->act_max);
    }
}

tc_status tc_add_s8_table(const tc_add_params *p, const int32_t *tables, const int8_t *in1,
                          const int8_t *in2, int8_t *out) {
    add_table_op op;
    if (!add_table_params_valid(p)) return TC_ARG_ERROR;
    op.p = p;
    op.t1 = tables + 128;
    op.t2 = tables + 256 + 128;
    tc_broadcast_rows(p->in1_dims, p->in2_dims, p->out_dims, in1, in2, out, add_table_row, &op);
    return TC_OK;
}
