/*
 * tinycc runtime: PROM ternary pointwise convolution by expansion, for narrow layers: the packed
 * rows (either format) are decoded into int8 weights in scratch, then tc_conv2d_s8 runs them as
 * a 1 x pixels image with in_zp 0 (the caller folded it into the bias), so on DSP cores the
 * layer takes the int8 SMLAD kernel at its speed, for 4 to 5 times less flash. Same arithmetic
 * and arguments as tc_pw_ternary_s8 plus scratch; mirrored by tinycc/ops/conv.py::pw_ternary_s8.
 */
#include "tc_conv.h"

#include <stddef.h>
#include <string.h>

int32_t tc_pw_ternary_s8_expand_scratch_size(const tc_pw_ternary_params *p) {
    return p->out_c * p->in_c;
}

/* Weight n of a base-3 row as int8 (-1, 0, 1). */
static int8_t ternary_weight(const uint8_t *row, int32_t n) {
    uint32_t v = row[n / 5];
    int32_t k;
    for (k = 0; k < n % 5; ++k) v /= 3u; /* decoding only, once per weight and call */
    return (int8_t)((int32_t)(v % 3u) - 1);
}

/* A TC_TERNARY_2BIT byte (w0 w2 w1 w3 from bit 0) as four int8 weights, weight k in byte k:
 * each 2-bit code spread to the low bits of its byte, then code 1 -> 1, 3 -> 0xFF (-1). */
static uint32_t ternary_2bit_word(uint32_t b) {
    const uint32_t spread = (b & 0x03u) | ((b & 0x30u) << 4) | ((b & 0x0Cu) << 14) |
                            ((b & 0xC0u) << 18);
    return (spread & 0x01010101u) | (((spread >> 1) & 0x01010101u) * 0xFEu);
}

/* The out_c rows of 2-bit weights as int8 rows of in_c values: four weights per byte, stored
 * as one word where a whole group fits the row (little-endian bytes; a word store into the
 * next row's first bytes is overwritten by that row), the last row's short group byte by byte. */
static void ternary_expand_2bit(const uint8_t *w, int32_t in_c, int32_t out_c, int8_t *dst) {
    const int32_t row = (in_c + 3) / 4;
    int32_t oc, g, k;
    for (oc = 0; oc < out_c; ++oc, w += row, dst += in_c) {
        for (g = 0; g < row; ++g) {
            const uint32_t word = ternary_2bit_word(w[g]);
            if (4 * g + 4 <= in_c || oc + 1 < out_c) {
                int8_t bytes[4];
                bytes[0] = (int8_t)(word & 0xFFu);
                bytes[1] = (int8_t)((word >> 8) & 0xFFu);
                bytes[2] = (int8_t)((word >> 16) & 0xFFu);
                bytes[3] = (int8_t)(word >> 24);
                memcpy(dst + 4 * g, bytes, sizeof bytes);
            } else {
                for (k = 0; 4 * g + k < in_c; ++k) {
                    dst[4 * g + k] = (int8_t)((word >> (8 * k)) & 0xFFu);
                }
            }
        }
    }
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
    if (p->format == TC_TERNARY_2BIT) {
        ternary_expand_2bit(w, p->in_c, p->out_c, scratch);
    } else {
        row = (p->in_c + 4) / 5;
        for (oc = 0; oc < p->out_c; ++oc) {
            for (k = 0; k < p->in_c; ++k) {
                scratch[oc * p->in_c + k] = ternary_weight(w + oc * row, k);
            }
        }
    }
    conv.in_h = 1, conv.in_w = p->pixels, conv.in_c = p->in_c;
    conv.out_h = 1, conv.out_w = p->pixels, conv.out_c = p->out_c;
    conv.k_h = 1, conv.k_w = 1, conv.stride_h = 1, conv.stride_w = 1, conv.dil_h = 1, conv.dil_w = 1;
    conv.pad_top = 0, conv.pad_left = 0, conv.groups = 1;
    conv.in_zp = 0, conv.out_zp = p->out_zp, conv.act_min = p->act_min, conv.act_max = p->act_max;
    return tc_conv2d_s8(&conv, in, scratch, bias, mult, shift, out);
}
