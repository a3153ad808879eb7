/*
 * tinycc runtime: int8 2-D convolution (regular and grouped), TFLM ConvPerChannel arithmetic.
 * Mirrored by tinycc/golden/kernels_conv.py::conv2d_s8.
 *
 * Two implementations behind the one public function, bit-exact with each other:
 *  - portable C99 (conv2d_pixel_acc below), always compiled;
 *  - with TC_HAVE_DSP (tc_arm_dsp.h: Cortex-M4/M7/M33/M55, or the host emulation), a SIMD path
 *    (conv2d_s8_dsp) taken when a window row holds at least 4 contiguous int8 values to
 *    multiply: groups == 1 and dil_w == 1 with k_w * in_c >= 4, or in_c / groups >= 4.
 */
#include "tc_conv.h"
#include "tc_dot_s8_dsp.h"

#include <string.h>

static int conv2d_args_ok(const tc_conv2d_params *p) {
    if (p->in_h < 1 || p->in_w < 1 || p->in_c < 1 || p->out_h < 1 || p->out_w < 1 ||
        p->out_c < 1) {
        return 0;
    }
    if (p->k_h < 1 || p->k_w < 1 || p->stride_h < 1 || p->stride_w < 1 || p->dil_h < 1 ||
        p->dil_w < 1 || p->pad_top < 0 || p->pad_left < 0) {
        return 0;
    }
    return p->groups >= 1 && p->in_c % p->groups == 0 && p->out_c % p->groups == 0;
}

/* Sum of w * (x - in_zp) over the in-image taps of one output pixel, for one output channel.
 * `in_group` points at the first input channel of the channel group of `w_oc`. */
static int32_t conv2d_pixel_acc(const tc_conv2d_params *p, const int8_t *in_group,
                                const int8_t *w_oc, int32_t in_y0, int32_t in_x0) {
    const int32_t group_c = p->in_c / p->groups;
    int32_t acc = 0;
    int32_t ky, kx, ic;
    for (ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = in_y0 + ky * p->dil_h;
        if (iy < 0 || iy >= p->in_h) continue;
        for (kx = 0; kx < p->k_w; ++kx) {
            const int32_t ix = in_x0 + kx * p->dil_w;
            const int8_t *x;
            const int8_t *wk;
            if (ix < 0 || ix >= p->in_w) continue;
            x = in_group + (iy * p->in_w + ix) * p->in_c;
            wk = w_oc + (ky * p->k_w + kx) * group_c;
            for (ic = 0; ic < group_c; ++ic) {
                acc += (int32_t)wk[ic] * ((int32_t)x[ic] - p->in_zp);
            }
        }
    }
    return acc;
}

#if TC_HAVE_DSP

static int conv2d_dsp_applicable(const tc_conv2d_params *p) {
    if (p->groups == 1 && p->dil_w == 1) return p->k_w * p->in_c >= 4;
    return p->in_c / p->groups >= 4;
}

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
 * weights (35 instructions per 32 MACs against 46 when both sides are widened in the loop).
 * Padded taps give x - in_zp = 0, so border windows cost the same as interior ones and any two
 * pixels can be paired.
 * Windows deeper than CONV2D_CHUNK values are summed chunk by chunk; between chunks the partial
 * sums of up to CONV2D_OC_BLOCK output channels of both pixels are kept on the stack.
 * Stack: 2 x CONV2D_CHUNK x 2 B = 576 B of widened input, plus 2 x CONV2D_OC_BLOCK x 4 B =
 * 256 B of partial sums for deep windows.
 */
enum { CONV2D_CHUNK = 144 };   /* a multiple of 8 */
enum { CONV2D_OC_BLOCK = 32 }; /* even */

/* Two pixels' widened windows, one flat array: pixel k's CONV2D_CHUNK int16 values take the
 * words from k * CONV2D_PIXEL. Values gathered as int8 are staged in the upper half of the
 * pixel's words, which the widening, walking up, overwrites only after reading them. */
enum { CONV2D_PIXEL = CONV2D_CHUNK / 2 };

typedef struct {
    uint32_t x[2 * CONV2D_PIXEL];
} conv2d_scratch;

/* Values [d0, d0 + len) of output pixel `pix`'s window in depth order, in_zp outside the
 * image. */
static void conv2d_gather(const tc_conv2d_params *p, const int8_t *in, int32_t pix, int32_t d0,
                          int32_t len, int8_t *dst) {
    const int32_t oy = pix / p->out_w;
    const int32_t in_y0 = oy * p->stride_h - p->pad_top;
    const int32_t in_x0 = (pix - oy * p->out_w) * p->stride_w - p->pad_left;
    const int32_t row_len = p->k_w * p->in_c;
    const int zp = (int)p->in_zp;
    int32_t kx_lo, kx_hi, ky = d0 / row_len, j = d0 - ky * row_len;
    tc_dsp_tap_range(in_x0, 1, p->in_w, p->k_w, &kx_lo, &kx_hi);
    while (len > 0) {
        const int32_t n = TC_MIN(row_len - j, len);
        const int32_t iy = in_y0 + ky * p->dil_h;
        if (iy < 0 || iy >= p->in_h) {
            memset(dst, zp, (size_t)n);
        } else { /* kernel-row values [a, b) lie in the image */
            const int32_t a = TC_MIN(TC_MAX(kx_lo * p->in_c, j), j + n);
            const int32_t b = TC_MIN(TC_MAX(kx_hi * p->in_c, a), j + n);
            if (a > j) memset(dst, zp, (size_t)(a - j));
            if (b > a) {
                memcpy(dst + (a - j), in + ((iy * p->in_w + in_x0) * p->in_c + a),
                       (size_t)(b - a));
            }
            if (j + n > b) memset(dst + (b - j), zp, (size_t)(j + n - b));
        }
        dst += n;
        len -= n;
        j = 0;
        ++ky;
    }
}

/* Widens the `groups` 4-value groups at src into x (src may be x's upper half). */
static void conv2d_widen(uint32_t *x, const int8_t *src, int32_t groups, uint32_t offset) {
    int32_t g;
    for (g = 0; g < groups; ++g) {
        const uint32_t v = tc_read_s8x4(src + 4 * g);
        x[2 * g] = tc_sxtab16(offset, v);
        x[2 * g + 1] = tc_sxtab16_ror8(offset, v);
    }
}

/* Whether all of pixel pix's window lies in the image, with kernel rows of whole 4-value
 * groups: then chunks of whole groups are widened straight from the input. */
static int conv2d_window_inside(const tc_conv2d_params *p, int32_t pix) {
    const int32_t oy = pix / p->out_w;
    const int32_t in_y0 = oy * p->stride_h - p->pad_top;
    const int32_t in_x0 = (pix - oy * p->out_w) * p->stride_w - p->pad_left;
    return ((p->k_w * p->in_c) & 3) == 0 && in_y0 >= 0 && in_x0 >= 0 &&
           in_y0 + (p->k_h - 1) * p->dil_h < p->in_h && in_x0 + p->k_w <= p->in_w;
}

/* Widens values [d0, d0 + len) (whole groups) of pixel pix's window, all inside the image. */
static void conv2d_widen_inside(const tc_conv2d_params *p, const int8_t *in, int32_t pix,
                                int32_t d0, int32_t len, uint32_t *x) {
    const int32_t oy = pix / p->out_w;
    const int32_t in_y0 = oy * p->stride_h - p->pad_top;
    const int32_t in_x0 = (pix - oy * p->out_w) * p->stride_w - p->pad_left;
    const int32_t row_len = p->k_w * p->in_c;
    const uint32_t offset = tc_dsp_input_offset(p->in_zp);
    int32_t ky = d0 / row_len, j = d0 - ky * row_len;
    while (len > 0) {
        const int32_t n = TC_MIN(row_len - j, len);
        const int32_t iy = in_y0 + ky * p->dil_h;
        conv2d_widen(x, in + (iy * p->in_w + in_x0) * p->in_c + j, n >> 2, offset);
        x += n >> 1;
        len -= n;
        j = 0;
        ++ky;
    }
}

/* Gathers and widens values [d0, d0 + len) of the windows of pixels pix0 and pix1. */
static void conv2d_stage_pair(const tc_conv2d_params *p, const int8_t *in, int32_t pix0,
                              int32_t pix1, int32_t d0, int32_t len, conv2d_scratch *s) {
    const int32_t groups = (len + 3) >> 2;
    int k;
    for (k = 0; k < 2; ++k) {
        const int32_t pix = k == 0 ? pix0 : pix1;
        uint32_t *x = s->x + k * CONV2D_PIXEL;
        if ((len & 3) == 0 && conv2d_window_inside(p, pix)) {
            conv2d_widen_inside(p, in, pix, d0, len, x);
        } else {
            int8_t *staged = (int8_t *)x + CONV2D_CHUNK;
            conv2d_gather(p, in, pix, d0, len, staged);
            if (4 * groups > len) {
                memset(staged + len, (int)p->in_zp, (size_t)(4 * groups - len));
            }
            conv2d_widen(x, staged, groups, tc_dsp_input_offset(p->in_zp));
        }
    }
}

/* The first n (< 4) bytes of w in a word, zero above (weights of a window's short last group). */
static uint32_t conv2d_tail_word(const int8_t *w, int32_t n) {
    uint32_t word = 0;
    int32_t i;
    for (i = 0; i < n; ++i) word |= (uint32_t)(uint8_t)w[i] << (8 * i);
    return word;
}

/* A pixel pair's widened chunk, against a range of output channels. Read through a pointer
 * in the channel loop: the output stores (int8) may alias anything, so the compiler reloads
 * the fields it needs rather than keeping them all in registers or spilling copies. */
typedef struct {
    const conv2d_scratch *s;
    const int8_t *w;        /* weights [out_c][depth], at the chunk's first value */
    int32_t w_oc;           /* depth: weights per output channel */
    int32_t groups, tail;   /* whole 4-value groups in the chunk, values after them (0..3) */
    int32_t *partial;       /* NULL: the window is one chunk; else 4 sums per channel pair */
    int first, last;        /* the chunk is the window's first / last */
    int8_t *y0, *y1;        /* the pixels' outputs */
    tc_dsp_requant q;
} conv2d_pair_job;

/* acc += the 2x2 block of the two widened pixels x and weight rows (w0, w1) over n groups. */
static inline void conv2d_dot_wide_2x2(const uint32_t *x, const int8_t *w0, const int8_t *w1,
                                       int32_t n, int32_t acc[4]) {
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    int32_t i;
    for (i = n >> 1; i > 0; --i) { /* two groups per iteration */
        uint32_t x0e = x[0], x0o = x[1];
        uint32_t x1e = x[CONV2D_PIXEL], x1o = x[CONV2D_PIXEL + 1];
        uint32_t wo = tc_read_s8x4(w0);
        uint32_t we = tc_sxtb16(wo);
        wo = tc_sxtb16_ror8(wo);
        a00 = tc_smlad(x0e, we, a00);
        a10 = tc_smlad(x1e, we, a10);
        a00 = tc_smlad(x0o, wo, a00);
        a10 = tc_smlad(x1o, wo, a10);
        wo = tc_read_s8x4(w1);
        we = tc_sxtb16(wo);
        wo = tc_sxtb16_ror8(wo);
        a01 = tc_smlad(x0e, we, a01);
        a11 = tc_smlad(x1e, we, a11);
        a01 = tc_smlad(x0o, wo, a01);
        a11 = tc_smlad(x1o, wo, a11);
        x0e = x[2];
        x0o = x[3];
        x1e = x[CONV2D_PIXEL + 2];
        x1o = x[CONV2D_PIXEL + 3];
        wo = tc_read_s8x4(w0 + 4);
        we = tc_sxtb16(wo);
        wo = tc_sxtb16_ror8(wo);
        a00 = tc_smlad(x0e, we, a00);
        a10 = tc_smlad(x1e, we, a10);
        a00 = tc_smlad(x0o, wo, a00);
        a10 = tc_smlad(x1o, wo, a10);
        wo = tc_read_s8x4(w1 + 4);
        we = tc_sxtb16(wo);
        wo = tc_sxtb16_ror8(wo);
        a01 = tc_smlad(x0e, we, a01);
        a11 = tc_smlad(x1e, we, a11);
        a01 = tc_smlad(x0o, wo, a01);
        a11 = tc_smlad(x1o, wo, a11);
        x += 4;
        w0 += 8;
        w1 += 8;
    }
    if (n & 1) {
        const uint32_t x0e = x[0], x0o = x[1];
        const uint32_t x1e = x[CONV2D_PIXEL], x1o = x[CONV2D_PIXEL + 1];
        uint32_t wo = tc_read_s8x4(w0);
        uint32_t we = tc_sxtb16(wo);
        wo = tc_sxtb16_ror8(wo);
        a00 = tc_smlad(x0o, wo, tc_smlad(x0e, we, a00));
        a10 = tc_smlad(x1o, wo, tc_smlad(x1e, we, a10));
        wo = tc_read_s8x4(w1);
        we = tc_sxtb16(wo);
        wo = tc_sxtb16_ror8(wo);
        a01 = tc_smlad(x0o, wo, tc_smlad(x0e, we, a01));
        a11 = tc_smlad(x1o, wo, tc_smlad(x1e, we, a11));
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

/* acc += the chunk's last, short group (the weights padded with zeros: no read past a row). */
static void conv2d_tail_2x2(const conv2d_pair_job *pt, const int8_t *w0, const int8_t *w1,
                            int32_t acc[4]) {
    const uint32_t t0 = conv2d_tail_word(w0 + 4 * pt->groups, pt->tail);
    const uint32_t t1 = conv2d_tail_word(w1 + 4 * pt->groups, pt->tail);
    const uint32_t *x0 = pt->s->x + 2 * pt->groups, *x1 = x0 + CONV2D_PIXEL;
    acc[0] = tc_smlad(x0[1], tc_sxtb16_ror8(t0), tc_smlad(x0[0], tc_sxtb16(t0), acc[0]));
    acc[1] = tc_smlad(x0[1], tc_sxtb16_ror8(t1), tc_smlad(x0[0], tc_sxtb16(t1), acc[1]));
    acc[2] = tc_smlad(x1[1], tc_sxtb16_ror8(t0), tc_smlad(x1[0], tc_sxtb16(t0), acc[2]));
    acc[3] = tc_smlad(x1[1], tc_sxtb16_ror8(t1), tc_smlad(x1[0], tc_sxtb16(t1), acc[3]));
}

/* Output channels [c_begin, c_end) of a pixel pair over one chunk, two at a time (an odd last
 * channel runs twice); the chunk's short last group, if any, is read byte by byte. Off the hot
 * path: the channel pair that holds the last output channel when the weights' rows do not end
 * on a whole group. The job's fields are copied to locals: the int8 output stores may alias
 * anything reached through a pointer. */
static TC_DSP_NOINLINE void conv2d_pair_channels(const conv2d_pair_job *pt, int32_t c_begin,
                                                 int32_t c_end) {
    const tc_dsp_requant q = pt->q;
    const uint32_t *x = pt->s->x;
    const int32_t w_oc = pt->w_oc, groups = pt->groups;
    const int first = pt->first, last = pt->last, tail = pt->tail;
    int8_t *y0 = pt->y0, *y1 = pt->y1;
    int32_t *partial = pt->partial;
    const int8_t *w0 = pt->w + c_begin * w_oc;
    int32_t c;
    for (c = c_begin; c < c_end; c += 2) {
        const int32_t c1 = c + 1 < c_end ? c + 1 : c;
        const int8_t *w1 = c1 > c ? w0 + w_oc : w0;
        int32_t acc[4];
        int8_t results[4];
        if (!first) {
            memcpy(acc, partial + 2 * (c - c_begin), sizeof acc);
        } else if (q.bias != NULL) {
            acc[0] = acc[2] = q.bias[c];
            acc[1] = acc[3] = q.bias[c1];
        } else {
            acc[0] = acc[1] = acc[2] = acc[3] = 0;
        }
        conv2d_dot_wide_2x2(x, w0, w1, groups, acc);
        if (tail != 0) conv2d_tail_2x2(pt, w0, w1, acc);
        w0 += 2 * w_oc;
        if (!last) {
            memcpy(partial + 2 * (c - c_begin), acc, sizeof acc);
            continue;
        }
        tc_dsp_output_pair(&q, c, c1, acc, results);
        y0[c] = results[0];
        y0[c1] = results[1];
        y1[c] = results[2];
        y1[c1] = results[3];
    }
}

/* The four outputs of a 2x2 block (pixels 0, 1 x channels c, c + 1) whose accumulators hold
 * the bias, into y0[c], y0[c + 1], y1[c], y1[c + 1]: tc_dsp_output_pair written out so that it
 * is inlined into the hot loop, with each channel's rounding terms computed once. */
static inline void conv2d_store_2x2(const tc_dsp_requant *q, int32_t c, const int32_t acc[4],
                                    int8_t *y0, int8_t *y1) {
    const int32_t shift0 = q->shift[c], shift1 = q->shift[c + 1];
    int32_t v0, v1, v2, v3;
    if ((shift0 & shift1) < 0) { /* both negative: the usual right shifts */
        const int32_t mult0 = q->mult[c], mult1 = q->mult[c + 1];
        const int32_t e0 = -shift0 - 1, e1 = -shift1 - 1;
        const uint32_t half0 = UINT32_C(1) << e0, half1 = UINT32_C(1) << e1;
        /* y + out_zp cannot overflow here (|y| < 2^31 / 2^e); SSAT is the clamp to int8 */
        v0 = tc_ssat8(tc_mbqm_right(acc[0], mult0, half0, e0) + q->out_zp);
        v1 = tc_ssat8(tc_mbqm_right(acc[1], mult1, half1, e1) + q->out_zp);
        v2 = tc_ssat8(tc_mbqm_right(acc[2], mult0, half0, e0) + q->out_zp);
        v3 = tc_ssat8(tc_mbqm_right(acc[3], mult1, half1, e1) + q->out_zp);
        if (q->act_min != -128 || q->act_max != 127) { /* a fused activation */
            v0 = TC_MIN(TC_MAX(v0, q->act_min), q->act_max);
            v1 = TC_MIN(TC_MAX(v1, q->act_min), q->act_max);
            v2 = TC_MIN(TC_MAX(v2, q->act_min), q->act_max);
            v3 = TC_MIN(TC_MAX(v3, q->act_min), q->act_max);
        }
    } else { /* the rare left shifts (shift >= 0) */
        v0 = tc_requant_call(acc[0], q->mult[c], shift0, q);
        v1 = tc_requant_call(acc[1], q->mult[c + 1], shift1, q);
        v2 = tc_requant_call(acc[2], q->mult[c], shift0, q);
        v3 = tc_requant_call(acc[3], q->mult[c + 1], shift1, q);
    }
    y0[c] = (int8_t)v0;
    y0[c + 1] = (int8_t)v1;
    y1[c] = (int8_t)v2;
    y1[c + 1] = (int8_t)v3;
}

/* The hot loop: output channel pairs [0, c_end) (an even count) of a pixel pair whose window
 * is one chunk. A short last group is read as a whole word: the widened input is 0 past the
 * window, so the extra weights (the next channel's) add nothing; the caller keeps the read
 * inside the weights. */
static TC_DSP_NOINLINE void conv2d_pair_channels_whole(const conv2d_pair_job *pt,
                                                       int32_t c_end) {
    const tc_dsp_requant *q = &pt->q;
    const int32_t w_oc = pt->w_oc;
    const int32_t groups = pt->groups + (pt->tail != 0);
    const int8_t *w = pt->w;
    int32_t c;
    for (c = 0; c < c_end; c += 2) {
        int32_t acc[4];
        if (q->bias != NULL) {
            acc[0] = acc[2] = q->bias[c];
            acc[1] = acc[3] = q->bias[c + 1];
        } else {
            acc[0] = acc[1] = acc[2] = acc[3] = 0;
        }
        conv2d_dot_wide_2x2(pt->s->x, w, w + w_oc, groups, acc);
        w += 2 * w_oc;
        conv2d_store_2x2(q, c, acc, pt->y0, pt->y1);
    }
}

/* All output channels of a pixel pair whose window is one chunk: the channel pairs whose
 * weight reads stay inside the weights take the hot loop. */
static void conv2d_pair_whole(const conv2d_pair_job *pt, int32_t out_c) {
    int32_t c_fast = out_c & ~1;
    /* a whole-word read of the last group of channel out_c - 1 would pass the weights' end */
    if (pt->tail != 0 && c_fast == out_c) c_fast -= 2;
    if (c_fast > 0) conv2d_pair_channels_whole(pt, c_fast);
    if (c_fast < out_c) conv2d_pair_channels(pt, c_fast, out_c);
}

/* Windows of at most CONV2D_CHUNK values: all output channels of each pixel pair at once. */
static TC_DSP_NOINLINE void conv2d_s8_gathered(const tc_conv2d_params *p, const int8_t *in, const int8_t *w,
                               const tc_dsp_requant *q, int8_t *out) {
    const int32_t pixels = p->out_h * p->out_w;
    const int32_t depth = p->k_h * p->k_w * p->in_c;
    conv2d_scratch s;
    conv2d_pair_job job;
    int32_t pix;
    job.s = &s;
    job.w = w;
    job.w_oc = depth;
    job.groups = depth >> 2;
    job.tail = depth & 3;
    job.partial = NULL;
    job.first = job.last = 1;
    job.q = *q;
    for (pix = 0; pix < pixels; pix += 2) {
        const int32_t pix1 = pix + 1 < pixels ? pix + 1 : pix; /* an odd last pixel runs twice */
        job.y0 = out + pix * p->out_c;
        job.y1 = out + pix1 * p->out_c;
        conv2d_stage_pair(p, in, pix, pix1, 0, depth, &s);
        conv2d_pair_whole(&job, p->out_c);
    }
}

/* Deeper windows: per pixel pair and block of CONV2D_OC_BLOCK output channels, chunk by chunk. */
static TC_DSP_NOINLINE void conv2d_s8_gathered_deep(const tc_conv2d_params *p,
                                                    const int8_t *in, const int8_t *w, const tc_dsp_requant *q, int8_t *out) {
    const int32_t pixels = p->out_h * p->out_w;
    const int32_t depth = p->k_h * p->k_w * p->in_c;
    conv2d_scratch s;
    int32_t partial[2 * CONV2D_OC_BLOCK];
    conv2d_pair_job job;
    int32_t pix, c, d0;
    job.s = &s;
    job.w_oc = depth;
    job.partial = partial;
    job.q = *q;
    for (pix = 0; pix < pixels; pix += 2) {
        const int32_t pix1 = pix + 1 < pixels ? pix + 1 : pix; /* an odd last pixel runs twice */
        job.y0 = out + pix * p->out_c;
        job.y1 = out + pix1 * p->out_c;
        for (c = 0; c < p->out_c; c += CONV2D_OC_BLOCK) {
            const int32_t c_end = TC_MIN(c + CONV2D_OC_BLOCK, p->out_c);
            for (d0 = 0; d0 < depth; d0 += CONV2D_CHUNK) {
                const int32_t len = TC_MIN(CONV2D_CHUNK, depth - d0);
                job.w = w + d0;
                job.groups = len >> 2;
                job.tail = len & 3;
                job.first = d0 == 0;
                job.last = d0 + len == depth;
                conv2d_stage_pair(p, in, pix, pix1, d0, len, &s);
                conv2d_pair_channels(&job, c, c_end);
            }
        }
    }
}

/*
 * SIMD path. groups == 1 and dil_w == 1: the gathered path above. Otherwise output pixels are
 * taken in pairs along a row where both windows have the same in-image taps (everywhere except
 * near the left and right borders), else one at a time.
 */
static void conv2d_s8_dsp(const tc_conv2d_params *p, const int8_t *in, const int8_t *w,
                          const int32_t *bias, const int32_t *mult, const int32_t *shift,
                          int8_t *out) {
    const tc_dsp_requant q =
        tc_dsp_make_requant(bias, mult, shift, p->out_zp, p->act_min, p->act_max);
    int32_t oy, ox;
    if (p->groups == 1 && p->dil_w == 1) {
        if (p->k_h * p->k_w * p->in_c <= CONV2D_CHUNK) {
            conv2d_s8_gathered(p, in, w, &q, out);
        } else {
            conv2d_s8_gathered_deep(p, in, w, &q, out);
        }
        return;
    }
    for (oy = 0; oy < p->out_h; ++oy) {
        int8_t *y = out + oy * p->out_w * p->out_c;
        for (ox = 0; ox < p->out_w; ++ox, y += p->out_c) {
            const conv2d_window a = conv2d_make_window(p, oy, ox);
            if (ox + 1 < p->out_w) {
                const conv2d_window b = conv2d_make_window(p, oy, ox + 1);
                if (conv2d_same_taps(&a, &b)) {
                    conv2d_pixel_pair(p, &a, in + a.x_offset, b.x_offset - a.x_offset,
                                      w + a.w_offset, &q, y);
                    ++ox;
                    y += p->out_c;
                    continue;
                }
            }
            conv2d_pixel(p, &a, in + a.x_offset, w + a.w_offset, &q, y);
        }
    }
}

#endif /* TC_HAVE_DSP */

tc_status tc_conv2d_s8(const tc_conv2d_params *p, const int8_t *in, const int8_t *w,
                       const int32_t *bias, const int32_t *mult, const int32_t *shift,
                       int8_t *out) {
    int32_t oy, ox, oc;
    int32_t group_c, group_oc, w_oc_size;
    if (p == NULL || in == NULL || w == NULL || mult == NULL || shift == NULL || out == NULL) {
        return TC_ARG_ERROR;
    }
    if (!conv2d_args_ok(p) ||
        !tc_conv_quant_args_ok(p->in_zp, p->out_zp, p->act_min, p->act_max, mult, shift,
                               p->out_c)) {
        return TC_ARG_ERROR;
    }
#if TC_HAVE_DSP
    if (conv2d_dsp_applicable(p)) {
        conv2d_s8_dsp(p, in, w, bias, mult, shift, out);
        return TC_OK;
    }
#endif
    group_c = p->in_c / p->groups;
    group_oc = p->out_c / p->groups;
    w_oc_size = p->k_h * p->k_w * group_c;
    for (oy = 0; oy < p->out_h; ++oy) {
        const int32_t in_y0 = oy * p->stride_h - p->pad_top;
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t in_x0 = ox * p->stride_w - p->pad_left;
            int8_t *y = out + (oy * p->out_w + ox) * p->out_c;
            for (oc = 0; oc < p->out_c; ++oc) {
                const int8_t *in_group = in + (oc / group_oc) * group_c;
                int32_t acc = conv2d_pixel_acc(p, in_group, w + oc * w_oc_size, in_y0, in_x0);
                if (bias != NULL) acc += bias[oc];
                y[oc] = tc_requant_s8_nonneg(acc, mult[oc], shift[oc], p->out_zp, p->act_min,
                                             p->act_max);
            }
        }
    }
    return TC_OK;
}
