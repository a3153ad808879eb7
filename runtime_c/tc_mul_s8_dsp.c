/*
 * tinycc runtime: the SIMD-extension variant of tc_mul_s8's rows (ARMv7E-M DSP extension, or
 * its host emulation), bit-exact with the portable reference in tc_mul_s8.c, whose row function
 * calls it when the output shift is in [-23, -2] (tc_mul_s8_dsp_applies): the product
 * (x1 - zp1) * (x2 - zp2) is requantized by tc_dsp_rq (one SMLAL on a rounding constant built
 * from the sign, a shift, SSAT with the zero point folded in) instead of TFLM's two roundings.
 */
#include "tc_arm_dsp.h"
#include "tc_dot_s8_dsp.h"
#include "tc_eltwise.h"

#if TC_HAVE_DSP

int tc_mul_s8_dsp_applies(const tc_mul_params *p) {
    return tc_dsp_rq_applies(p->out_shift);
}

void tc_mul_s8_row_dsp(const tc_mul_params *p, const int8_t *in1, int32_t stride1,
                       const int8_t *in2, int32_t stride2, int8_t *out, int32_t n) {
    const int32_t zp1 = p->in1_zp, zp2 = p->in2_zp, mult = p->out_multiplier;
    const int32_t e1 = -p->out_shift - 1, khi = tc_dsp_rq_khi(p->out_shift, p->out_zp);
    const int32_t act_min = p->act_min, act_max = p->act_max;
    int32_t i;
    if (act_min == -128 && act_max == 127) {
        for (i = 0; i < n; ++i, in1 += stride1, in2 += stride2) {
            out[i] = (int8_t)tc_dsp_rq((in1[0] - zp1) * (in2[0] - zp2), mult, khi, e1);
        }
        return;
    }
    for (i = 0; i < n; ++i, in1 += stride1, in2 += stride2) {
        const int32_t y = tc_dsp_rq((in1[0] - zp1) * (in2[0] - zp2), mult, khi, e1);
        out[i] = (int8_t)TC_MIN(TC_MAX(y, act_min), act_max);
    }
}

#endif /* TC_HAVE_DSP */
