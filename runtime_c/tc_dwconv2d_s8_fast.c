/*
 * tinycc runtime: the fast portable variant of tc_dwconv2d_s8 (tc_dwconv2d_s8.c, out of place),
 * for cores without the DSP extension (Cortex-M0+/M3, RISC-V, ESP32, the host): plain C99,
 * bit-exact with the reference dwconv2d_channel, taken by the entry point when
 * TC_FAST_PORTABLE (tc_conv.h) and tc_dwconv2d_s8_fast_applicable.
 *
 * How it differs from the reference (same integer sums, reordered):
 *  - output pixel by pixel in row-major order, all channels of a pixel (or of a pixel pair)
 *    before the next, two channels at a time: pairs of pixels times pairs of channels, four
 *    int32 accumulators, so each loaded weight serves two MACs;
 *  - the tap addresses of a pixel are computed once (a stack table of pointers), with a stack
 *    row of in_zp values standing for the padded taps, so the channel loops have no border
 *    cases: sum w * (x - in_zp) over the in-image taps equals sum w * x' - in_zp * sum w over
 *    the whole window (x' = in_zp on a padded tap), and -in_zp * sum w goes into the bias once
 *    per channel (a stack table), added with the wrap of a 32-bit register (only the total is
 *    known to fit in int32, as in the reference);
 *  - requantization constants hoisted per channel pair.
 * Output row r is written while only input rows >= r * stride_h - pad_top are still to be
 * read, which is what the overlap licence (tinycc/ops/conv.py::dwconv2d_overlap_licence)
 * relies on. The in-place entry point keeps its own paths.
 */
#include "tc_conv.h"

#if TC_FAST_PORTABLE

#include <stddef.h>
#include <string.h>

#define DW_FAST_CHANNELS 128 /* the in_zp row and the folded-bias table */
#define DW_FAST_TAPS 25      /* windows up to 5x5: the tap pointer tables */

int tc_dwconv2d_s8_fast_applicable(const tc_dwconv2d_params *p) {
    return p->depth_mult == 1 && p->in_c <= DW_FAST_CHANNELS && p->k_h * p->k_w <= DW_FAST_TAPS;
}

/* The requantization of one channel (as tc_requant_s8_nonneg). */
typedef struct {
    int32_t mult, shift, e_minus_1;
    uint32_t half;
} dw_fast_requant;

static dw_fast_requant dw_fast_requant_of(const int32_t *mult, const int32_t *shift, int32_t c) {
    dw_fast_requant q;
    q.mult = mult[c];
    q.shift = shift[c];
    q.e_minus_1 = q.shift < 0 ? -q.shift - 1 : 0;
    q.half = UINT32_C(1) << q.e_minus_1;
    return q;
}

/* The output of a raw window sum plus its folded bias. */
static int8_t dw_fast_output(const tc_dwconv2d_params *p, const dw_fast_requant *q, int32_t raw,
                             int32_t folded) {
    const int32_t acc = tc_wrap_i32((uint32_t)raw + (uint32_t)folded);
    int32_t y = q->shift < 0 ? tc_mbqm_right(acc, q->mult, q->half, q->e_minus_1)
                             : tc_mbqm(acc, q->mult, q->shift);
    y = TC_MAX(y, p->act_min - p->out_zp);
    y = TC_MIN(y, p->act_max - p->out_zp);
    return (int8_t)(y + p->out_zp);
}

/* The input pixel of each tap of the window starting at (y0, x0), or zp_row when padded. */
static void dw_fast_taps(const tc_dwconv2d_params *p, const int8_t *in, const int8_t *zp_row,
                         int32_t y0, int32_t x0, const int8_t **taps) {
    int32_t ky, kx;
    for (ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = y0 + ky * p->dil_h;
        for (kx = 0; kx < p->k_w; ++kx) {
            const int32_t ix = x0 + kx * p->dil_w;
            *taps++ = iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w
                          ? zp_row
                          : in + (iy * p->in_w + ix) * p->in_c;
        }
    }
}

/* Channels c and c1 of two output pixels (tap tables ta, tb) into ya and yb. */
static void dw_fast_pair(const tc_dwconv2d_params *p, const int8_t *const *ta,
                         const int8_t *const *tb, int32_t n_taps, const int8_t *w,
                         const int32_t *folded, const int32_t *mult, const int32_t *shift,
                         int8_t *ya, int8_t *yb) {
    const int32_t out_c = p->out_c;
    int32_t c;
    for (c = 0; c < out_c; c += 2) {
        /* An odd last channel pairs with itself (both halves write the same value). */
        const int32_t c1 = TC_MIN(c + 1, out_c - 1);
        const int8_t *wc = w + c;
        const int32_t dc = c1 - c;
        int32_t a0 = 0, a1 = 0, b0 = 0, b1 = 0, t;
        for (t = 0; t < n_taps; ++t, wc += out_c) {
            const int8_t *xa = ta[t] + c, *xb = tb[t] + c;
            const int32_t u = wc[0], v = wc[dc];
            a0 += xa[0] * u;
            a1 += xa[dc] * v;
            b0 += xb[0] * u;
            b1 += xb[dc] * v;
        }
        {
            const dw_fast_requant q0 = dw_fast_requant_of(mult, shift, c);
            const dw_fast_requant q1 = dw_fast_requant_of(mult, shift, c1);
            ya[c] = dw_fast_output(p, &q0, a0, folded[c]);
            ya[c1] = dw_fast_output(p, &q1, a1, folded[c1]);
            yb[c] = dw_fast_output(p, &q0, b0, folded[c]);
            yb[c1] = dw_fast_output(p, &q1, b1, folded[c1]);
        }
    }
}

/* Every channel of one output pixel (tap table ta) into ya: the odd last pixel of a row. */
static void dw_fast_single(const tc_dwconv2d_params *p, const int8_t *const *ta, int32_t n_taps,
                           const int8_t *w, const int32_t *folded, const int32_t *mult,
                           const int32_t *shift, int8_t *ya) {
    const int32_t out_c = p->out_c;
    int32_t c;
    for (c = 0; c < out_c; c += 2) {
        const int32_t c1 = TC_MIN(c + 1, out_c - 1);
        const int8_t *wc = w + c;
        const int32_t dc = c1 - c;
        int32_t a0 = 0, a1 = 0, t;
        for (t = 0; t < n_taps; ++t, wc += out_c) {
            const int8_t *xa = ta[t] + c;
            a0 += xa[0] * wc[0];
            a1 += xa[dc] * wc[dc];
        }
        {
            const dw_fast_requant q0 = dw_fast_requant_of(mult, shift, c);
            const dw_fast_requant q1 = dw_fast_requant_of(mult, shift, c1);
            ya[c] = dw_fast_output(p, &q0, a0, folded[c]);
            ya[c1] = dw_fast_output(p, &q1, a1, folded[c1]);
        }
    }
}

void tc_dwconv2d_s8_fast(const tc_dwconv2d_params *p, const int8_t *in, const int8_t *w,
                         const int32_t *bias, const int32_t *mult, const int32_t *shift,
                         int8_t *out) {
    int8_t zp_row[DW_FAST_CHANNELS];
    int32_t folded[DW_FAST_CHANNELS];
    const int8_t *ta[DW_FAST_TAPS], *tb[DW_FAST_TAPS];
    const int32_t n_taps = p->k_h * p->k_w, out_c = p->out_c;
    int32_t c, t, oy, ox;
    memset(zp_row, p->in_zp, sizeof zp_row);
    for (c = 0; c < out_c; ++c) { /* bias[c] - in_zp * sum of channel c's weights */
        uint32_t w_sum = 0;
        for (t = 0; t < n_taps; ++t) w_sum += (uint32_t)(int32_t)w[t * out_c + c];
        folded[c] = tc_wrap_i32((bias != NULL ? (uint32_t)bias[c] : 0u) -
                                w_sum * (uint32_t)p->in_zp);
    }
    for (oy = 0; oy < p->out_h; ++oy) {
        const int32_t y0 = oy * p->stride_h - p->pad_top;
        int8_t *y = out + oy * p->out_w * out_c;
        for (ox = 0; ox + 1 < p->out_w; ox += 2, y += 2 * out_c) {
            const int32_t x0 = ox * p->stride_w - p->pad_left;
            dw_fast_taps(p, in, zp_row, y0, x0, ta);
            dw_fast_taps(p, in, zp_row, y0, x0 + p->stride_w, tb);
            dw_fast_pair(p, ta, tb, n_taps, w, folded, mult, shift, y, y + out_c);
        }
        if (ox < p->out_w) {
            dw_fast_taps(p, in, zp_row, y0, ox * p->stride_w - p->pad_left, ta);
            dw_fast_single(p, ta, n_taps, w, folded, mult, shift, y);
        }
    }
}

#endif /* TC_FAST_PORTABLE */
