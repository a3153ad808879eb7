/*
 * int8 ADD and SUB with broadcasting, bit-exact with TFLM's reference kernels
 * (reference/integer_ops/add.h AddFunc, reference/sub.h BroadcastQuantSubSlow).
 *
 * This file holds the entry points and the portable C99 reference, the specification its
 * variants match bit for bit: tc_add_s8_dsp.c (TC_HAVE_DSP: one multiply per rescaling) and
 * tc_add_s8_fast.c (TC_FAST_PORTABLE, tc_eltwise.h: the same in plain C for the cores without
 * the DSP extension; -DTC_PORTABLE_SPEC keeps this file's rows).
 */
#include "tc_arm_dsp.h"
#include "tc_eltwise.h"

static int add_params_valid(const tc_add_params *p) {
    return tc_broadcast_dims_valid(p->in1_dims, p->in2_dims, p->out_dims) &&
           tc_is_int8(p->in1_zp) && tc_is_int8(p->in2_zp) && tc_is_int8(p->out_zp) &&
           tc_act_range_valid(p->act_min, p->act_max) &&
           /* Every multiplier is below one: MBQM never grows a value, so sums fit in int32. */
           p->in1_multiplier >= 0 && p->in1_shift <= 0 && p->in1_shift >= -31 &&
           p->in2_multiplier >= 0 && p->in2_shift <= 0 && p->in2_shift >= -31 &&
           p->out_multiplier >= 0 && p->out_shift <= 0 && p->out_shift >= -31;
}

/* (x - zp) << 20 brought to the common scale; |x - zp| <= 255 keeps the shift below 2^28. */
static inline int32_t rescale_operand(int32_t x, int32_t zp, int32_t multiplier, int32_t shift) {
    return tc_mbqm((x - zp) * (INT32_C(1) << TC_ADD_LEFT_SHIFT), multiplier, shift);
}

static inline int32_t rescale_in1(const tc_add_params *p, int8_t x) {
    return rescale_operand(x, p->in1_zp, p->in1_multiplier, p->in1_shift);
}

/* sign2 = -1 turns the sum into TFLM SUB's difference of the rescaled operands. */
static inline int32_t rescale_in2(const tc_add_params *p, int8_t x, int32_t sign2) {
    return sign2 * rescale_operand(x, p->in2_zp, p->in2_multiplier, p->in2_shift);
}

static inline int8_t finish(const tc_add_params *p, int32_t raw_sum) {
    return tc_requant_s8(raw_sum, p->out_multiplier, p->out_shift, p->out_zp, p->act_min,
                         p->act_max);
}

/* ADD (sign2 = 1) or SUB (sign2 = -1): the row function's context. */
typedef struct {
    const tc_add_params *p;
    int32_t sign2;
} add_op;

/* One innermost row of n outputs; an input stride is 1, or 0 when that input is broadcast. */
static void add_row(const void *ctx, const int8_t *in1, int32_t stride1, const int8_t *in2,
                    int32_t stride2, int8_t *out, int32_t n) {
    const tc_add_params *p = ((const add_op *)ctx)->p;
    const int32_t sign2 = ((const add_op *)ctx)->sign2;
    int32_t i;
#if TC_HAVE_DSP
    if (stride1 == 1 && stride2 == 1 && tc_add_s8_dsp_applies(p)) {
        tc_add_s8_row_dsp(p, sign2, in1, stride1, in2, stride2, out, n);
        return;
    }
#endif
#if TC_FAST_PORTABLE
    if (stride1 == 1 && stride2 == 1) {
        tc_add_s8_row_fast(p, sign2, in1, in2, out, n);
        return;
    }
#endif
    if (stride1 == 0) {
        const int32_t a = rescale_in1(p, in1[0]);
        for (i = 0; i < n; ++i) out[i] = finish(p, a + rescale_in2(p, in2[i * stride2], sign2));
    } else if (stride2 == 0) {
        const int32_t b = rescale_in2(p, in2[0], sign2);
        for (i = 0; i < n; ++i) out[i] = finish(p, rescale_in1(p, in1[i]) + b);
    } else {
        for (i = 0; i < n; ++i) {
            out[i] = finish(p, rescale_in1(p, in1[i]) + rescale_in2(p, in2[i], sign2));
        }
    }
}

static tc_status add_or_sub(const tc_add_params *p, int32_t sign2, const int8_t *in1,
                            const int8_t *in2, int8_t *out) {
    add_op op;
    if (!add_params_valid(p)) return TC_ARG_ERROR;
    op.p = p;
    op.sign2 = sign2;
    tc_broadcast_rows(p->in1_dims, p->in2_dims, p->out_dims, in1, in2, out, add_row, &op);
    return TC_OK;
}

tc_status tc_add_s8(const tc_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out) {
    return add_or_sub(p, 1, in1, in2, out);
}

tc_status tc_sub_s8(const tc_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out) {
    return add_or_sub(p, -1, in1, in2, out);
}
