/*
 * tinycc runtime: int8 depthwise 2-D convolution, TFLM DepthwiseConvPerChannel arithmetic,
 * out-of-place and in-place (TinyEngine-style, one channel plane of scratch).
 * Mirrored by tinycc/ops/conv.py::dwconv2d_s8 (both entry points).
 *
 * This file holds the entry points and the portable C99 reference, the specification every
 * variant matches bit for bit (CMSIS-NN's wrapper/variant layout):
 *  - dwconv2d_channel below: every build, every shape the faster paths do not take;
 *  - dwconv2d_3x3 below, for 3x3 kernels with dilation 1 and depth_mult 1 in both entry points:
 *    rows gathered into a zero-point-padded ring on the stack, scalar sums, or the SIMD sums
 *    with TC_HAVE_DSP (where the out-of-place kernel has in_c >= 4);
 *  - tc_dwconv2d_s8_dsp.c (TC_HAVE_DSP, tc_arm_dsp.h: Cortex-M4/M7/M33/M55, or the host
 *    emulation -DTC_EMULATE_DSP), bit-exact with dwconv2d_channel: 3x3 windows of 4 channels at
 *    a time (tc_dwconv2d_s8_quad, in_c a multiple of 4, rows of up to 50 pixels); out of place
 *    for depth_mult == 1 and in_c >= 4, 4 channels at a time along the window
 *    (tc_dwconv2d_s8_dsp); in place for dil_w == 1 and k_h * ceil(k_w / 4) <= 16, 4 taps of a
 *    window row at a time (tc_dwconv2d_s8_plane_dsp);
 *  - tc_dwconv2d_s8_fast.c (TC_FAST_PORTABLE, tc_conv.h: no DSP extension and no
 *    -DTC_PORTABLE_SPEC), plain C for the cores without SIMD (M0+/M3, RISC-V, the host),
 *    depth_mult 1: small layers (kernels up to 7x7) channel by channel from a zero-point-padded
 *    plane, in both entry points (tc_dwconv2d_s8_fast_plane_applicable), the shapes
 *    dwconv2d_3x3 does not take out of place in pixel pairs times channel pairs
 *    (tc_dwconv2d_s8_fast_applicable);
 *  - tc_dwconv2d_s8_asm.c (TC_DSP_ASM: GNU-compatible compilers for Thumb-2): the hand-written
 *    pixel-pair loops of the 4-channel 3x3 path, which has C functions of the same arithmetic
 *    for every other build.
 */
#include "tc_conv.h"
#include "tc_dot_s8_dsp.h"
#include "tc_dwconv2d_quad_dsp.h"

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
int32_t tc_dwconv2d_tap_sum(const tc_dwconv2d_params *p, const int8_t *plane,
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
            int32_t acc = tc_dwconv2d_tap_sum(p, plane, plane_stride, w, oc, in_y0, in_x0);
            if (bias != NULL) acc += bias[oc];
            out_oc[(oy * p->out_w + ox) * p->out_c] =
                tc_requant_s8_nonneg(acc, mult, shift, p->out_zp, p->act_min, p->act_max);
        }
    }
}

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
 * be intact, i.e. start at or after pixel oy * out_w (rows of k_h-row windows, dilation 1: the
 * 3x3 rings and tc_dwconv2d_s8_k). */
static int dw3_inplace_order_ok(const tc_dwconv2d_params *p) {
    return tc_dw_ring_inplace_order_ok(p->in_h, p->in_w, p->out_h, p->out_w, p->stride_h,
                                       p->pad_top, p->k_h);
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

/* acc + bias with the wrap of a 32-bit register: the portable sums move the zero point's share
 * into the bias, and only the total is known to fit in int32. */
static int32_t dw3_add_bias(int32_t acc, int32_t bias) {
    return tc_wrap_i32((uint32_t)acc + (uint32_t)bias);
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

/* Any stride: bias plus the sum of the window starting at x + i * stride into acc[i], i < n.
 * (One window per step, where dw3_sums_pairs_dsp shares each read between two.) */
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
            bias_c = dw3_add_bias(bias_c, tc_wrap_i32(0u - w_sum * (uint32_t)p->in_zp));
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
/* The layers tc_dwconv2d_s8_quad takes (rows of any width: column tiles of the ring). */
static int dwq_applicable(const tc_dwconv2d_params *p) {
    return p->k_h == 3 && p->k_w == 3 && p->dil_h == 1 && p->dil_w == 1 && p->depth_mult == 1 &&
           (p->in_c & 3) == 0;
}

/* In place, the quad path needs one column tile per row (a second tile would read rows the
 * first one's output rows have overwritten) and the row order of the 3x3 rings. */
static int dwq_inplace_ok(const tc_dwconv2d_params *p) {
    return tc_dwconv2d_s8_quad_tile(p) >= p->out_w && dw3_inplace_order_ok(p);
}

/* The layers tc_dwconv2d_s8_k takes (any kernel size up to 49 taps, any width and channels). */
static int dwk_applicable(const tc_dwconv2d_params *p) {
    return p->dil_h == 1 && p->dil_w == 1 && p->depth_mult == 1 &&
           p->k_h <= TC_DWCONV2D_K_MAX_ROWS && p->k_h * p->k_w <= TC_DWCONV2D_K_MAX_TAPS &&
           p->k_w <= TC_DWCONV2D_K_RING_WORDS / p->k_h;
}

/* In place, tc_dwconv2d_s8_k needs one column tile per row (a second tile would read rows the
 * first one's output rows have overwritten) and the row order of the 3x3 rings. */
static int dwk_inplace_ok(const tc_dwconv2d_params *p) {
    return tc_dwconv2d_s8_k_tile(p) >= p->out_w && dw3_inplace_order_ok(p);
}
#endif

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
        tc_dwconv2d_s8_quad(p, in, w, bias, mult, shift, out);
        return TC_OK;
    }
    if (dwk_applicable(p)) {
        tc_dwconv2d_s8_k(p, in, w, bias, mult, shift, out);
        return TC_OK;
    }
#endif
#if TC_FAST_PORTABLE
    if (tc_dwconv2d_s8_fast_plane_applicable(p)) { /* small layers, up to 7x7 */
        tc_dwconv2d_s8_fast(p, in, w, bias, mult, shift, out);
        return TC_OK;
    }
#endif
    if (dw3_applicable(p)) {
        dwconv2d_3x3(p, in, w, bias, mult, shift, TC_HAVE_DSP && p->in_c >= 4, out);
        return TC_OK;
    }
#if TC_FAST_PORTABLE
    if (tc_dwconv2d_s8_fast_applicable(p)) { /* the other shapes: faster than the rings there */
        tc_dwconv2d_s8_fast(p, in, w, bias, mult, shift, out);
        return TC_OK;
    }
#endif
#if TC_HAVE_DSP
    if (p->depth_mult == 1 && p->in_c >= 4) {
        tc_dwconv2d_s8_dsp(p, in, w, bias, mult, shift, out);
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
    if (dwq_applicable(p) && (out != in || dwq_inplace_ok(p))) {
        tc_dwconv2d_s8_quad(p, in, w, bias, mult, shift, out);
        return TC_OK;
    }
    if (dwk_applicable(p) && (out != in || dwk_inplace_ok(p))) {
        tc_dwconv2d_s8_k(p, in, w, bias, mult, shift, out);
        return TC_OK;
    }
#endif
#if TC_FAST_PORTABLE
    if (tc_dwconv2d_s8_fast_plane_applicable(p)) { /* the plane path: safe in place */
        tc_dwconv2d_s8_fast(p, in, w, bias, mult, shift, out);
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
        if (tc_dwconv2d_s8_plane_dsp_applicable(p)) {
            tc_dwconv2d_s8_plane_dsp(p, scratch, w, bias, c, mult[c], shift[c], out + c);
            continue;
        }
#endif
        dwconv2d_channel(p, scratch, 1, w, bias, c, mult[c], shift[c], out + c);
    }
    return TC_OK;
}
