/*
 * int8 -> int8 requantization, bit-exact with TFLM's QUANTIZE (int8 in, int8 out), i.e.
 * reference_ops::Requantize, plus an optional fused-activation clamp.
 */
#include "tc_tensor.h"

tc_status tc_requantize_s8(const tc_requantize_params *p, const int8_t *in, int8_t *out) {
    int32_t i;
    if (p->size < 0 || !tc_is_int8(p->in_zp) || !tc_is_int8(p->out_zp) ||
        !tc_act_range_valid(p->act_min, p->act_max) ||
        !tc_requant_pair_valid(p->multiplier, p->shift)) {
        return TC_ARG_ERROR;
    }
    if (tc_is_unit_rescale(p->multiplier, p->shift)) {
        /* Equal scales: MBQM is the identity, only the zero point moves. */
        const int32_t zp_shift = p->out_zp - p->in_zp;
        for (i = 0; i < p->size; ++i) {
            out[i] = (int8_t)tc_clamp_i32((int32_t)in[i] + zp_shift, p->act_min, p->act_max);
        }
        return TC_OK;
    }
    for (i = 0; i < p->size; ++i) {
        out[i] = tc_requantize_one(in[i], p->in_zp, p->multiplier, p->shift, p->out_zp,
                                   p->act_min, p->act_max);
    }
    return TC_OK;
}
