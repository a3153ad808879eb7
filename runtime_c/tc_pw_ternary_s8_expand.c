/*
 * tinycc runtime: PROM ternary pointwise convolution by expansion, for narrow layers: the packed
 * rows (either format) are decoded into int8 weights in scratch, then tc_conv2d_s8 runs them as
 * a 1 x pixels image with in_zp 0 (the caller folded it into the bias), so on DSP cores the
 * layer takes the int8 SMLAD kernel at its speed, for 4 to 5 times less flash. Same arithmetic
 * and arguments as tc_pw_ternary_s8 plus scratch; mirrored by tinycc/ops/conv.py::pw_ternary_s8.
 */
#include "tc_conv.h"

#include <stddef.h>

int32_t tc_pw_ternary_s8_expand_scratch_size(const tc_pw_ternary_params *p) {
    return p->out_c * p->in_c;
}

/* Weight n of a row as int8 (-1, 0, 1); the row's byte and field from the format. */
static int8_t ternary_weight(const uint8_t *row, int32_t n, int32_t format) {
    uint32_t codes;
    int32_t field;
    if (format == TC_TERNARY_2BIT) {
        codes = tc_ternary_2bit_natural(row[n / 4]);
        field = n % 4;
    } else {
        uint32_t v = row[n / 5];
        int32_t k;
        field = n % 5;
        for (k = 0; k < field; ++k) v /= 3u; /* decoding only, once per weight and call */
        return (int8_t)((int32_t)(v % 3u) - 1);
    }
    codes = (codes >> (2 * field)) & 3u;
    return (int8_t)((int32_t)(codes ^ 2u) - 2); /* 0 -> 0, 1 -> 1, 3 -> -1 */
}

tc_status tc_pw_ternary_s8_expand(const tc_pw_ternary_params *p, const int8_t *in,
                                  const uint8_t *w, const int32_t *bias, const int32_t *mult,
                                  const int32_t *shift, int8_t *scratch, int8_t *out) {
    tc_conv2d_params conv;
    int32_t row, oc, k;
    if (p == NULL || in == NULL || w == NULL || mult == NULL || shift == NULL || out == NULL ||
        scratch == NULL) {
        return TC_ARG_ERROR;
    }
    if (p->pixels < 1 || p->in_c < 1 || p->out_c < 1 ||
        (p->format != TC_TERNARY_2BIT && p->format != TC_TERNARY_BASE3)) {
        return TC_ARG_ERROR;
    }
    row = p->format == TC_TERNARY_2BIT ? (p->in_c + 3) / 4 : (p->in_c + 4) / 5;
    for (oc = 0; oc < p->out_c; ++oc) {
        for (k = 0; k < p->in_c; ++k) {
            scratch[oc * p->in_c + k] = ternary_weight(w + oc * row, k, p->format);
        }
    }
    conv.in_h = 1, conv.in_w = p->pixels, conv.in_c = p->in_c;
    conv.out_h = 1, conv.out_w = p->pixels, conv.out_c = p->out_c;
    conv.k_h = 1, conv.k_w = 1, conv.stride_h = 1, conv.stride_w = 1, conv.dil_h = 1, conv.dil_w = 1;
    conv.pad_top = 0, conv.pad_left = 0, conv.groups = 1;
    conv.in_zp = 0, conv.out_zp = p->out_zp, conv.act_min = p->act_min, conv.act_max = p->act_max;
    return tc_conv2d_s8(&conv, in, scratch, bias, mult, shift, out);
}
