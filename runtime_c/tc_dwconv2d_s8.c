/*
 * tinycc runtime: int8 depthwise 2-D convolution, TFLM DepthwiseConvPerChannel arithmetic,
 * out-of-place and in-place (TinyEngine-style, one channel plane of scratch).
 * Mirrored by tinycc/golden/kernels_conv.py::dwconv2d_s8 (both entry points).
 *
 * 3x3 kernels with dilation 1 and depth_mult 1 take dwconv2d_3x3 in both entry points (rows
 * gathered into a zero-point-padded ring on the stack; SIMD sums with TC_HAVE_DSP where the
 * out-of-place kernel has in_c >= 4, scalar sums otherwise). Other shapes:
 * with TC_HAVE_DSP (tc_arm_dsp.h) both entry points have SIMD paths, bit-exact with the
 * portable dwconv2d_channel: tc_dwconv2d_s8 (dwconv2d_s8_dsp) for depth_mult == 1 and
 * in_c >= 4, 4 channels at a time along the window; tc_dwconv2d_s8_inplace (dwconv2d_plane_dsp)
 * for dil_w == 1 and k_h * ceil(k_w / 4) <= 16, 4 taps of a window row at a time.
 */
#include "tc_conv.h"
#include "tc_dot_s8_dsp.h"

#include <stddef.h>
#include <string.h>

static int dwconv2d_args_ok(const tc_dwconv2d_params *p) {
    if (p->in_h < 1 || p->in_w < 1 || p->in_c < 1 || p->out_h < 1 || p->out_w < 1) {
        return 0;
    }
    if (p->k_h < 1 || p->k_w < 1 || p->stride_h < 1 || p->stride_w < 1 || p->dil_h < 1 ||
        p->dil_w < 1 || p->pad_top < 0 || p->pad_left < 0) {
        return 0;
    }
    return p->depth_mult >= 1 && p->out_c == p->in_c * p->depth_mult;
}

/*
 * Sum of w * (x - in_zp) over the in-image taps of the output pixel whose window starts at
 * input row in_y0 and column in_x0, for output channel oc. `plane` is the input channel feeding
 * oc, `plane_stride` the distance between neighbouring pixels of that channel (in_c for the
 * NHWC tensor, 1 for a gathered plane).
 */
static int32_t dwconv2d_tap_sum(const tc_dwconv2d_params *p, const int8_t *plane,
                                int32_t plane_stride, const int8_t *w, int32_t oc, int32_t in_y0,
                                int32_t in_x0) {
    int32_t ky, kx, acc = 0;
    for (ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = in_y0 + ky * p->dil_h;
        if (iy < 0 || iy >= p->in_h) continue;
        for (kx = 0; kx < p->k_w; ++kx) {
            const int32_t ix = in_x0 + kx * p->dil_w;
            int32_t x;
            if (ix < 0 || ix >= p->in_w) continue;
            x = plane[(iy * p->in_w + ix) * plane_stride];
            acc += (int32_t)w[(ky * p->k_w + kx) * p->out_c + oc] * (x - p->in_zp);
        }
    }
    return acc;
}

/*
 * Computes output channel `oc` for every output pixel (plane and plane_stride as in
 * dwconv2d_tap_sum). `out_oc` points at channel oc of output pixel 0; pixels are out_c apart.
 * Both entry points use this function, so they are bit-exact by construction.
 */
static void dwconv2d_channel(const tc_dwconv2d_params *p, const int8_t *plane,
                             int32_t plane_stride, const int8_t *w, const int32_t *bias,
                             int32_t oc, int32_t mult, int32_t shift, int8_t *out_oc) {
    int32_t oy, ox;
    for (oy = 0; oy < p->out_h; ++oy) {
        const int32_t in_y0 = oy * p->stride_h - p->pad_top;
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t in_x0 = ox * p->stride_w - p->pad_left;
            int32_t acc = dwconv2d_tap_sum(p, plane, plane_stride, w, oc, in_y0, in_x0);
            if (bias != NULL) acc += bias[oc];
            out_oc[(oy * p->out_w + ox) * p->out_c] =
                tc_requant_s8_nonneg(acc, mult, shift, p->out_zp, p->act_min, p->act_max);
        }
    }
}

#if TC_HAVE_DSP

/*
 * Window sums of channels c..c+3 of one output pixel; x and w point at channel c of the first
 * in-image tap in the input and in the weights (taps->run_len is unused: every tap is one run
 * of 4 channels). SMLABB takes the low int16 lanes (channels c and c + 1 after SXTAB16 and
 * SXTAB16 ROR 8), SMLATT the high lanes (channels c + 2 and c + 3).
 */
static TC_DSP_NOINLINE void dwconv2d_channels4(const tc_dsp_taps *taps, const int8_t *x,
                                               const int8_t *w, int32_t in_zp, int32_t acc[4]) {
    const uint32_t offset = tc_dsp_input_offset(in_zp);
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int32_t r, k;
    for (r = 0; r < taps->rows; ++r) {
        int32_t x_tap = tc_dsp_x_offset(taps, r, 0);
        int32_t w_tap = tc_dsp_w_offset(taps, r, 0);
        for (k = taps->runs; k > 0; --k) {
            const uint32_t x4 = tc_read_s8x4(x + x_tap);
            const uint32_t w4 = tc_read_s8x4(w + w_tap);
            uint32_t x_pair = tc_sxtab16(offset, x4);
            uint32_t w_pair = tc_sxtb16(w4);
            a0 = tc_smlabb(x_pair, w_pair, a0);
            a2 = tc_smlatt(x_pair, w_pair, a2);
            x_pair = tc_sxtab16_ror8(offset, x4);
            w_pair = tc_sxtb16_ror8(w4);
            a1 = tc_smlabb(x_pair, w_pair, a1);
            a3 = tc_smlatt(x_pair, w_pair, a3);
            x_tap += taps->x_run;
            w_tap += taps->w_run;
        }
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Window sum of the single channel at x[0] / w[0] (same taps as dwconv2d_channels4). */
static int32_t dwconv2d_channel1(const tc_dsp_taps *taps, const int8_t *x, const int8_t *w,
                                 int32_t in_zp) {
    int32_t r, k, acc = 0;
    for (r = 0; r < taps->rows; ++r) {
        for (k = 0; k < taps->runs; ++k) {
            acc += ((int32_t)x[tc_dsp_x_offset(taps, r, k)] - in_zp) *
                   w[tc_dsp_w_offset(taps, r, k)];
        }
    }
    return acc;
}

/* All channels of output pixel y; x and w point at channel 0 of the window's first tap. */
static void dwconv2d_pixel(const tc_dwconv2d_params *p, const tc_dsp_taps *taps,
                           const int8_t *x, const int8_t *w, const tc_dsp_requant *q, int8_t *y) {
    const tc_dsp_requant rq = *q; /* a local copy: stores through y cannot change it */
    const int32_t channels = p->out_c, in_zp = p->in_zp;
    int32_t c, acc[4];
    for (c = 0; c + 4 <= channels; c += 4) {
        dwconv2d_channels4(taps, x + c, w + c, in_zp, acc);
        y[c] = tc_dsp_output(&rq, c, acc[0]);
        y[c + 1] = tc_dsp_output(&rq, c + 1, acc[1]);
        y[c + 2] = tc_dsp_output(&rq, c + 2, acc[2]);
        y[c + 3] = tc_dsp_output(&rq, c + 3, acc[3]);
    }
    for (; c < channels; ++c) {
        y[c] = tc_dsp_output_call(&rq, c, dwconv2d_channel1(taps, x + c, w + c, in_zp));
    }
}

/* SIMD path for depth_mult == 1: pixel by pixel, 4 channels at a time along the window. */
static void dwconv2d_s8_dsp(const tc_dwconv2d_params *p, const int8_t *in, const int8_t *w,
                            const int32_t *bias, const int32_t *mult, const int32_t *shift,
                            int8_t *out) {
    const tc_dsp_requant q =
        tc_dsp_make_requant(bias, mult, shift, p->out_zp, p->act_min, p->act_max);
    tc_dsp_taps taps;
    int32_t oy, ox, ky_lo, ky_hi, kx_lo, kx_hi;
    taps.run_len = 1;
    taps.x_row = p->dil_h * p->in_w * p->in_c;
    taps.w_row = p->k_w * p->out_c;
    taps.x_run = p->dil_w * p->in_c;
    taps.w_run = p->out_c;
    for (oy = 0; oy < p->out_h; ++oy) {
        const int32_t in_y0 = oy * p->stride_h - p->pad_top;
        tc_dsp_tap_range(in_y0, p->dil_h, p->in_h, p->k_h, &ky_lo, &ky_hi);
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t in_x0 = ox * p->stride_w - p->pad_left;
            int8_t *y = out + (oy * p->out_w + ox) * p->out_c;
            tc_dsp_tap_range(in_x0, p->dil_w, p->in_w, p->k_w, &kx_lo, &kx_hi);
            taps.rows = kx_hi > kx_lo ? ky_hi - ky_lo : 0;
            taps.runs = taps.rows > 0 ? kx_hi - kx_lo : 0;
            if (taps.rows > 0) {
                const int32_t iy = in_y0 + ky_lo * p->dil_h, ix = in_x0 + kx_lo * p->dil_w;
                dwconv2d_pixel(p, &taps, in + (iy * p->in_w + ix) * p->in_c,
                               w + (ky_lo * p->k_w + kx_lo) * p->out_c, &q, y);
            } else { /* no tap inside the image: nothing is read */
                dwconv2d_pixel(p, &taps, in, w, &q, y);
            }
        }
    }
}

/*
 * In-place path: one gathered channel plane (pixels 1 apart) at a time. The channel's weights
 * are packed once into int16 pairs, per kernel row in groups of 4 taps as (w0, w2) and
 * (w1, w3), zero past k_w; a window row is then read 4 int8 values at a time and multiplied
 * with SXTAB16 / SMLAD like the dot-product blocks. The values read past the row's last tap
 * meet zero weights. Kernels at most 4 wide on planes at least 4 wide take every window,
 * borders included, this way (dwconv2d_plane_narrow); otherwise windows that cross the left or
 * right border, and the last bytes of the plane (where a 4-byte read would leave it), use the
 * portable tap sum.
 */
#define DWCONV2D_PACKED_WORDS 32

static int32_t dwconv2d_plane_groups(const tc_dwconv2d_params *p) { return (p->k_w + 3) / 4; }

static int dwconv2d_plane_dsp_applicable(const tc_dwconv2d_params *p) {
    return p->dil_w == 1 && p->k_h * 2 * dwconv2d_plane_groups(p) <= DWCONV2D_PACKED_WORDS;
}

static void dwconv2d_pack_weights(const tc_dwconv2d_params *p, const int8_t *w, int32_t c,
                                  uint32_t packed[DWCONV2D_PACKED_WORDS]) {
    const int32_t groups = dwconv2d_plane_groups(p);
    int32_t ky, g, j, v[4];
    for (ky = 0; ky < p->k_h; ++ky) {
        for (g = 0; g < groups; ++g) {
            for (j = 0; j < 4; ++j) {
                const int32_t kx = 4 * g + j;
                v[j] = kx < p->k_w ? w[(ky * p->k_w + kx) * p->out_c + c] : 0;
            }
            packed[2 * (ky * groups + g)] = tc_pack_s16x2(v[0], v[2]);
            packed[2 * (ky * groups + g) + 1] = tc_pack_s16x2(v[1], v[3]);
        }
    }
}

/* Window sum over `rows` plane rows from x (rows row_step apart) with the packed weights of the
 * same rows, `groups` 4-tap groups per row. */
static inline int32_t dwconv2d_plane_sum(const int8_t *x, int32_t row_step,
                                         const uint32_t *packed, int32_t rows, int32_t groups,
                                         uint32_t offset) {
    int32_t r, g, acc = 0;
    if (groups == 1) { /* k_w <= 4, the common case: one word per row */
        for (r = 0; r < rows; ++r) {
            const uint32_t x4 = tc_read_s8x4(x + r * row_step);
            acc = tc_smlad(tc_sxtab16(offset, x4), packed[2 * r], acc);
            acc = tc_smlad(tc_sxtab16_ror8(offset, x4), packed[2 * r + 1], acc);
        }
        return acc;
    }
    for (r = 0; r < rows; ++r) {
        const int8_t *x_row = x + r * row_step;
        const uint32_t *w_row = packed + 2 * r * groups;
        for (g = 0; g < groups; ++g) {
            const uint32_t x4 = tc_read_s8x4(x_row + 4 * g);
            acc = tc_smlad(tc_sxtab16(offset, x4), w_row[2 * g], acc);
            acc = tc_smlad(tc_sxtab16_ror8(offset, x4), w_row[2 * g + 1], acc);
        }
    }
    return acc;
}

/* Requantization of one output channel (its bias folded in). */
typedef struct {
    int32_t bias, mult, shift, out_zp, act_min, act_max;
} dwconv2d_channel_requant;

static inline int8_t dwconv2d_output(const dwconv2d_channel_requant *q, int32_t acc) {
    return tc_requant_s8_nonneg(acc + q->bias, q->mult, q->shift, q->out_zp, q->act_min,
                                q->act_max);
}

/* Output pixels [*lo, *hi) of a row whose windows lie inside the plane's columns and whose
 * 4-byte reads of the last window row `last_row` (an element offset) stay inside the plane. */
static void dwconv2d_plane_inner_columns(const tc_dwconv2d_params *p, int32_t last_row,
                                         int32_t *lo, int32_t *hi) {
    const int32_t read_w = 4 * dwconv2d_plane_groups(p);
    const int32_t last_x = TC_MIN(p->in_w - p->k_w, p->in_h * p->in_w - read_w - last_row);
    *lo = TC_MIN((p->pad_left + p->stride_w - 1) / p->stride_w, p->out_w);
    *hi = last_x + p->pad_left < 0 ? 0 : (last_x + p->pad_left) / p->stride_w + 1;
    *hi = TC_MAX(*lo, TC_MIN(*hi, p->out_w));
}

/* Output pixel (oy, ox) of channel c the portable way (windows at the plane's borders). */
static int8_t dwconv2d_plane_border(const tc_dwconv2d_params *p, const int8_t *plane,
                                    const int8_t *w, int32_t c, const dwconv2d_channel_requant *q,
                                    int32_t oy, int32_t ox) {
    return dwconv2d_output(q, dwconv2d_tap_sum(p, plane, 1, w, c, oy * p->stride_h - p->pad_top,
                                               ox * p->stride_w - p->pad_left));
}

/*
 * Kernels at most 4 taps wide on planes at least 4 columns wide (the common 3x3 case): every
 * window row, border windows included, is one 4-byte read that stays inside its plane row. A
 * window whose first column ix0 lies left of 0 or right of in_w - 4 reads from
 * r = clamp(ix0, 0, in_w - 4) instead, and lane j of that read meets tap kx = j + (r - ix0)
 * (zero weight where kx is not a tap). All the in-image taps of the window lie in the read:
 * they span [max(ix0, 0), min(ix0 + k_w, in_w)), inside [r, r + 4) as k_w <= 4.
 */
static int dwconv2d_plane_narrow(const tc_dwconv2d_params *p) {
    return p->k_w <= 4 && p->in_w >= 4;
}

/* Packed weights of channel c (k_h rows of 2 words) for reads that start `lead` taps after the
 * window's first column: lane j of row ky holds tap kx = j + lead, or 0. */
static void dwconv2d_pack_weights_led(const tc_dwconv2d_params *p, const int8_t *w, int32_t c,
                                      int32_t lead, uint32_t packed[DWCONV2D_PACKED_WORDS]) {
    int32_t ky, j, v[4];
    for (ky = 0; ky < p->k_h; ++ky) {
        for (j = 0; j < 4; ++j) {
            const int32_t kx = j + lead;
            v[j] = kx >= 0 && kx < p->k_w ? w[(ky * p->k_w + kx) * p->out_c + c] : 0;
        }
        packed[2 * ky] = tc_pack_s16x2(v[0], v[2]);
        packed[2 * ky + 1] = tc_pack_s16x2(v[1], v[3]);
    }
}

/* Output column ox of channel c (a border column, whose reads start at a clamped column). */
static void dwconv2d_plane_border_column(const tc_dwconv2d_params *p, const int8_t *plane,
                                         const int8_t *w, const dwconv2d_channel_requant *q,
                                         int32_t c, int32_t ox, int8_t *out_c) {
    const int32_t row_step = p->dil_h * p->in_w;
    const int32_t y_step = p->out_w * p->out_c;
    const uint32_t offset = tc_dsp_input_offset(p->in_zp);
    const int32_t ix0 = ox * p->stride_w - p->pad_left;
    const int32_t read_x = TC_MAX(0, TC_MIN(ix0, p->in_w - 4));
    int8_t *y = out_c + ox * p->out_c;
    uint32_t packed[DWCONV2D_PACKED_WORDS];
    int32_t oy, ky_lo, ky_hi;
    dwconv2d_pack_weights_led(p, w, c, read_x - ix0, packed);
    for (oy = 0; oy < p->out_h; ++oy) {
        const int32_t in_y0 = oy * p->stride_h - p->pad_top;
        int32_t acc = 0;
        tc_dsp_tap_range(in_y0, p->dil_h, p->in_h, p->k_h, &ky_lo, &ky_hi);
        if (ky_hi > ky_lo) {
            acc = dwconv2d_plane_sum(plane + (in_y0 + ky_lo * p->dil_h) * p->in_w + read_x,
                                     row_step, packed + 2 * ky_lo, ky_hi - ky_lo, 1, offset);
        }
        y[oy * y_step] = dwconv2d_output(q, acc);
    }
}

/* Output pixels [ox_lo, ox_hi) of output rows [oy_lo, oy_hi), whose windows lie inside the
 * plane, for a 3-row kernel and a channel with shift < 0: the packed weights and the
 * requantization constants stay in registers. The arithmetic is dwconv2d_plane_sum and
 * dwconv2d_output's (the bias is the accumulator's start value). */
static TC_DSP_NOINLINE void dwconv2d_plane_rows_3x4(const int8_t *plane,
                                                    const tc_dwconv2d_params *p,
                                                    const uint32_t packed[6],
                                                    const dwconv2d_channel_requant *q,
                                                    int32_t oy_lo, int32_t oy_hi, int32_t ox_lo,
                                                    int32_t ox_hi, int8_t *out_c) {
    const uint32_t w0 = packed[0], w1 = packed[1], w2 = packed[2], w3 = packed[3];
    const uint32_t w4 = packed[4], w5 = packed[5];
    const uint32_t offset = tc_dsp_input_offset(p->in_zp);
    const int32_t row_step = p->dil_h * p->in_w, stride = p->stride_w, y_step = p->out_c;
    const int32_t bias = q->bias, mult = q->mult, e_minus_1 = -q->shift - 1;
    const uint32_t half = UINT32_C(1) << e_minus_1;
    const int32_t lo = q->act_min - q->out_zp, hi = q->act_max - q->out_zp, out_zp = q->out_zp;
    int32_t oy, ox;
    for (oy = oy_lo; oy < oy_hi; ++oy) {
        const int32_t x0 = (oy * p->stride_h - p->pad_top) * p->in_w - p->pad_left;
        int8_t *y = out_c + oy * p->out_w * y_step;
        for (ox = ox_lo; ox < ox_hi; ++ox) {
            const int8_t *r = plane + x0 + ox * stride;
            const uint32_t r0 = tc_read_s8x4(r);
            const uint32_t r1 = tc_read_s8x4(r + row_step);
            const uint32_t r2 = tc_read_s8x4(r + 2 * row_step);
            int32_t acc = tc_smlad(tc_sxtab16(offset, r0), w0, bias);
            acc = tc_smlad(tc_sxtab16_ror8(offset, r0), w1, acc);
            acc = tc_smlad(tc_sxtab16(offset, r1), w2, acc);
            acc = tc_smlad(tc_sxtab16_ror8(offset, r1), w3, acc);
            acc = tc_smlad(tc_sxtab16(offset, r2), w4, acc);
            acc = tc_smlad(tc_sxtab16_ror8(offset, r2), w5, acc);
            acc = tc_mbqm_right(acc, mult, half, e_minus_1);
            y[ox * y_step] = (int8_t)(TC_MIN(TC_MAX(acc, lo), hi) + out_zp);
        }
    }
}

/* Output channel c for every output pixel (as dwconv2d_channel), for dwconv2d_plane_narrow
 * shapes: the interior columns (lead 0) row by row, then each border column on its own. */
static TC_DSP_NOINLINE void dwconv2d_plane_dsp_narrow(const tc_dwconv2d_params *p,
                                                      const int8_t *plane, const int8_t *w,
                                                      const dwconv2d_channel_requant *q,
                                                      int32_t c, int8_t *out_c) {
    const int32_t last_read_x = p->in_w - 4;
    const int32_t ox_lo = TC_MIN((p->pad_left + p->stride_w - 1) / p->stride_w, p->out_w);
    const int32_t ox_hi = TC_MAX(ox_lo, TC_MIN((last_read_x + p->pad_left) / p->stride_w + 1,
                                               p->out_w));
    uint32_t packed[DWCONV2D_PACKED_WORDS];
    int32_t ox;
    dwconv2d_pack_weights_led(p, w, c, 0, packed);
    if (ox_hi > ox_lo) {
        const int32_t row_step = p->dil_h * p->in_w;
        const uint32_t offset = tc_dsp_input_offset(p->in_zp);
        const dwconv2d_channel_requant rq = *q;
        /* Rows whose windows lie inside the plane: [oy_lo, oy_hi). */
        const int32_t oy_lo = TC_MIN((p->pad_top + p->stride_h - 1) / p->stride_h, p->out_h);
        const int32_t last_y0 = p->in_h - 1 - (p->k_h - 1) * p->dil_h;
        const int32_t oy_hi = last_y0 + p->pad_top < 0 ? oy_lo
                              : TC_MAX(oy_lo, TC_MIN((last_y0 + p->pad_top) / p->stride_h + 1,
                                                     p->out_h));
        const int fast_rows = p->k_h == 3 && rq.shift < 0 && oy_hi > oy_lo;
        int32_t oy, ky_lo, ky_hi;
        if (fast_rows) {
            dwconv2d_plane_rows_3x4(plane, p, packed, &rq, oy_lo, oy_hi, ox_lo, ox_hi, out_c);
        }
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t in_y0 = oy * p->stride_h - p->pad_top;
            int8_t *y = out_c + oy * p->out_w * p->out_c;
            if (fast_rows && oy == oy_lo) {
                oy = oy_hi - 1; /* done by dwconv2d_plane_rows_3x4 */
                continue;
            }
            tc_dsp_tap_range(in_y0, p->dil_h, p->in_h, p->k_h, &ky_lo, &ky_hi);
            if (ky_hi > ky_lo) {
                const int32_t x0 = (in_y0 + ky_lo * p->dil_h) * p->in_w - p->pad_left;
                const uint32_t *packed_rows = packed + 2 * ky_lo;
                const int32_t rows = ky_hi - ky_lo;
                for (ox = ox_lo; ox < ox_hi; ++ox) {
                    y[ox * p->out_c] = dwconv2d_output(
                        &rq, dwconv2d_plane_sum(plane + x0 + ox * p->stride_w, row_step,
                                                packed_rows, rows, 1, offset));
                }
            } else {
                for (ox = ox_lo; ox < ox_hi; ++ox) y[ox * p->out_c] = dwconv2d_output(&rq, 0);
            }
        }
    }
    for (ox = 0; ox < ox_lo; ++ox) dwconv2d_plane_border_column(p, plane, w, q, c, ox, out_c);
    for (ox = ox_hi; ox < p->out_w; ++ox) {
        dwconv2d_plane_border_column(p, plane, w, q, c, ox, out_c);
    }
}

/* Output channel c for every output pixel, from its gathered plane (as dwconv2d_channel). */
static TC_DSP_NOINLINE void dwconv2d_plane_dsp(const tc_dwconv2d_params *p, const int8_t *plane,
                                               const int8_t *w, const int32_t *bias, int32_t c,
                                               int32_t mult, int32_t shift, int8_t *out_c) {
    const int32_t groups = dwconv2d_plane_groups(p);
    const int32_t row_step = p->dil_h * p->in_w;
    const uint32_t offset = tc_dsp_input_offset(p->in_zp);
    dwconv2d_channel_requant q;
    uint32_t packed[DWCONV2D_PACKED_WORDS];
    int32_t oy, ox, ky_lo, ky_hi, ox_lo, ox_hi;
    q.bias = bias != NULL ? bias[c] : 0;
    q.mult = mult;
    q.shift = shift;
    q.out_zp = p->out_zp;
    q.act_min = p->act_min;
    q.act_max = p->act_max;
    if (dwconv2d_plane_narrow(p)) {
        dwconv2d_plane_dsp_narrow(p, plane, w, &q, c, out_c);
        return;
    }
    dwconv2d_pack_weights(p, w, c, packed);
    for (oy = 0; oy < p->out_h; ++oy) {
        const int32_t in_y0 = oy * p->stride_h - p->pad_top;
        int8_t *y = out_c + oy * p->out_w * p->out_c;
        tc_dsp_tap_range(in_y0, p->dil_h, p->in_h, p->k_h, &ky_lo, &ky_hi);
        if (ky_hi > ky_lo) {
            const int32_t first_row = (in_y0 + ky_lo * p->dil_h) * p->in_w;
            dwconv2d_plane_inner_columns(p, first_row + (ky_hi - 1 - ky_lo) * row_step, &ox_lo,
                                         &ox_hi);
            for (ox = ox_lo; ox < ox_hi; ++ox) {
                const int8_t *x = plane + first_row + ox * p->stride_w - p->pad_left;
                y[ox * p->out_c] = dwconv2d_output(
                    &q, dwconv2d_plane_sum(x, row_step, packed + 2 * ky_lo * groups,
                                           ky_hi - ky_lo, groups, offset));
            }
        } else {
            ox_lo = ox_hi = p->out_w;
        }
        for (ox = 0; ox < ox_lo; ++ox) {
            y[ox * p->out_c] = dwconv2d_plane_border(p, plane, w, c, &q, oy, ox);
        }
        for (ox = ox_hi; ox < p->out_w; ++ox) {
            y[ox * p->out_c] = dwconv2d_plane_border(p, plane, w, c, &q, oy, ox);
        }
    }
}

#endif /* TC_HAVE_DSP */

/*
 * 3x3 kernels (dilation 1, depth_mult 1), both entry points: channel by channel, the input rows
 * a window needs are gathered into a ring of zero-point-padded rows on the stack, so every
 * window lies inside the ring and the inner loops have no border cases (a padded tap holds
 * in_zp, so it adds w * (in_zp - in_zp) = 0, as the skipped taps of dwconv2d_tap_sum do).
 * Each output row is computed in chunks: the window sums of a chunk into an int32 buffer
 * (dw3_sums_*), then their requantization (dw3_requant_chunk), which keeps either loop within
 * the registers. The ring holds 3 rows twice over (slots j and j + 3 for j < 2, 5 slots), so the
 * rows of every window are contiguous, DW3_ROW bytes apart: the loops address them with
 * immediate offsets from one pointer.
 *
 * In place (out == in), output row oy overwrites the channel's values of pixels before
 * (oy + 1) * out_w; a row is gathered when the first window that needs it comes up, which is
 * safe when no earlier output row has reached it (dw3_inplace_order_ok). Unlike the plane
 * path, this needs no scratch: only DW3_ROW * 5 + 4 * (DW3_CHUNK + 1) bytes of stack.
 */
#define DW3_ROW 136
#define DW3_SLOTS 5
#define DW3_CHUNK 32

/* Bytes of a ring row the windows read: the image columns after pad_left zero-point columns,
 * and 4-byte reads from each window's first column (pairs of windows at stride 1, the second
 * possibly past out_w). 0 when the shape does not fit DW3_ROW. */
static int32_t dw3_row_bytes(const tc_dwconv2d_params *p) {
    const int32_t reads = TC_MAX((p->out_w + 1) / 2 * 2 + 2, (p->out_w - 1) * p->stride_w + 4);
    const int32_t bytes = (TC_MAX(p->pad_left + p->in_w, reads) + 3) / 4 * 4;
    return bytes <= DW3_ROW ? bytes : 0;
}

static int dw3_applicable(const tc_dwconv2d_params *p) {
    return p->k_h == 3 && p->k_w == 3 && p->dil_h == 1 && p->dil_w == 1 && p->depth_mult == 1 &&
           p->pad_left < DW3_ROW && dw3_row_bytes(p) > 0;
}

/* In place: before output row oy is written, each input row first gathered for it must still
 * be intact, i.e. start at or after pixel oy * out_w. */
static int dw3_inplace_order_ok(const tc_dwconv2d_params *p) {
    int32_t oy, next_row = 0; /* rows below next_row were gathered for earlier output rows */
    for (oy = 0; oy < p->out_h; ++oy) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        const int32_t first_new = TC_MAX(TC_MAX(iy0, next_row), 0);
        if (first_new <= iy0 + 2 && first_new < p->in_h &&
            oy * p->out_w > first_new * p->in_w) {
            return 0;
        }
        next_row = TC_MAX(next_row, iy0 + 3);
    }
    return 1;
}

/* Ring slot of input row iy (rows are numbered from the top padding, iy + pad_top >= 0). */
static int8_t *dw3_slot(int8_t *ring, const tc_dwconv2d_params *p, int32_t iy) {
    return ring + ((iy + p->pad_top) % 3) * DW3_ROW;
}

/* Channel c of input row iy (or in_zp outside the image) into its ring slot and, for slots 0
 * and 1, their copies 3 slots on. Only the image columns are written: the padding columns hold
 * in_zp from the start. */
static void dw3_gather_row(const tc_dwconv2d_params *p, const int8_t *in_c, int32_t iy,
                           int8_t *ring) {
    int8_t *dst = dw3_slot(ring, p, iy) + p->pad_left;
    int8_t *copy = dst - ring < 2 * DW3_ROW ? dst + 3 * DW3_ROW : dst;
    const int32_t n = p->in_w, step = p->in_c;
    int32_t i = 0;
    if (iy < 0 || iy >= p->in_h) {
        memset(dst, p->in_zp, (size_t)n);
        memset(copy, p->in_zp, (size_t)n);
        return;
    }
    in_c += iy * n * step;
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (; i + 4 <= n; i += 4) { /* one word store per 4 values */
        const uint8_t *s = (const uint8_t *)in_c + i * step;
        const uint32_t word = (uint32_t)s[0] | ((uint32_t)s[step] << 8) |
                              ((uint32_t)s[2 * step] << 16) | ((uint32_t)s[3 * step] << 24);
        memcpy(dst + i, &word, sizeof word);
        memcpy(copy + i, &word, sizeof word);
    }
#endif
    for (; i < n; ++i) {
        dst[i] = copy[i] = in_c[i * step];
    }
}

/* Requantization of one output channel's window sums (which include the bias). */
typedef struct {
    int32_t mult, shift, out_zp, act_min, act_max;
} dw3_requant;

/* A 32-bit register's bits as int32 (two's complement, without implementation-defined
 * conversions). */
static int32_t dw3_wrap(uint32_t bits) {
    return bits <= (uint32_t)INT32_MAX ? (int32_t)bits : -(int32_t)(~bits) - 1;
}

/* acc + bias with the wrap of a 32-bit register: the portable sums move the zero point's share
 * into the bias, and only the total is known to fit in int32. */
static int32_t dw3_add_bias(int32_t acc, int32_t bias) {
    return dw3_wrap((uint32_t)acc + (uint32_t)bias);
}

/* y[i * y_step] = output of acc[i], i < n (as tc_requant_s8_nonneg). */
/* x clamped to [-128, 127]: SSAT where there is one. */
static int32_t dw3_sat8(int32_t x) {
#if TC_HAVE_DSP
    return tc_ssat8(x);
#else
    return TC_MIN(TC_MAX(x, -128), 127);
#endif
}

static void dw3_requant_chunk(const int32_t *acc, int32_t n, const dw3_requant *q, int8_t *y,
                              int32_t y_step) {
    const int32_t mult = q->mult, out_zp = q->out_zp;
    int32_t i;
    if (q->shift >= 0) { /* multipliers >= 1: rare */
        for (i = 0; i < n; ++i) {
            y[i * y_step] = tc_requant_s8_nonneg(acc[i], mult, q->shift, out_zp, q->act_min,
                                                 q->act_max);
        }
    } else if (q->act_min == -128 && q->act_max == 127) {
        const int32_t e_minus_1 = -q->shift - 1;
        const uint32_t half = UINT32_C(1) << e_minus_1;
        for (i = 0; i < n; ++i) { /* |y| < 2^30: y + out_zp cannot overflow */
            const int32_t v = tc_mbqm_right(acc[i], mult, half, e_minus_1);
            y[i * y_step] = (int8_t)dw3_sat8(v + out_zp);
        }
    } else {
        const int32_t e_minus_1 = -q->shift - 1;
        const uint32_t half = UINT32_C(1) << e_minus_1;
        const int32_t lo = q->act_min - out_zp, hi = q->act_max - out_zp;
        for (i = 0; i < n; ++i) {
            const int32_t v = tc_mbqm_right(acc[i], mult, half, e_minus_1);
            y[i * y_step] = (int8_t)(TC_MIN(TC_MAX(v, lo), hi) + out_zp);
        }
    }
}

#if TC_HAVE_DSP

/* Channel c's weights for the SIMD sums: (w[ky][0], w[ky][2]) for ky = 0..2, then
 * (w[0][1], w[1][1]) and (w[2][1], 0). */
static void dw3_pack_weights(const int8_t *w, int32_t out_c, int32_t c, uint32_t packed[5]) {
    int32_t ky;
    for (ky = 0; ky < 3; ++ky) {
        packed[ky] = tc_pack_s16x2(w[(3 * ky) * out_c + c], w[(3 * ky + 2) * out_c + c]);
    }
    packed[3] = tc_pack_s16x2(w[out_c + c], w[4 * out_c + c]);
    packed[4] = tc_pack_s16x2(w[7 * out_c + c], 0);
}

/*
 * Stride 1: bias plus the sums of the windows starting at x + 2i and x + 2i + 1, i < pairs,
 * into acc[2i], acc[2i + 1]. One 4-byte read per ring row serves both windows: with the bytes
 * b0..b3 split into even = (b0, b2) and odd = (b1, b3) (minus in_zp), window 0 of the row is
 * even.(w0, w2) + b1 * w1 and window 1 is odd.(w0, w2) + b2 * w1.
 */
static TC_DSP_NOINLINE void dw3_sums_pairs_dsp(const int8_t *x, const uint32_t packed[5],
                                               uint32_t offset, int32_t bias, int32_t pairs,
                                               int32_t *acc) {
    const uint32_t w02_0 = packed[0], w02_1 = packed[1], w02_2 = packed[2];
    const uint32_t w1_01 = packed[3], w1_2 = packed[4];
    int32_t i;
    for (i = 0; i < pairs; ++i) {
        const int8_t *r = x + 2 * i;
        uint32_t odd = tc_read_s8x4(r);
        uint32_t even = tc_sxtab16(offset, odd);
        int32_t a0, a1;
        odd = tc_sxtab16_ror8(offset, odd);
        a0 = tc_smlad(even, w02_0, bias);
        a1 = tc_smlad(odd, w02_0, bias);
        a0 = tc_smlabb(odd, w1_01, a0);
        a1 = tc_smlatb(even, w1_01, a1);
        odd = tc_read_s8x4(r + DW3_ROW);
        even = tc_sxtab16(offset, odd);
        odd = tc_sxtab16_ror8(offset, odd);
        a0 = tc_smlad(even, w02_1, a0);
        a1 = tc_smlad(odd, w02_1, a1);
        a0 = tc_smlabt(odd, w1_01, a0);
        a1 = tc_smlatt(even, w1_01, a1);
        odd = tc_read_s8x4(r + 2 * DW3_ROW);
        even = tc_sxtab16(offset, odd);
        odd = tc_sxtab16_ror8(offset, odd);
        a0 = tc_smlad(even, w02_2, a0);
        a1 = tc_smlad(odd, w02_2, a1);
        a0 = tc_smlabb(odd, w1_2, a0);
        a1 = tc_smlatb(even, w1_2, a1);
        acc[2 * i] = a0;
        acc[2 * i + 1] = a1;
    }
}

/* Any stride: bias plus the sum of the window starting at x + i * stride into acc[i], i < n. */
static TC_DSP_NOINLINE void dw3_sums_strided_dsp(const int8_t *x, int32_t stride,
                                                 const uint32_t packed[5], uint32_t offset,
                                                 int32_t bias, int32_t n, int32_t *acc) {
    const uint32_t w02_0 = packed[0], w02_1 = packed[1], w02_2 = packed[2];
    const uint32_t w1_01 = packed[3], w1_2 = packed[4];
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int8_t *r = x + i * stride;
        uint32_t odd = tc_read_s8x4(r);
        uint32_t even = tc_sxtab16(offset, odd);
        int32_t a;
        odd = tc_sxtab16_ror8(offset, odd);
        a = tc_smlad(even, w02_0, bias);
        a = tc_smlabb(odd, w1_01, a);
        odd = tc_read_s8x4(r + DW3_ROW);
        even = tc_sxtab16(offset, odd);
        odd = tc_sxtab16_ror8(offset, odd);
        a = tc_smlad(even, w02_1, a);
        a = tc_smlabt(odd, w1_01, a);
        odd = tc_read_s8x4(r + 2 * DW3_ROW);
        even = tc_sxtab16(offset, odd);
        odd = tc_sxtab16_ror8(offset, odd);
        a = tc_smlad(even, w02_2, a);
        a = tc_smlabb(odd, w1_2, a);
        acc[i] = a;
    }
}

#endif /* TC_HAVE_DSP */

/* Portable sums: bias plus the sum of w * x over the window starting at x + i * stride into
 * acc[i], i < n; the bias holds the zero point's share, -in_zp * sum(w). */
static void dw3_sums_portable(const int8_t *x, int32_t stride, const int8_t *w, int32_t out_c,
                              int32_t c, int32_t bias, int32_t n, int32_t *acc) {
    const int32_t w00 = w[c], w01 = w[out_c + c], w02 = w[2 * out_c + c];
    const int32_t w10 = w[3 * out_c + c], w11 = w[4 * out_c + c], w12 = w[5 * out_c + c];
    const int32_t w20 = w[6 * out_c + c], w21 = w[7 * out_c + c], w22 = w[8 * out_c + c];
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int8_t *r0 = x + i * stride, *r1 = r0 + DW3_ROW, *r2 = r0 + 2 * DW3_ROW;
        acc[i] = dw3_add_bias(w00 * r0[0] + w01 * r0[1] + w02 * r0[2] + w10 * r1[0] +
                                  w11 * r1[1] + w12 * r1[2] + w20 * r2[0] + w21 * r2[1] +
                                  w22 * r2[2],
                              bias);
    }
}

/* The 3x3 path for channels [0, in_c): see the comment above DW3_ROW. `simd` selects the
 * DSP sums (with TC_HAVE_DSP). */
static void dwconv2d_3x3(const tc_dwconv2d_params *p, const int8_t *in, const int8_t *w,
                         const int32_t *bias, const int32_t *mult, const int32_t *shift,
                         int simd, int8_t *out) {
    int8_t ring[DW3_SLOTS * DW3_ROW];
    int32_t acc[DW3_CHUNK + 1];
    const int32_t y_row = p->out_w * p->out_c;
    int32_t c, oy, ox, iy, k;
    dw3_requant q;
    memset(ring, p->in_zp, sizeof ring);
    q.out_zp = p->out_zp;
    q.act_min = p->act_min;
    q.act_max = p->act_max;
    for (c = 0; c < p->in_c; ++c) {
        int32_t next_row = -p->pad_top; /* the first input row not yet gathered */
        int32_t bias_c = bias != NULL ? bias[c] : 0;
#if TC_HAVE_DSP
        const uint32_t offset = tc_dsp_input_offset(p->in_zp);
        uint32_t packed[5];
        if (simd) dw3_pack_weights(w, p->out_c, c, packed);
#endif
        q.mult = mult[c];
        q.shift = shift[c];
        if (!simd) { /* the portable sums read raw values: move -in_zp * sum(w) to the bias */
            uint32_t w_sum = 0;
            for (k = 0; k < 9; ++k) w_sum += (uint32_t)(int32_t)w[k * p->out_c + c];
            bias_c = dw3_add_bias(bias_c, dw3_wrap(0u - w_sum * (uint32_t)p->in_zp));
        }
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            const int8_t *x;
            for (iy = TC_MAX(iy0, next_row); iy < iy0 + 3; ++iy) {
                dw3_gather_row(p, in + c, iy, ring);
            }
            next_row = TC_MAX(next_row, iy0 + 3);
            x = dw3_slot(ring, p, iy0);
            for (ox = 0; ox < p->out_w; ox += DW3_CHUNK) {
                const int32_t n = TC_MIN(DW3_CHUNK, p->out_w - ox);
                const int8_t *x_chunk = x + ox * p->stride_w;
#if TC_HAVE_DSP
                if (simd && p->stride_w == 1) {
                    dw3_sums_pairs_dsp(x_chunk, packed, offset, bias_c, (n + 1) / 2, acc);
                } else if (simd) {
                    dw3_sums_strided_dsp(x_chunk, p->stride_w, packed, offset, bias_c, n, acc);
                } else
#endif
                {
                    dw3_sums_portable(x_chunk, p->stride_w, w, p->out_c, c, bias_c, n, acc);
                }
                dw3_requant_chunk(acc, n, &q, out + oy * y_row + ox * p->out_c + c, p->out_c);
            }
        }
    }
}

#if TC_HAVE_DSP
/*
 * 3x3, 4 channels at a time (DSP builds, in_c a multiple of 4, rows of up to DWQ_PIXELS
 * pixels): the NHWC layout keeps 4 channels of a pixel in one word, so the ring holds rows of
 * 4-channel pixels (gathered a word per pixel), each window tap is one word read, two SXTAB16
 * and four SMLABB/SMLATT against the group's weights widened once per group (lanes: channels
 * (0, 2) and (1, 3)), and the four outputs of a pixel are requantized with the group's
 * per-channel constants worked out once (tc_dsp_rq where the shift suits it). Against the
 * channel-by-channel ring (dwconv2d_3x3) this reads the input a word at a time instead of a
 * byte at a time and spreads the per-row and per-channel set-up over 4 channels, which is most
 * of the cost on small planes. In place it is safe under the same condition (dw3_inplace_order_ok):
 * a group's output row overwrites only that group's channels. Stack: 3 rows of DWQ_PIXELS
 * words (600 bytes) and the group's tables.
 */
#define DWQ_PIXELS 50

/* Pixels of a ring row the windows read (the image after pad_left columns, and the last
 * window's 3 columns), 0 when they do not fit DWQ_PIXELS. */
static int32_t dwq_row_pixels(const tc_dwconv2d_params *p) {
    const int32_t n = TC_MAX(p->pad_left + p->in_w, (p->out_w - 1) * p->stride_w + 3);
    return n <= DWQ_PIXELS ? n : 0;
}

static int dwq_applicable(const tc_dwconv2d_params *p) {
    return p->k_h == 3 && p->k_w == 3 && p->dil_h == 1 && p->dil_w == 1 && p->depth_mult == 1 &&
           (p->in_c & 3) == 0 && p->pad_left < DWQ_PIXELS && dwq_row_pixels(p) > 0;
}

/* A group of 4 channels: what dwq_row and the assembly need, worked out once per group. The
 * first fields are the assembly's job (offsets fixed, checked below). */
typedef struct {
    const uint32_t *x;      /*  0: ring row 0 (rows DWQ_PIXELS words apart) at pixel A's window */
    int8_t *y;              /*  4: pixel A's output, channel c */
    int32_t pairs;          /*  8: pixel pairs left (A, A + 1) */
    int32_t y_step;         /* 12: bytes between output pixels (out_c) */
    int32_t bias_x[4];      /* 16: bias - in_zp * sum(w), wrapping: the taps then take x itself */
    int32_t rq[4][3];       /* 32: per channel: mult, khi, e1 of tc_dsp_rq */
    uint32_t w[18];         /* 80: tap k: w[2k] = (ch 0, ch 2), w[2k + 1] = (ch 1, ch 3) */
    int32_t shift[4];
    int fast;               /* all four shifts suit tc_dsp_rq */
} dwq_group;

static void dwq_make_group(const tc_dwconv2d_params *p, const int8_t *w, const int32_t *bias,
                           const int32_t *mult, const int32_t *shift, int32_t c, dwq_group *g) {
    int32_t k, j;
    for (k = 0; k < 9; ++k) {
        const int8_t *wk = w + k * p->out_c + c;
        g->w[2 * k] = tc_pack_s16x2(wk[0], wk[2]);
        g->w[2 * k + 1] = tc_pack_s16x2(wk[1], wk[3]);
    }
    g->fast = 1;
    for (j = 0; j < 4; ++j) {
        uint32_t w_sum = 0;
        for (k = 0; k < 9; ++k) w_sum += (uint32_t)(int32_t)w[k * p->out_c + c + j];
        g->bias_x[j] = dw3_wrap((uint32_t)(bias != NULL ? bias[c + j] : 0) -
                                w_sum * (uint32_t)p->in_zp);
        g->shift[j] = shift[c + j];
        g->rq[j][0] = mult[c + j];
        if (tc_dsp_rq_applies(shift[c + j])) {
            g->rq[j][1] = tc_dsp_rq_khi(shift[c + j], p->out_zp);
            g->rq[j][2] = -shift[c + j] - 1;
        } else {
            g->rq[j][1] = g->rq[j][2] = 0;
            g->fast = 0;
        }
    }
}

/* Channels c..c + 3 of input row iy (or in_zp outside the image) into ring row `row` and, if
 * not NULL, its copy `row2`, after the pad_left columns (which, like the columns after the
 * image, hold in_zp words). */
static void dwq_gather_row(const tc_dwconv2d_params *p, const int8_t *in, int32_t c, int32_t iy,
                           uint32_t zp4, uint32_t *row, uint32_t *row2) {
    uint32_t *dst = row + p->pad_left, *dst2 = row2 != NULL ? row2 + p->pad_left : dst;
    int32_t i;
    if (iy < 0 || iy >= p->in_h) {
        for (i = 0; i < p->in_w; ++i) dst[i] = dst2[i] = zp4;
        return;
    }
    in += iy * p->in_w * p->in_c + c;
    for (i = 0; i < p->in_w; ++i, in += p->in_c) dst[i] = dst2[i] = tc_read_s8x4(in);
}

/* One window tap: 4 channels' values (x itself: the zero point's share is in bias_x) against
 * the group's weights for the tap. The sums wrap like the registers; the final ones fit. */
#define DWQ_TAP(x_word, k)                                                  \
    do {                                                                    \
        const uint32_t xv = (x_word);                                       \
        const uint32_t xe = tc_sxtb16(xv);                                  \
        const uint32_t xo = tc_sxtb16_ror8(xv);                             \
        a0 = tc_smlabb(xe, wt[2 * (k)], a0);                                \
        a2 = tc_smlatt(xe, wt[2 * (k)], a2);                                \
        a1 = tc_smlabb(xo, wt[2 * (k) + 1], a1);                            \
        a3 = tc_smlatt(xo, wt[2 * (k) + 1], a3);                            \
    } while (0)

/* Channel j of a group the general way (out of line: rare). */
static TC_DSP_NOINLINE int8_t dwq_requant(int32_t acc, const dwq_group *g, int32_t j,
                                          const tc_dwconv2d_params *p) {
    return tc_requant_s8_nonneg(acc, g->rq[j][0], g->shift[j], p->out_zp, p->act_min,
                                p->act_max);
}

/* Output row of a group: out_w pixels from ring rows r0, r1, r2 into y (4 bytes per pixel,
 * y_step apart): tc_dsp_rq and the activation clamp when all four shifts suit it, else
 * tc_requant_s8_nonneg. One loop for all cases (the assembly takes the common ones). */
static TC_DSP_NOINLINE void dwq_row(const dwq_group *g, const uint32_t *r0, const uint32_t *r1,
                                    const uint32_t *r2, int32_t out_w, int32_t stride,
                                    const tc_dwconv2d_params *p, int8_t *y, int32_t y_step) {
    const uint32_t *wt = g->w;
    const int32_t act_min = p->act_min, act_max = p->act_max;
    const int clamp = act_min != -128 || act_max != 127;
    int32_t ox;
    for (ox = 0; ox < out_w; ++ox, r0 += stride, r1 += stride, r2 += stride, y += y_step) {
        int32_t a0 = g->bias_x[0], a1 = g->bias_x[1], a2 = g->bias_x[2], a3 = g->bias_x[3];
        DWQ_TAP(r0[0], 0);
        DWQ_TAP(r0[1], 1);
        DWQ_TAP(r0[2], 2);
        DWQ_TAP(r1[0], 3);
        DWQ_TAP(r1[1], 4);
        DWQ_TAP(r1[2], 5);
        DWQ_TAP(r2[0], 6);
        DWQ_TAP(r2[1], 7);
        DWQ_TAP(r2[2], 8);
        if (!g->fast) {
            y[0] = dwq_requant(a0, g, 0, p);
            y[1] = dwq_requant(a1, g, 1, p);
            y[2] = dwq_requant(a2, g, 2, p);
            y[3] = dwq_requant(a3, g, 3, p);
            continue;
        }
        a0 = tc_dsp_rq(a0, g->rq[0][0], g->rq[0][1], g->rq[0][2]);
        a1 = tc_dsp_rq(a1, g->rq[1][0], g->rq[1][1], g->rq[1][2]);
        a2 = tc_dsp_rq(a2, g->rq[2][0], g->rq[2][1], g->rq[2][2]);
        a3 = tc_dsp_rq(a3, g->rq[3][0], g->rq[3][1], g->rq[3][2]);
        if (clamp) {
            a0 = TC_MIN(TC_MAX(a0, act_min), act_max);
            a1 = TC_MIN(TC_MAX(a1, act_min), act_max);
            a2 = TC_MIN(TC_MAX(a2, act_min), act_max);
            a3 = TC_MIN(TC_MAX(a3, act_min), act_max);
        }
        y[0] = (int8_t)a0;
        y[1] = (int8_t)a1;
        y[2] = (int8_t)a2;
        y[3] = (int8_t)a3;
    }
}

#define DWQ_ASM TC_DSP_ASM
#if DWQ_ASM
typedef char dwq_job_layout[(offsetof(dwq_group, bias_x) == 16 && offsetof(dwq_group, rq) == 32 &&
                             offsetof(dwq_group, w) == 80 && DWQ_PIXELS * 4 == 200) ? 1 : -1];

void tc_dwq_pairs_asm(dwq_group *g);

/*
 * Strides 1 and 2, in Thumb-2 assembly: output pixels in pairs (A, B = the next), 4 channels,
 * all in registers (r0-r3 pixel A, r4-r7 pixel B). Per kernel row the 4 (stride 2: 5) columns
 * A and B read are loaded and widened once (SXTB16: x itself, the zero point being in bias_x),
 * and a column both windows share feeds both: 42 (45) instructions per 24 MACs, then the 8
 * outputs are requantized (tc_dsp_rq, the channel's constants from one LDM). About 2.9
 * instructions per MAC against 4.1 for dwq_row in C, which gcc cannot keep in 14 registers for
 * two pixels. Preconditions (dwq_asm_group): stride_w 1 or 2, all four shifts suit tc_dsp_rq,
 * no fused clamp. Each function pushes 10 registers (40 bytes) and calls nothing
 * (tinycc/sim/qemu.py HANDWRITTEN_FRAMES).
 */
#define DWQ_MAC(w_off, a0, a1, a2, a3)                                              \
    "    ldrd   r10, r11, [lr, #" #w_off "]\n"                                      \
    "    smlabb " a0 ", r8, r10, " a0 "\n"                                          \
    "    smlatt " a2 ", r8, r10, " a2 "\n"                                          \
    "    smlabb " a1 ", r9, r11, " a1 "\n"                                          \
    "    smlatt " a3 ", r9, r11, " a3 "\n"
#define DWQ_A(w_off) DWQ_MAC(w_off, "r0", "r1", "r2", "r3")
#define DWQ_B(w_off) DWQ_MAC(w_off, "r4", "r5", "r6", "r7")
/* Column `col` (0, 1, ...) of the kernel row at byte x0 of the ring: one word, 4 channels,
 * widened to (ch 0, ch 2) in r8 and (ch 1, ch 3) in r9. */
#define DWQ_LOAD(x0, col)                                                           \
    "    ldr    r8, [r12, #" #x0 " + 4 * " #col "]\n"                                \
    "    sxtb16 r9, r8, ror #8\n"                                                   \
    "    sxtb16 r8, r8\n"
#define DWQ_ROW3(x0, t0, t1, t2)                                                    \
    DWQ_LOAD(x0, 0)                      /* column 0: A's first tap */              \
    DWQ_A(t0)                                                                       \
    DWQ_LOAD(x0, 1)                      /* column 1: A's second, B's first */      \
    DWQ_A(t1) DWQ_B(t0)                                                             \
    DWQ_LOAD(x0, 2)                      /* column 2: A's third, B's second */      \
    DWQ_A(t2) DWQ_B(t1)                                                             \
    DWQ_LOAD(x0, 3)                      /* column 3: B's third */                  \
    DWQ_B(t2)
#define DWQ_RQ(acc)                                                                 \
    "    and    r11, " acc ", #0x80000000\n"                                        \
    "    orr    r11, r11, #0x40000000\n"                                            \
    "    sub    r12, r9, " acc ", lsr #31\n"                                        \
    "    smlal  r11, r12, " acc ", r8\n"                                            \
    "    asr    " acc ", r12, r10\n"                                                \
    "    ssat   " acc ", #8, " acc "\n"
#define DWQ_CHANNEL(rq_off, a, b)                                                   \
    "    add    r8, lr, #" #rq_off "\n"                                             \
    "    ldm    r8, {r8, r9, r10}\n"       /* mult, khi, e - 1 */                    \
    DWQ_RQ(a) DWQ_RQ(b)

/* Stride 2: pixel B's window starts 2 columns after A's; column 2 feeds both. */
#define DWQ_ROW3_S2(x0, t0, t1, t2)                                                 \
    DWQ_LOAD(x0, 0)                      /* column 0: A's first tap */              \
    DWQ_A(t0)                                                                       \
    DWQ_LOAD(x0, 1)                      /* column 1: A's second */                 \
    DWQ_A(t1)                                                                       \
    DWQ_LOAD(x0, 2)                      /* column 2: A's third, B's first */       \
    DWQ_A(t2) DWQ_B(t0)                                                             \
    DWQ_LOAD(x0, 3)                      /* column 3: B's second */                 \
    DWQ_B(t1)                                                                       \
    DWQ_LOAD(x0, 4)                      /* column 4: B's third */                  \
    DWQ_B(t2)

/* One pixel-pair function, in five top-level asm statements (each string below the 4095
 * characters ISO C guarantees; the assembler sees them in order): DWQ_HEAD, a ROW3 per kernel
 * row (reading it for both pixels), DWQ_TAIL with `advance` bytes from one pair's windows to the
 * next. */
#define DWQ_HEAD(name)                                                              \
    "    .pushsection .text." name ",\"ax\",%progbits\n"                            \
    "    .syntax unified\n"                                                         \
    "    .thumb\n"                                                                  \
    "    .p2align 2\n"                                                              \
    "    .global " name "\n"                                                        \
    "    .type " name ", %function\n"                                               \
    "    .thumb_func\n"                                                             \
    name ":\n"                                                                      \
    "    push   {r0, r4-r11, lr}\n"                                                 \
    "1:  ldr    lr, [sp]\n"                 /* lr = job */                           \
    "    ldr    r12, [lr, #0]\n"            /* r12 = ring row 0 at pixel A */        \
    "    add    r8, lr, #16\n"                                                      \
    "    ldm    r8, {r0-r3}\n"              /* A's sums start from bias_x, B's too */ \
    "    mov    r4, r0\n"                                                           \
    "    mov    r5, r1\n"                                                           \
    "    mov    r6, r2\n"                                                           \
    "    mov    r7, r3\n"                                                           \
    "    add    lr, lr, #80\n"              /* lr = weights */
#define DWQ_TAIL(name, advance)                                                     \
    "    sub    lr, lr, #80\n"              /* lr = job */                           \
    "    add    r12, r12, #" #advance "\n"  /* the next pair's windows */            \
    "    str    r12, [lr, #0]\n"                                                    \
    DWQ_CHANNEL(32, "r0", "r4")                                                     \
    DWQ_CHANNEL(44, "r1", "r5")                                                     \
    DWQ_CHANNEL(56, "r2", "r6")                                                     \
    DWQ_CHANNEL(68, "r3", "r7")                                                     \
    "    ldrd   r8, r9, [lr, #4]\n"         /* y, pairs left */                      \
    "    ldr    r10, [lr, #12]\n"           /* y_step */                             \
    "    strb   r0, [r8, #0]\n"                                                     \
    "    strb   r1, [r8, #1]\n"                                                     \
    "    strb   r2, [r8, #2]\n"                                                     \
    "    strb   r3, [r8, #3]\n"                                                     \
    "    add    r8, r8, r10\n"                                                      \
    "    strb   r4, [r8, #0]\n"                                                     \
    "    strb   r5, [r8, #1]\n"                                                     \
    "    strb   r6, [r8, #2]\n"                                                     \
    "    strb   r7, [r8, #3]\n"                                                     \
    "    add    r8, r8, r10\n"                                                      \
    "    subs   r9, r9, #1\n"                                                       \
    "    strd   r8, r9, [lr, #4]\n"                                                 \
    "    bne    1b\n"                                                               \
    "    pop    {r0, r4-r11, pc}\n"                                                 \
    "    .size " name ", .-" name "\n"                                              \
    "    .popsection\n"

void tc_dwq_pairs_s2_asm(dwq_group *g);

__asm__(DWQ_HEAD("tc_dwq_pairs_asm"));
__asm__(DWQ_ROW3(0, 0, 8, 16));
__asm__(DWQ_ROW3(200, 24, 32, 40));
__asm__(DWQ_ROW3(400, 48, 56, 64));
__asm__(DWQ_TAIL("tc_dwq_pairs_asm", 8));

__asm__(DWQ_HEAD("tc_dwq_pairs_s2_asm"));
__asm__(DWQ_ROW3_S2(0, 0, 8, 16));
__asm__(DWQ_ROW3_S2(200, 24, 32, 40));
__asm__(DWQ_ROW3_S2(400, 48, 56, 64));
__asm__(DWQ_TAIL("tc_dwq_pairs_s2_asm", 16));

/* Whether the group's rows can run in the assembly. */
static int dwq_asm_group(const tc_dwconv2d_params *p, const dwq_group *g) {
    return p->stride_w <= 2 && p->out_w >= 2 && g->fast && p->act_min == -128 &&
           p->act_max == 127;
}

/* Pixel pairs (A, A + 1) from ring rows r0 (rows DWQ_PIXELS words apart) into y. */
static inline void dwq_pairs_asm(const tc_dwconv2d_params *p, dwq_group *g,
                                 const uint32_t *r0, int8_t *y, int32_t pairs) {
    g->x = r0;
    g->y = y;
    g->pairs = pairs;
    g->y_step = p->out_c;
    if (p->stride_w == 1) {
        tc_dwq_pairs_asm(g);
    } else {
        tc_dwq_pairs_s2_asm(g);
    }
}
#endif /* DWQ_ASM */

static TC_DSP_NOINLINE void dwconv2d_3x3_quad(const tc_dwconv2d_params *p, const int8_t *in,
                                              const int8_t *w, const int32_t *bias,
                                              const int32_t *mult, const int32_t *shift,
                                              int8_t *out) {
    uint32_t ring[5 * DWQ_PIXELS];
    dwq_group g;
    const int32_t y_row = p->out_w * p->out_c;
    const uint32_t zp4 = (uint32_t)(uint8_t)p->in_zp * UINT32_C(0x01010101);
    int32_t c, oy, iy, i;
    for (i = 0; i < 5 * DWQ_PIXELS; ++i) ring[i] = zp4; /* the padding columns stay so */
    for (c = 0; c < p->in_c; c += 4) {
        int32_t next_row = -p->pad_top; /* the first input row not yet gathered */
        int asm_rows = 0;
        dwq_make_group(p, w, bias, mult, shift, c, &g);
#if DWQ_ASM
        asm_rows = dwq_asm_group(p, &g);
#endif
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            const uint32_t *r0;
            int8_t *y = out + oy * y_row + c;
            for (iy = TC_MAX(iy0, next_row); iy < iy0 + 3; ++iy) {
                /* for the assembly, slots 0 and 1 have copies 3 slots on: a window's rows
                 * are then contiguous */
                const int32_t slot = (iy + p->pad_top) % 3;
                dwq_gather_row(p, in, c, iy, zp4, ring + slot * DWQ_PIXELS,
                               asm_rows && slot < 2 ? ring + (slot + 3) * DWQ_PIXELS : NULL);
            }
            next_row = TC_MAX(next_row, iy0 + 3);
            r0 = ring + ((iy0 + p->pad_top) % 3) * DWQ_PIXELS;
#if DWQ_ASM
            if (asm_rows) { /* pixel pairs; an odd last pixel pairs with the one before it */
                dwq_pairs_asm(p, &g, r0, y, p->out_w >> 1);
                if (p->out_w & 1) {
                    dwq_pairs_asm(p, &g, r0 + (p->out_w - 2) * p->stride_w,
                                  y + (p->out_w - 2) * p->out_c, 1);
                }
                continue;
            }
#endif
            dwq_row(&g, r0, ring + ((iy0 + 1 + p->pad_top) % 3) * DWQ_PIXELS,
                    ring + ((iy0 + 2 + p->pad_top) % 3) * DWQ_PIXELS, p->out_w, p->stride_w, p,
                    y, p->out_c);
        }
    }
}
#endif /* TC_HAVE_DSP */

tc_status tc_dwconv2d_s8(const tc_dwconv2d_params *p, const int8_t *in, const int8_t *w,
                         const int32_t *bias, const int32_t *mult, const int32_t *shift,
                         int8_t *out) {
    int32_t ic, m;
    if (p == NULL || in == NULL || w == NULL || mult == NULL || shift == NULL || out == NULL) {
        return TC_ARG_ERROR;
    }
    if (!dwconv2d_args_ok(p) ||
        !tc_conv_quant_args_ok(p->in_zp, p->out_zp, p->act_min, p->act_max, mult, shift,
                               p->out_c)) {
        return TC_ARG_ERROR;
    }
#if TC_HAVE_DSP
    if (dwq_applicable(p)) {
        dwconv2d_3x3_quad(p, in, w, bias, mult, shift, out);
        return TC_OK;
    }
#endif
    if (dw3_applicable(p)) {
        dwconv2d_3x3(p, in, w, bias, mult, shift, TC_HAVE_DSP && p->in_c >= 4, out);
        return TC_OK;
    }
#if TC_HAVE_DSP
    if (p->depth_mult == 1 && p->in_c >= 4) {
        dwconv2d_s8_dsp(p, in, w, bias, mult, shift, out);
        return TC_OK;
    }
#endif
    for (ic = 0; ic < p->in_c; ++ic) {
        for (m = 0; m < p->depth_mult; ++m) {
            const int32_t oc = ic * p->depth_mult + m;
            dwconv2d_channel(p, in + ic, p->in_c, w, bias, oc, mult[oc], shift[oc], out + oc);
        }
    }
    return TC_OK;
}

int32_t tc_dwconv2d_s8_inplace_scratch_size(const tc_dwconv2d_params *p) {
    return p != NULL ? p->in_h * p->in_w : 0;
}

tc_status tc_dwconv2d_s8_inplace(const tc_dwconv2d_params *p, const int8_t *in, const int8_t *w,
                                 const int32_t *bias, const int32_t *mult, const int32_t *shift,
                                 int8_t *scratch, int8_t *out) {
    const int32_t plane_size = p != NULL ? p->in_h * p->in_w : 0;
    int32_t c, i;
    if (p == NULL || in == NULL || w == NULL || mult == NULL || shift == NULL ||
        scratch == NULL || out == NULL) {
        return TC_ARG_ERROR;
    }
    if (!dwconv2d_args_ok(p) || p->depth_mult != 1 ||
        !tc_conv_quant_args_ok(p->in_zp, p->out_zp, p->act_min, p->act_max, mult, shift,
                               p->out_c)) {
        return TC_ARG_ERROR;
    }
    /* In place, output pixel i overwrites input pixel i: it must exist. */
    if (out == in && p->out_h * p->out_w > plane_size) {
        return TC_ARG_ERROR;
    }
#if TC_HAVE_DSP
    if (dwq_applicable(p) && (out != in || dw3_inplace_order_ok(p))) {
        dwconv2d_3x3_quad(p, in, w, bias, mult, shift, out);
        return TC_OK;
    }
#endif
    if (dw3_applicable(p) && (out != in || dw3_inplace_order_ok(p))) {
        dwconv2d_3x3(p, in, w, bias, mult, shift, TC_HAVE_DSP, out);
        return TC_OK;
    }
    for (c = 0; c < p->in_c; ++c) {
        for (i = 0; i < plane_size; ++i) {
            scratch[i] = in[i * p->in_c + c];
        }
#if TC_HAVE_DSP
        if (dwconv2d_plane_dsp_applicable(p)) {
            dwconv2d_plane_dsp(p, scratch, w, bias, c, mult[c], shift[c], out + c);
            continue;
        }
#endif
        dwconv2d_channel(p, scratch, 1, w, bias, c, mult[c], shift[c], out + c);
    }
    return TC_OK;
}
