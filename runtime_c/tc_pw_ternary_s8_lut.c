/*
 * tinycc runtime: PROM ternary pointwise convolution by activation tables (T-MAC style), for
 * wide layers. Same arithmetic and arguments as tc_pw_ternary_s8 (TC_TERNARY_2BIT rows), plus
 * scratch; mirrored by tinycc/ops/conv.py::pw_ternary_s8 like it.
 *
 * Two pixels at a time. For a group of 4 input channels, a weight byte can take 81 values (four
 * 2-bit codes of -1, 0, 1); a table holds, for each of them, the group's sum of t * x for both
 * pixels, built once and shared by every output channel. An output channel then costs one byte
 * load, one table load and one add per 4 weights and 2 pixels, instead of 4 multiply-adds.
 *
 * No multiplication and no SIMD instruction: both pixels' sums travel in one 32-bit word, as
 * two 16-bit lanes biased to be non-negative (each term t * x + 128 is in [0, 256]), so a plain
 * add never carries from one lane into the other as long as a word sums at most
 * TC_PW_TERNARY_LUT_GROUPS tables (4 * 256 * groups < 65536). Each chunk's lanes are added to
 * int32 sums in scratch, which start at bias - 512 * (in_c / 4): the biases of every lane.
 */
#include "tc_conv.h"
#include "tc_dot_s8_dsp.h"

#include <stddef.h>

#if TC_PW_TERNARY_LUT_GROUPS != 4
#error "add_chunk4 below sums 4 tables per chunk"
#endif

#define LANE_BIAS 128u                         /* per term, per lane */
#define PAIR(lo, hi) ((uint32_t)(lo) | ((uint32_t)(hi) << 16))

int32_t tc_pw_ternary_s8_lut_scratch_size(const tc_pw_ternary_params *p) {
    return TC_PW_TERNARY_LUT_GROUPS * 256 * 4 + p->out_c * 8;
}

/* The term of activation pair (a, b) for t = 0, +1, -1 (2-bit codes 0, 1, 3), biased per lane. */
static void pair_terms(int32_t a, int32_t b, uint32_t terms[3]) {
    const uint32_t pa = (uint32_t)(a + 128), pb = (uint32_t)(b + 128); /* x + 128 in [0, 255] */
    terms[0] = PAIR(LANE_BIAS, LANE_BIAS);
    terms[1] = PAIR(pa, pb);                                          /* x + 128 */
    terms[2] = PAIR(256u - pa, 256u - pb);                            /* -x + 128 */
}

/* The table of one group of 4 channels: entry `byte` = the sum over the byte's 4 fields of their
 * terms (bits 0-1: channel 0, 2-3: channel 2, 4-5: channel 1, 6-7: channel 3; tc_conv.h). Only
 * the 81 bytes of valid codes are written, and only those are ever read: the low nibble takes
 * the 9 values c0 | c2 << 2 written out below, the high nibble the 9 of c1 << 4 | c3 << 6. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void build_table(uint32_t *table, const int8_t *xa, const int8_t *xb) {
    uint32_t t0[3], t1[3], t2[3], t3[3];
    uint32_t l0, l1, l3, l4, l5, l7, l12, l13, l15; /* the low-nibble sums, by low nibble */
    pair_terms(xa[0], xb[0], t0);
    pair_terms(xa[1], xb[1], t1);
    pair_terms(xa[2], xb[2], t2);
    pair_terms(xa[3], xb[3], t3);
    l0 = t0[0] + t2[0], l1 = t0[1] + t2[0], l3 = t0[2] + t2[0]; /* low nibble c0 | c2 << 2 */
    l4 = t0[0] + t2[1], l5 = t0[1] + t2[1], l7 = t0[2] + t2[1];
    l12 = t0[0] + t2[2], l13 = t0[1] + t2[2], l15 = t0[2] + t2[2];
    /* Straight-line rows (high nibble c1 << 4 | c3 << 6): the nine low sums stay in registers. */
#define TERNARY_ROW(high, h)                                                                    \
    do {                                                                                        \
        uint32_t *r = table + (high);                                                           \
        const uint32_t hv = (h);                                                                \
        r[0x0] = hv + l0, r[0x1] = hv + l1, r[0x3] = hv + l3, r[0x4] = hv + l4, r[0x5] = hv + l5; \
        r[0x7] = hv + l7, r[0xC] = hv + l12, r[0xD] = hv + l13, r[0xF] = hv + l15;               \
    } while (0)
    TERNARY_ROW(0x00, t1[0] + t3[0]);
    TERNARY_ROW(0x10, t1[1] + t3[0]);
    TERNARY_ROW(0x30, t1[2] + t3[0]);
    TERNARY_ROW(0x40, t1[0] + t3[1]);
    TERNARY_ROW(0x50, t1[1] + t3[1]);
    TERNARY_ROW(0x70, t1[2] + t3[1]);
    TERNARY_ROW(0xC0, t1[0] + t3[2]);
    TERNARY_ROW(0xD0, t1[1] + t3[2]);
    TERNARY_ROW(0xF0, t1[2] + t3[2]);
#undef TERNARY_ROW
}

/* Both pixels' sums of one whole chunk (TC_PW_TERNARY_LUT_GROUPS == 4 tables) into every output
 * channel's lanes: the hot loop, one byte load, one table load and one add per 4 weights. Out of
 * line and given the four tables as separate pointers, so that gcc keeps four base registers
 * (one LDR with a scaled index per lookup) instead of rebuilding each address. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void add_chunk4(const uint32_t *t0, const uint32_t *t1, const uint32_t *t2,
                       const uint32_t *t3, const uint8_t *w, int32_t row, int32_t out_c,
                       int32_t *sums) {
    int32_t oc;
    for (oc = 0; oc < out_c; ++oc, w += row, sums += 2) {
        const uint32_t s = t0[w[0]] + t1[w[1]] + t2[w[2]] + t3[w[3]];
        sums[0] += (int32_t)(s & 0xFFFFu);
        sums[1] += (int32_t)(s >> 16);
    }
}

/* Outputs of a pixel pair from the sums (sums[2 oc] pixel a, sums[2 oc + 1] pixel b; yb NULL:
 * one pixel), out of line so that the loop has the registers to itself. On DSP builds the hot
 * loops' requantizations (tc_dot_s8_dsp.h: tc_dsp_rq, tc_dsp_rq_near), tc_requant_s8_nonneg
 * elsewhere and for the shifts they do not cover. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void lut_outputs(const tc_pw_ternary_params *p, const int32_t *sums, const int32_t *mult,
                        const int32_t *shift, int8_t *ya, int8_t *yb) {
    const int32_t out_zp = p->out_zp, act_min = p->act_min, act_max = p->act_max;
    int32_t oc;
    for (oc = 0; oc < p->out_c; ++oc) {
        const int32_t sa = sums[2 * oc], sb = sums[2 * oc + 1], m = mult[oc], sh = shift[oc];
#if TC_HAVE_DSP
        int32_t va, vb;
        if (tc_dsp_rq_applies(sh)) {
            const int32_t khi = tc_dsp_rq_khi(sh, out_zp);
            va = tc_dsp_rq(sa, m, khi, -sh - 1);
            vb = tc_dsp_rq(sb, m, khi, -sh - 1);
        } else if (tc_dsp_rq_near_applies(m, sh)) {
            const int32_t k = tc_dsp_rq2_k(sh, out_zp);
            va = tc_dsp_rq_near(sa, m, k, sh);
            vb = tc_dsp_rq_near(sb, m, k, sh);
        } else {
            va = tc_requant_s8_nonneg(sa, m, sh, out_zp, -128, 127);
            vb = tc_requant_s8_nonneg(sb, m, sh, out_zp, -128, 127);
        }
        ya[oc] = (int8_t)TC_MIN(TC_MAX(va, act_min), act_max);
        if (yb != NULL) yb[oc] = (int8_t)TC_MIN(TC_MAX(vb, act_min), act_max);
#else
        ya[oc] = tc_requant_s8_nonneg(sa, m, sh, out_zp, act_min, act_max);
        if (yb != NULL) yb[oc] = tc_requant_s8_nonneg(sb, m, sh, out_zp, act_min, act_max);
#endif
    }
}

/* The window's first whole chunk, when there is a bias: the sums set to bias - `lanes` (the
 * lanes' biases over the row) plus the chunk's lanes, instead of a pass that sets them and
 * add_chunk4 (one pass over the channels less per pixel pair). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void set_chunk4(const uint32_t *t0, const uint32_t *t1, const uint32_t *t2,
                       const uint32_t *t3, const uint8_t *w, int32_t row, int32_t out_c,
                       const int32_t *bias, int32_t lanes, int32_t *sums) {
    int32_t oc;
    for (oc = 0; oc < out_c; ++oc, w += row, sums += 2) {
        const uint32_t s = t0[w[0]] + t1[w[1]] + t2[w[2]] + t3[w[3]];
        const int32_t b = bias[oc] - lanes;
        sums[0] = b + (int32_t)(s & 0xFFFFu);
        sums[1] = b + (int32_t)(s >> 16);
    }
}

tc_status tc_pw_ternary_s8_lut(const tc_pw_ternary_params *p, const int8_t *in, const uint8_t *w,
                               const int32_t *bias, const int32_t *mult, const int32_t *shift,
                               int8_t *scratch, int8_t *out) {
    const int32_t row = (p->in_c + 3) / 4, whole = p->in_c / 4, rest = p->in_c % 4;
    uint32_t *tables;
    int32_t *sums;
    int32_t i, oc, g0, g;
    if (p == NULL || in == NULL || w == NULL || mult == NULL || shift == NULL || out == NULL ||
        scratch == NULL) {
        return TC_ARG_ERROR;
    }
    if (p->pixels < 1 || p->in_c < 4 || p->out_c < 1 || p->format != TC_TERNARY_2BIT ||
        !tc_conv_quant_args_ok(0, p->out_zp, p->act_min, p->act_max, mult, shift, p->out_c)) {
        return TC_ARG_ERROR;
    }
    tables = (uint32_t *)(void *)scratch; /* the arena is 16-byte aligned, scratch offsets too */
    sums = (int32_t *)(void *)(scratch + TC_PW_TERNARY_LUT_GROUPS * 256 * 4);
    for (i = 0; i < p->pixels; i += 2) {
        const int two = i + 1 < p->pixels;
        const int8_t *xa = in + i * p->in_c;
        const int8_t *xb = two ? xa + p->in_c : xa; /* an odd last pixel pairs with itself */
        int8_t *ya = out + i * p->out_c;
        int8_t *yb = ya + p->out_c;
        const int set_first = bias != NULL && whole >= TC_PW_TERNARY_LUT_GROUPS;
        for (oc = 0; !set_first && oc < p->out_c; ++oc) { /* the lanes' biases taken off, once */
            const int32_t b = (bias != NULL ? bias[oc] : 0) - (int32_t)(4 * LANE_BIAS) * whole;
            sums[2 * oc] = b;
            sums[2 * oc + 1] = b;
        }
        for (g0 = 0; g0 < whole; g0 += TC_PW_TERNARY_LUT_GROUPS) {
            const int32_t groups = TC_MIN(TC_PW_TERNARY_LUT_GROUPS, whole - g0);
            for (g = 0; g < groups; ++g) {
                build_table(tables + 256 * g, xa + 4 * (g0 + g), xb + 4 * (g0 + g));
            }
            if (g0 == 0 && set_first) {
                set_chunk4(tables, tables + 256, tables + 512, tables + 768, w, row, p->out_c, bias,
                           (int32_t)(4 * LANE_BIAS) * whole, sums);
                continue;
            }
            if (groups == 4) {
                add_chunk4(tables, tables + 256, tables + 512, tables + 768, w + g0, row, p->out_c,
                           sums);
                continue;
            }
            for (oc = 0; oc < p->out_c; ++oc) { /* the last, partial chunk */
                const uint8_t *wk = w + oc * row + g0;
                uint32_t s = 0;
                for (g = 0; g < groups; ++g) s += tables[256 * g + wk[g]];
                sums[2 * oc] += (int32_t)(s & 0xFFFFu);
                sums[2 * oc + 1] += (int32_t)(s >> 16);
            }
        }
        /* outputs of both pixels are written after both are read (pw_ternary_overlap_delta) */
        for (oc = 0; rest != 0 && oc < p->out_c; ++oc) { /* the last, short group of inputs */
            const uint32_t codes = tc_ternary_2bit_natural(w[oc * row + whole]);
            sums[2 * oc] += tc_ternary_terms(codes, xa + 4 * whole, rest);
            sums[2 * oc + 1] += tc_ternary_terms(codes, xb + 4 * whole, rest);
        }
        lut_outputs(p, sums, mult, shift, ya, two ? yb : NULL);
    }
    return TC_OK;
}
