/*
 * tinycc runtime: the fast portable variant of tc_conv2d_s8 (tc_conv2d_s8.c), for cores without
 * the DSP extension (Cortex-M0+/M3, RISC-V, ESP32, the host): plain C99, bit-exact with the
 * portable reference conv2d_s8_portable, taken by the entry point when TC_FAST_PORTABLE
 * (tc_conv.h) and tc_conv2d_s8_fast_applicable.
 *
 * How it differs from the reference (same integer sums, reordered):
 *  - register blocking: two output pixels times two output channels per pass, four int32
 *    accumulators, so each loaded input value and each loaded weight serves two MACs;
 *  - the zero point leaves the inner loop: sum w * (x - in_zp) over the in-image taps equals
 *    sum w * x' - in_zp * sum w over the whole window, where x' is x inside the image and in_zp
 *    on a padded tap (w * (in_zp - in_zp) = 0 there). -in_zp * sum w goes into the bias, once
 *    per output channel; padded taps read a stack row filled with in_zp. The sums are added
 *    with the wrap of a 32-bit register: only the total is known to fit in int32 (the same
 *    assumption as the reference, tc_conv.h);
 *  - the taps of a window row are contiguous in input and weights (dilation 1, no padding in
 *    that row): one inner loop over k_w * in_c values instead of k_w loops;
 *  - requantization constants hoisted per output channel.
 * The output is written in the reference's layout; nothing is read outside the input, the
 * weights and the stack, and the output is written once per element (no read-ahead, no
 * scratch), so the reference's licences (no overlap of input and output) are unchanged.
 */
#include "tc_conv.h"

#if TC_FAST_PORTABLE

#include <stddef.h>
#include <string.h>

/* Padded taps read in_zp from a stack row of this many bytes: layers with padding and more
 * input channels per group keep the reference. */
#define CONV_FAST_ZP_ROW 256

/* Every window lies inside the image: no padded tap is ever read. */
static int conv_fast_windows_inside(const tc_conv2d_params *p) {
    return p->pad_top == 0 && p->pad_left == 0 &&
           (p->out_h - 1) * p->stride_h + (p->k_h - 1) * p->dil_h < p->in_h &&
           (p->out_w - 1) * p->stride_w + (p->k_w - 1) * p->dil_w < p->in_w;
}

int tc_conv2d_s8_fast_applicable(const tc_conv2d_params *p) {
    return p->groups == 1 && (p->in_c <= CONV_FAST_ZP_ROW || conv_fast_windows_inside(p));
}

/* One output channel's bias (with the zero point's share) and requantization. */
typedef struct {
    int32_t bias;      /* bias[oc] - in_zp * sum(w[oc]), wrapped to 32 bits */
    int32_t mult, shift;
    uint32_t half;     /* shift < 0: 2^(-shift - 1), the rounding of tc_mbqm_right */
    int32_t e_minus_1; /* shift < 0: -shift - 1 */
} conv_fast_channel;

/* bias[oc] - in_zp * sum(w[oc]), wrapped to 32 bits. */
static int32_t conv_fast_folded_bias(const tc_conv2d_params *p, const int8_t *w_oc,
                                     int32_t w_oc_size, const int32_t *bias, int32_t oc) {
    uint32_t w_sum = 0;
    int32_t i;
    for (i = 0; i < w_oc_size; ++i) w_sum += (uint32_t)(int32_t)w_oc[i];
    return tc_wrap_i32((bias != NULL ? (uint32_t)bias[oc] : 0u) - w_sum * (uint32_t)p->in_zp);
}

static conv_fast_channel conv_fast_channel_of(int32_t folded_bias, const int32_t *mult,
                                              const int32_t *shift, int32_t oc) {
    conv_fast_channel ch;
    ch.bias = folded_bias;
    ch.mult = mult[oc];
    ch.shift = shift[oc];
    ch.e_minus_1 = ch.shift < 0 ? -ch.shift - 1 : 0;
    ch.half = UINT32_C(1) << ch.e_minus_1;
    return ch;
}

/* The output of one raw window sum (tc_requant_s8_nonneg of sum + the folded bias). */
static TC_ALWAYS_INLINE inline int8_t conv_fast_requant(const tc_conv2d_params *p,
                                                        const conv_fast_channel *ch,
                                                        int32_t raw) {
    const int32_t acc = tc_wrap_i32((uint32_t)raw + (uint32_t)ch->bias);
    int32_t y = ch->shift < 0 ? tc_mbqm_right(acc, ch->mult, ch->half, ch->e_minus_1)
                              : tc_mbqm(acc, ch->mult, ch->shift);
    y = TC_MAX(y, p->act_min - p->out_zp);
    y = TC_MIN(y, p->act_max - p->out_zp);
    return (int8_t)(y + p->out_zp);
}

/* The four sums of a 2x2 block: pixel a or b times channel 0 or 1. */
typedef struct {
    int32_t a0, a1, b0, b1;
} conv_fast_acc;

/* acc += the products of n values of xa and xb (two pixels) with n of w0 and w1 (two output
 * channels). Raw int8 products, 4 MACs per 4 loads; unrolled by 4 for the loop overhead. */
static void conv_fast_dot_2x2(const int8_t *xa, const int8_t *xb, const int8_t *w0,
                              const int8_t *w1, int32_t n, conv_fast_acc *acc) {
    int32_t a0 = acc->a0, a1 = acc->a1, b0 = acc->b0, b1 = acc->b1;
    for (; n >= 4; n -= 4) {
        int32_t x, y, u, v;
        x = xa[0]; y = xb[0]; u = w0[0]; v = w1[0];
        a0 += x * u; a1 += x * v; b0 += y * u; b1 += y * v;
        x = xa[1]; y = xb[1]; u = w0[1]; v = w1[1];
        a0 += x * u; a1 += x * v; b0 += y * u; b1 += y * v;
        x = xa[2]; y = xb[2]; u = w0[2]; v = w1[2];
        a0 += x * u; a1 += x * v; b0 += y * u; b1 += y * v;
        x = xa[3]; y = xb[3]; u = w0[3]; v = w1[3];
        a0 += x * u; a1 += x * v; b0 += y * u; b1 += y * v;
        xa += 4; xb += 4; w0 += 4; w1 += 4;
    }
    for (; n > 0; --n) {
        const int32_t x = *xa++, y = *xb++, u = *w0++, v = *w1++;
        a0 += x * u; a1 += x * v; b0 += y * u; b1 += y * v;
    }
    acc->a0 = a0; acc->a1 = a1; acc->b0 = b0; acc->b1 = b1;
}

/* acc->a0, a1 += the products of n values of xa (one pixel) with n of w0 and w1: the last
 * pixel of a row of odd width. */
static void conv_fast_dot_1x2(const int8_t *xa, const int8_t *w0, const int8_t *w1, int32_t n,
                              conv_fast_acc *acc) {
    int32_t a0 = acc->a0, a1 = acc->a1;
    for (; n >= 2; n -= 2) {
        int32_t x = xa[0];
        a0 += x * w0[0]; a1 += x * w1[0];
        x = xa[1];
        a0 += x * w0[1]; a1 += x * w1[1];
        xa += 2; w0 += 2; w1 += 2;
    }
    if (n > 0) {
        a0 += *xa * *w0; a1 += *xa * *w1;
    }
    acc->a0 = a0; acc->a1 = a1;
}

/* Input values of tap (iy, ix): the image, or the in_zp row for a padded tap. */
static const int8_t *conv_fast_tap(const tc_conv2d_params *p, const int8_t *in,
                                   const int8_t *zp_row, int32_t iy, int32_t ix) {
    if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) return zp_row;
    return in + (iy * p->in_w + ix) * p->in_c;
}

/* The k_w taps of a window row starting at column x0 lie inside the image (row iy inside). */
static int conv_fast_cols_inside(const tc_conv2d_params *p, int32_t x0) {
    return x0 >= 0 && x0 + (p->k_w - 1) * p->dil_w < p->in_w;
}

/* The raw window sums, for channels w0 and w1 (weights [k_h][k_w][in_c]), of the windows that
 * start at input row y0 and columns xa and xb. */
static conv_fast_acc conv_fast_block(const tc_conv2d_params *p, const int8_t *in,
                                     const int8_t *zp_row, int32_t y0, int32_t xa, int32_t xb,
                                     const int8_t *w0, const int8_t *w1) {
    const int32_t row_w = p->k_w * p->in_c;
    const int whole_rows = p->dil_w == 1 && conv_fast_cols_inside(p, xa) &&
                           conv_fast_cols_inside(p, xb);
    conv_fast_acc acc = {0, 0, 0, 0};
    int32_t ky, kx;
    for (ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = y0 + ky * p->dil_h;
        const int8_t *w0_row = w0 + ky * row_w, *w1_row = w1 + ky * row_w;
        if (whole_rows && iy >= 0 && iy < p->in_h) { /* one run of k_w * in_c values */
            const int8_t *x_row = in + (iy * p->in_w + xa) * p->in_c;
            conv_fast_dot_2x2(x_row, x_row + (xb - xa) * p->in_c, w0_row, w1_row, row_w, &acc);
            continue;
        }
        for (kx = 0; kx < p->k_w; ++kx) {
            conv_fast_dot_2x2(conv_fast_tap(p, in, zp_row, iy, xa + kx * p->dil_w),
                              conv_fast_tap(p, in, zp_row, iy, xb + kx * p->dil_w),
                              w0_row + kx * p->in_c, w1_row + kx * p->in_c, p->in_c, &acc);
        }
    }
    return acc;
}

/* Output row oy for channels oc and oc1: the pixel pairs (conv_fast_last_pixel takes an odd
 * last pixel). */
static void conv_fast_row(const tc_conv2d_params *p, const int8_t *in, const int8_t *zp_row,
                          int32_t oy, const int8_t *w0, const int8_t *w1,
                          const conv_fast_channel *ch0, const conv_fast_channel *ch1,
                          int32_t oc, int32_t oc1, int8_t *out) {
    const int32_t y0 = oy * p->stride_h - p->pad_top;
    const int32_t step = p->stride_w, out_c = p->out_c;
    int32_t ox, x0 = -p->pad_left;
    int8_t *y = out + oy * p->out_w * out_c;
    for (ox = 0; ox + 1 < p->out_w; ox += 2, x0 += 2 * step, y += 2 * out_c) {
        const conv_fast_acc acc = conv_fast_block(p, in, zp_row, y0, x0, x0 + step, w0, w1);
        y[oc] = conv_fast_requant(p, ch0, acc.a0);
        y[oc1] = conv_fast_requant(p, ch1, acc.a1);
        y[out_c + oc] = conv_fast_requant(p, ch0, acc.b0);
        y[out_c + oc1] = conv_fast_requant(p, ch1, acc.b1);
    }
}

/* The four sums of pixels xa, xb times channels u, v over in_c values (a pointwise window),
 * written out with the pointers walking, unrolled by 8 (4 loads and 4 MACs per value; the
 * pointer steps and the loop test once per 32 MACs). */
static TC_ALWAYS_INLINE inline conv_fast_acc conv_fast_pw_dot(const int8_t *xa, const int8_t *xb,
                                                              const int8_t *u, const int8_t *v,
                                                              int32_t n) {
    int32_t a0 = 0, a1 = 0, b0 = 0, b1 = 0;
    conv_fast_acc acc;
#define CONV_FAST_PW_STEP(k)                                   \
    do {                                                       \
        const int32_t s_ = xa[k], t_ = xb[k], u_ = u[k], v_ = v[k]; \
        a0 += s_ * u_; a1 += s_ * v_; b0 += t_ * u_; b1 += t_ * v_; \
    } while (0)
    for (; n >= 8; n -= 8, xa += 8, xb += 8, u += 8, v += 8) {
        CONV_FAST_PW_STEP(0); CONV_FAST_PW_STEP(1); CONV_FAST_PW_STEP(2); CONV_FAST_PW_STEP(3);
        CONV_FAST_PW_STEP(4); CONV_FAST_PW_STEP(5); CONV_FAST_PW_STEP(6); CONV_FAST_PW_STEP(7);
    }
#undef CONV_FAST_PW_STEP
    for (; n >= 4; n -= 4, xa += 4, xb += 4, u += 4, v += 4) {
        int32_t s, t, wu, wv;
        s = xa[0]; t = xb[0]; wu = u[0]; wv = v[0];
        a0 += s * wu; a1 += s * wv; b0 += t * wu; b1 += t * wv;
        s = xa[1]; t = xb[1]; wu = u[1]; wv = v[1];
        a0 += s * wu; a1 += s * wv; b0 += t * wu; b1 += t * wv;
        s = xa[2]; t = xb[2]; wu = u[2]; wv = v[2];
        a0 += s * wu; a1 += s * wv; b0 += t * wu; b1 += t * wv;
        s = xa[3]; t = xb[3]; wu = u[3]; wv = v[3];
        a0 += s * wu; a1 += s * wv; b0 += t * wu; b1 += t * wv;
    }
    for (; n > 0; --n) {
        const int32_t s = *xa++, t = *xb++, wu = *u++, wv = *v++;
        a0 += s * wu; a1 += s * wv; b0 += t * wu; b1 += t * wv;
    }
    acc.a0 = a0; acc.a1 = a1; acc.b0 = b0; acc.b1 = b1;
    return acc;
}

/* Output row oy of a 1x1 convolution without padding (pointwise), channels oc and oc1: the
 * pixel pairs of the row, each window one contiguous run of in_c values (an odd last pixel is
 * the caller's). */
static void conv_fast_pointwise_row(const tc_conv2d_params *p, const int8_t *in, int32_t oy,
                                    const int8_t *w0, const int8_t *w1,
                                    const conv_fast_channel *ch0, const conv_fast_channel *ch1,
                                    int32_t oc, int32_t oc1, int8_t *out) {
    const int32_t in_c = p->in_c, out_c = p->out_c, step = p->stride_w * in_c;
    const int8_t *x = in + oy * p->stride_h * p->in_w * in_c;
    int8_t *y = out + oy * p->out_w * out_c;
    int32_t ox;
    for (ox = 0; ox + 1 < p->out_w; ox += 2, x += 2 * step, y += 2 * out_c) {
        const conv_fast_acc acc = conv_fast_pw_dot(x, x + step, w0, w1, in_c);
        y[oc] = conv_fast_requant(p, ch0, acc.a0);
        y[oc1] = conv_fast_requant(p, ch1, acc.a1);
        y[out_c + oc] = conv_fast_requant(p, ch0, acc.b0);
        y[out_c + oc1] = conv_fast_requant(p, ch1, acc.b1);
    }
}

/* Two pixels of a pointwise layer, every output channel: inputs xa, xb, outputs ya, yb
 * (folded: the folded-bias table, or NULL to compute it). */
static void conv_fast_pointwise_pair(const tc_conv2d_params *p, const int8_t *xa,
                                     const int8_t *xb, const int8_t *w, const int32_t *folded,
                                     const int32_t *bias, const int32_t *mult,
                                     const int32_t *shift, int8_t *ya, int8_t *yb) {
    const int32_t in_c = p->in_c;
    int32_t oc;
    for (oc = 0; oc < p->out_c; oc += 2) {
        const int32_t oc1 = TC_MIN(oc + 1, p->out_c - 1);
        const int8_t *w0 = w + oc * in_c, *w1 = w + oc1 * in_c;
        const conv_fast_channel ch0 = conv_fast_channel_of(
            folded != NULL ? folded[oc] : conv_fast_folded_bias(p, w0, in_c, bias, oc), mult,
            shift, oc);
        const conv_fast_channel ch1 = conv_fast_channel_of(
            folded != NULL ? folded[oc1] : conv_fast_folded_bias(p, w1, in_c, bias, oc1), mult,
            shift, oc1);
        const conv_fast_acc acc = conv_fast_pw_dot(xa, xb, w0, w1, in_c);
        ya[oc] = conv_fast_requant(p, &ch0, acc.a0);
        ya[oc1] = conv_fast_requant(p, &ch1, acc.a1);
        yb[oc] = conv_fast_requant(p, &ch0, acc.b0);
        yb[oc1] = conv_fast_requant(p, &ch1, acc.b1);
    }
}

/* acc[j] += the products of n values of xa (one pixel) with n of w[j], j < 4. */
static void conv_fast_dot_1x4(const int8_t *xa, const int8_t *const w[4], int32_t n,
                              int32_t acc[4]) {
    const int8_t *w0 = w[0], *w1 = w[1], *w2 = w[2], *w3 = w[3];
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    for (; n > 0; --n) {
        const int32_t x = *xa++;
        a0 += x * *w0++; a1 += x * *w1++; a2 += x * *w2++; a3 += x * *w3++;
    }
    acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
}

/* The last pixel of a row of odd width (window at y0, x0), four output channels at a time: a
 * pixel without a partner would otherwise load each input value for two MACs only. */
static void conv_fast_last_pixel(const tc_conv2d_params *p, const int8_t *in,
                                 const int8_t *zp_row, int32_t y0, int32_t x0, const int8_t *w,
                                 const int32_t *folded, const int32_t *bias,
                                 const int32_t *mult, const int32_t *shift, int8_t *y) {
    const int32_t row_w = p->k_w * p->in_c, w_oc_size = p->k_h * row_w;
    const int whole_rows = p->dil_w == 1 && conv_fast_cols_inside(p, x0);
    int32_t oc, j, ky, kx;
    for (oc = 0; oc < p->out_c; oc += 4) {
        int32_t acc[4] = {0, 0, 0, 0}, ocs[4];
        const int8_t *wj[4];
        for (j = 0; j < 4; ++j) { /* a short last group repeats its last channel */
            ocs[j] = TC_MIN(oc + j, p->out_c - 1);
            wj[j] = w + ocs[j] * w_oc_size;
        }
        for (ky = 0; ky < p->k_h; ++ky) {
            const int32_t iy = y0 + ky * p->dil_h;
            const int8_t *wk[4];
            for (j = 0; j < 4; ++j) wk[j] = wj[j] + ky * row_w;
            if (whole_rows && iy >= 0 && iy < p->in_h) {
                conv_fast_dot_1x4(in + (iy * p->in_w + x0) * p->in_c, wk, row_w, acc);
                continue;
            }
            for (kx = 0; kx < p->k_w; ++kx) {
                conv_fast_dot_1x4(conv_fast_tap(p, in, zp_row, iy, x0 + kx * p->dil_w), wk,
                                  p->in_c, acc);
                for (j = 0; j < 4; ++j) wk[j] += p->in_c;
            }
        }
        for (j = 0; j < 4; ++j) {
            const int32_t c = ocs[j];
            const conv_fast_channel ch = conv_fast_channel_of(
                folded != NULL ? folded[c] : conv_fast_folded_bias(p, wj[j], w_oc_size, bias, c),
                mult, shift, c);
            y[c] = conv_fast_requant(p, &ch, acc[j]);
        }
    }
}

/* Windows of at most this many values (k_h * k_w * in_c) whose layer has a folded-bias table
 * are gathered, two pixels at a time, into stack rows (the in_zp value on padded taps), then
 * multiplied with every channel pair in one inner loop each: small windows (first layers, few
 * input channels) would otherwise spend more on per-tap set-up than on their MACs. */
#define CONV_FAST_GATHER 64

/* The window starting at input row y0, column x0 into dst ([k_h][k_w][in_c]). */
static void conv_fast_gather(const tc_conv2d_params *p, const int8_t *in, int32_t y0,
                             int32_t x0, int8_t *dst) {
    const int32_t in_c = p->in_c;
    int32_t ky, kx, c;
    for (ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = y0 + ky * p->dil_h;
        for (kx = 0; kx < p->k_w; ++kx, dst += in_c) {
            const int32_t ix = x0 + kx * p->dil_w;
            if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) {
                memset(dst, p->in_zp, (size_t)in_c);
                continue;
            }
            {
                const int8_t *src = in + (iy * p->in_w + ix) * in_c;
                for (c = 0; c < in_c; ++c) dst[c] = src[c];
            }
        }
    }
}

/* Output row oy of a layer with small windows (CONV_FAST_GATHER): for each pixel pair, its two
 * windows gathered, then every channel pair over them. */
static void conv_fast_row_gathered(const tc_conv2d_params *p, const int8_t *in, int32_t oy,
                                   const int8_t *w, const int32_t *folded, const int32_t *mult,
                                   const int32_t *shift, int8_t *out) {
    int8_t win_a[CONV_FAST_GATHER], win_b[CONV_FAST_GATHER];
    const int32_t y0 = oy * p->stride_h - p->pad_top;
    const int32_t n = p->k_h * p->k_w * p->in_c, out_c = p->out_c;
    int32_t ox, oc;
    int8_t *y = out + oy * p->out_w * out_c;
    for (ox = 0; ox < p->out_w; ox += 2, y += 2 * out_c) {
        const int32_t x0 = ox * p->stride_w - p->pad_left;
        const int pair = ox + 1 < p->out_w;
        conv_fast_gather(p, in, y0, x0, win_a);
        if (pair) conv_fast_gather(p, in, y0, x0 + p->stride_w, win_b);
        for (oc = 0; oc < out_c; oc += 2) {
            const int32_t oc1 = TC_MIN(oc + 1, out_c - 1);
            const int8_t *w0 = w + oc * n, *w1 = w + oc1 * n;
            const conv_fast_channel ch0 = conv_fast_channel_of(folded[oc], mult, shift, oc);
            const conv_fast_channel ch1 = conv_fast_channel_of(folded[oc1], mult, shift, oc1);
            conv_fast_acc acc = {0, 0, 0, 0};
            if (pair) {
                acc = conv_fast_pw_dot(win_a, win_b, w0, w1, n);
                y[out_c + oc] = conv_fast_requant(p, &ch0, acc.b0);
                y[out_c + oc1] = conv_fast_requant(p, &ch1, acc.b1);
            } else {
                conv_fast_dot_1x2(win_a, w0, w1, n, &acc);
            }
            y[oc] = conv_fast_requant(p, &ch0, acc.a0);
            y[oc1] = conv_fast_requant(p, &ch1, acc.a1);
        }
    }
}

/* Channels whose folded bias is computed once per call (a stack table of 512 bytes); wider
 * layers recompute it for every output row. */
#define CONV_FAST_CHANNELS 128

/* The same for pointwise layers, whose function has no in_zp row (1 KB): their wide layers
 * (128 -> 256 channels on 3x3 planes) would otherwise spend a third of their time on it. */
#define CONV_FAST_PW_CHANNELS 256

/* Rows of odd width pair their last pixels two rows at a time, the upper one's input kept in a
 * stack copy of this many bytes (deeper inputs take conv_fast_last_pixel). */
#define CONV_FAST_PW_HELD 128

/* Kept out of line, so that its table and tc_conv2d_s8_fast's are never on the stack together. */
#if defined(__GNUC__)
#define CONV_FAST_NOINLINE __attribute__((noinline))
#else
#define CONV_FAST_NOINLINE
#endif

/*
 * A 1x1 convolution without padding (every window inside the image, one run of in_c values):
 * rows of pixel pairs times channel pairs (conv_fast_pointwise_row). A row of odd width leaves
 * its last pixel: with in_c <= CONV_FAST_PW_HELD, the last pixels of rows 2k and 2k + 1 make a
 * pair (conv_fast_pointwise_pair), computed after row 2k + 1's other pixels from a stack copy of
 * row 2k's input pixel, taken before row 2k + 1's outputs are written: the overlap licence lets
 * output row r + 1 overwrite input row r, but not input row r + 1, and output row r's last pixel
 * may overwrite anything below input row r. Otherwise (and for a last odd row) four channels at
 * a time (conv_fast_last_pixel, which reads no padded tap here: no in_zp row).
 */
static CONV_FAST_NOINLINE void conv_fast_pointwise(const tc_conv2d_params *p, const int8_t *in,
                                                   const int8_t *w, const int32_t *bias,
                                                   const int32_t *mult, const int32_t *shift,
                                                   int8_t *out) {
    int32_t folded[CONV_FAST_PW_CHANNELS];
    int8_t held[CONV_FAST_PW_HELD];
    const int32_t in_c = p->in_c, out_c = p->out_c, last = p->out_w - 1;
    const int tabled = out_c <= CONV_FAST_PW_CHANNELS;
    const int pair_rows = (p->out_w & 1) && in_c <= CONV_FAST_PW_HELD;
    int32_t oc, oy, c;
    for (oc = 0; tabled && oc < out_c; ++oc) {
        folded[oc] = conv_fast_folded_bias(p, w + oc * in_c, in_c, bias, oc);
    }
    for (oy = 0; oy < p->out_h; ++oy) {
        const int8_t *x_last = in + (oy * p->stride_h * p->in_w + last * p->stride_w) * in_c;
        int8_t *y_last = out + (oy * p->out_w + last) * out_c;
        const int upper = pair_rows && !(oy & 1) && oy + 1 < p->out_h;
        if (upper) { /* before any output of this row: it may overlap the row above's input */
            for (c = 0; c < in_c; ++c) held[c] = x_last[c];
        }
        for (oc = 0; oc < out_c; oc += 2) {
            /* An odd last channel pairs with itself (both halves write the same value). */
            const int32_t oc1 = TC_MIN(oc + 1, out_c - 1);
            const int8_t *w0 = w + oc * in_c, *w1 = w + oc1 * in_c;
            const conv_fast_channel ch0 = conv_fast_channel_of(
                tabled ? folded[oc] : conv_fast_folded_bias(p, w0, in_c, bias, oc), mult, shift,
                oc);
            const conv_fast_channel ch1 = conv_fast_channel_of(
                tabled ? folded[oc1] : conv_fast_folded_bias(p, w1, in_c, bias, oc1), mult,
                shift, oc1);
            conv_fast_pointwise_row(p, in, oy, w0, w1, &ch0, &ch1, oc, oc1, out);
        }
        if (upper || !(p->out_w & 1)) continue; /* its last pixel goes with the next row's */
        if (pair_rows && (oy & 1)) {
            conv_fast_pointwise_pair(p, held, x_last, w, tabled ? folded : NULL, bias, mult,
                                     shift, y_last - p->out_w * out_c, y_last);
        } else {
            conv_fast_last_pixel(p, in, NULL, oy * p->stride_h, last * p->stride_w, w,
                                 tabled ? folded : NULL, bias, mult, shift, y_last);
        }
    }
}

static CONV_FAST_NOINLINE void conv_fast_general(const tc_conv2d_params *p, const int8_t *in,
                                                 const int8_t *w, const int32_t *bias,
                                                 const int32_t *mult, const int32_t *shift,
                                                 int8_t *out) {
    int8_t zp_row[CONV_FAST_ZP_ROW];
    int32_t folded[CONV_FAST_CHANNELS];
    const int32_t w_oc_size = p->k_h * p->k_w * p->in_c;
    const int tabled = p->out_c <= CONV_FAST_CHANNELS;
    int32_t oc, oy;
    /* Only read for padded taps, which tc_conv2d_s8_fast_applicable allows when in_c fits. */
    memset(zp_row, p->in_zp, sizeof zp_row);
    for (oc = 0; tabled && oc < p->out_c; ++oc) {
        folded[oc] = conv_fast_folded_bias(p, w + oc * w_oc_size, w_oc_size, bias, oc);
    }
    for (oy = 0; oy < p->out_h; ++oy) {
        if (tabled && p->k_h * p->k_w > 1 && w_oc_size <= CONV_FAST_GATHER) {
            conv_fast_row_gathered(p, in, oy, w, folded, mult, shift, out);
            continue;
        }
        for (oc = 0; oc < p->out_c; oc += 2) {
            /* An odd last channel pairs with itself (both halves write the same value). */
            const int32_t oc1 = TC_MIN(oc + 1, p->out_c - 1);
            const int8_t *w0 = w + oc * w_oc_size, *w1 = w + oc1 * w_oc_size;
            const conv_fast_channel ch0 = conv_fast_channel_of(
                tabled ? folded[oc] : conv_fast_folded_bias(p, w0, w_oc_size, bias, oc), mult,
                shift, oc);
            const conv_fast_channel ch1 = conv_fast_channel_of(
                tabled ? folded[oc1] : conv_fast_folded_bias(p, w1, w_oc_size, bias, oc1), mult,
                shift, oc1);
            conv_fast_row(p, in, zp_row, oy, w0, w1, &ch0, &ch1, oc, oc1, out);
        }
        if (p->out_w & 1) {
            const int32_t ox = p->out_w - 1;
            conv_fast_last_pixel(p, in, zp_row, oy * p->stride_h - p->pad_top,
                                 ox * p->stride_w - p->pad_left, w, tabled ? folded : NULL, bias,
                                 mult, shift, out + (oy * p->out_w + ox) * p->out_c);
        }
    }
}

/* Pointwise layers (conv_fast_pointwise) or any other (conv_fast_general): two functions, whose
 * stack tables are never live together. */
void tc_conv2d_s8_fast(const tc_conv2d_params *p, const int8_t *in, const int8_t *w,
                       const int32_t *bias, const int32_t *mult, const int32_t *shift,
                       int8_t *out) {
    if (p->k_h == 1 && p->k_w == 1 && p->pad_top == 0 && p->pad_left == 0) {
        conv_fast_pointwise(p, in, w, bias, mult, shift, out);
    } else {
        conv_fast_general(p, in, w, bias, mult, shift, out);
    }
}

#endif /* TC_FAST_PORTABLE */
