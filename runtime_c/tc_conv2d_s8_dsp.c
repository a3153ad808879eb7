/*
 * tinycc runtime: the SIMD variant of tc_conv2d_s8 (ARMv7E-M DSP extension, or its host
 * emulation), bit-exact with the portable reference in tc_conv2d_s8.c, which calls it for the
 * layers conv2d_dsp_applicable accepts. Its hot loop is hand-written assembly on GNU Thumb-2
 * builds (tc_conv2d_s8_asm.c, TC_DSP_ASM), C functions of the same arithmetic otherwise.
 */
#include "tc_conv.h"
#include "tc_dot_s8_dsp.h"

#include <stddef.h>
#include <string.h>

#if TC_HAVE_DSP
/*
 * The in-image taps of one output pixel, as runs of contiguous int8 values laid out alike in
 * the input (from input element x_offset, channel 0 of the first tap) and in every output
 * channel's weights (from w_offset). With groups == 1 and dil_w == 1 the taps of a kernel row
 * are one run of taps * in_c values; otherwise each tap is a run of in_c / groups values.
 */
typedef struct {
    int32_t x_offset, w_offset;
    tc_dsp_taps taps;
} conv2d_window;

static conv2d_window conv2d_make_window(const tc_conv2d_params *p, int32_t oy, int32_t ox) {
    const int32_t group_c = p->in_c / p->groups;
    const int32_t in_y0 = oy * p->stride_h - p->pad_top;
    const int32_t in_x0 = ox * p->stride_w - p->pad_left;
    const int contiguous = p->groups == 1 && p->dil_w == 1;
    int32_t ky_lo, ky_hi, kx_lo, kx_hi, taps_x;
    conv2d_window win;
    tc_dsp_tap_range(in_y0, p->dil_h, p->in_h, p->k_h, &ky_lo, &ky_hi);
    tc_dsp_tap_range(in_x0, p->dil_w, p->in_w, p->k_w, &kx_lo, &kx_hi);
    taps_x = kx_hi - kx_lo;
    win.taps.rows = taps_x > 0 ? ky_hi - ky_lo : 0;
    if (win.taps.rows > 0) {
        win.x_offset =
            ((in_y0 + ky_lo * p->dil_h) * p->in_w + in_x0 + kx_lo * p->dil_w) * p->in_c;
        win.w_offset = (ky_lo * p->k_w + kx_lo) * group_c;
    } else { /* no tap inside the image: nothing is read */
        win.x_offset = win.w_offset = 0;
    }
    win.taps.runs = contiguous ? 1 : taps_x;
    win.taps.run_len = contiguous ? taps_x * p->in_c : group_c;
    win.taps.x_row = p->dil_h * p->in_w * p->in_c;
    win.taps.w_row = p->k_w * group_c;
    win.taps.x_run = p->dil_w * p->in_c;
    win.taps.w_run = group_c;
    return win;
}

static int conv2d_same_taps(const conv2d_window *a, const conv2d_window *b) {
    return a->w_offset == b->w_offset && a->taps.rows == b->taps.rows &&
           a->taps.runs == b->taps.runs && a->taps.run_len == b->taps.run_len;
}

/* All output channels of pixels y and y + out_c, whose windows have the same taps; x and w
 * point at the first tap of the first pixel and of output channel 0. */
static void conv2d_pixel_pair(const tc_conv2d_params *p, const conv2d_window *win,
                              const int8_t *x, int32_t x_step, const int8_t *w,
                              const tc_dsp_requant *q, int8_t *y) {
    const tc_dsp_requant rq = *q; /* a local copy: stores through y cannot change it */
    const int32_t group_c = p->in_c / p->groups;
    const int32_t group_oc = p->out_c / p->groups;
    const int32_t w_oc = p->k_h * p->k_w * group_c;
    int32_t g, oc, acc[4];
    for (g = 0; g < p->groups; ++g) {
        const int8_t *x_g = x + g * group_c;
        const int32_t oc_end = (g + 1) * group_oc;
        for (oc = g * group_oc; oc + 2 <= oc_end; oc += 2) {
            int8_t results[4];
            tc_dsp_taps_2x2(&win->taps, x_g, x_step, w + oc * w_oc, w_oc, p->in_zp, acc);
            tc_dsp_output_2x2(&rq, oc, acc, results);
            y[oc] = results[0];
            y[oc + 1] = results[1];
            y[p->out_c + oc] = results[2];
            y[p->out_c + oc + 1] = results[3];
        }
        if (oc < oc_end) {
            const int8_t *w_oc_ptr = w + oc * w_oc;
            const int32_t acc0 = tc_dsp_taps_1x1(&win->taps, x_g, w_oc_ptr, p->in_zp);
            const int32_t acc1 = tc_dsp_taps_1x1(&win->taps, x_g + x_step, w_oc_ptr, p->in_zp);
            y[oc] = tc_dsp_output_call(&rq, oc, acc0);
            y[p->out_c + oc] = tc_dsp_output_call(&rq, oc, acc1);
        }
    }
}

/* All output channels of the single pixel y (pixels near the left and right borders, and a
 * row's odd last pixel: off the hot path). */
static void conv2d_pixel(const tc_conv2d_params *p, const conv2d_window *win, const int8_t *x,
                         const int8_t *w, const tc_dsp_requant *q, int8_t *y) {
    const tc_dsp_requant rq = *q;
    const int32_t group_c = p->in_c / p->groups;
    const int32_t group_oc = p->out_c / p->groups;
    const int32_t w_oc = p->k_h * p->k_w * group_c;
    int32_t g, oc, c, acc[4];
    for (g = 0; g < p->groups; ++g) {
        const int8_t *x_g = x + g * group_c;
        const int32_t oc_end = (g + 1) * group_oc;
        for (oc = g * group_oc; oc + 4 <= oc_end; oc += 4) {
            tc_dsp_taps_1x4(&win->taps, x_g, w + oc * w_oc, w_oc, p->in_zp, acc);
            for (c = 0; c < 4; ++c) y[oc + c] = tc_dsp_output_call(&rq, oc + c, acc[c]);
        }
        for (; oc < oc_end; ++oc) {
            y[oc] = tc_dsp_output_call(
                &rq, oc, tc_dsp_taps_1x1(&win->taps, x_g, w + oc * w_oc, p->in_zp));
        }
    }
}

/*
 * Gathered path (groups == 1, dil_w == 1): each output pixel's window, in the weights' depth
 * order (ky, kx, ic), is widened once to (x - in_zp) as int16 pairs in the lane order of
 * SXTB16 (per 4 values (d0, d2) then (d1, d3)), with x = in_zp where a tap lies outside the
 * image. Every output channel of a pixel pair then runs a 2x2 loop that widens only the
 * weights (31 instructions per 32 MACs in the assembly, 36 to 38 in C, against 46 when both
 * sides are widened in the loop), and the 2x2 block's four sums are requantized together.
 * Padded taps give x - in_zp = 0, so border windows cost the same as interior ones and any two
 * pixels can be paired.
 * Windows deeper than CONV2D_CHUNK values are summed chunk by chunk; between chunks the partial
 * sums of up to CONV2D_OC_BLOCK output channels of both pixels are kept on the stack.
 * Stack: 2 x CONV2D_CHUNK x 2 B = 576 B of widened input, CONV2D_CHUNK B of int8 staging,
 * plus 2 x CONV2D_OC_BLOCK x 4 B = 256 B of sums.
 */
enum { CONV2D_CHUNK = 144 };   /* a multiple of 8 */
enum { CONV2D_OC_BLOCK = 32 }; /* even */
/* Windows of up to this many values run their last channel pair on a padded copy of its
 * weights (72 bytes, in the upper half of the sums buffer, which the assembly path leaves
 * unused: its edge channels are at most 3) rather than on the exact-read C path (first
 * layers). */
enum { CONV2D_TAIL_DEPTH = 32 };
typedef char conv2d_tail_fits[(2 * CONV2D_TAIL_DEPTH + 8 <= 2 * CONV2D_OC_BLOCK * 2) ? 1 : -1];

/* Two pixels' widened windows interleaved by 4-value group: group g of pixel k is the words
 * x[4g + 2k] (lanes (0, 2)) and x[4g + 2k + 1] (lanes (1, 3)), so that the hot loop fetches a
 * group of both pixels with one LDM. Values gathered as int8 are staged in `staged` first. */
enum { CONV2D_GROUP_WORDS = 4 }; /* words of a group of both pixels */

typedef struct {
    uint32_t x[CONV2D_CHUNK];
    int8_t staged[CONV2D_CHUNK];
} conv2d_scratch;

/* Where an output pixel's window starts in the input (may be outside: padding). */
typedef struct {
    int32_t iy0, ix0;
} conv2d_origin;

static conv2d_origin conv2d_origin_at(const tc_conv2d_params *p, int32_t oy, int32_t ox) {
    conv2d_origin o;
    o.iy0 = oy * p->stride_h - p->pad_top;
    o.ix0 = ox * p->stride_w - p->pad_left;
    return o;
}

/* n bytes from src to dst, a word at a time (runs of a few values: a memcpy call costs more). */
static void conv2d_copy(int8_t *dst, const int8_t *src, int32_t n) {
    for (; n >= 4; n -= 4, src += 4, dst += 4) {
        const uint32_t v = tc_read_s8x4(src);
        memcpy(dst, &v, sizeof v);
    }
    for (; n > 0; --n) *dst++ = *src++;
}

/* Values [d0, d0 + len) of the window at o in depth order, in_zp outside the image. */
static void conv2d_gather(const tc_conv2d_params *p, const int8_t *in, conv2d_origin o,
                          int32_t d0, int32_t len, int8_t *dst) {
    const int32_t row_len = p->k_w * p->in_c;
    const int zp = (int)p->in_zp;
    int32_t kx_lo, kx_hi, ky = d0 / row_len, j = d0 - ky * row_len;
    tc_dsp_tap_range(o.ix0, 1, p->in_w, p->k_w, &kx_lo, &kx_hi);
    while (len > 0) {
        const int32_t n = TC_MIN(row_len - j, len);
        const int32_t iy = o.iy0 + ky * p->dil_h;
        if (iy < 0 || iy >= p->in_h) {
            memset(dst, zp, (size_t)n);
        } else { /* kernel-row values [a, b) lie in the image */
            const int32_t a = TC_MIN(TC_MAX(kx_lo * p->in_c, j), j + n);
            const int32_t b = TC_MIN(TC_MAX(kx_hi * p->in_c, a), j + n);
            if (a > j) memset(dst, zp, (size_t)(a - j));
            if (b > a) conv2d_copy(dst + (a - j), in + ((iy * p->in_w + o.ix0) * p->in_c + a), b - a);
            if (j + n > b) memset(dst + (b - j), zp, (size_t)(j + n - b));
        }
        dst += n;
        len -= n;
        j = 0;
        ++ky;
    }
}

/* Widens the `groups` 4-value groups at src into one pixel's words of the interleaved scratch
 * (x: the pixel's words of the first group). */
static void conv2d_widen(uint32_t *x, const int8_t *src, int32_t groups, uint32_t offset) {
    int32_t g;
    for (g = 0; g < groups; ++g, x += CONV2D_GROUP_WORDS) {
        const uint32_t v = tc_read_s8x4(src + 4 * g);
        x[0] = tc_sxtab16(offset, v);
        x[1] = tc_sxtab16_ror8(offset, v);
    }
}

/* Widens `groups` 4-value groups of both pixels, at src0 and src1, into the interleaved scratch:
 * one loop for the pair (two reads, four extends, the group's four words stored together). */
static void conv2d_widen_pair(uint32_t *x, const int8_t *src0, const int8_t *src1,
                              int32_t groups, uint32_t offset) {
    for (; groups > 0; --groups, src0 += 4, src1 += 4, x += CONV2D_GROUP_WORDS) {
        const uint32_t v0 = tc_read_s8x4(src0), v1 = tc_read_s8x4(src1);
        x[0] = tc_sxtab16(offset, v0);
        x[1] = tc_sxtab16_ror8(offset, v0);
        x[2] = tc_sxtab16(offset, v1);
        x[3] = tc_sxtab16_ror8(offset, v1);
    }
}

/* Zeros one pixel's words of `groups` groups of the interleaved scratch (padding: in_zp widened
 * with the input offset). */
static void conv2d_zero(uint32_t *x, int32_t groups) {
    for (; groups > 0; --groups, x += CONV2D_GROUP_WORDS) x[0] = x[1] = 0;
}

/* Widens values [d0, d0 + len) (whole groups) of the window at o, all inside the image. */
static void conv2d_widen_inside(const tc_conv2d_params *p, const int8_t *in, conv2d_origin o,
                                int32_t d0, int32_t len, uint32_t *x) {
    const int32_t row_len = p->k_w * p->in_c;
    const uint32_t offset = tc_dsp_input_offset(p->in_zp);
    int32_t ky = d0 / row_len, j = d0 - ky * row_len;
    const int8_t *src = in + ((o.iy0 + ky * p->dil_h) * p->in_w + o.ix0) * p->in_c;
    const int32_t row_step = p->dil_h * p->in_w * p->in_c;
    while (len > 0) {
        const int32_t n = TC_MIN(row_len - j, len);
        conv2d_widen(x, src + j, n >> 2, offset);
        x += n; /* n / 4 groups of CONV2D_GROUP_WORDS words */
        len -= n;
        j = 0;
        src += row_step;
    }
}

/* Widens values [d0, d0 + len) of a window at o that reaches into the padding, when in_c is a
 * multiple of 4 (so are d0, len and every row's in-image part): the in-image parts straight
 * from the input, the padding as zero words (in_zp widened with the input offset is 0). Same
 * words as conv2d_gather + conv2d_widen, without the byte copy. Value v of the row is in the
 * pixel's words of group v / 4, v words from the row's first (CONV2D_GROUP_WORDS per group). */
static void conv2d_widen_padded(const tc_conv2d_params *p, const int8_t *in, conv2d_origin o,
                                int32_t d0, int32_t len, uint32_t *x) {
    const int32_t row_len = p->k_w * p->in_c;
    const uint32_t offset = tc_dsp_input_offset(p->in_zp);
    int32_t kx_lo, kx_hi, ky = d0 / row_len, j = d0 - ky * row_len;
    tc_dsp_tap_range(o.ix0, 1, p->in_w, p->k_w, &kx_lo, &kx_hi);
    while (len > 0) {
        const int32_t n = TC_MIN(row_len - j, len);
        const int32_t iy = o.iy0 + ky * p->dil_h;
        if (iy < 0 || iy >= p->in_h) {
            conv2d_zero(x, n >> 2);
        } else { /* kernel-row values [a, b) lie in the image */
            const int32_t a = TC_MIN(TC_MAX(kx_lo * p->in_c, j), j + n);
            const int32_t b = TC_MIN(TC_MAX(kx_hi * p->in_c, a), j + n);
            if (a > j) conv2d_zero(x, (a - j) >> 2);
            if (b > a) {
                conv2d_widen(x + (a - j), in + ((iy * p->in_w + o.ix0) * p->in_c + a),
                             (b - a) >> 2, offset);
            }
            if (j + n > b) conv2d_zero(x + (b - j), (j + n - b) >> 2);
        }
        x += n;
        len -= n;
        j = 0;
        ++ky;
    }
}

/* A window inside the image whose rows are not whole groups (a first layer: 3 channels):
 * `rows` rows of row_len values row_step apart from src, copied one after the other to the
 * staging bytes, padded with in_zp to `groups` groups and widened into x (one pixel's words). */
static void conv2d_stage_rows(uint32_t *x, int8_t *staged, const int8_t *src, int32_t rows,
                              int32_t row_len, int32_t row_step, int32_t groups, int8_t in_zp,
                              uint32_t offset) {
    int8_t *dst = staged;
    const uint32_t zp4 = (uint32_t)(uint8_t)in_zp * UINT32_C(0x01010101);
    int32_t r;
    /* the last group as in_zp first: the rows then overwrite the part of it they cover */
    memcpy(staged + 4 * (groups - 1), &zp4, sizeof zp4);
    for (r = 0; r < rows; ++r, src += row_step, dst += row_len) conv2d_copy(dst, src, row_len);
    conv2d_widen(x, staged, groups, offset);
}

/* Gathers and widens values [d0, d0 + len) of the window at o into x (one pixel's words; int8
 * values staged in `staged` when they cannot be widened straight from the input), and zeros
 * the group after them when their count is odd (the hot loop reads groups in pairs). */
static void conv2d_stage(const tc_conv2d_params *p, const int8_t *in, conv2d_origin o,
                         int32_t d0, int32_t len, uint32_t *x, int8_t *staged) {
    const int32_t groups = (len + 3) >> 2;
    const int32_t row_len = p->k_w * p->in_c;
    const uint32_t offset = tc_dsp_input_offset(p->in_zp);
    const int inside = o.iy0 >= 0 && o.ix0 >= 0 &&
                       o.iy0 + (p->k_h - 1) * p->dil_h < p->in_h && o.ix0 + p->k_w <= p->in_w;
    if (inside && (len & 3) == 0 && (row_len & 3) == 0) {
        conv2d_widen_inside(p, in, o, d0, len, x);
    } else if ((p->in_c & 3) == 0 && (d0 & 3) == 0 && (len & 3) == 0) {
        conv2d_widen_padded(p, in, o, d0, len, x);
    } else {
        if (inside && d0 == 0 && len == p->k_h * row_len) { /* whole rows, no padding */
            conv2d_stage_rows(x, staged, in + (o.iy0 * p->in_w + o.ix0) * p->in_c, p->k_h,
                              row_len, p->dil_h * p->in_w * p->in_c, groups, (int8_t)p->in_zp,
                              offset);
        } else {
            conv2d_gather(p, in, o, d0, len, staged);
            if (4 * groups > len) memset(staged + len, (int)p->in_zp, (size_t)(4 * groups - len));
            conv2d_widen(x, staged, groups, offset);
        }
    }
    if (groups & 1) conv2d_zero(x + CONV2D_GROUP_WORDS * groups, 1);
}

/* Both pixels of a pair: conv2d_stage into their halves of the scratch. */
static void conv2d_stage_pair(const tc_conv2d_params *p, const int8_t *in, conv2d_origin o0,
                              conv2d_origin o1, int32_t d0, int32_t len, conv2d_scratch *s) {
    conv2d_stage(p, in, o0, d0, len, s->x, s->staged);
    conv2d_stage(p, in, o1, d0, len, s->x + 2, s->staged);
}

/* The first n (< 4) bytes of w in a word, zero above (weights of a window's short last group). */
static uint32_t conv2d_tail_word(const int8_t *w, int32_t n) {
    uint32_t word = 0;
    int32_t i;
    for (i = 0; i < n; ++i) word |= (uint32_t)(uint8_t)w[i] << (8 * i);
    return word;
}

/* One weight word (4 int8 values of one output channel, at w) against both widened pixels of a
 * group, (x0e, x0o) and (x1e, x1o): *a0 += pixel 0's products, *a1 += pixel 1's. */
static inline void conv2d_mac_word_2x1(const int8_t *w, uint32_t x0e, uint32_t x0o, uint32_t x1e,
                                       uint32_t x1o, int32_t *a0, int32_t *a1) {
    uint32_t wo = tc_read_s8x4(w);
    const uint32_t we = tc_sxtb16(wo);
    wo = tc_sxtb16_ror8(wo);
    *a0 = tc_smlad(x0e, we, *a0);
    *a1 = tc_smlad(x1e, we, *a1);
    *a0 = tc_smlad(x0o, wo, *a0);
    *a1 = tc_smlad(x1o, wo, *a1);
}

/* acc += the 2x2 block of the two widened pixels x and weight rows (w0, w1) over n groups. */
static inline void conv2d_dot_wide_2x2(const uint32_t *x, const int8_t *w0, const int8_t *w1,
                                       int32_t n, int32_t acc[4]) {
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    int32_t i;
    for (i = n >> 1; i > 0; --i) { /* two groups per iteration */
        conv2d_mac_word_2x1(w0, x[0], x[1], x[2], x[3], &a00, &a10);
        conv2d_mac_word_2x1(w1, x[0], x[1], x[2], x[3], &a01, &a11);
        conv2d_mac_word_2x1(w0 + 4, x[4], x[5], x[6], x[7], &a00, &a10);
        conv2d_mac_word_2x1(w1 + 4, x[4], x[5], x[6], x[7], &a01, &a11);
        x += 2 * CONV2D_GROUP_WORDS;
        w0 += 8;
        w1 += 8;
    }
    if (n & 1) {
        conv2d_mac_word_2x1(w0, x[0], x[1], x[2], x[3], &a00, &a10);
        conv2d_mac_word_2x1(w1, x[0], x[1], x[2], x[3], &a01, &a11);
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

/* A pixel pair's widened chunk of the window (values [d0, d0 + len) of each output channel's
 * `depth` weights), against the output channels of a block. */
typedef struct {
    const uint32_t *x;     /* the widened pixel pair */
    const int8_t *w;       /* weights [out_c][depth] */
    const int32_t *bias;   /* NULL: no bias */
    int32_t depth, out_c;
    int32_t d0, len;       /* the chunk */
} conv2d_chunk;

/* The hot loop of the convolution in C (the reference of tc_conv2d_pairs_asm): `pairs` 2x2
 * blocks, output channels (2j, 2j + 1) with weight rows w + 2j * depth and w + (2j + 1) * depth,
 * over 2 * iters groups of the two widened pixels x. Channel c's sums (pixel 0, pixel 1) are
 * sums[2c], sums[2c + 1], started from bias[c] (from_bias) or from the sums already there.
 * Instantiated for both cases below: a test in the loop would cost registers it does not have. */
static inline void conv2d_pair_sums_run(const uint32_t *x, const int8_t *w, int32_t depth,
                                        int32_t iters, int32_t pairs, const int32_t *bias,
                                        int32_t *sums, const int from_bias) {
    for (; pairs > 0; --pairs) {
        int32_t acc[4];
        if (from_bias) {
            acc[0] = acc[2] = bias[0];
            acc[1] = acc[3] = bias[1];
            bias += 2;
        } else {
            acc[0] = sums[0];
            acc[2] = sums[1];
            acc[1] = sums[2];
            acc[3] = sums[3];
        }
        conv2d_dot_wide_2x2(x, w, w + depth, 2 * iters, acc);
        sums[0] = acc[0];
        sums[1] = acc[2];
        sums[2] = acc[1];
        sums[3] = acc[3];
        sums += 4;
        w += 2 * depth;
    }
}

static TC_DSP_NOINLINE void conv2d_pair_sums_bias(const uint32_t *x, const int8_t *w,
                                                  int32_t depth, int32_t iters, int32_t pairs,
                                                  const int32_t *bias, int32_t *sums) {
    conv2d_pair_sums_run(x, w, depth, iters, pairs, bias, sums, 1);
}

static TC_DSP_NOINLINE void conv2d_pair_sums_add(const uint32_t *x, const int8_t *w,
                                                 int32_t depth, int32_t iters, int32_t pairs,
                                                 int32_t *sums) {
    conv2d_pair_sums_run(x, w, depth, iters, pairs, NULL, sums, 0);
}

/* How many channel pairs from c_begin (within [c_begin, c_end)) the hot loop may take: those
 * whose whole-word reads, (c + 1) * depth + d0 + 8 * iters bytes from the weights' start for
 * the pair at c, stay inside the weights. */
static int32_t conv2d_fast_pairs(const conv2d_chunk *k, int32_t c_begin, int32_t c_end,
                                 int32_t iters) {
    int32_t pairs = (c_end - c_begin) >> 1;
    while (pairs > 0 &&
           (c_begin + 2 * pairs - 1) * k->depth + k->d0 + 8 * iters > k->out_c * k->depth) {
        --pairs;
    }
    return pairs;
}

/* The sums of channels [c_from, c_end) with exact reads (see conv2d_chunk_sums). */
static TC_DSP_NOINLINE void conv2d_edge_sums(const conv2d_chunk *k, int32_t c_from,
                                             int32_t c_begin, int32_t c_end, int32_t *sums) {
    const int32_t depth = k->depth, whole = k->len >> 2, tail = k->len & 3;
    const int first = k->d0 == 0;
    int32_t c;
    for (c = c_from; c < c_end; c += 2) {
        const int32_t c1 = c + 1 < c_end ? c + 1 : c;
        const int8_t *w0 = k->w + c * depth + k->d0, *w1 = k->w + c1 * depth + k->d0;
        const uint32_t *x0 = k->x + CONV2D_GROUP_WORDS * whole, *x1 = x0 + 2;
        int32_t *out = sums + 2 * (c - c_begin);
        int32_t acc[4];
        if (first && k->bias != NULL) {
            acc[0] = acc[2] = k->bias[c];
            acc[1] = acc[3] = k->bias[c1];
        } else {
            acc[0] = out[0];
            acc[2] = out[1];
            acc[1] = c1 > c ? out[2] : 0;
            acc[3] = c1 > c ? out[3] : 0;
        }
        conv2d_dot_wide_2x2(k->x, w0, w1, whole, acc);
        if (tail != 0) {
            const uint32_t t0 = conv2d_tail_word(w0 + 4 * whole, tail);
            const uint32_t t1 = conv2d_tail_word(w1 + 4 * whole, tail);
            acc[0] = tc_smlad(x0[1], tc_sxtb16_ror8(t0), tc_smlad(x0[0], tc_sxtb16(t0), acc[0]));
            acc[1] = tc_smlad(x0[1], tc_sxtb16_ror8(t1), tc_smlad(x0[0], tc_sxtb16(t1), acc[1]));
            acc[2] = tc_smlad(x1[1], tc_sxtb16_ror8(t0), tc_smlad(x1[0], tc_sxtb16(t0), acc[2]));
            acc[3] = tc_smlad(x1[1], tc_sxtb16_ror8(t1), tc_smlad(x1[0], tc_sxtb16(t1), acc[3]));
        }
        out[0] = acc[0];
        out[1] = acc[2];
        if (c1 > c) {
            out[2] = acc[1];
            out[3] = acc[3];
        }
    }
}

/* Phase 1 of a pixel pair: the sums of output channels [c_begin, c_end) over one chunk, added
 * to sums[] or, for the window's first chunk, started from the bias (layout: see
 * conv2d_pair_sums_run; an odd last channel fills only its own two sums).
 * The hot loop reads the chunk's groups in pairs and the short last group as a whole word:
 * the widened input is 0 past the chunk, so the extra weights read (up to 7 bytes of the next
 * channel's) add nothing. Channel pairs for which those reads would pass the end of the
 * weights, and an odd last channel, take exact reads (conv2d_edge_sums). */
static TC_DSP_NOINLINE void conv2d_chunk_sums(const conv2d_chunk *k, int32_t c_begin,
                                              int32_t c_end, int32_t *sums) {
    const int32_t iters = (((k->len + 3) >> 2) + 1) >> 1;
    const int32_t pairs = conv2d_fast_pairs(k, c_begin, c_end, iters);
    const int8_t *w = k->w + c_begin * k->depth + k->d0;
    if (k->d0 == 0 && k->bias == NULL) {
        memset(sums, 0, (size_t)(c_end - c_begin) * 2 * sizeof *sums);
    }
    if (pairs > 0) {
        if (k->d0 == 0 && k->bias != NULL) {
            conv2d_pair_sums_bias(k->x, w, k->depth, iters, pairs, k->bias + c_begin, sums);
        } else {
            conv2d_pair_sums_add(k->x, w, k->depth, iters, pairs, sums);
        }
    }
    if (c_begin + 2 * pairs < c_end) conv2d_edge_sums(k, c_begin + 2 * pairs, c_begin, c_end, sums);
}

/* Outputs j < n of the pixel pair (y0, y1) from the sums laid out as conv2d_pair_sums_run
 * writes them: tc_dsp_rq, clamped to [act_min, act_max] when `clamp` (a fused activation),
 * for the channels whose shift suits it, tc_dsp_rq_near for shifts -1..1, else (multipliers
 * >= 2, or tiny ones such as those of dead channels) tc_requant_s8_nonneg. Instantiated with
 * and without the clamp by conv2d_pair_outputs. */
static inline void conv2d_pair_outputs_rq(const int32_t *sums, const tc_dsp_requant *q,
                                          int32_t c_begin, int32_t n, int8_t *y0, int8_t *y1,
                                          const int clamp) {
    const int32_t *mult = q->mult + c_begin, *shift = q->shift + c_begin;
    const int32_t out_zp = q->out_zp, act_min = q->act_min, act_max = q->act_max;
    int32_t j;
    for (j = 0; j < n; ++j) {
        const int32_t sh = shift[j], m = mult[j];
        int32_t v0, v1, e1, khi;
        if (tc_dsp_rq_applies(sh)) {
            e1 = -sh - 1;
            khi = tc_dsp_rq_khi(sh, out_zp);
            v0 = tc_dsp_rq(sums[2 * j], m, khi, e1);
            v1 = tc_dsp_rq(sums[2 * j + 1], m, khi, e1);
        } else if (tc_dsp_rq_near_applies(m, sh)) {
            khi = tc_dsp_rq2_k(sh, out_zp);
            v0 = tc_dsp_rq_near(sums[2 * j], m, khi, sh);
            v1 = tc_dsp_rq_near(sums[2 * j + 1], m, khi, sh);
        } else {
            y0[j] = tc_requant_call(sums[2 * j], m, sh, q);
            y1[j] = tc_requant_call(sums[2 * j + 1], m, sh, q);
            continue;
        }
        if (clamp) {
            v0 = TC_MIN(TC_MAX(v0, act_min), act_max);
            v1 = TC_MIN(TC_MAX(v1, act_min), act_max);
        }
        y0[j] = (int8_t)v0;
        y1[j] = (int8_t)v1;
    }
}

/* Phase 2: outputs c_begin + j, j < n, of the pixel pair (y0, y1) from the block's sums
 * (which hold the bias). */
static TC_DSP_NOINLINE void conv2d_pair_outputs(const tc_dsp_requant *q, int32_t c_begin,
                                                int32_t n, const int32_t *sums, int8_t *y0,
                                                int8_t *y1) {
    if (q->act_min == -128 && q->act_max == 127) {
        conv2d_pair_outputs_rq(sums, q, c_begin, n, y0 + c_begin, y1 + c_begin, 0);
    } else {
        conv2d_pair_outputs_rq(sums, q, c_begin, n, y0 + c_begin, y1 + c_begin, 1);
    }
}

/*
 * The hot loop in Thumb-2 assembly (GNU-compatible compilers on ARMv7E-M / ARMv8-M with the DSP
 * extension): conv2d_pair_sums_run for `pairs` channel pairs followed, per pair, either by the
 * requantization of the four sums (tc_dsp_rq; where a layer has shifts below -23 the zero
 * point is added after the shift instead of folded in) or by their store to `sums`. Why assembly: with all 14 allocatable
 * registers live in the loop gcc neither uses post-indexed loads nor keeps the channel-pair
 * state in memory efficiently; by hand the loop is 31 instructions per 32 multiply-accumulates
 * (gcc: 36: one LDM fetches a group of both pixels from the interleaved scratch, 4 groups per
 * iteration) and a channel pair's set-up and requantization take about 60 instead of 90.
 * Preconditions (conv2d_asm_layer): bias present at the first chunk, no fused activation
 * clamp, and 2 <= -shift <= 31 for every channel (a zero multiplier comes with shift -2 from the
 * compiler), or shifts -1..1 with tc_dsp_rq_near_applies (tc_conv2d_pairs_near_asm: a branch per
 * channel between tc_dsp_rq and tc_dsp_rq_near). tc_conv2d_pairs_sums_asm is the general loop
 * of the other layers (conv2d_s8_chunked: sums in and out between chunks); tc_conv2d_pairs_asm
 * the same for a whole window (bias in, bytes out) without the per-pair tests of which.
 * The C functions above are the reference;
 * tests/test_kernels_qemu.py runs both against the golden model. Each function pushes 10
 * registers (40 bytes of stack) and calls nothing; tinycc/sim/qemu.py HANDWRITTEN_FRAMES tells
 * the static stack bound so.
 */
#define CONV2D_ASM TC_DSP_ASM

#if CONV2D_ASM
/* Field offsets are fixed by the assembly below (checked at compile time). The first three
 * are loaded with one LDM per channel pair; w is read once (the assembly keeps it in a register
 * and leaves the field as it was). */
typedef struct {
    int32_t depth;          /*  0: bytes between two channels' weights */
    const uint32_t *x;      /*  4: the widened pixel pair (interleaved: conv2d_scratch) */
    int32_t iters;          /*  8: 2 x the loop's 4-group iterations per channel, + 1 when
                               the first does only its last 2 groups (conv2d_asm_iters) */
    const int8_t *w;        /* 12: weights of the first channel pair, at the chunk's first value */
    const int32_t *bias;    /* 16: bias of the next pair, or NULL: start from sums_in */
    const int32_t *sums_in; /* 20: the next pair's 4 sums, read when bias is NULL */
    const int32_t *mult;    /* 24: the next pair's multipliers */
    const int32_t *shift;   /* 28: and shifts */
    int8_t *y0, *y1;        /* 32, 36: the next pair's outputs; y0 NULL: write sums_out */
    int32_t w_skip;         /* 40: 2 * depth - 8 * iters: from the end of a pair's reads to the next */
    const int8_t *w_end;    /* 44: w after the last pair (stop there) */
    int32_t zp_after;       /* 48: out_zp, added after the shift; 0 when folded into zp1 */
    int32_t *sums_out;      /* 52: where the sums go when y0 is NULL */
    int32_t zp1;            /* 56: 2 * out_zp + 1 (the zero point folded, every e <= 23) or 1 */
} conv2d_asm_job;

typedef char conv2d_asm_job_layout[(offsetof(conv2d_asm_job, x) == 4 &&
                                    offsetof(conv2d_asm_job, w) == 12 &&
                                    offsetof(conv2d_asm_job, bias) == 16 &&
                                    offsetof(conv2d_asm_job, y1) == 36 &&
                                    offsetof(conv2d_asm_job, zp_after) == 48 &&
                                    offsetof(conv2d_asm_job, sums_out) == 52 &&
                                    offsetof(conv2d_asm_job, zp1) == 56 &&
                                    CONV2D_GROUP_WORDS == 4) ? 1 : -1];

/* The job's iters field for `iters` group pairs: the loop runs 4 groups per iteration, the
 * first one entered half-way when the group pairs are odd. */
static int32_t conv2d_asm_iters(int32_t iters) {
    return iters + 2 * (iters & 1);
}

/* The assembly loops: tc_conv2d_s8_asm.c. */
void tc_conv2d_pairs_asm(conv2d_asm_job *job);
void tc_conv2d_pairs_sums_asm(conv2d_asm_job *job);
void tc_conv2d_pairs_near_asm(conv2d_asm_job *job);

/* The fields of a job that do not depend on the mode (bias or sums_in, y0 and y1 or sums_out:
 * the caller's). */
static void conv2d_asm_job_init(conv2d_asm_job *job, const uint32_t *x, const int8_t *w,
                                int32_t depth, int32_t iters, int32_t pairs,
                                const tc_dsp_requant *q, int32_t c, int fold_zp) {
    job->w = w;
    job->depth = depth;
    job->x = x;
    job->iters = conv2d_asm_iters(iters);
    job->bias = NULL;
    job->sums_in = NULL;
    job->mult = q->mult + c;
    job->shift = q->shift + c;
    job->y0 = job->y1 = NULL;
    job->w_skip = 2 * depth - 8 * iters;
    job->w_end = w + 2 * depth * pairs;
    job->zp_after = fold_zp ? 0 : q->out_zp;
    job->zp1 = fold_zp ? 2 * q->out_zp + 1 : 1;
    job->sums_out = NULL;
}

/* 0 when the layer does not meet the assembly's preconditions; else CONV2D_ASM_FOLD_ZP when
 * every shift also lets the zero point fold into the rounding constant (tc_dsp_rq_applies),
 * CONV2D_ASM_ZP_AFTER when it has to be added after the shift; plus CONV2D_ASM_NEAR when some
 * channels have shifts -1..1 (tc_dsp_rq_near_applies): tc_conv2d_pairs_near_asm runs it. */
enum { CONV2D_ASM_ZP_AFTER = 1, CONV2D_ASM_FOLD_ZP = 2, CONV2D_ASM_NEAR = 4 };

static int conv2d_asm_layer(const tc_conv2d_params *p, const tc_dsp_requant *q) {
    int fold = 1, near = 0;
    int32_t c;
    if (q->bias == NULL || p->act_min != -128 || p->act_max != 127) return 0;
    for (c = 0; c < p->out_c; ++c) {
        const int32_t shift = q->shift[c];
        if (tc_dsp_rq_near_applies(q->mult[c], shift)) {
            near = CONV2D_ASM_NEAR;
            continue;
        }
        if ((uint32_t)(-2 - shift) > 29u) return 0; /* 2 <= -shift <= 31 */
        fold &= tc_dsp_rq_applies(shift);
    }
    return (fold ? CONV2D_ASM_FOLD_ZP : CONV2D_ASM_ZP_AFTER) | near;
}

/* The loop for the layer's mode: with the requantization of shifts -1..1 where it has some;
 * else, for a whole window (bias set, bytes out: whole_window), the loop without the per-pair
 * tests of where the sums come from and go. */
static void conv2d_pairs(conv2d_asm_job *job, int mode, int whole_window) {
    if (mode & CONV2D_ASM_NEAR) {
        tc_conv2d_pairs_near_asm(job);
    } else if (whole_window) {
        tc_conv2d_pairs_asm(job);
    } else {
        tc_conv2d_pairs_sums_asm(job);
    }
}
#endif /* CONV2D_ASM */

/* Steps (oy, ox) to the next output pixel in row-major order. */
static void conv2d_next_pixel(const tc_conv2d_params *p, int32_t *oy, int32_t *ox) {
    if (++*ox == p->out_w) {
        *ox = 0;
        ++*oy;
    }
}

/* Windows of at most CONV2D_CHUNK values (the common case): per pixel pair (an odd last pixel
 * runs twice), the window is widened once, then each block of CONV2D_OC_BLOCK output channels
 * is summed and requantized. What does not depend on the pixel is worked out once. */
static TC_DSP_NOINLINE void conv2d_s8_one_chunk(const tc_conv2d_params *p, const int8_t *in,
                                                const int8_t *w, const tc_dsp_requant *q,
                                                int8_t *out) {
    const int32_t pixels = p->out_h * p->out_w, out_c = p->out_c;
    const int32_t depth = p->k_h * p->k_w * p->in_c;
    const int32_t iters = (((depth + 3) >> 2) + 1) >> 1;
    /* the last block's fast channel pairs (the others' reads never reach the weights' end) */
    const int32_t last_begin = (out_c - 1) / CONV2D_OC_BLOCK * CONV2D_OC_BLOCK;
    /* windows inside the image have origins in [0, iy_max] x [0, ix_max] (unsigned compares;
     * some_inside: there are such windows). Their rows are widened straight from the input
     * when they are whole groups, else copied one after the other and then widened. */
    const int32_t iy_last = p->in_h - 1 - (p->k_h - 1) * p->dil_h, ix_last = p->in_w - p->k_w;
    const uint32_t iy_max = (uint32_t)iy_last, ix_max = (uint32_t)ix_last;
    const int some_inside = iy_last >= 0 && ix_last >= 0;
    const int whole_rows = ((p->k_w * p->in_c) & 3) == 0;
    const int32_t row_len = p->k_w * p->in_c, row_groups = row_len >> 2;
    const int32_t row_step = p->dil_h * p->in_w * p->in_c, groups = (depth + 3) >> 2;
    const int odd_groups = (depth >> 2) & 1;
    const uint32_t offset = tc_dsp_input_offset(p->in_zp);
    conv2d_scratch s;
    int32_t sums[2 * CONV2D_OC_BLOCK];
    conv2d_chunk k;
    int32_t pix, c, last_pairs, oy = 0, ox = 0;
    int inside;
#if CONV2D_ASM
    int use_asm, tail_pair;
    int32_t asm_pairs;
    int8_t *tail_w = (int8_t *)(sums + CONV2D_OC_BLOCK); /* the upper half of sums[]: the
                                                             assembly path uses only the lower */
#endif
    k.x = s.x;
    k.w = w;
    k.bias = q->bias;
    k.depth = depth;
    k.out_c = out_c;
    k.d0 = 0;
    k.len = depth;
    last_pairs = conv2d_fast_pairs(&k, last_begin, out_c, iters);
#if CONV2D_ASM
    /* the fast pairs stop a few channels before the end: the rest fit the sums buffer. For
     * shallow windows the first pair after them runs on a zero-padded copy of its weights. */
    use_asm = conv2d_asm_layer(p, q);
    asm_pairs = conv2d_fast_pairs(&k, 0, out_c, iters);
    tail_pair = use_asm && depth <= CONV2D_TAIL_DEPTH && 2 * asm_pairs + 2 <= out_c;
    if (tail_pair) {
        memset(tail_w, 0, 2 * CONV2D_TAIL_DEPTH + 8);
        memcpy(tail_w, w + 2 * asm_pairs * depth, (size_t)(2 * depth));
    }
#endif
    for (pix = 0; pix < pixels; pix += 2) {
        const int32_t pix1 = pix + 1 < pixels ? pix + 1 : pix;
        int8_t *y0 = out + pix * out_c, *y1 = out + pix1 * out_c;
        const conv2d_origin o0 = conv2d_origin_at(p, oy, ox);
        conv2d_origin o1;
        if (pix1 > pix) conv2d_next_pixel(p, &oy, &ox);
        o1 = conv2d_origin_at(p, oy, ox);
        conv2d_next_pixel(p, &oy, &ox);
        inside = some_inside && (uint32_t)o0.iy0 <= iy_max && (uint32_t)o0.ix0 <= ix_max &&
                 (uint32_t)o1.iy0 <= iy_max && (uint32_t)o1.ix0 <= ix_max;
        if (inside && !whole_rows) { /* both windows in the image, short rows: copied, widened */
            conv2d_stage_rows(s.x, s.staged, in + (o0.iy0 * p->in_w + o0.ix0) * p->in_c, p->k_h,
                              row_len, row_step, groups, (int8_t)p->in_zp, offset);
            conv2d_stage_rows(s.x + 2, s.staged, in + (o1.iy0 * p->in_w + o1.ix0) * p->in_c,
                              p->k_h, row_len, row_step, groups, (int8_t)p->in_zp, offset);
            if (groups & 1) { /* the group after the last of both pixels */
                conv2d_zero(s.x + CONV2D_GROUP_WORDS * groups, 1);
                conv2d_zero(s.x + CONV2D_GROUP_WORDS * groups + 2, 1);
            }
        } else if (inside) { /* rows of whole groups: widened straight from the input */
            const int8_t *src0 = in + (o0.iy0 * p->in_w + o0.ix0) * p->in_c;
            const int8_t *src1 = in + (o1.iy0 * p->in_w + o1.ix0) * p->in_c;
            uint32_t *x0 = s.x;
            int32_t ky;
            for (ky = 0; ky < p->k_h; ++ky) {
                conv2d_widen_pair(x0, src0, src1, row_groups, offset);
                x0 += CONV2D_GROUP_WORDS * row_groups;
                src0 += row_step;
                src1 += row_step;
            }
            if (odd_groups) x0[0] = x0[1] = x0[2] = x0[3] = 0;
        } else {
            conv2d_stage_pair(p, in, o0, o1, 0, depth, &s);
        }
#if CONV2D_ASM
        if (use_asm) { /* every fast channel pair in one call, the last few in C */
            const int32_t c_rest = 2 * asm_pairs + (tail_pair ? 2 : 0);
            conv2d_asm_job job;
            conv2d_asm_job_init(&job, s.x, w, depth, iters, asm_pairs, q, 0,
                                (use_asm & CONV2D_ASM_FOLD_ZP) != 0);
            job.bias = q->bias;
            job.y0 = y0;
            job.y1 = y1;
            if (asm_pairs > 0) conv2d_pairs(&job, use_asm, 1);
            if (tail_pair) { /* bias, mult, shift, y0, y1 have moved on to the pair */
                job.w = tail_w;
                job.w_end = tail_w + 2 * depth;
                conv2d_pairs(&job, use_asm, 1);
            }
            if (c_rest < out_c) {
                conv2d_edge_sums(&k, c_rest, c_rest, out_c, sums);
                conv2d_pair_outputs(q, c_rest, out_c - c_rest, sums, y0, y1);
            }
            continue;
        }
#endif
        for (c = 0; c < out_c; c += CONV2D_OC_BLOCK) {
            const int32_t c_end = TC_MIN(c + CONV2D_OC_BLOCK, out_c);
            const int32_t pairs = c == last_begin ? last_pairs : CONV2D_OC_BLOCK / 2;
            if (q->bias != NULL) {
                conv2d_pair_sums_bias(s.x, w + c * depth, depth, iters, pairs, q->bias + c, sums);
            } else {
                memset(sums, 0, sizeof sums);
                conv2d_pair_sums_add(s.x, w + c * depth, depth, iters, pairs, sums);
            }
            if (c + 2 * pairs < c_end) conv2d_edge_sums(&k, c + 2 * pairs, c, c_end, sums);
            conv2d_pair_outputs(q, c, c_end - c, sums, y0, y1);
        }
    }
}

/* Deeper windows: per pixel pair and block of CONV2D_OC_BLOCK output channels, the window
 * chunk by chunk into the block's sums, then the block's outputs. */
static TC_DSP_NOINLINE void conv2d_s8_chunked(const tc_conv2d_params *p, const int8_t *in,
                                              const int8_t *w, const tc_dsp_requant *q,
                                              int8_t *out) {
    const int32_t pixels = p->out_h * p->out_w;
    const int32_t depth = p->k_h * p->k_w * p->in_c;
    conv2d_scratch s;
    int32_t sums[2 * CONV2D_OC_BLOCK];
    conv2d_chunk k;
    int32_t pix, c, d0, oy = 0, ox = 0;
#if CONV2D_ASM
    const int use_asm = conv2d_asm_layer(p, q);
#endif
    k.x = s.x;
    k.w = w;
    k.bias = q->bias;
    k.depth = depth;
    k.out_c = p->out_c;
    for (pix = 0; pix < pixels; pix += 2) {
        const int32_t pix1 = pix + 1 < pixels ? pix + 1 : pix;
        int8_t *y0 = out + pix * p->out_c, *y1 = out + pix1 * p->out_c;
        const conv2d_origin o0 = conv2d_origin_at(p, oy, ox);
        conv2d_origin o1;
        if (pix1 > pix) conv2d_next_pixel(p, &oy, &ox);
        o1 = conv2d_origin_at(p, oy, ox);
        conv2d_next_pixel(p, &oy, &ox);
        for (c = 0; c < p->out_c; c += CONV2D_OC_BLOCK) {
            const int32_t c_end = TC_MIN(c + CONV2D_OC_BLOCK, p->out_c);
            int32_t c_rest = c; /* channels left to requantize in C */
            for (d0 = 0; d0 < depth; d0 += CONV2D_CHUNK) {
                k.d0 = d0;
                k.len = TC_MIN(CONV2D_CHUNK, depth - d0);
                conv2d_stage_pair(p, in, o0, o1, d0, k.len, &s);
#if CONV2D_ASM
                if (use_asm) { /* the last chunk requantizes the fast pairs */
                    const int32_t iters = (((k.len + 3) >> 2) + 1) >> 1;
                    const int32_t pairs = conv2d_fast_pairs(&k, c, c_end, iters);
                    if (pairs > 0) {
                        conv2d_asm_job job;
                        conv2d_asm_job_init(&job, s.x, w + c * depth + d0, depth, iters, pairs,
                                            q, c, (use_asm & CONV2D_ASM_FOLD_ZP) != 0);
                        job.bias = d0 == 0 ? q->bias + c : NULL;
                        job.sums_in = sums;
                        job.sums_out = sums;
                        job.y0 = d0 + k.len == depth ? y0 + c : NULL;
                        job.y1 = y1 + c;
                        conv2d_pairs(&job, use_asm, 0);
                    }
                    if (c + 2 * pairs < c_end) conv2d_edge_sums(&k, c + 2 * pairs, c, c_end, sums);
                    c_rest = c + 2 * pairs;
                    continue;
                }
#endif
                conv2d_chunk_sums(&k, c, c_end, sums);
            }
            if (c_rest < c_end) {
                conv2d_pair_outputs(q, c_rest, c_end - c_rest, sums + 2 * (c_rest - c), y0, y1);
            }
        }
    }
}

/*
 * SIMD path. groups == 1 and dil_w == 1: the gathered path above. Otherwise output pixels are
 * taken in pairs along a row where both windows have the same in-image taps (everywhere except
 * near the left and right borders), else one at a time.
 */
/* Grouped or column-dilated convolutions: pixel pairs along a row where both windows have the
 * same in-image taps, else one pixel at a time. */
static TC_DSP_NOINLINE void conv2d_s8_windows(const tc_conv2d_params *p, const int8_t *in,
                                              const int8_t *w, const tc_dsp_requant *q,
                                              int8_t *out) {
    int32_t oy, ox;
    for (oy = 0; oy < p->out_h; ++oy) {
        int8_t *y = out + oy * p->out_w * p->out_c;
        for (ox = 0; ox < p->out_w; ++ox, y += p->out_c) {
            const conv2d_window a = conv2d_make_window(p, oy, ox);
            if (ox + 1 < p->out_w) {
                const conv2d_window b = conv2d_make_window(p, oy, ox + 1);
                if (conv2d_same_taps(&a, &b)) {
                    conv2d_pixel_pair(p, &a, in + a.x_offset, b.x_offset - a.x_offset,
                                      w + a.w_offset, q, y);
                    ++ox;
                    y += p->out_c;
                    continue;
                }
            }
            conv2d_pixel(p, &a, in + a.x_offset, w + a.w_offset, q, y);
        }
    }
}

/*
 * Shallow pointwise layers (1x1 kernel, no padding, groups 1, at most CONV2D_SHALLOW_C input
 * channels: first layers on few input features, the narrow layers of MCUNet-like nets). On the
 * pixel-pair path above every output is requantized after a handful of MACs, and each channel
 * pair's weights, multiplier, shift and bias are fetched again for every pixel pair. Here the
 * loops are swapped: a block of pixels is widened once (plain SXTB16:
 * in_zp is folded into the bias as -in_zp * sum(w), exact in int32), then each output channel
 * keeps its widened weights, folded bias and requantization constants in registers while it
 * walks the block: per output 2 (Cin <= 4) or 4 SMLADs, tc_dsp_rq2 (SMMLAR, SUB, ASR, SSAT; the
 * accumulator's doubling, or quadrupling for shift 1, is folded into the weights and bias) and a
 * byte store. Cin not a multiple of 4 is padded with zero weights; the padded input lanes hold
 * whatever follows the pixel in the input (zero past the tensor's end), multiplied by zero.
 * The scaled accumulator is exact while |bias - in_zp * sum(w)| stays below 2^28 (the products
 * add at most 8 * 128 * 128 = 2^17): a channel with a larger bias takes an exact C loop
 * (conv2d_shallow_run_exact) on its own.
 * Precondition (tc_conv2d_s8_shallow_dsp_applicable): every shift in [-TC_DSP_RQ_MAX_E, 1].
 * Blocks of 144 (Cin <= 4) or 72 pixels: CONV2D_SHALLOW_WORDS words, 1152 B of stack (the
 * channel's set-up, about 60 instructions, is spread over a block: 0.1 per MAC at Cin 8).
 */
enum { CONV2D_SHALLOW_C = 8, CONV2D_SHALLOW_WORDS = 288 };
#define CONV2D_SHALLOW_MAX_BIAS (INT32_C(1) << 28)

int tc_conv2d_s8_shallow_dsp_applicable(const tc_conv2d_params *p, const int32_t *shift) {
    int32_t c;
    if (p->k_h != 1 || p->k_w != 1 || p->groups != 1 || p->in_c > CONV2D_SHALLOW_C ||
        p->pad_top != 0 || p->pad_left != 0) {
        return 0;
    }
    for (c = 0; c < p->out_c; ++c) {
        if (shift[c] < -TC_DSP_RQ_MAX_E || shift[c] > 1) return 0;
    }
    return 1;
}

/* The `groups` (1 or 2) 4-value groups at src widened into x[0..2*groups) as (even, odd)
 * pairs; n_valid of the bytes may be read (the rest are taken as zero). */
static void conv2d_shallow_widen(uint32_t *x, const int8_t *src, int32_t groups,
                                 int32_t n_valid) {
    int8_t b[4 * 2] = {0, 0, 0, 0, 0, 0, 0, 0};
    int32_t g;
    if (n_valid < 4 * groups) { /* the tensor's last values: copied, zero-padded (no recursion:
                                   the static stack bound follows the call graph) */
        memcpy(b, src, (size_t)n_valid);
        src = b;
    }
    for (g = 0; g < groups; ++g) {
        const uint32_t v = tc_read_s8x4(src + 4 * g);
        x[2 * g] = tc_sxtb16(v);
        x[2 * g + 1] = tc_sxtb16_ror8(v);
    }
}

/* n pixels from src, src_step bytes apart, widened into x (2 * G words each): whole words read
 * straight from the input, except at its end. */
static void conv2d_shallow_widen_run(uint32_t *x, const int8_t *src, int32_t n, int32_t G,
                                     int32_t src_step, const int8_t *in_end) {
    /* the pixels whose 4 * G-byte read stays inside the input */
    const int32_t readable =
        in_end - src >= 4 * G ? (int32_t)((in_end - src - 4 * G) / src_step) + 1 : 0;
    int32_t whole = TC_MIN(n, readable);
    n -= whole;
    if (G == 1) {
        for (; whole > 0; --whole, src += src_step, x += 2) {
            const uint32_t v = tc_read_s8x4(src);
            x[0] = tc_sxtb16(v);
            x[1] = tc_sxtb16_ror8(v);
        }
    } else {
        for (; whole > 0; --whole, src += src_step, x += 4) {
            const uint32_t v = tc_read_s8x4(src), v1 = tc_read_s8x4(src + 4);
            x[0] = tc_sxtb16(v);
            x[1] = tc_sxtb16_ror8(v);
            x[2] = tc_sxtb16(v1);
            x[3] = tc_sxtb16_ror8(v1);
        }
    }
    for (; n > 0; --n, src += src_step, x += 2 * G) {
        conv2d_shallow_widen(x, src, G, (int32_t)(in_end - src));
    }
}

/* One output channel over the pixels of a widened block: what the assembly loops read (field
 * offsets fixed by tc_conv2d_s8_asm.c, checked below), and the C loops too. */
typedef struct {
    const uint32_t *x; /*  0: the block's widened pixels */
    int8_t *y;         /*  4: the channel's output at the block's first pixel */
    int32_t y_step;    /*  8: out_c */
    int32_t count_e;   /* 12: e = max(-shift, 0) - 512 * pixel pairs */
    uint32_t w[4];     /* 16: widened weights, times `scale` (w[2], w[3] zero when Cin <= 4) */
    int32_t bias;      /* 32: (bias - in_zp * sum(w)) * scale */
    int32_t mult;      /* 36 */
    int32_t k;         /* 40: tc_dsp_rq2_k */
    int32_t scale;     /* 2 (shifts <= 0) or 4 (shift 1); 1: the exact loop (large bias) */
    int32_t shift;
} conv2d_shallow_job;

/* One output channel over n widened pixels (stride 2 * G words), y stepping by y_step: sums
 * of the scaled weights, requantized by tc_dsp_rq2. */
static inline void conv2d_shallow_run(const conv2d_shallow_job *job, const uint32_t *x,
                                      int32_t n, int G, int clamp, int32_t act_min,
                                      int32_t act_max, int8_t *y) {
    const uint32_t w0 = job->w[0], w1 = job->w[1], w2 = job->w[2], w3 = job->w[3];
    const int32_t bias = job->bias, mult = job->mult, k = job->k, e = job->count_e & 255;
    const int32_t y_step = job->y_step;
    for (; n > 0; --n, x += 2 * G, y += y_step) {
        int32_t acc = tc_smlad(x[0], w0, bias), out;
        acc = tc_smlad(x[1], w1, acc);
        if (G == 2) {
            acc = tc_smlad(x[2], w2, acc);
            acc = tc_smlad(x[3], w3, acc);
        }
        out = tc_dsp_rq2(acc, mult, k, e);
        if (clamp) out = TC_MIN(TC_MAX(out, act_min), act_max);
        *y = (int8_t)out;
    }
}

/* The specialisations, out of line so that each loop has the registers to itself. */
static TC_DSP_NOINLINE void conv2d_shallow_run_1(const conv2d_shallow_job *job, const uint32_t *x,
                                                 int32_t n, int8_t *y) {
    conv2d_shallow_run(job, x, n, 1, 0, 0, 0, y);
}

static TC_DSP_NOINLINE void conv2d_shallow_run_2(const conv2d_shallow_job *job, const uint32_t *x,
                                                 int32_t n, int8_t *y) {
    conv2d_shallow_run(job, x, n, 2, 0, 0, 0, y);
}

static TC_DSP_NOINLINE void conv2d_shallow_run_clamped(const conv2d_shallow_job *job, int32_t n,
                                                       int G, const tc_dsp_requant *q) {
    if (G == 1) {
        conv2d_shallow_run(job, job->x, n, 1, 1, q->act_min, q->act_max, job->y);
    } else {
        conv2d_shallow_run(job, job->x, n, 2, 1, q->act_min, q->act_max, job->y);
    }
}

/* A channel whose folded bias is too large for the scaled sums: unscaled sums, the portable
 * requantization (off the hot path). */
static TC_DSP_NOINLINE void conv2d_shallow_run_exact(const conv2d_shallow_job *job, int32_t n,
                                                     int32_t G, const tc_dsp_requant *q) {
    const uint32_t *x = job->x;
    int8_t *y = job->y;
    for (; n > 0; --n, x += 2 * G, y += job->y_step) {
        int32_t acc = tc_smlad(x[1], job->w[1], tc_smlad(x[0], job->w[0], job->bias));
        if (G == 2) acc = tc_smlad(x[3], job->w[3], tc_smlad(x[2], job->w[2], acc));
        *y = tc_requant_call(acc, job->mult, job->shift, q);
    }
}

#if CONV2D_ASM
typedef char conv2d_shallow_job_layout[(offsetof(conv2d_shallow_job, count_e) == 12 &&
                                        offsetof(conv2d_shallow_job, w) == 16 &&
                                        offsetof(conv2d_shallow_job, bias) == 32 &&
                                        offsetof(conv2d_shallow_job, k) == 40) ? 1 : -1];
/* shifts <= -1 (e >= 1) and shifts 0 and 1 (e = 0: no rounding shift) */
void tc_conv2d_shallow4_asm(const conv2d_shallow_job *job);
void tc_conv2d_shallow8_asm(const conv2d_shallow_job *job);
void tc_conv2d_shallow4z_asm(const conv2d_shallow_job *job);
void tc_conv2d_shallow8z_asm(const conv2d_shallow_job *job);
#endif

/* The job's fields for one output channel: its in_c weights at wc widened (bytes past in_c
 * masked off: w_mask[g] keeps group g's valid bytes; `last`: a whole-word read could pass the
 * end of the weights, so the words are assembled from bytes), the bias folded with
 * in_zp * sum(w), both scaled for tc_dsp_rq2 (the lanes added to themselves by SXTAB16: twice,
 * or four times for shift 1), or left as they are when the folded bias is too large (scale 1),
 * and the requantization constants. */
static void conv2d_shallow_set_channel(conv2d_shallow_job *job, const int8_t *wc, int32_t in_c,
                                       int32_t G, const uint32_t w_mask[2], int last, int32_t bias,
                                       int32_t in_zp, int32_t mult, int32_t shift,
                                       int32_t out_zp) {
    const uint32_t ones = tc_pack_s16x2(1, 1);
    uint32_t v0, v1 = 0, w0, w1, w2, w3;
    int32_t w_sum, folded;
    if (!last) {
        v0 = tc_read_s8x4(wc);
        if (G == 2) v1 = tc_read_s8x4(wc + 4);
    } else { /* the channel's bytes, zero-padded */
        int8_t b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        memcpy(b, wc, (size_t)in_c);
        v0 = tc_read_s8x4(b);
        v1 = tc_read_s8x4(b + 4);
    }
    v0 &= w_mask[0];
    v1 &= w_mask[1];
    w0 = tc_sxtb16(v0);
    w1 = tc_sxtb16_ror8(v0);
    w2 = tc_sxtb16(v1);
    w3 = tc_sxtb16_ror8(v1);
    w_sum = tc_smlad(w0, ones, tc_smlad(w1, ones, tc_smlad(w2, ones, tc_smuad(w3, ones))));
    job->mult = mult;
    job->shift = shift;
    job->k = tc_dsp_rq2_k(shift, out_zp);
    job->count_e = shift < 0 ? -shift : 0;
    /* sum(w * (x - zp)) = sum(w * x) - zp * sum(w); |zp * sum(w)| <= 2^17 */
    folded = bias - (bias > -(INT32_C(1) << 30) && bias < (INT32_C(1) << 30) ? in_zp * w_sum : 0);
    if (folded <= -CONV2D_SHALLOW_MAX_BIAS || folded >= CONV2D_SHALLOW_MAX_BIAS) {
        job->scale = 1; /* wrapping like the accumulator */
        job->bias = (int32_t)((uint32_t)bias - (uint32_t)(in_zp * w_sum));
    } else {
        w0 = tc_sxtab16(w0, v0);
        w1 = tc_sxtab16_ror8(w1, v0);
        w2 = tc_sxtab16(w2, v1);
        w3 = tc_sxtab16_ror8(w3, v1);
        job->scale = 2;
        if (shift > 0) {
            w0 = tc_sxtab16(tc_sxtab16(w0, v0), v0);
            w1 = tc_sxtab16_ror8(tc_sxtab16_ror8(w1, v0), v0);
            w2 = tc_sxtab16(tc_sxtab16(w2, v1), v1);
            w3 = tc_sxtab16_ror8(tc_sxtab16_ror8(w3, v1), v1);
            job->scale = 4;
        }
        job->bias = folded * job->scale;
    }
    job->w[0] = w0;
    job->w[1] = w1;
    job->w[2] = w2;
    job->w[3] = w3;
}

/* The job's channel over n pixels (no clamp): pixel pairs by the assembly where there is one,
 * an odd last pixel (and every pixel elsewhere) by the C loop. */
static void conv2d_shallow_channel(conv2d_shallow_job *job, int32_t n, int32_t G) {
    const uint32_t *x = job->x;
    int8_t *y = job->y;
#if CONV2D_ASM
    if (n >= 2) {
        const int32_t e = job->count_e;
        job->count_e = e - 512 * (n >> 1);
        if (e > 0) {
            if (G == 1) {
                tc_conv2d_shallow4_asm(job);
            } else {
                tc_conv2d_shallow8_asm(job);
            }
        } else if (G == 1) {
            tc_conv2d_shallow4z_asm(job);
        } else {
            tc_conv2d_shallow8z_asm(job);
        }
        job->count_e = e;
        if ((n & 1) == 0) return;
        x += 2 * G * (n - 1);
        y += job->y_step * (n - 1);
        n = 1;
    }
#endif
    if (G == 1) {
        conv2d_shallow_run_1(job, x, n, y);
    } else {
        conv2d_shallow_run_2(job, x, n, y);
    }
}

static TC_DSP_NOINLINE void conv2d_s8_shallow(const tc_conv2d_params *p, const int8_t *in,
                                              const int8_t *w, const tc_dsp_requant *q,
                                              int8_t *out) {
    const int32_t pixels = p->out_h * p->out_w, in_c = p->in_c, out_c = p->out_c;
    const int32_t G = (in_c + 3) >> 2, block = CONV2D_SHALLOW_WORDS / (2 * G);
    const int8_t *in_end = in + p->in_h * p->in_w * in_c;
    const int clamp = q->act_min != -128 || q->act_max != 127;
    /* the valid bytes of each weight group; channels whose 4 * G-byte read would pass the end
     * of the weights are read byte by byte */
    const int32_t tail = in_c - 4 * (G - 1); /* 1..4 bytes in the last group */
    const uint32_t tail_mask = tail == 4 ? UINT32_C(0xFFFFFFFF) : (UINT32_C(1) << (8 * tail)) - 1u;
    const uint32_t w_mask[2] = {G == 1 ? tail_mask : UINT32_C(0xFFFFFFFF), G == 1 ? 0u : tail_mask};
    const int32_t last_word_read = (out_c * in_c - 4 * G) / in_c; /* the last channel read whole */
    uint32_t x[CONV2D_SHALLOW_WORDS];
    conv2d_shallow_job job;
    int32_t pix0, oy = 0, ox = 0;
    job.x = x;
    job.y_step = out_c;
    for (pix0 = 0; pix0 < pixels; pix0 += block) {
        const int32_t n = TC_MIN(block, pixels - pix0);
        int32_t i, c;
        for (i = 0; i < n;) { /* the block's pixels, widened, a run along a row at a time */
            const int32_t run = TC_MIN(n - i, p->out_w - ox);
            const int8_t *src = in + (oy * p->stride_h * p->in_w + ox * p->stride_w) * in_c;
            conv2d_shallow_widen_run(x + 2 * G * i, src, run, G, p->stride_w * in_c, in_end);
            i += run;
            ox += run;
            if (ox == p->out_w) {
                ox = 0;
                ++oy;
            }
        }
        for (c = 0; c < out_c; ++c) {
            conv2d_shallow_set_channel(&job, w + c * in_c, in_c, G, w_mask, c > last_word_read,
                                       q->bias != NULL ? q->bias[c] : 0, p->in_zp, q->mult[c],
                                       q->shift[c], q->out_zp);
            job.y = out + pix0 * out_c + c;
            if (job.scale == 1) {
                conv2d_shallow_run_exact(&job, n, G, q);
            } else if (clamp) {
                conv2d_shallow_run_clamped(&job, n, (int)G, q);
            } else {
                conv2d_shallow_channel(&job, n, G);
            }
        }
    }
}

TC_DSP_NOINLINE void tc_conv2d_s8_dsp(const tc_conv2d_params *p, const int8_t *in, const int8_t *w,
                                      const int32_t *bias, const int32_t *mult,
                                      const int32_t *shift, int8_t *out) {
    const tc_dsp_requant q =
        tc_dsp_make_requant(bias, mult, shift, p->out_zp, p->act_min, p->act_max);
#if TC_CONV2D_FIRST
    if (tc_conv2d_s8_first_dsp_applicable(p, shift) && /* first layers: their own file */
        tc_conv2d_s8_first_dsp(p, in, w, bias, mult, shift, out)) {
        return;
    }
#endif
    if (tc_conv2d_s8_shallow_dsp_applicable(p, shift)) {
        conv2d_s8_shallow(p, in, w, &q, out);
    } else if (p->groups != 1 || p->dil_w != 1) {
        conv2d_s8_windows(p, in, w, &q, out);
    } else if (p->k_h * p->k_w * p->in_c <= CONV2D_CHUNK) {
        conv2d_s8_one_chunk(p, in, w, &q, out);
    } else {
        conv2d_s8_chunked(p, in, w, &q, out);
    }
}
#endif /* TC_HAVE_DSP */
