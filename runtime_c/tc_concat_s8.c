/*
 * Concatenation, one input at a time: copies (or requantizes) an input into its columns of the
 * output. TFLM's CONCATENATION requires equal quantization everywhere; tinycc allows different
 * input scales and rescales them with REQUANTIZE semantics.
 */
#include <string.h>

#include "tc_tensor.h"

static int concat_part_valid(const tc_concat_part_params *p) {
    return p->outer >= 0 && p->in_inner >= 0 && p->out_offset >= 0 &&
           (int64_t)p->out_offset + p->in_inner <= p->out_inner && tc_is_int8(p->in_zp) &&
           tc_is_int8(p->out_zp) && tc_requant_pair_valid(p->multiplier, p->shift);
}

tc_status tc_concat_s8_part(const tc_concat_part_params *p, const int8_t *in, int8_t *out) {
    const int plain_copy = tc_is_unit_rescale(p->multiplier, p->shift) && p->in_zp == p->out_zp;
    int32_t row, i;
    if (!concat_part_valid(p)) return TC_ARG_ERROR;
    out += p->out_offset;
    for (row = 0; row < p->outer; ++row) {
        if (plain_copy) {
            memcpy(out, in, (size_t)p->in_inner);
        } else {
            for (i = 0; i < p->in_inner; ++i) {
                out[i] = tc_requantize_one(in[i], p->in_zp, p->multiplier, p->shift, p->out_zp,
                                           -128, 127);
            }
        }
        in += p->in_inner;
        out += p->out_inner;
    }
    return TC_OK;
}
