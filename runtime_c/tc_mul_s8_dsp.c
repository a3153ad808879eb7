/*
 * tinycc runtime: the SIMD-extension variant of tc_mul_s8's rows (ARMv7E-M DSP extension, or
 * its host emulation), bit-exact with the portable reference in tc_mul_s8.c, whose row function
 * calls it when the output shift is in [-23, -2] (tc_mul_s8_dsp_applies): the doubled product
 * (x1 - zp1) * (2 * x2 - 2 * zp2) is requantized by tc_dsp_rq2 (SMMLAR with the zero point and
 * rounding in its constant, the sign correction, a shift, SSAT) instead of TFLM's two roundings.
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
    /* The doubled product (x1 - zp1) * (2 * x2 - 2 * zp2) costs what the product does (the
     * doubling rides in the subtraction's shifted operand) and is what tc_dsp_rq2 requantizes
     * with one SMMLAR: |acc| <= 255 * 255, far below its 2^30. */
    const int32_t zp1 = p->in1_zp, zp2x2 = 2 * p->in2_zp, mult = p->out_multiplier;
    const int32_t e = -p->out_shift, k = tc_dsp_rq2_k(p->out_shift, p->out_zp);
    const int32_t act_min = p->act_min, act_max = p->act_max;
    int32_t i;
    if (act_min == -128 && act_max == 127) {
        for (i = 0; i < n; ++i, in1 += stride1, in2 += stride2) {
            const int32_t acc2 = (in1[0] - zp1) * (2 * in2[0] - zp2x2);
            out[i] = (int8_t)tc_ssat8((tc_smmlar(acc2, mult, k) - (acc2 < 0 ? 1 : 0)) >> e);
        }
        return;
    }
    for (i = 0; i < n; ++i, in1 += stride1, in2 += stride2) {
        const int32_t acc2 = (in1[0] - zp1) * (2 * in2[0] - zp2x2);
        int32_t y = tc_ssat8((tc_smmlar(acc2, mult, k) - (acc2 < 0 ? 1 : 0)) >> e);
        y = TC_MAX(y, act_min);
        y = TC_MIN(y, act_max);
        out[i] = (int8_t)y;
    }
}

#endif /* TC_HAVE_DSP */
