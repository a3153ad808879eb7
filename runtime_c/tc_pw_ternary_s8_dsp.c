/*
 * tinycc runtime: the SIMD variant of tc_pw_ternary_s8 (ARMv7E-M DSP extension, or its host
 * emulation), bit-exact with the portable reference in tc_pw_ternary_s8.c, which calls it for
 * TC_TERNARY_2BIT rows with in_c >= 4.
 *
 * Two pixels by two output channels at a time. Per 4 input channels: each pixel's 4 int8
 * activations are split by SXTB16 into the even pair (x0, x2) and the odd pair (x1, x3); each
 * channel's weight byte indexes two tables that give its weights as the int16 pairs (w0, w2)
 * and (w1, w3) (the byte's low and high nibbles), and SMLAD adds w * x for both pairs. The
 * weights are -1, 0 or 1, so SMLAD only adds and subtracts activations; it is the instruction
 * that does two of them at once. 2 KB of tables in flash, no scratch.
 */
#include "tc_arm_dsp.h"
#include "tc_conv.h"

#include <stddef.h>

#if TC_HAVE_DSP

/* int16 lane value of a 2-bit code (0: 0, 1: 1, 3: -1), and the two pairs of a weight byte. */
#define TERN16(c) ((c) == 1u ? 0x0001u : (c) == 3u ? 0xFFFFu : 0u)
#define PAIR(b, s) ((uint32_t)TERN16(((b) >> (s)) & 3u) | ((uint32_t)TERN16(((b) >> ((s) + 2)) & 3u) << 16))
#define EVEN(b) PAIR(b, 0) /* bits 0-1: w0, 2-3: w2 */
#define ODD(b) PAIR(b, 4)  /* bits 4-5: w1, 6-7: w3 */
#define ROW4(F, b) F(b), F((b) + 1u), F((b) + 2u), F((b) + 3u)
#define ROW16(F, b) ROW4(F, b), ROW4(F, (b) + 4u), ROW4(F, (b) + 8u), ROW4(F, (b) + 12u)
#define ROW64(F, b) ROW16(F, b), ROW16(F, (b) + 16u), ROW16(F, (b) + 32u), ROW16(F, (b) + 48u)
#define ROW256(F) ROW64(F, 0u), ROW64(F, 64u), ROW64(F, 128u), ROW64(F, 192u)

static const uint32_t even_pairs[256] = {ROW256(EVEN)};
static const uint32_t odd_pairs[256] = {ROW256(ODD)};

/* Accumulators of two pixels (a, b) by two weight rows (0, 1) over the whole bytes of a row;
 * the tail (in_c % 4 weights) is added by the caller. */
typedef struct {
    int32_t a0, a1, b0, b1;
} ternary_block;

static TC_DSP_NOINLINE ternary_block ternary_block_sums(const int8_t *xa, const int8_t *xb,
                                                        const uint8_t *w0, const uint8_t *w1,
                                                        int32_t bytes) {
    ternary_block s = {0, 0, 0, 0};
    int32_t j;
    for (j = 0; j < bytes; ++j, xa += 4, xb += 4) {
        const uint32_t va = tc_read_s8x4(xa), vb = tc_read_s8x4(xb);
        const uint32_t a_even = tc_sxtb16(va), a_odd = tc_sxtb16_ror8(va);
        const uint32_t b_even = tc_sxtb16(vb), b_odd = tc_sxtb16_ror8(vb);
        const uint32_t k0 = w0[j], k1 = w1[j];
        const uint32_t e0 = even_pairs[k0], o0 = odd_pairs[k0];
        const uint32_t e1 = even_pairs[k1], o1 = odd_pairs[k1];
        s.a0 = tc_smlad(a_even, e0, tc_smlad(a_odd, o0, s.a0));
        s.b0 = tc_smlad(b_even, e0, tc_smlad(b_odd, o0, s.b0));
        s.a1 = tc_smlad(a_even, e1, tc_smlad(a_odd, o1, s.a1));
        s.b1 = tc_smlad(b_even, e1, tc_smlad(b_odd, o1, s.b1));
    }
    return s;
}

static int8_t ternary_output(int32_t acc, const tc_pw_ternary_params *p, const int32_t *bias,
                             const int32_t *mult, const int32_t *shift, int32_t oc) {
    if (bias != NULL) acc += bias[oc];
    return tc_requant_s8_nonneg(acc, mult[oc], shift[oc], p->out_zp, p->act_min, p->act_max);
}

void tc_pw_ternary_s8_dsp(const tc_pw_ternary_params *p, const int8_t *in, const uint8_t *w,
                          const int32_t *bias, const int32_t *mult, const int32_t *shift,
                          int8_t *out) {
    const int32_t row = (p->in_c + 3) / 4, whole = p->in_c / 4, rest = p->in_c % 4;
    int32_t i, oc;
    for (i = 0; i < p->pixels; i += 2) {
        /* an odd last pixel is computed twice (as pixel b too) and written once */
        const int two = i + 1 < p->pixels;
        const int8_t *xa = in + i * p->in_c;
        const int8_t *xb = two ? xa + p->in_c : xa;
        int8_t *ya = out + i * p->out_c;
        int8_t *yb = ya + p->out_c;
        /* outputs of both pixels are written while both are still read (pw_ternary_overlap_delta) */
        for (oc = 0; oc < p->out_c; oc += 2) {
            const int second = oc + 1 < p->out_c;
            const uint8_t *w0 = w + oc * row;
            const uint8_t *w1 = second ? w0 + row : w0;
            ternary_block s = ternary_block_sums(xa, xb, w0, w1, whole);
            if (rest) {
                const uint32_t c0 = tc_ternary_2bit_natural(w0[whole]);
                const uint32_t c1 = tc_ternary_2bit_natural(w1[whole]);
                s.a0 += tc_ternary_terms(c0, xa + 4 * whole, rest);
                s.b0 += tc_ternary_terms(c0, xb + 4 * whole, rest);
                s.a1 += tc_ternary_terms(c1, xa + 4 * whole, rest);
                s.b1 += tc_ternary_terms(c1, xb + 4 * whole, rest);
            }
            ya[oc] = ternary_output(s.a0, p, bias, mult, shift, oc);
            if (two) yb[oc] = ternary_output(s.b0, p, bias, mult, shift, oc);
            if (second) {
                ya[oc + 1] = ternary_output(s.a1, p, bias, mult, shift, oc + 1);
                if (two) yb[oc + 1] = ternary_output(s.b1, p, bias, mult, shift, oc + 1);
            }
        }
    }
}
#endif /* TC_HAVE_DSP */
