/*
 * tinycc runtime: the SIMD variants of tc_dwconv2d_s8 and tc_dwconv2d_s8_inplace (ARMv7E-M DSP
 * extension, or its host emulation), bit-exact with the portable reference in
 * tc_dwconv2d_s8.c, whose entry points call them for the layers they accept. The 4-channel 3x3
 * path's pixel-pair loops are hand-written assembly on GNU Thumb-2 builds
 * (tc_dwconv2d_s8_asm.c, TC_DSP_ASM), C functions of the same arithmetic otherwise.
 */
#include "tc_conv.h"
#include "tc_dot_s8_dsp.h"
#include "tc_dwconv2d_quad_dsp.h"

#include <stddef.h>
#include <string.h>

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
void tc_dwconv2d_s8_dsp(const tc_dwconv2d_params *p, const int8_t *in, const int8_t *w,
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
#define DWCONV2D_PACKED_WORDS TC_DWCONV2D_PACKED_WORDS

static int32_t dwconv2d_plane_groups(const tc_dwconv2d_params *p) { return (p->k_w + 3) / 4; }

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
    return dwconv2d_output(q, tc_dwconv2d_tap_sum(p, plane, 1, w, c, oy * p->stride_h - p->pad_top,
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
void tc_dwconv2d_s8_plane_dsp(const tc_dwconv2d_params *p, const int8_t *plane,
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

#if TC_HAVE_DSP
/* Ring row `row` (span words) = channels c .. c + n - 1 of input row iy, input columns ix0 ..
 * ix0 + span - 1: one word per pixel, in_zp words outside the image (the 4-channel rings of
 * tc_dwconv2d_s8_quad and tc_dwconv2d_s8_k; column tiles start anywhere). `copy`, if not NULL,
 * gets the same words. */
static void dw4_gather_row(const tc_dwconv2d_params *p, const int8_t *in, int32_t c, int32_t n,
                           int32_t iy, int32_t ix0, int32_t span, uint32_t zp4, uint32_t *row,
                           uint32_t *copy) {
    const int32_t lo = iy < 0 || iy >= p->in_h ? span : TC_MIN(TC_MAX(-ix0, 0), span);
    const int32_t hi = lo == span ? span : TC_MAX(lo, TC_MIN(p->in_w - ix0, span));
    const int32_t step = p->in_c;
    const int8_t *src = hi > lo ? in + ((iy * p->in_w) + ix0 + lo) * step + c : in;
    int32_t j;
    for (j = 0; j < lo; ++j) row[j] = zp4;
    if (n == 4 && copy != NULL) {
        for (; j < hi; ++j, src += step) row[j] = copy[j] = tc_read_s8x4(src);
        for (j = 0; j < lo; ++j) copy[j] = zp4;
        for (j = hi; j < span; ++j) row[j] = copy[j] = zp4;
    } else if (n == 4) {
        for (; j < hi; ++j, src += step) row[j] = tc_read_s8x4(src);
    } else { /* the last group's 1 to 3 channels; its other lanes meet zero weights */
        for (; j < hi; ++j, src += step) {
            uint32_t word = (uint8_t)src[0];
            if (n > 1) word |= (uint32_t)(uint8_t)src[1] << 8;
            if (n > 2) word |= (uint32_t)(uint8_t)src[2] << 16;
            row[j] = word;
        }
    }
    for (; j < span; ++j) row[j] = zp4;
}

/*
 * 3x3, 4 channels at a time (DSP builds, in_c a multiple of 4, rows of up to DWQ_PIXELS
 * pixels): the NHWC layout keeps 4 channels of a pixel in one word, so the ring holds rows of
 * 4-channel pixels (gathered a word per pixel), each window tap is one word read, two SXTAB16
 * and four SMLABB/SMLATT against the group's weights widened once per group (lanes: channels
 * (0, 2) and (1, 3)), and the four outputs of a pixel are requantized with the group's
 * per-channel constants worked out once (tc_dsp_rq2 on doubled sums where the group suits
 * it). Against the
 * channel-by-channel ring (dwconv2d_3x3) this reads the input a word at a time instead of a
 * byte at a time and spreads the per-row and per-channel set-up over 4 channels, which is most
 * of the cost on small planes. In place it is safe under the same condition (dw3_inplace_order_ok):
 * a group's output row overwrites only that group's channels. Narrow planes at stride 1 go by
 * output columns instead (dwq_by_columns). Stack: 5 rows of DWQ_PIXELS
 * words (1000 bytes: 3 rows, and copies of 2 for the assembly) and the group's tables. The
 * group, its C row and the assembly's calls are tc_dwconv2d_quad_dsp.h's, shared with the
 * codebook kernel.
 */
#define DWQ_PIXELS TC_DWQ_PIXELS /* tc_dwconv2d_s8.c: dwq_applicable */

/* About the instructions a group spends on a line of n output pixels at stride 1 on the
 * assembly: the line's set-up and gathering, quads, a pair, a last pixel in C. */
static int32_t dwq_line_cost(int32_t n) {
    return 250 + (n >> 2) * 340 + ((n >> 1) & 1) * 190 + (n & 1) * 160;
}

/* Whether a stride-1 layer goes by columns (dwq_columns): its output columns, as lines, are
 * cheaper than its rows (narrow planes such as KWS's 25x5: 5 columns of 25 pixels instead of
 * 25 rows of 5 with a pixel in C each), and a column fits one ring row. In place only on the
 * same geometry: output column ox then overwrites input column ox, gathered before it. */
static int dwq_by_columns(const tc_dwconv2d_params *p, int in_place) {
    if (p->stride_h != 1 || p->stride_w != 1 || p->out_w >= p->out_h) return 0;
    if (p->out_h > tc_dwconv2d_s8_quad_tile(p) || p->pad_top + p->in_h > DWQ_PIXELS) return 0;
    if (in_place && (p->out_h != p->in_h || p->out_w != p->in_w)) return 0;
    return dwq_line_cost(p->out_h) * p->out_w < dwq_line_cost(p->out_w) * p->out_h;
}

/* Channels c..c + 3 of input column ix (in_zp words outside the image) into a ring row from
 * word pad_top on (its other words hold in_zp from the start), and into `copy` if not NULL. */
static void dwq_gather_column(const tc_dwconv2d_params *p, const int8_t *in, int32_t c,
                              int32_t ix, uint32_t zp4, uint32_t *row, uint32_t *copy) {
    uint32_t *dst = row + p->pad_top, *dst2 = copy != NULL ? copy + p->pad_top : dst;
    const int32_t step = p->in_w * p->in_c;
    int32_t i;
    if (ix < 0 || ix >= p->in_w) {
        for (i = 0; i < p->in_h; ++i) dst[i] = dst2[i] = zp4;
        return;
    }
    tc_dwq_gather_words(in + ix * p->in_c + c, step, p->in_h, dst, copy != NULL ? dst2 : NULL);
}

/* The group's taps transposed ((ky, kx) -> (kx, ky)): its lines are then output columns. */
static void dwq_transpose_taps(tc_dwq_group *g) {
    static const uint8_t swap[3][2] = {{1, 3}, {2, 6}, {5, 7}};
    int32_t i, j;
    for (i = 0; i < 3; ++i) {
        for (j = 0; j < 2; ++j) {
            const uint32_t t = g->w[2 * swap[i][0] + j];
            g->w[2 * swap[i][0] + j] = g->w[2 * swap[i][1] + j];
            g->w[2 * swap[i][1] + j] = t;
        }
    }
}

/* tc_dwconv2d_s8_quad by output columns (dwq_by_columns): the ring rows hold input columns
 * (ring filled with in_zp words by the caller), a window steps down a column, the outputs of a
 * line are out_w * out_c bytes apart. */
static void dwq_columns(const tc_dwconv2d_params *p, const int8_t *in, const int8_t *w,
                        const int32_t *bias, const int32_t *mult, const int32_t *shift,
                        uint32_t *ring, uint32_t zp4, tc_dwq_group *g, int8_t *out) {
    const int32_t y_step = p->out_w * p->out_c;
    int32_t c, ox;
    for (c = 0; c < p->in_c; c += 4) {
        int asm_rows = 0;
        /* column ix in ring slot (ix + pad_left) % 3, counted: next_slot that of next_col, the
         * first column not yet gathered, wslot that of output column ox's first window column */
        int32_t next_col = -p->pad_left, next_slot = 0, wslot = 0;
        tc_dwq_make_group(w + c, p->out_c, 1, bias, mult, shift, c, p->in_zp, p->out_zp,
                          p->act_min, p->act_max, g);
        dwq_transpose_taps(g);
#if TC_DSP_ASM
        asm_rows = tc_dwq_asm_group(g, 1, p->out_h);
#endif
        for (ox = 0; ox < p->out_w; ++ox) {
            const uint32_t *r0 = ring + wslot * DWQ_PIXELS;
            int8_t *y = out + ox * p->out_c + c;
            for (; next_col < ox - p->pad_left + 3; ++next_col) { /* stride 1: no column skipped */
                uint32_t *col = ring + next_slot * DWQ_PIXELS; /* copies as in the row order */
                dwq_gather_column(p, in, c, next_col, zp4, col,
                                  asm_rows && next_slot < 2 ? col + 3 * DWQ_PIXELS : NULL);
                next_slot = next_slot == 2 ? 0 : next_slot + 1;
            }
            wslot = wslot == 2 ? 0 : wslot + 1;
#if TC_DSP_ASM
            if (asm_rows && p->out_h >= 2) {
                tc_dwq_row_asm(g, r0, y, p->out_h, y_step, 1);
                continue;
            }
#endif
            {
                const uint32_t *r1 = r0 == ring + 2 * DWQ_PIXELS ? ring : r0 + DWQ_PIXELS;
                const uint32_t *r2 = r1 == ring + 2 * DWQ_PIXELS ? ring : r1 + DWQ_PIXELS;
                tc_dwq_row(g, r0, r1, r2, p->out_h, 1, y, y_step);
            }
        }
    }
}

void tc_dwconv2d_s8_quad(const tc_dwconv2d_params *p, const int8_t *in,
                         const int8_t *w, const int32_t *bias,
                         const int32_t *mult, const int32_t *shift,
                         int8_t *out) {
    uint32_t ring[5 * DWQ_PIXELS];
    tc_dwq_group g;
    const int32_t y_row = p->out_w * p->out_c, stride = p->stride_w;
    const int32_t tile = tc_dwconv2d_s8_quad_tile(p); /* output pixels per column tile */
    const uint32_t zp4 = (uint32_t)(uint8_t)p->in_zp * UINT32_C(0x01010101);
    const int one_tile = tile >= p->out_w && p->pad_left + p->in_w <= DWQ_PIXELS;
    const int32_t slot_step = p->stride_h % 3; /* ring slots from one output row's windows to the next */
    int32_t c, oy, iy, ox0;
    const int by_columns = dwq_by_columns(p, out == in);
    if (one_tile || by_columns) { /* padding words hold in_zp throughout; lines write the image */
        for (iy = 0; iy < 5 * DWQ_PIXELS; ++iy) ring[iy] = zp4;
    }
    if (by_columns) {
        dwq_columns(p, in, w, bias, mult, shift, ring, zp4, &g, out);
        return;
    }
    for (c = 0; c < p->in_c; c += 4) {
        int asm_rows = 0;
        tc_dwq_make_group(w + c, p->out_c, 1, bias, mult, shift, c, p->in_zp, p->out_zp,
                          p->act_min, p->act_max, &g);
#if TC_DSP_ASM
        asm_rows = tc_dwq_asm_group(&g, stride, p->out_w);
#endif
        for (ox0 = 0; ox0 < p->out_w; ox0 += tile) { /* one tile unless rows are wide */
            const int32_t n_out = TC_MIN(tile, p->out_w - ox0);
            const int32_t ix0 = ox0 * stride - p->pad_left;
            const int32_t span = (n_out - 1) * stride + 3;
            /* input row iy is in ring slot (iy + pad_top) % 3, kept by counting, not dividing:
             * next_slot is the slot of next_row, the first row not yet gathered, and wslot
             * that of output row oy's first window row, (oy * stride_h) % 3 */
            int32_t next_row = -p->pad_top, next_slot = 0, wslot = 0;
            int8_t *y = out + ox0 * p->out_c + c;
            for (oy = 0; oy < p->out_h; ++oy, y += y_row) {
                const int32_t iy0 = oy * p->stride_h - p->pad_top;
                const uint32_t *r0 = ring + wslot * DWQ_PIXELS;
                if (next_row < iy0) { /* rows no window reads (stride_h > 3) */
                    next_row = iy0;
                    next_slot = wslot;
                }
                for (; next_row < iy0 + 3; ++next_row) {
                    /* for the assembly, slots 0 and 1 have copies 3 slots on: a window's rows
                     * are then contiguous */
                    uint32_t *row = ring + next_slot * DWQ_PIXELS;
                    uint32_t *copy = asm_rows && next_slot < 2 ? row + 3 * DWQ_PIXELS : NULL;
                    if (one_tile) {
                        tc_dwq_gather_image_row(in, p->in_h, p->in_w, p->in_c, p->pad_left, c,
                                                next_row, zp4, row, copy);
                    } else {
                        dw4_gather_row(p, in, c, 4, next_row, ix0, span, zp4, row, copy);
                    }
                    next_slot = next_slot == 2 ? 0 : next_slot + 1;
                }
                wslot += slot_step;
                if (wslot >= 3) wslot -= 3;
#if TC_DSP_ASM
                if (asm_rows && n_out >= 2) {
                    tc_dwq_row_asm(&g, r0, y, n_out, p->out_c, stride);
                    continue;
                }
#endif
                {
                    const uint32_t *r1 = r0 == ring + 2 * DWQ_PIXELS ? ring : r0 + DWQ_PIXELS;
                    const uint32_t *r2 = r1 == ring + 2 * DWQ_PIXELS ? ring : r1 + DWQ_PIXELS;
                    tc_dwq_row(&g, r0, r1, r2, n_out, stride, y, p->out_c);
                }
            }
        }
    }
}
#endif /* TC_HAVE_DSP */

#if TC_HAVE_DSP
/*
 * Any kernel size (dilation 1, depth_mult 1, k_h * k_w <= DWK_MAX_TAPS), any width, any number
 * of channels: the 4-channel ring of tc_dwconv2d_s8_quad generalised to k_h ring rows, and the
 * row cut into column tiles that fit the ring, so wide rows keep the fast path. Per group of 4
 * channels (the last group may hold 1 to 3: its missing lanes read 0 and have 0 weights, and
 * only its channels are stored) the weights are widened once (2 words per tap) and the bias
 * takes the zero point's share (bias - in_zp * sum(w)), so a tap is one word read of 4
 * channels, two SXTB16 and four SMLABB/SMLATT, and padding columns and rows, which hold in_zp,
 * add nothing. Per tile the ring rows hold the tile's input columns (in_zp outside the image);
 * a row is gathered once for the k_h output rows that read it. In place the output of a group
 * overwrites only the group's channels of pixels the ring no longer needs, as for the 3x3 quad
 * path (dwk_inplace_ok), with one tile per row. Stack: DWK_RING_WORDS words of ring and the
 * group (about 1.4 KB). On GNU Thumb-2 builds square 5x5 and 7x7 kernels at strides 1 and 2
 * go by pixel pairs in tc_dwconv2d_s8_asm.c (dwk_row_asm), the group being its job.
 */
#define DWK_RING_WORDS TC_DWCONV2D_K_RING_WORDS
/* The 5x5 / 7x7 assembly: GNU Thumb-2 builds, unless the project compiles it out (tc_conv.h
 * TC_DWCONV2D_K57, which also leaves out the C rows dwk_row_5 and dwk_row_7). */
#define DWK_WITH_ASM (TC_DSP_ASM && TC_DWCONV2D_K57)
#define DWK_MAX_TAPS TC_DWCONV2D_K_MAX_TAPS

typedef struct {
    /* The first fields are the assembly's job (tc_dwconv2d_s8_asm.c; offsets checked below). */
    int32_t n;                   /*  0: channels in the group: 4, or 1..3 for the last one */
    int8_t *y;                   /*  4: pixel A's output, channel c */
    int32_t pairs;               /*  8: pixel pairs left (A, A + 1) */
    int32_t y_step;              /* 12: bytes between output pixels (out_c) */
    int32_t bias_x[4];   /* 16: bias - in_zp * sum(w), wrapping like the registers */
    int32_t rq[4][3];    /* 32: mult, khi, e1 of tc_dsp_rq per channel */
    const uint32_t *row[TC_DWCONV2D_K_MAX_ROWS]; /* 80: ring row ky at pixel A's window */
    uint32_t w[2 * DWK_MAX_TAPS]; /* 112: tap k: w[2k] = (ch 0, ch 2), w[2k + 1] = (ch 1, ch 3) */
    int32_t shift[4];
    int fast;            /* every shift suits tc_dsp_rq */
} dwk_group;

static void dwk_make_group(const tc_dwconv2d_params *p, const int8_t *w, const int32_t *bias,
                           const int32_t *mult, const int32_t *shift, int32_t c, dwk_group *g) {
    const int32_t taps = p->k_h * p->k_w;
    const uint32_t ones = tc_pack_s16x2(1, 1);
    const int8_t *wk = w + c;
    int32_t k, j, w_sum[4] = {0, 0, 0, 0};
    g->n = TC_MIN(4, p->out_c - c);
    for (k = 0; k < taps; ++k, wk += p->out_c) {
        /* the tap's 4 weights as one word (the last group's missing lanes 0), widened with
         * SXTB16 into the (ch 0, ch 2) and (ch 1, ch 3) pairs, summed per channel by SMLAxy */
        uint32_t word, we, wo;
        if (g->n == 4) {
            word = tc_read_s8x4(wk);
        } else {
            word = (uint8_t)wk[0];
            if (g->n > 1) word |= (uint32_t)(uint8_t)wk[1] << 8;
            if (g->n > 2) word |= (uint32_t)(uint8_t)wk[2] << 16;
        }
        we = tc_sxtb16(word);
        wo = tc_sxtb16_ror8(word);
        g->w[2 * k] = we;
        g->w[2 * k + 1] = wo;
        w_sum[0] = tc_smlabb(we, ones, w_sum[0]);
        w_sum[2] = tc_smlatt(we, ones, w_sum[2]);
        w_sum[1] = tc_smlabb(wo, ones, w_sum[1]);
        w_sum[3] = tc_smlatt(wo, ones, w_sum[3]);
    }
    g->fast = 1;
    for (j = 0; j < 4; ++j) {
        const int32_t ch = c + TC_MIN(j, g->n - 1); /* lanes past n copy the last channel */
        g->bias_x[j] = tc_wrap_i32((uint32_t)(bias != NULL ? bias[ch] : 0) -
                                   (uint32_t)w_sum[j] * (uint32_t)p->in_zp);
        g->shift[j] = shift[ch];
        g->rq[j][0] = mult[ch];
        if (tc_dsp_rq_applies(shift[ch])) {
            g->rq[j][1] = tc_dsp_rq_khi(shift[ch], p->out_zp);
            g->rq[j][2] = -shift[ch] - 1;
        } else {
            g->rq[j][1] = g->rq[j][2] = 0;
            g->fast = 0;
        }
    }
}

/* Channel j of a group the general way (out of line: rare). */
static TC_DSP_NOINLINE int8_t dwk_requant(int32_t acc, const dwk_group *g, int32_t j,
                                          const tc_dwconv2d_params *p) {
    return tc_requant_s8_nonneg(acc, g->rq[j][0], g->shift[j], p->out_zp, p->act_min,
                                p->act_max);
}

/* One tap of the window: 4 channels' values against the tap's widened weights. */
#define DWK_TAP(xv_expr, wt_pair)                                           \
    do {                                                                    \
        const uint32_t xv = (xv_expr);                                      \
        const uint32_t xe = tc_sxtb16(xv);                                  \
        const uint32_t xo = tc_sxtb16_ror8(xv);                             \
        a0 = tc_smlabb(xe, (wt_pair)[0], a0);                               \
        a2 = tc_smlatt(xe, (wt_pair)[0], a2);                               \
        a1 = tc_smlabb(xo, (wt_pair)[1], a1);                               \
        a3 = tc_smlatt(xo, (wt_pair)[1], a3);                               \
    } while (0)

/*
 * Output pixels [0, n_out) of one tile row: window ox reads ring rows rows[0..k_h) from word
 * ox * stride on. `kw` is the kernel width when it is a constant of the caller (3, 5, 7: the
 * taps of a kernel row are then unrolled, with immediate offsets), 0 for any width (p->k_w).
 */
static TC_ALWAYS_INLINE inline void dwk_row_kw(const dwk_group *g, const uint32_t *const *rows,
                                               int32_t n_out, int32_t stride,
                                               const tc_dwconv2d_params *p, int8_t *y,
                                               const int32_t kw) {
    const int32_t k_h = p->k_h, k_w = kw > 0 ? kw : p->k_w, y_step = p->out_c, n = g->n;
    const int32_t act_min = p->act_min, act_max = p->act_max;
    const int clamp = act_min != -128 || act_max != 127;
    int32_t ox, ky, kx;
    for (ox = 0; ox < n_out; ++ox, y += y_step) {
        const uint32_t *wt = g->w;
        int32_t a0 = g->bias_x[0], a1 = g->bias_x[1], a2 = g->bias_x[2], a3 = g->bias_x[3];
        int32_t out[4];
        for (ky = 0; ky < k_h; ++ky, wt += 2 * k_w) {
            const uint32_t *r = rows[ky] + ox * stride;
            if (kw > 0) {
                DWK_TAP(r[0], wt);
                if (kw > 1) DWK_TAP(r[1], wt + 2);
                if (kw > 2) DWK_TAP(r[2], wt + 4);
                if (kw > 3) DWK_TAP(r[3], wt + 6);
                if (kw > 4) DWK_TAP(r[4], wt + 8);
                if (kw > 5) DWK_TAP(r[5], wt + 10);
                if (kw > 6) DWK_TAP(r[6], wt + 12);
            } else {
                for (kx = 0; kx < k_w; ++kx) DWK_TAP(r[kx], wt + 2 * kx);
            }
        }
        if (g->fast) {
            out[0] = tc_dsp_rq(a0, g->rq[0][0], g->rq[0][1], g->rq[0][2]);
            out[1] = tc_dsp_rq(a1, g->rq[1][0], g->rq[1][1], g->rq[1][2]);
            out[2] = tc_dsp_rq(a2, g->rq[2][0], g->rq[2][1], g->rq[2][2]);
            out[3] = tc_dsp_rq(a3, g->rq[3][0], g->rq[3][1], g->rq[3][2]);
            if (clamp) {
                out[0] = TC_MIN(TC_MAX(out[0], act_min), act_max);
                out[1] = TC_MIN(TC_MAX(out[1], act_min), act_max);
                out[2] = TC_MIN(TC_MAX(out[2], act_min), act_max);
                out[3] = TC_MIN(TC_MAX(out[3], act_min), act_max);
            }
        } else {
            out[0] = dwk_requant(a0, g, 0, p);
            out[1] = dwk_requant(a1, g, 1, p);
            out[2] = dwk_requant(a2, g, 2, p);
            out[3] = dwk_requant(a3, g, 3, p);
        }
        if (n == 4) {
            y[0] = (int8_t)out[0];
            y[1] = (int8_t)out[1];
            y[2] = (int8_t)out[2];
            y[3] = (int8_t)out[3];
        } else {
            for (kx = 0; kx < n; ++kx) y[kx] = (int8_t)out[kx];
        }
    }
}

/* dwk_row_kw with the kernel width fixed for the common sizes (each its own loop). */
static TC_DSP_NOINLINE void dwk_row_3(const dwk_group *g, const uint32_t *const *rows,
                                      int32_t n_out, int32_t stride,
                                      const tc_dwconv2d_params *p, int8_t *y) {
    dwk_row_kw(g, rows, n_out, stride, p, y, 3);
}
#if TC_DWCONV2D_K57
static TC_DSP_NOINLINE void dwk_row_5(const dwk_group *g, const uint32_t *const *rows,
                                      int32_t n_out, int32_t stride,
                                      const tc_dwconv2d_params *p, int8_t *y) {
    dwk_row_kw(g, rows, n_out, stride, p, y, 5);
}
static TC_DSP_NOINLINE void dwk_row_7(const dwk_group *g, const uint32_t *const *rows,
                                      int32_t n_out, int32_t stride,
                                      const tc_dwconv2d_params *p, int8_t *y) {
    dwk_row_kw(g, rows, n_out, stride, p, y, 7);
}
#endif
static TC_DSP_NOINLINE void dwk_row_any(const dwk_group *g, const uint32_t *const *rows,
                                        int32_t n_out, int32_t stride,
                                        const tc_dwconv2d_params *p, int8_t *y) {
    dwk_row_kw(g, rows, n_out, stride, p, y, 0);
}

static void dwk_row(const dwk_group *g, const uint32_t *const *rows, int32_t n_out,
                    int32_t stride, const tc_dwconv2d_params *p, int8_t *y) {
    switch (p->k_w) {
    case 3: dwk_row_3(g, rows, n_out, stride, p, y); break;
#if TC_DWCONV2D_K57
    case 5: dwk_row_5(g, rows, n_out, stride, p, y); break;
    case 7: dwk_row_7(g, rows, n_out, stride, p, y); break;
#endif
    default: dwk_row_any(g, rows, n_out, stride, p, y); break;
    }
}

#if DWK_WITH_ASM
typedef char dwk_job_layout[(offsetof(dwk_group, y) == 4 && offsetof(dwk_group, bias_x) == 16 &&
                             offsetof(dwk_group, rq) == 32 && offsetof(dwk_group, row) == 80 &&
                             offsetof(dwk_group, w) == 112 && TC_DWCONV2D_K_MAX_ROWS == 8) ? 1 : -1];

void tc_dwk5_pairs_asm(dwk_group *g);
void tc_dwk5_pairs_s2_asm(dwk_group *g);
void tc_dwk7_pairs_asm(dwk_group *g);
void tc_dwk7_pairs_s2_asm(dwk_group *g);

/* The assembly routine for the group's rows: 5x5 or 7x7 kernels at strides 1 and 2, 4
 * channels, shifts that suit tc_dsp_rq and no fused clamp; 0 (none) otherwise. A code, not a
 * function pointer: the calls stay direct for the static stack bound. */
enum { DWK_ASM_NONE, DWK_ASM_5, DWK_ASM_5_S2, DWK_ASM_7, DWK_ASM_7_S2 };

static int dwk_asm_for(const tc_dwconv2d_params *p, const dwk_group *g) {
    if (!g->fast || g->n != 4 || p->act_min != -128 || p->act_max != 127) return DWK_ASM_NONE;
    if ((p->stride_w != 1 && p->stride_w != 2) || p->k_h != p->k_w) return DWK_ASM_NONE;
    if (p->k_w == 5) return p->stride_w == 1 ? DWK_ASM_5 : DWK_ASM_5_S2;
    if (p->k_w == 7) return p->stride_w == 1 ? DWK_ASM_7 : DWK_ASM_7_S2;
    return DWK_ASM_NONE;
}

static void dwk_pairs_asm(int code, dwk_group *g) {
    switch (code) {
    case DWK_ASM_5: tc_dwk5_pairs_asm(g); break;
    case DWK_ASM_5_S2: tc_dwk5_pairs_s2_asm(g); break;
    case DWK_ASM_7: tc_dwk7_pairs_asm(g); break;
    default: tc_dwk7_pairs_s2_asm(g); break;
    }
}

/* A tile row in the assembly, g->row[] at its first window: pixel pairs (the assembly
 * advances g->row[] past them), then an odd last pixel in C (dwk_row: cheaper than a pair for
 * one pixel). */
static void dwk_row_asm(int code, dwk_group *g, int32_t n_out, const tc_dwconv2d_params *p,
                        int8_t *y) {
    g->y = y;
    g->pairs = n_out >> 1;
    g->y_step = p->out_c;
    dwk_pairs_asm(code, g);
    if (n_out & 1) dwk_row(g, g->row, 1, p->stride_w, p, y + (n_out - 1) * p->out_c);
}
#endif /* DWK_WITH_ASM */

void tc_dwconv2d_s8_k(const tc_dwconv2d_params *p, const int8_t *in, const int8_t *w,
                      const int32_t *bias, const int32_t *mult, const int32_t *shift,
                      int8_t *out) {
    uint32_t ring[DWK_RING_WORDS];
    dwk_group g;
    const int32_t k_h = p->k_h, pitch = DWK_RING_WORDS / p->k_h;
    const int32_t tile = tc_dwconv2d_s8_k_tile(p); /* output pixels per column tile */
    const int32_t y_row = p->out_w * p->out_c;
    const uint32_t zp4 = (uint32_t)(uint8_t)p->in_zp * UINT32_C(0x01010101);
    /* One tile per row, the image inside it: the ring's padding columns hold in_zp words from
     * the start and rows write only the image columns (groups of 4 channels). */
    const int one_tile = tile >= p->out_w && p->pad_left + p->in_w <= pitch;
    int32_t c, ox0, oy, iy, ky;
    if (one_tile) {
        for (iy = 0; iy < DWK_RING_WORDS; ++iy) ring[iy] = zp4;
    }
    for (c = 0; c < p->in_c; c += 4) {
#if DWK_WITH_ASM
        int asm_pairs;
#endif
        dwk_make_group(p, w, bias, mult, shift, c, &g);
#if DWK_WITH_ASM
        asm_pairs = dwk_asm_for(p, &g);
#endif
        for (ox0 = 0; ox0 < p->out_w; ox0 += tile) {
            const int32_t n_out = TC_MIN(tile, p->out_w - ox0);
            const int32_t ix0 = ox0 * p->stride_w - p->pad_left;
            const int32_t span = (n_out - 1) * p->stride_w + p->k_w;
            int32_t next_row = -p->pad_top; /* the first input row not yet gathered */
            for (oy = 0; oy < p->out_h; ++oy) {
                const int32_t iy0 = oy * p->stride_h - p->pad_top;
                int32_t slot;
                for (iy = TC_MAX(iy0, next_row); iy < iy0 + k_h; ++iy) {
                    uint32_t *row = ring + ((iy + p->pad_top) % k_h) * pitch;
                    if (one_tile && g.n == 4) {
                        tc_dwq_gather_image_row(in, p->in_h, p->in_w, p->in_c, p->pad_left, c,
                                                iy, zp4, row, NULL);
                    } else {
                        dw4_gather_row(p, in, c, g.n, iy, ix0, span, zp4, row, NULL);
                    }
                }
                next_row = TC_MAX(next_row, iy0 + k_h);
                slot = (iy0 + p->pad_top) % k_h; /* window row ky is in slot (slot + ky) % k_h */
                for (ky = 0; ky < k_h; ++ky) {
                    g.row[ky] = ring + slot * pitch;
                    slot = slot + 1 == k_h ? 0 : slot + 1;
                }
#if DWK_WITH_ASM
                if (asm_pairs != DWK_ASM_NONE && n_out >= 2) {
                    dwk_row_asm(asm_pairs, &g, n_out, p, out + oy * y_row + ox0 * p->out_c + c);
                    continue;
                }
#endif
                dwk_row(&g, g.row, n_out, p->stride_w, p, out + oy * y_row + ox0 * p->out_c + c);
            }
        }
    }
}
#endif /* TC_HAVE_DSP */
