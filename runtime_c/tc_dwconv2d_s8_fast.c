/*
 * tinycc runtime: the fast portable variant of tc_dwconv2d_s8 (tc_dwconv2d_s8.c), for cores
 * without the DSP extension (Cortex-M0+/M3, RISC-V, ESP32, the host): plain C99, bit-exact with
 * the reference dwconv2d_channel, taken by the entry points when TC_FAST_PORTABLE (tc_conv.h):
 * the plane path where tc_dwconv2d_s8_fast_plane_applicable (both entry points, in place
 * included), the pixel path where tc_dwconv2d_s8_fast_applicable and the reference's 3x3 rings
 * do not apply (out of place; those rings are faster there). Two paths, the same integer sums
 * reordered:
 *
 * The plane path (kernels up to 7x7, dilation 1, planes of up to DW_PLANE_BYTES with their
 * border: the small late layers, where the reference's per-row set-up dominates, and the 5x5 /
 * 7x7 layers the reference runs tap by tap with bounds checks), both entry points: channel by
 * channel, the channel's plane gathered into a stack plane whose border holds in_zp, then each
 * output row in blocks of 4 pixels, the raw sums of a row chunk requantized in a second loop:
 * 3x3 at stride 1 or 2 with a kernel row's 3 weights in registers (6 loads for 12 MACs at
 * stride 1), other kernels one tap at a time, its weight for the 4 pixels. Licences: all of
 * channel c is read before any of its outputs is written, and those land on channel c's bytes
 * only, so in place is always safe and the overlap licence of
 * the channel-wise reference (tinycc/ops/conv.py::dwconv2d_overlap_licence: modulus in_c, row
 * bound) holds.
 *
 * The pixel path (out of place only, the other shapes): output pixel by pixel in row-major
 * order, all channels of a pixel (or of a pixel pair) before the next, two channels at a time:
 * pairs of pixels times pairs of channels, four int32 accumulators, so each loaded weight
 * serves two MACs; the tap addresses of a pixel computed once (a stack table of pointers, a
 * stack row of in_zp values for the padded taps); requantization constants hoisted per channel
 * pair. Output row r is written while only input rows >= r * stride_h - pad_top are still to be
 * read (the row-streaming bound of the same licence).
 *
 * Both: sum w * (x - in_zp) over the in-image taps equals sum w * x' - in_zp * sum w over the
 * whole window (x' = in_zp on a padded tap); -in_zp * sum w goes into the bias once per
 * channel, added with the wrap of a 32-bit register (only the total is known to fit in int32,
 * as in the reference).
 */
#include "tc_conv.h"

#if TC_FAST_PORTABLE

#include <stddef.h>
#include <string.h>

#define DW_FAST_CHANNELS 128 /* the in_zp row and the folded-bias table */
#define DW_FAST_TAPS 25      /* windows up to 5x5: the tap pointer tables */

/* ---- the plane path: small planes, 3x3 ------------------------------------------------ */

/* Bytes of the zero-point-padded channel plane on the stack (a 20 x 20 image with its border). */
#define DW_PLANE_BYTES 484
/* Output pixels per chunk of a row: their raw sums go to a stack buffer, then through the
 * requantization, so that each loop keeps its values in registers. */
#define DW_PLANE_CHUNK 32

/* Kept out of line: inlined into the channel loop, the row loops lose their registers. */
#if defined(__GNUC__)
#define DW_PLANE_NOINLINE __attribute__((noinline))
#else
#define DW_PLANE_NOINLINE
#endif

/* Kernels up to 7x7: the channel's weights on the stack. */
#define DW_PLANE_K 7

/* 3x3 kernels take loops written out for stride 1 and 2 (dw_plane_channel); the others one tap
 * at a time (dw_plane_channel_any). */
static int dw_plane_k3(const tc_dwconv2d_params *p) {
    return p->k_h == 3 && p->k_w == 3;
}

/* Width and height of the padded plane: the image after the top/left padding, and every tap a
 * window reads (the bottom/right padding). */
static int32_t dw_plane_w(const tc_dwconv2d_params *p) {
    return TC_MAX(p->pad_left + p->in_w, (p->out_w - 1) * p->stride_w + p->k_w);
}

static int32_t dw_plane_h(const tc_dwconv2d_params *p) {
    return TC_MAX(p->pad_top + p->in_h, (p->out_h - 1) * p->stride_h + p->k_h);
}

static int dw_plane_applicable(const tc_dwconv2d_params *p) {
    /* the bounds keep the plane's size computations far from int32 overflow */
    return p->depth_mult == 1 && p->k_h <= DW_PLANE_K && p->k_w <= DW_PLANE_K &&
           p->dil_h == 1 && p->dil_w == 1 && (p->stride_w <= 2 || !dw_plane_k3(p)) &&
           p->stride_w < DW_PLANE_BYTES && p->stride_h < DW_PLANE_BYTES &&
           p->pad_top < DW_PLANE_BYTES && p->pad_left < DW_PLANE_BYTES &&
           p->out_w < DW_PLANE_BYTES && p->out_h < DW_PLANE_BYTES &&
           dw_plane_w(p) * dw_plane_h(p) <= DW_PLANE_BYTES;
}

int tc_dwconv2d_s8_fast_applicable(const tc_dwconv2d_params *p) {
    return dw_plane_applicable(p) || (p->depth_mult == 1 && p->in_c <= DW_FAST_CHANNELS &&
                                      p->k_h * p->k_w <= DW_FAST_TAPS);
}

/* The plane path reads a whole channel before it writes that channel's outputs, which land on
 * that channel's bytes only: in place is always safe. */
int tc_dwconv2d_s8_fast_plane_applicable(const tc_dwconv2d_params *p) {
    return dw_plane_applicable(p);
}

/* One channel's folded bias and requantization (tc_requant_s8_nonneg). */
typedef struct {
    int32_t bias; /* bias[c] - in_zp * sum(w[c]), wrapped to 32 bits */
    int32_t mult, shift, e_minus_1;
    uint32_t half; /* shift < 0: 2^(-shift - 1) */
    int32_t lo, hi, out_zp;
} dw_plane_q;

/* y[i * y_step] = the output of raw sum sums[i], i < n. */
static TC_ALWAYS_INLINE inline void dw_plane_requant(const int32_t *sums, int32_t n,
                                                    const dw_plane_q *q, int8_t *y,
                                                    int32_t y_step) {
    const int32_t bias = q->bias, mult = q->mult, lo = q->lo, hi = q->hi, out_zp = q->out_zp;
    const int32_t shift = q->shift, e_minus_1 = q->e_minus_1;
    const uint32_t half = q->half;
    int32_t i;
    if (shift < 0) {
        for (i = 0; i < n; ++i, y += y_step) {
            const int32_t acc = tc_wrap_i32((uint32_t)sums[i] + (uint32_t)bias);
            const int32_t v = tc_mbqm_right(acc, mult, half, e_minus_1);
            *y = (int8_t)(TC_MIN(TC_MAX(v, lo), hi) + out_zp);
        }
        return;
    }
    for (i = 0; i < n; ++i, y += y_step) { /* multipliers >= 1: rare */
        const int32_t acc = tc_wrap_i32((uint32_t)sums[i] + (uint32_t)bias);
        const int32_t v = tc_mbqm(acc, mult, shift);
        *y = (int8_t)(TC_MIN(TC_MAX(v, lo), hi) + out_zp);
    }
}

/* a0..a3 += one kernel row (w0, w1, w2) over 4 output pixels one column apart (stride 1); r is
 * the first tap of pixel 0: 6 loads for 12 MACs. */
#define DW_PLANE_ROW_S1(r)                                 \
    do {                                                   \
        int32_t x_ = (r)[0];                               \
        a0 += x_ * w0;                                     \
        x_ = (r)[1];                                       \
        a0 += x_ * w1; a1 += x_ * w0;                      \
        x_ = (r)[2];                                       \
        a0 += x_ * w2; a1 += x_ * w1; a2 += x_ * w0;       \
        x_ = (r)[3];                                       \
        a1 += x_ * w2; a2 += x_ * w1; a3 += x_ * w0;       \
        x_ = (r)[4];                                       \
        a2 += x_ * w2; a3 += x_ * w1;                      \
        x_ = (r)[5];                                       \
        a3 += x_ * w2;                                     \
    } while (0)

/* The same two columns apart (stride 2): 9 loads for 12 MACs. */
#define DW_PLANE_ROW_S2(r)                                 \
    do {                                                   \
        int32_t x_ = (r)[0];                               \
        a0 += x_ * w0;                                     \
        x_ = (r)[1];                                       \
        a0 += x_ * w1;                                     \
        x_ = (r)[2];                                       \
        a0 += x_ * w2; a1 += x_ * w0;                      \
        x_ = (r)[3];                                       \
        a1 += x_ * w1;                                     \
        x_ = (r)[4];                                       \
        a1 += x_ * w2; a2 += x_ * w0;                      \
        x_ = (r)[5];                                       \
        a2 += x_ * w1;                                     \
        x_ = (r)[6];                                       \
        a2 += x_ * w2; a3 += x_ * w0;                      \
        x_ = (r)[7];                                       \
        a3 += x_ * w1;                                     \
        x_ = (r)[8];                                       \
        a3 += x_ * w2;                                     \
    } while (0)

/* Every output row of one channel: plane the padded plane (plane_w bytes a row), wk the
 * channel's 9 weights, y its byte of output pixel 0 (pixels out_c apart). Each row in blocks
 * of 4 pixels, then the last out_w % 4 one at a time, in chunks of DW_PLANE_CHUNK. */
static DW_PLANE_NOINLINE void dw_plane_channel(const tc_dwconv2d_params *p,
                                               const int8_t *plane, int32_t plane_w,
                                               const int8_t *wk, const dw_plane_q *q,
                                               int8_t *y) {
    int32_t sums[DW_PLANE_CHUNK];
    const int32_t stride = p->stride_w, out_w = p->out_w, out_c = p->out_c;
    const int32_t row_step = p->stride_h * plane_w;
    int32_t oy, ox, i;
    for (oy = 0; oy < p->out_h; ++oy, plane += row_step) {
        const int8_t *r0 = plane, *r1 = plane + plane_w, *r2 = plane + 2 * plane_w;
        for (ox = 0; ox < out_w; ox += DW_PLANE_CHUNK) {
            const int32_t n = TC_MIN(DW_PLANE_CHUNK, out_w - ox);
            int32_t *sum = sums;
            for (i = 0; i + 4 <= n; i += 4, sum += 4) {
                int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, w0, w1, w2;
                w0 = wk[0]; w1 = wk[1]; w2 = wk[2];
                if (stride == 1) DW_PLANE_ROW_S1(r0); else DW_PLANE_ROW_S2(r0);
                w0 = wk[3]; w1 = wk[4]; w2 = wk[5];
                if (stride == 1) DW_PLANE_ROW_S1(r1); else DW_PLANE_ROW_S2(r1);
                w0 = wk[6]; w1 = wk[7]; w2 = wk[8];
                if (stride == 1) DW_PLANE_ROW_S1(r2); else DW_PLANE_ROW_S2(r2);
                sum[0] = a0; sum[1] = a1; sum[2] = a2; sum[3] = a3;
                r0 += 4 * stride; r1 += 4 * stride; r2 += 4 * stride;
            }
            for (; i < n; ++i, ++sum) { /* the last pixels of the chunk, one at a time */
                *sum = r0[0] * wk[0] + r0[1] * wk[1] + r0[2] * wk[2] + r1[0] * wk[3] +
                       r1[1] * wk[4] + r1[2] * wk[5] + r2[0] * wk[6] + r2[1] * wk[7] +
                       r2[2] * wk[8];
                r0 += stride; r1 += stride; r2 += stride;
            }
            dw_plane_requant(sums, n, q, y, out_c);
            y += n * out_c;
        }
    }
}

/* Channel c of the input into the plane's image region (the border keeps in_zp). */
/* Every output row of one channel, any kernel up to 7x7 and any stride (arguments as
 * dw_plane_channel's, wk the k_h * k_w weights): blocks of 4 pixels one tap at a time, the tap's
 * weight for the 4 pixels, then the last out_w % 4 pixels one at a time. */
static DW_PLANE_NOINLINE void dw_plane_channel_any(const tc_dwconv2d_params *p,
                                                   const int8_t *plane, int32_t plane_w,
                                                   const int8_t *wk, const dw_plane_q *q,
                                                   int8_t *y) {
    int32_t sums[DW_PLANE_CHUNK];
    const int32_t stride = p->stride_w, out_w = p->out_w, out_c = p->out_c;
    const int32_t k_h = p->k_h, k_w = p->k_w, row_step = p->stride_h * plane_w;
    int32_t oy, ox, i, ky, kx;
    for (oy = 0; oy < p->out_h; ++oy, plane += row_step) {
        for (ox = 0; ox < out_w; ox += DW_PLANE_CHUNK) {
            const int32_t n = TC_MIN(DW_PLANE_CHUNK, out_w - ox);
            const int8_t *x = plane + ox * stride;
            for (i = 0; i + 4 <= n; i += 4, x += 4 * stride) {
                int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                const int8_t *w = wk;
                for (ky = 0; ky < k_h; ++ky) {
                    const int8_t *r = x + ky * plane_w;
                    for (kx = 0; kx < k_w; ++kx, ++r) {
                        const int32_t u = *w++;
                        a0 += r[0] * u;
                        a1 += r[stride] * u;
                        a2 += r[2 * stride] * u;
                        a3 += r[3 * stride] * u;
                    }
                }
                sums[i] = a0; sums[i + 1] = a1; sums[i + 2] = a2; sums[i + 3] = a3;
            }
            for (; i < n; ++i, x += stride) {
                int32_t a = 0;
                const int8_t *w = wk;
                for (ky = 0; ky < k_h; ++ky) {
                    const int8_t *r = x + ky * plane_w;
                    for (kx = 0; kx < k_w; ++kx) a += r[kx] * *w++;
                }
                sums[i] = a;
            }
            dw_plane_requant(sums, n, q, y, out_c);
            y += n * out_c;
        }
    }
}

static void dw_plane_gather(const tc_dwconv2d_params *p, const int8_t *in, int32_t c,
                            int32_t plane_w, int8_t *plane) {
    const int32_t in_c = p->in_c;
    int32_t iy, ix;
    in += c;
    for (iy = 0; iy < p->in_h; ++iy) {
        int8_t *dst = plane + (p->pad_top + iy) * plane_w + p->pad_left;
        for (ix = 0; ix < p->in_w; ++ix, in += in_c) dst[ix] = *in;
    }
}

/* Channel by channel: the channel's plane gathered with its zero-point border, then its output
 * rows. A padded tap holds in_zp, so sum w * x over the whole window minus in_zp * sum w
 * (folded into the bias once per channel, added with the wrap of a 32-bit register: only the
 * total is known to fit in int32) equals the reference's sum over the in-image taps. */
static void dw_plane(const tc_dwconv2d_params *p, const int8_t *in, const int8_t *w,
                     const int32_t *bias, const int32_t *mult, const int32_t *shift,
                     int8_t *out) {
    uint32_t plane_words[DW_PLANE_BYTES / 4];
    int8_t *plane = (int8_t *)plane_words, wk[DW_PLANE_K * DW_PLANE_K];
    const int32_t plane_w = dw_plane_w(p), out_c = p->out_c;
    const int k3 = dw_plane_k3(p);
    const int32_t taps = k3 ? 9 : p->k_h * p->k_w;
    int32_t c, t;
    dw_plane_q q;
    memset(plane, p->in_zp, (size_t)(plane_w * dw_plane_h(p)));
    q.lo = p->act_min - p->out_zp;
    q.hi = p->act_max - p->out_zp;
    q.out_zp = p->out_zp;
    for (c = 0; c < p->in_c; ++c) {
        uint32_t w_sum = 0;
        if (k3) { /* a constant trip count: the small 3x3 planes have few pixels per channel */
            for (t = 0; t < 9; ++t) {
                wk[t] = w[t * out_c + c];
                w_sum += (uint32_t)(int32_t)wk[t];
            }
        } else {
            for (t = 0; t < taps; ++t) {
                wk[t] = w[t * out_c + c];
                w_sum += (uint32_t)(int32_t)wk[t];
            }
        }
        q.bias = tc_wrap_i32((bias != NULL ? (uint32_t)bias[c] : 0u) - w_sum * (uint32_t)p->in_zp);
        q.mult = mult[c];
        q.shift = shift[c];
        q.e_minus_1 = q.shift < 0 ? -q.shift - 1 : 0;
        q.half = UINT32_C(1) << q.e_minus_1;
        dw_plane_gather(p, in, c, plane_w, plane);
        if (k3) {
            dw_plane_channel(p, plane, plane_w, wk, &q, out + c);
        } else {
            dw_plane_channel_any(p, plane, plane_w, wk, &q, out + c);
        }
    }
}

/* ---- the pixel path --------------------------------------------------------------------- */

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

static DW_PLANE_NOINLINE void dw_pixels(const tc_dwconv2d_params *p, const int8_t *in,
                                         const int8_t *w, const int32_t *bias,
                                         const int32_t *mult, const int32_t *shift,
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

/* Small 3x3 layers (dw_plane, out of place and in place) or the others out of place
 * (dw_pixels): two functions, whose stack buffers are never live together. */
void tc_dwconv2d_s8_fast(const tc_dwconv2d_params *p, const int8_t *in, const int8_t *w,
                         const int32_t *bias, const int32_t *mult, const int32_t *shift,
                         int8_t *out) {
    if (dw_plane_applicable(p)) {
        dw_plane(p, in, w, bias, mult, shift, out);
    } else {
        dw_pixels(p, in, w, bias, mult, shift, out);
    }
}

#endif /* TC_FAST_PORTABLE */
