/*
 * tinycc runtime: the SIMD variant of tc_conv2d_cb_s8 (ARMv7E-M DSP extension, or its host
 * emulation), bit-exact with the portable reference in tc_conv2d_cb_s8.c, which calls it for
 * each decoded tile of a layer with groups == 1.
 *
 * As tc_conv2d_s8's gathered path for int8 weights: output pixels go in pairs, in row-major
 * order over the band's rows (an odd last pixel runs twice). A pair's windows are gathered in
 * the weights' depth order (ky, kx, ic), with in_zp where a tap lies outside the image (windows
 * inside the image with kernel rows of whole groups straight from the input), and widened once
 * per tile to (x - in_zp) as int16 pairs in SXTB16's lane order (per 4 values (d0, d2) then
 * (d1, d3)): padded taps give 0, so border windows cost the same as interior ones. Every
 * channel pair of the tile then runs a 2x2 loop that widens only the decoded weights (17
 * instructions per 16 MACs in Thumb-2 assembly under TC_DSP_ASM, 24 as gcc compiles the C), and
 * an odd last channel a 1x2 loop. Against the former per-kernel-row runs of tc_dsp_taps_2x2
 * (both sides widened in the loop), Cortex-M4 on MLPerf: IC 3x3 tiles 2.03-2.28 -> 1.70-1.98,
 * KWS 10x4 first layer 10.3 -> 3.3 instructions per MAC; then the step and the widening in
 * assembly (17 instead of 20 per 16 MACs; 1.25 instead of 1.75 per value widened): IC 3x3 tiles
 * 1.98 / 2.34 / 1.87 -> 1.71 / 2.03 / 1.63. What is left over int8 on a tiled layer is mostly
 * each pixel's window widened once per tile (1.25 / tile_oc per MAC, int8: 1.25 / out_c) and
 * every row decoded once per band (about 3.5 per weight at 4 bits, over the band's pixels). Windows
 * deeper than CB_CHUNK values are summed chunk by chunk, the sums of up to CB_OC_BLOCK channels of
 * both pixels kept between chunks. Stack: 2 x CB_CHUNK x 2 B of widened values (the gathered
 * ones staged in their upper halves) and 2 x CB_OC_BLOCK x 4 B of sums: 832 B, as
 * tc_conv2d_s8's.
 */
#include "tc_codebook.h"
#include "tc_dot_s8_dsp.h"

#include <stddef.h>
#include <string.h>

#if TC_HAVE_DSP

/* The 2x2 loops' inline assembly takes 14 registers, which gcc can give only when it may use the
 * frame pointer too, i.e. when optimising, and clang 14 not at all: an -O0 (debug) build and a
 * clang build run the C loops (same sums). */
#if TC_DSP_ASM && defined(__OPTIMIZE__) && !defined(__clang__)
#define CB_INLINE_ASM 1
#else
#define CB_INLINE_ASM 0
#endif

/* One step of the 2x2 loops' assembly: 4 weights of both channels (w + depth, then w) against 4
 * widened values of both pixels (x + p1, x; one LDRD each), 16 MACs in 16 instructions, as
 * tc_conv2d_s8_asm.c's CONV2D_ASM_GROUP: one weight word widened at a time keeps the 4 widened
 * input words in registers (the former step loaded them one by one, 20 instructions with the
 * loop's test). */
#define CB_DOT_2X2_STEP \
    "ldrd %[xb0], %[xb1], [%[x], %[p1]]\n\t" \
    "ldrd %[xa0], %[xa1], [%[x]], #8\n\t" \
    "ldr %[v], [%[w], %[depth]]\n\t" \
    "sxtb16 %[t], %[v]\n\t" \
    "sxtb16 %[v], %[v], ror #8\n\t" \
    "smlad %[a01], %[xa0], %[t], %[a01]\n\t" \
    "smlad %[a11], %[xb0], %[t], %[a11]\n\t" \
    "smlad %[a01], %[xa1], %[v], %[a01]\n\t" \
    "smlad %[a11], %[xb1], %[v], %[a11]\n\t" \
    "ldr %[v], [%[w]], #4\n\t" \
    "sxtb16 %[t], %[v]\n\t" \
    "sxtb16 %[v], %[v], ror #8\n\t" \
    "smlad %[a00], %[xa0], %[t], %[a00]\n\t" \
    "smlad %[a10], %[xb0], %[t], %[a10]\n\t" \
    "smlad %[a00], %[xa1], %[v], %[a00]\n\t" \
    "smlad %[a10], %[xb1], %[v], %[a10]\n\t"

/* The step's register operands (14 with the loop's two: gcc gives them when optimising). */
#define CB_DOT_2X2_OUTPUTS(ACC) \
    [a00] ACC(a00), [a01] ACC(a01), [a10] ACC(a10), [a11] ACC(a11), [x] "+r"(x), [w] "+r"(w), \
    [v] "=&r"(v), [t] "=&r"(t), [xa0] "=&r"(xa0), [xa1] "=&r"(xa1), [xb0] "=&r"(xb0), \
    [xb1] "=&r"(xb1)
#define CB_ACC_INOUT(a) "+r"(a)
#define CB_ACC_OUT(a) "=&r"(a)

enum { CB_CHUNK = 144 };   /* window values widened at a time: a multiple of 8 */
enum { CB_OC_BLOCK = 32 }; /* channels whose sums are kept across chunks: even */

/* Pixel k's widened values take the words from k * CB_PIXEL. Its gathered int8 values are
 * staged in the upper half of its words (byte CB_CHUNK on), which the widening, walking up,
 * overwrites only after reading them (group g's words end at byte 8g + 8, the next group's
 * values start at CB_CHUNK + 4g + 4). */
enum { CB_PIXEL = CB_CHUNK / 2 };

typedef struct {
    uint32_t x[2 * CB_PIXEL];       /* words 2g, 2g + 1 = (d0, d2), (d1, d3) of group g */
    int32_t sums[2][CB_OC_BLOCK];   /* [pixel][channel of the block] */
} cb_pair_scratch;

static int8_t *cb_stage(cb_pair_scratch *s, int k) {
    return (int8_t *)(void *)(s->x + k * CB_PIXEL) + CB_CHUNK;
}

/* Values [d0, d0 + len) of the window of output pixel (oy, ox) in depth order (ky, kx, ic),
 * in_zp where a tap is outside the image. Runs: with dil_w == 1 the in-image taps of a kernel
 * row are contiguous in the input; otherwise tap by tap. */
static void cb_gather(const tc_conv2d_cb_params *p, const int8_t *in, int32_t oy, int32_t ox,
                      int32_t d0, int32_t len, int8_t *dst) {
    const int32_t iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
    const int32_t row_len = p->k_w * p->in_c, end = d0 + len;
    const int8_t zp = (int8_t)p->in_zp;
    int32_t d = d0;
    while (d < end) {
        const int32_t ky = d / row_len, row_end = TC_MIN(end, (ky + 1) * row_len);
        const int32_t iy = iy0 + ky * p->dil_h;
        int32_t v = d - ky * row_len; /* value within the kernel row */
        if (iy < 0 || iy >= p->in_h) {
            memset(dst + (d - d0), zp, (size_t)(row_end - d));
            d = row_end;
            continue;
        }
        while (d < row_end) { /* one run: the rest of a tap (dil_w > 1) or of the row */
            const int32_t kx = v / p->in_c, ix = ix0 + kx * p->dil_w;
            const int32_t run_end =
                p->dil_w == 1 ? row_end : TC_MIN(row_end, d + (kx + 1) * p->in_c - v);
            int32_t n = run_end - d;
            if (p->dil_w == 1) { /* in-image taps kx in [kx_lo, kx_hi): one copy */
                const int32_t kx_lo = ix0 < 0 ? -ix0 : 0;
                const int32_t kx_hi = TC_MIN(p->k_w, p->in_w - ix0);
                const int32_t lo = TC_MIN(n, TC_MAX(v, kx_lo * p->in_c) - v);
                const int32_t hi = TC_MAX(lo, TC_MIN(n, kx_hi * p->in_c - v));
                memset(dst + (d - d0), zp, (size_t)lo);
                memcpy(dst + (d - d0) + lo, in + (iy * p->in_w + ix0) * p->in_c + v + lo,
                       (size_t)(hi - lo));
                memset(dst + (d - d0) + hi, zp, (size_t)(n - hi));
            } else if (ix < 0 || ix >= p->in_w) {
                memset(dst + (d - d0), zp, (size_t)n);
            } else {
                memcpy(dst + (d - d0), in + (iy * p->in_w + ix) * p->in_c + (v - kx * p->in_c),
                       (size_t)n);
            }
            d += n;
            v += n;
        }
    }
}

/* `groups` 4-value groups at src widened into x (src may be x's staging half: each step reads
 * its groups before it writes their words, below the next step's groups). Each pixel's window
 * is widened once per tile, so this is the tiled path's main cost beside the 2x2 loops: the
 * assembly takes two groups per step (two loads, four SXTAB16, two STRD and the test: 10
 * instructions per 8 values, against 14 as gcc compiles the C). */
static void cb_widen(uint32_t *x, const int8_t *src, int32_t groups, uint32_t offset) {
    int32_t g = 0;
#if CB_INLINE_ASM
    if (groups > 1) {
        const int8_t *src_even = src + 4 * (groups & ~1);
        uint32_t v0, v1, e0, o0, e1, o1;
        __asm__ volatile(
            "1:\n\t"
            "ldr %[v0], [%[src]], #4\n\t"
            "ldr %[v1], [%[src]], #4\n\t"
            "sxtab16 %[e0], %[off], %[v0]\n\t"
            "sxtab16 %[o0], %[off], %[v0], ror #8\n\t"
            "sxtab16 %[e1], %[off], %[v1]\n\t"
            "sxtab16 %[o1], %[off], %[v1], ror #8\n\t"
            "strd %[e0], %[o0], [%[x]], #8\n\t"
            "strd %[e1], %[o1], [%[x]], #8\n\t"
            "cmp %[src], %[src_even]\n\t"
            "bne 1b\n\t"
            : [x] "+r"(x), [src] "+r"(src), [v0] "=&r"(v0), [v1] "=&r"(v1), [e0] "=&r"(e0),
              [o0] "=&r"(o0), [e1] "=&r"(e1), [o1] "=&r"(o1)
            : [off] "r"(offset), [src_even] "r"(src_even)
            : "cc", "memory");
        groups &= 1; /* x and src now at the odd last group, if any */
    }
#endif
    for (; g < groups; ++g) {
        const uint32_t v = tc_read_s8x4(src + 4 * g);
        x[2 * g] = tc_sxtab16(offset, v);
        x[2 * g + 1] = tc_sxtab16_ror8(offset, v);
    }
}

/* Values [d0, d0 + len) of the window of output pixel pix widened into pixel k's words. A
 * window inside the image whose kernel rows are whole groups (dil_w 1) is widened straight from
 * the input, row piece by row piece; any other is gathered into the staging half first. */
static void cb_stage_pixel(const tc_conv2d_cb_params *p, const int8_t *in, int32_t pix, int32_t d0,
                           int32_t len, cb_pair_scratch *s, int k, uint32_t offset) {
    const int32_t oy = pix / p->out_w, ox = pix - oy * p->out_w;
    const int32_t iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
    const int32_t row_len = p->k_w * p->in_c;
    uint32_t *x = s->x + k * CB_PIXEL;
    if (p->dil_w == 1 && (row_len & 3) == 0 && iy0 >= 0 && ix0 >= 0 &&
        iy0 + (p->k_h - 1) * p->dil_h < p->in_h && ix0 + p->k_w <= p->in_w) {
        int32_t d = d0;
        while (d < d0 + len) { /* whole groups: d0, len and row_len are multiples of 4 */
            const int32_t ky = d / row_len, v = d - ky * row_len;
            const int32_t n = TC_MIN(d0 + len, (ky + 1) * row_len) - d;
            cb_widen(x + ((d - d0) >> 1), in + ((iy0 + ky * p->dil_h) * p->in_w + ix0) * p->in_c + v,
                     n >> 2, offset);
            d += n;
        }
        return;
    }
    cb_gather(p, in, oy, ox, d0, len, cb_stage(s, k));
    memset(cb_stage(s, k) + len, p->in_zp, (size_t)(-len & 3));
    cb_widen(x, cb_stage(s, k), (len + 3) >> 2, offset);
}

/* The first n (1..3) weights at w in a word, zero above (a window's short last group: never a
 * read past the decoded rows). */
static uint32_t cb_tail_word(const int8_t *w, int32_t n) {
    uint32_t v = 0;
    int32_t i;
    for (i = 0; i < n; ++i) v |= (uint32_t)(uint8_t)w[i] << (8 * i);
    return v;
}

/* acc[0..3] += pixel 0 . w, pixel 0 . (w + depth), pixel 1 . w, pixel 1 . (w + depth) over
 * `groups` whole groups and a last group of `tail` (0..3) values; x: the widened pair. */
static TC_DSP_NOINLINE void cb_dot_2x2(const uint32_t *x, const int8_t *w, int32_t depth,
                                       int32_t groups, int32_t tail, int32_t acc[4]) {
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    const int8_t *w_end = w + 4 * groups;
#if CB_INLINE_ASM
    /* The loop below by hand over the even groups, two steps per test: 17 instructions per 16
     * MACs (gcc: 24, it spills one of the 14 registers); an odd last group in the C. */
    if (groups > 1) {
        const int8_t *w_even = w + 4 * (groups & ~1);
        uint32_t v, t, xa0, xa1, xb0, xb1;
        __asm__ volatile(
            "1:\n\t"
            CB_DOT_2X2_STEP
            CB_DOT_2X2_STEP
            "cmp %[w], %[w_even]\n\t"
            "bne 1b\n\t"
            : CB_DOT_2X2_OUTPUTS(CB_ACC_INOUT)
            : [depth] "r"(depth), [w_even] "r"(w_even), [p1] "i"(4 * CB_PIXEL)
            : "cc", "memory");
    }
#endif
    while (w != w_end) {
        const uint32_t v0 = tc_read_s8x4(w), v1 = tc_read_s8x4(w + depth);
        const uint32_t w0e = tc_sxtb16(v0), w1e = tc_sxtb16(v1);
        const uint32_t x0e = x[0], x1e = x[CB_PIXEL];
        a00 = tc_smlad(x0e, w0e, a00);
        a01 = tc_smlad(x0e, w1e, a01);
        a10 = tc_smlad(x1e, w0e, a10);
        a11 = tc_smlad(x1e, w1e, a11);
        {
            const uint32_t w0o = tc_sxtb16_ror8(v0), w1o = tc_sxtb16_ror8(v1);
            const uint32_t x0o = x[1], x1o = x[CB_PIXEL + 1];
            a00 = tc_smlad(x0o, w0o, a00);
            a01 = tc_smlad(x0o, w1o, a01);
            a10 = tc_smlad(x1o, w0o, a10);
            a11 = tc_smlad(x1o, w1o, a11);
        }
        w += 4;
        x += 2;
    }
    if (tail) {
        const uint32_t v0 = cb_tail_word(w, tail), v1 = cb_tail_word(w + depth, tail);
        const uint32_t w0e = tc_sxtb16(v0), w0o = tc_sxtb16_ror8(v0);
        const uint32_t w1e = tc_sxtb16(v1), w1o = tc_sxtb16_ror8(v1);
        a00 = tc_smlad(x[1], w0o, tc_smlad(x[0], w0e, a00));
        a01 = tc_smlad(x[1], w1o, tc_smlad(x[0], w1e, a01));
        a10 = tc_smlad(x[CB_PIXEL + 1], w0o, tc_smlad(x[CB_PIXEL], w0e, a10));
        a11 = tc_smlad(x[CB_PIXEL + 1], w1o, tc_smlad(x[CB_PIXEL], w1e, a11));
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

#if CB_INLINE_ASM
/* cb_dot_2x2_pairs' assembly around a loop BODY of steps: the sums from zero, the window's
 * steps, the 4 sums stored, x back to the window's start, w over the pair's second row. */
#define CB_PAIRS_ASM(BODY) \
    "2:\n\t" \
    "mov %[a00], #0\n\t" \
    "mov %[a01], #0\n\t" \
    "mov %[a10], #0\n\t" \
    "mov %[a11], #0\n\t" \
    "1:\n\t" \
    BODY \
    "cmp %[x], %[x_end]\n\t" \
    "bne 1b\n\t" \
    "ldr %[xa0], %[sums]\n\t" \
    "str %[a00], [%[xa0]], #4\n\t" \
    "str %[a01], [%[xa0]], #4\n\t" \
    "str %[a10], [%[xa0]], #4\n\t" \
    "str %[a11], [%[xa0]], #4\n\t" \
    "str %[xa0], %[sums]\n\t" \
    "sub %[x], %[x], %[depth], lsl #1\n\t" \
    "add %[w], %[w], %[depth]\n\t" \
    "ldr %[xb0], %[w_stop]\n\t" \
    "cmp %[w], %[xb0]\n\t" \
    "bne 2b\n\t"
#endif

/* All `pairs` channel pairs of a one-chunk window of whole groups (depth a multiple of 4, > 0):
 * sums[4k..4k+3] = pixel 0 . row 2k, pixel 0 . row 2k+1, pixel 1 . row 2k, pixel 1 . row 2k+1,
 * from zero. One job for the pairs: the per-pair call of cb_dot_2x2 (register saves, the sums
 * through memory, the arguments) was 10-15 % of a pair's 20 (now 17) instructions per 16
 * MACs at depth 40-64. The assembly keeps the inner loop's 14 registers: the pair loop ends its
 * window by x (the same words for every pair), steps w over the pair's second row, and keeps the
 * sums pointer and the last row's end in memory. */
static TC_DSP_NOINLINE void cb_dot_2x2_pairs(const uint32_t *x, const int8_t *w, int32_t depth,
                                             int32_t pairs, int32_t *sums) {
#if CB_INLINE_ASM
    const uint32_t *x_end = x + (depth >> 1);
    const int8_t *w_stop = w + 2 * pairs * depth;
    int32_t a00, a01, a10, a11;
    uint32_t v, t, xa0, xa1, xb0, xb1;
    if ((depth & 7) == 0) { /* an even number of groups: two steps per test */
        __asm__ volatile(CB_PAIRS_ASM(CB_DOT_2X2_STEP CB_DOT_2X2_STEP)
                         : CB_DOT_2X2_OUTPUTS(CB_ACC_OUT), [sums] "+m"(sums)
                         : [depth] "r"(depth), [x_end] "r"(x_end), [w_stop] "m"(w_stop),
                           [p1] "i"(4 * CB_PIXEL)
                         : "cc", "memory");
    } else {
        __asm__ volatile(CB_PAIRS_ASM(CB_DOT_2X2_STEP)
                         : CB_DOT_2X2_OUTPUTS(CB_ACC_OUT), [sums] "+m"(sums)
                         : [depth] "r"(depth), [x_end] "r"(x_end), [w_stop] "m"(w_stop),
                           [p1] "i"(4 * CB_PIXEL)
                         : "cc", "memory");
    }
#else
    int32_t k;
    for (k = 0; k < pairs; ++k) {
        sums[4 * k] = sums[4 * k + 1] = sums[4 * k + 2] = sums[4 * k + 3] = 0;
        cb_dot_2x2(x, w + 2 * k * depth, depth, depth >> 2, 0, sums + 4 * k);
    }
#endif
}

/* acc[0..1] += pixel 0 . w, pixel 1 . w (an odd last channel). */
static TC_DSP_NOINLINE void cb_dot_1x2(const uint32_t *x, const int8_t *w, int32_t groups,
                                       int32_t tail, int32_t acc[2]) {
    int32_t a0 = acc[0], a1 = acc[1];
    const int8_t *w_end = w + 4 * groups;
    while (w != w_end) {
        const uint32_t v = tc_read_s8x4(w);
        const uint32_t we = tc_sxtb16(v), wo = tc_sxtb16_ror8(v);
        a0 = tc_smlad(x[1], wo, tc_smlad(x[0], we, a0));
        a1 = tc_smlad(x[CB_PIXEL + 1], wo, tc_smlad(x[CB_PIXEL], we, a1));
        w += 4;
        x += 2;
    }
    if (tail) {
        const uint32_t v = cb_tail_word(w, tail);
        const uint32_t we = tc_sxtb16(v), wo = tc_sxtb16_ror8(v);
        a0 = tc_smlad(x[1], wo, tc_smlad(x[0], we, a0));
        a1 = tc_smlad(x[CB_PIXEL + 1], wo, tc_smlad(x[CB_PIXEL], we, a1));
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* The outputs of `pairs` channel pairs from c on of a pixel pair (sums as cb_dot_2x2_pairs lays
 * them out: per pair pixel 0 . c, pixel 0 . c + 1, pixel 1 . c, pixel 1 . c + 1) into ya[k..],
 * yb[k..], as tc_conv2d_s8's pair outputs (tc_conv2d_s8_dsp.c::conv2d_pair_outputs_rq)
 * compute them: tc_dsp_rq (an SMLAL, a shift and SSAT, the zero point in its constant) where a
 * channel's shift suits it, else tc_requant_s8_nonneg out of line; then the fused activation's
 * clamp when there is one (`clamp`: instantiated with and without). */
static inline void cb_outputs_rq(const tc_dsp_requant *q, int32_t c, const int32_t *sums,
                                 int32_t pairs, int8_t *ya, int8_t *yb, const int clamp) {
    const int32_t *bias = q->bias, *mult = q->mult, *shift = q->shift;
    const int32_t out_zp = q->out_zp, act_min = q->act_min, act_max = q->act_max;
    int32_t j;
    for (j = 0; j < 2 * pairs; ++j) {
        const int32_t ch = c + j, sh = shift[ch], m = mult[ch];
        const int32_t b = bias != NULL ? bias[ch] : 0;
        const int32_t s0 = sums[4 * (j >> 1) + (j & 1)], s1 = sums[4 * (j >> 1) + (j & 1) + 2];
        int32_t v0, v1;
        if (tc_dsp_rq_applies(sh)) {
            const int32_t khi = tc_dsp_rq_khi(sh, out_zp), e1 = -sh - 1;
            v0 = tc_dsp_rq(s0 + b, m, khi, e1);
            v1 = tc_dsp_rq(s1 + b, m, khi, e1);
            if (clamp) {
                v0 = TC_MIN(TC_MAX(v0, act_min), act_max);
                v1 = TC_MIN(TC_MAX(v1, act_min), act_max);
            }
            ya[j] = (int8_t)v0;
            yb[j] = (int8_t)v1;
        } else {
            ya[j] = tc_requant_call(s0 + b, m, sh, q);
            yb[j] = tc_requant_call(s1 + b, m, sh, q);
        }
    }
}

/* cb_outputs_rq for a layer without (clamp 0) or with a fused activation clamp. The generic
 * tc_dsp_output_2x2 (tc_requant_s8_nonneg per output) costs about a third more. */
static TC_DSP_NOINLINE void cb_outputs(const tc_dsp_requant *q, int32_t c, const int32_t *sums,
                                       int32_t pairs, int8_t *ya, int8_t *yb) {
    if (q->act_min == -128 && q->act_max == 127) {
        cb_outputs_rq(q, c, sums, pairs, ya, yb, 0);
    } else {
        cb_outputs_rq(q, c, sums, pairs, ya, yb, 1);
    }
}

static TC_DSP_NOINLINE void cb_tile_gathered(const tc_conv2d_cb_params *p, const int8_t *in,
                                              const int8_t *w, int32_t c0, int32_t n, int32_t r0,
                                              int32_t r1, const tc_dsp_requant *qp, int8_t *out) {
    const tc_dsp_requant q = *qp;
    const int32_t depth = p->k_h * p->k_w * p->in_c;
    const int32_t first = r0 * p->out_w, pixels = (r1 - r0) * p->out_w;
    const uint32_t offset = tc_dsp_input_offset(p->in_zp);
    cb_pair_scratch s;
    int32_t pix, b0, d0, c;
    for (pix = 0; pix < pixels; pix += 2) {
        const int32_t pa = first + pix, pb = first + TC_MIN(pix + 1, pixels - 1);
        int8_t *ya = out + pa * p->out_c + c0, *yb = out + pb * p->out_c + c0;
        if (depth <= CB_CHUNK) { /* one chunk: each channel pair summed and requantized at once */
            cb_stage_pixel(p, in, pa, 0, depth, &s, 0, offset);
            cb_stage_pixel(p, in, pb, 0, depth, &s, 1, offset);
            c = 0;
            if ((depth & 3) == 0) { /* whole groups: the pairs of a block in one job */
                int32_t *sums = &s.sums[0][0];
                for (; c + 2 <= n; c += CB_OC_BLOCK) {
                    const int32_t pairs = TC_MIN(CB_OC_BLOCK, n - c) >> 1;
                    cb_dot_2x2_pairs(s.x, w + c * depth, depth, pairs, sums);
                    cb_outputs(&q, c0 + c, sums, pairs, ya + c, yb + c);
                }
                c = n & ~1;
            }
            for (; c + 2 <= n; c += 2) {
                int32_t acc[4] = {0, 0, 0, 0};
                cb_dot_2x2(s.x, w + c * depth, depth, depth >> 2, depth & 3, acc);
                cb_outputs(&q, c0 + c, acc, 1, ya + c, yb + c);
            }
            if (c < n) {
                int32_t acc[2] = {0, 0};
                cb_dot_1x2(s.x, w + c * depth, depth >> 2, depth & 3, acc);
                ya[c] = tc_dsp_output_call(&q, c0 + c, acc[0]);
                yb[c] = tc_dsp_output_call(&q, c0 + c, acc[1]);
            }
            continue;
        }
        for (b0 = 0; b0 < n; b0 += CB_OC_BLOCK) { /* a block of channels: sums across chunks */
            const int32_t bn = TC_MIN(CB_OC_BLOCK, n - b0);
            for (c = 0; c < bn; ++c) s.sums[0][c] = s.sums[1][c] = 0;
            for (d0 = 0; d0 < depth; d0 += CB_CHUNK) {
                const int32_t len = TC_MIN(CB_CHUNK, depth - d0);
                const int32_t groups = len >> 2, tail = len & 3;
                cb_stage_pixel(p, in, pa, d0, len, &s, 0, offset);
                cb_stage_pixel(p, in, pb, d0, len, &s, 1, offset);
                for (c = 0; c + 2 <= bn; c += 2) {
                    const int8_t *w0 = w + (b0 + c) * depth + d0;
                    int32_t acc[4];
                    acc[0] = s.sums[0][c];
                    acc[1] = s.sums[0][c + 1];
                    acc[2] = s.sums[1][c];
                    acc[3] = s.sums[1][c + 1];
                    cb_dot_2x2(s.x, w0, depth, groups, tail, acc);
                    s.sums[0][c] = acc[0];
                    s.sums[0][c + 1] = acc[1];
                    s.sums[1][c] = acc[2];
                    s.sums[1][c + 1] = acc[3];
                }
                if (c < bn) {
                    int32_t acc[2];
                    acc[0] = s.sums[0][c];
                    acc[1] = s.sums[1][c];
                    cb_dot_1x2(s.x, w + (b0 + c) * depth + d0, groups, tail, acc);
                    s.sums[0][c] = acc[0];
                    s.sums[1][c] = acc[1];
                }
            }
            { /* the block's sums in cb_outputs' pair layout, in the window words (staged again
               * for the next block): one call for the block, not one per channel pair */
                int32_t *quad = (int32_t *)(void *)s.x;
                for (c = 0; c + 2 <= bn; c += 2) {
                    quad[2 * c] = s.sums[0][c];
                    quad[2 * c + 1] = s.sums[0][c + 1];
                    quad[2 * c + 2] = s.sums[1][c];
                    quad[2 * c + 3] = s.sums[1][c + 1];
                }
                cb_outputs(&q, c0 + b0, quad, bn >> 1, ya + b0, yb + b0);
            }
            if (c < bn) {
                ya[b0 + c] = tc_dsp_output_call(&q, c0 + b0 + c, s.sums[0][c]);
                yb[b0 + c] = tc_dsp_output_call(&q, c0 + b0 + c, s.sums[1][c]);
            }
        }
    }
}

void tc_conv2d_cb_s8_tile_dsp(const tc_conv2d_cb_params *p, const int8_t *in, const int8_t *w,
                              int32_t c0, int32_t n, int32_t r0, int32_t r1,
                              const int32_t *bias, const int32_t *mult, const int32_t *shift,
                              int8_t *out) {
    const tc_dsp_requant q =
        tc_dsp_make_requant(bias, mult, shift, p->out_zp, p->act_min, p->act_max);
    cb_tile_gathered(p, in, w, c0, n, r0, r1, &q, out);
}

#endif /* TC_HAVE_DSP */
