/*
 * tinycc runtime: the 4-channel 3x3 depthwise helpers shared by the int8 kernel
 * (tc_dwconv2d_s8_quad, tc_dwconv2d_s8_dsp.c) and the codebook one (tc_dwconv2d_cb_s8_quad,
 * tc_dwconv2d_cb_s8_dsp.c), internal, not public API. Both hold a ring of input rows a word
 * (4 channels of a pixel) per pixel, TC_DWCONV2D_QUAD_PIXELS words per row, and run the same
 * group of 4 channels over it; only where the weights come from differs (the int8 tensor,
 * [tap][out_c], or a group's taps decoded from the codebook, [channel][tap]), so the group is
 * made from a pointer and two strides.
 *
 * A tap is one word read, two SXTB16 and four SMLABB/SMLATT against the group's weights widened
 * once (lanes: channels (0, 2) and (1, 3)); the zero point's share is in the bias (bias_x), so
 * the taps take x itself and the sums wrap like the registers (the final ones fit). Where every
 * channel of the group suits tc_dsp_rq2 (fast), the weights and bias_x are doubled, so the sums
 * are 2 * acc and an output is SMMLAR, SUB, ASR and SSAT (tc_dsp_rq2); otherwise the group keeps
 * them as they are and requantizes the general way. On GNU Thumb-2
 * builds (TC_DSP_ASM) the rows go by pixel pairs in tc_dwconv2d_s8_asm.c, which reads the
 * group's first fields at fixed offsets (checked below) and the ring rows 200 bytes apart.
 */
#ifndef TC_DWCONV2D_QUAD_DSP_H
#define TC_DWCONV2D_QUAD_DSP_H

#include "tc_conv.h"
#include "tc_dot_s8_dsp.h"

#include <stddef.h>

/* In place (out == in), a 3x3 ring path (rows of k_h-row windows, dilation 1, gathered when
 * the first window that needs them comes up) is safe when, before output row oy is written,
 * each input row first gathered for it is still intact: it starts at or after pixel
 * oy * out_w (a row overwrites the pixels before (oy + 1) * out_w). Every build. */
static inline int tc_dw_ring_inplace_order_ok(int32_t in_h, int32_t in_w, int32_t out_h,
                                              int32_t out_w, int32_t stride_h, int32_t pad_top,
                                              int32_t k_h) {
    int32_t oy, next_row = 0; /* rows below next_row were gathered for earlier output rows */
    for (oy = 0; oy < out_h; ++oy) {
        const int32_t iy0 = oy * stride_h - pad_top;
        const int32_t first_new = TC_MAX(TC_MAX(iy0, next_row), 0);
        if (first_new <= iy0 + k_h - 1 && first_new < in_h && oy * out_w > first_new * in_w) {
            return 0;
        }
        next_row = TC_MAX(next_row, iy0 + k_h);
    }
    return 1;
}

#if TC_HAVE_DSP

#define TC_DWQ_PIXELS TC_DWCONV2D_QUAD_PIXELS

/* A group of 4 channels, worked out once per group. The first fields are the assembly's job. */
typedef struct {
    const uint32_t *x;      /*  0: ring row 0 (rows TC_DWQ_PIXELS words apart) at pixel A's window */
    int8_t *y;              /*  4: pixel A's output, channel c */
    int32_t pairs;          /*  8: pixel pairs left (A, A + 1) */
    int32_t y_step;         /* 12: bytes between output pixels (out_c) */
    int32_t bias_x[4];      /* 16: bias - in_zp * sum(w), wrapping: the taps then take x itself
                             *     (doubled when fast) */
    int32_t rq[4][3];       /* 32: per channel: mult, k, e of tc_dsp_rq2 (when fast) */
    uint32_t w[18];         /* 80: tap k: w[2k] = (ch 0, ch 2), w[2k + 1] = (ch 1, ch 3)
                             *     (doubled when fast) */
    /* For the 4-pixel assembly, one lane pair (channels 0 and 2, then 1 and 3) at a time: */
    int32_t bias_lanes[2][8]; /* 152: (bias_x[l], bias_x[l + 2]) for 4 pixels, l = 0, 1 */
    uint32_t w_lanes[2][9];   /* 216: tap k: w[2k + l] */
    int32_t shift[4];
    int32_t out_zp, act_min, act_max;
    int fast;               /* all four channels suit tc_dsp_rq2: sums doubled */
} tc_dwq_group;

/* tc_dsp_rq2 needs |acc| < 2^30 and a right shift of 1 to TC_DSP_RQ_MAX_E: the sums of a
 * channel are bias + sum of 9 w * (x - in_zp), |w| <= 128, |x - in_zp| <= 255, so a bias below
 * 2^30 - 9 * 128 * 255 in magnitude bounds them (any bias but those near 2^30). */
static inline int tc_dwq_rq2_applies(int32_t bias, int32_t shift) {
    const int32_t bias_max = (INT32_C(1) << 30) - 9 * 128 * 255;
    return shift <= -1 && shift >= -TC_DSP_RQ_MAX_E && bias < bias_max && bias > -bias_max;
}

/* tc_dsp_rq2 for the shifts of a fast group (e >= 1: no test of e per output). */
static inline int32_t tc_dwq_rq2(int32_t acc2, const int32_t *rq) {
    return tc_ssat8((tc_smmlar(acc2, rq[0], rq[1]) - (int32_t)((uint32_t)acc2 >> 31)) >> rq[2]);
}

/* The low halfword of v as a signed value. */
static inline int32_t tc_dwq_s16_lane(uint32_t v) {
    return (int32_t)((v & 0xFFFFu) ^ 0x8000u) - 0x8000;
}

/*
 * The group of channels c..c + 3: w points at channel c's tap 0, tap k of channel c + j at
 * w[k * tap_step + j * channel_step] (the int8 tensor: out_c and 1; decoded codebook taps: 1
 * and 9); bias (may be NULL), mult and shift are the layer's, indexed by channel.
 */
static TC_ALWAYS_INLINE inline void tc_dwq_make_group(const int8_t *w, int32_t tap_step,
                                                      int32_t channel_step, const int32_t *bias,
                                                      const int32_t *mult, const int32_t *shift,
                                                      int32_t c, int32_t in_zp, int32_t out_zp,
                                                      int32_t act_min, int32_t act_max,
                                                      tc_dwq_group *g) {
    uint32_t sum_e = 0, sum_o = 0; /* the weights' sums, channels (0, 2) and (1, 3) in halfwords */
    int32_t k, j, w_sum[4];
    int fast = 1;
    for (j = 0; j < 4; ++j) fast &= tc_dwq_rq2_applies(bias != NULL ? bias[c + j] : 0, shift[c + j]);
    for (k = 0; k < 9; ++k, w += tap_step) { /* the tap's 4 weights widened in pairs, summed */
        const uint32_t word =
            channel_step == 1
                ? tc_read_s8x4(w)
                : (uint32_t)(uint8_t)w[0] | (uint32_t)(uint8_t)w[channel_step] << 8 |
                      (uint32_t)(uint8_t)w[2 * channel_step] << 16 |
                      (uint32_t)(uint8_t)w[3 * channel_step] << 24;
        const uint32_t we = tc_sxtb16(word), wo = tc_sxtb16_ror8(word);
        /* doubled (one SXTAB16 adds the lanes once more): the sums are then 2 * acc */
        g->w[2 * k] = tc_sxtab16(we, word);
        g->w[2 * k + 1] = tc_sxtab16_ror8(wo, word);
        /* 9 weights sum to within +-1152: a halfword lane holds it exactly */
        sum_e = tc_sxtab16(sum_e, word);
        sum_o = tc_sxtab16_ror8(sum_o, word);
    }
    w_sum[0] = tc_dwq_s16_lane(sum_e);
    w_sum[2] = tc_dwq_s16_lane(sum_e >> 16);
    w_sum[1] = tc_dwq_s16_lane(sum_o);
    w_sum[3] = tc_dwq_s16_lane(sum_o >> 16);
    g->out_zp = out_zp;
    g->act_min = act_min;
    g->act_max = act_max;
    g->fast = fast;
    if (!fast) { /* rare (biases near 2^30, left or extreme shifts): the weights halved back */
        for (k = 0; k < 18; ++k) {
            g->w[k] = tc_pack_s16x2(tc_wrap_i32(g->w[k] << 16) >> 17, tc_wrap_i32(g->w[k]) >> 17);
        }
    }
    for (j = 0; j < 4; ++j) {
        const uint32_t bias_x = (uint32_t)(bias != NULL ? bias[c + j] : 0) -
                                (uint32_t)w_sum[j] * (uint32_t)in_zp;
        g->bias_x[j] = tc_wrap_i32(fast ? 2 * bias_x : bias_x); /* wraps as the sums do */
        g->shift[j] = shift[c + j];
        g->rq[j][0] = mult[c + j];
        g->rq[j][1] = tc_dsp_rq2_k(shift[c + j], out_zp);
        g->rq[j][2] = -shift[c + j];
    }
}

/* The lane tables of tc_dwq_quads_asm (only it reads them: made where it runs). */
static inline void tc_dwq_make_lanes(tc_dwq_group *g) {
    int32_t j, k;
    for (k = 0; k < 9; ++k) {
        g->w_lanes[0][k] = g->w[2 * k];
        g->w_lanes[1][k] = g->w[2 * k + 1];
    }
    for (j = 0; j < 8; j += 2) { /* lanes: (channel 0, channel 2), then (1, 3), per pixel */
        g->bias_lanes[0][j] = g->bias_x[0];
        g->bias_lanes[0][j + 1] = g->bias_x[2];
        g->bias_lanes[1][j] = g->bias_x[1];
        g->bias_lanes[1][j + 1] = g->bias_x[3];
    }
}

/* n words, one a pixel, `step` bytes apart from src, into dst and into copy if not NULL (one
 * store a word without a copy: the compiler cannot tell that a copy pointer equals dst). */
static TC_ALWAYS_INLINE inline void tc_dwq_gather_words(const int8_t *src, int32_t step, int32_t n,
                                                        uint32_t *dst, uint32_t *copy) {
    int32_t i;
    if (copy == NULL) {
        for (i = 0; i < n; ++i, src += step) dst[i] = tc_read_s8x4(src);
    } else {
        for (i = 0; i < n; ++i, src += step) dst[i] = copy[i] = tc_read_s8x4(src);
    }
}

/* Channels c..c + 3 of input row iy (or in_zp words outside the image) into a ring row from
 * its column pad_left on (its other columns hold in_zp words from the start), and into `copy`
 * if not NULL. */
static inline void tc_dwq_gather_image_row(const int8_t *in, int32_t in_h, int32_t in_w,
                                           int32_t in_c, int32_t pad_left, int32_t c, int32_t iy,
                                           uint32_t zp4, uint32_t *row, uint32_t *copy) {
    uint32_t *dst = row + pad_left, *dst2 = copy != NULL ? copy + pad_left : dst;
    int32_t i;
    if (iy < 0 || iy >= in_h) {
        for (i = 0; i < in_w; ++i) dst[i] = dst2[i] = zp4;
        return;
    }
    tc_dwq_gather_words(in + iy * in_w * in_c + c, in_c, in_w, dst,
                        copy != NULL ? dst2 : NULL);
}

/* One window tap: 4 channels' values against the group's weights for tap k. */
#define TC_DWQ_TAP(x_word, k)                                               \
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
static TC_DSP_NOINLINE int8_t tc_dwq_requant(int32_t acc, const tc_dwq_group *g, int32_t j) {
    return tc_requant_s8_nonneg(acc, g->rq[j][0], g->shift[j], g->out_zp, g->act_min,
                                g->act_max);
}

/* n_out output pixels of a group from ring rows r0, r1, r2 (windows `stride` words apart) into
 * y (4 bytes per pixel, y_step apart): tc_dsp_rq2 on the doubled sums and the activation clamp
 * when the group is fast, else tc_requant_s8_nonneg. The C form of the assembly, for every
 * case. */
static TC_DSP_NOINLINE void tc_dwq_row(const tc_dwq_group *g, const uint32_t *r0,
                                       const uint32_t *r1, const uint32_t *r2, int32_t n_out,
                                       int32_t stride, int8_t *y, int32_t y_step) {
    const uint32_t *wt = g->w;
    const int32_t act_min = g->act_min, act_max = g->act_max;
    const int clamp = act_min != -128 || act_max != 127;
    int32_t ox;
    for (ox = 0; ox < n_out; ++ox, r0 += stride, r1 += stride, r2 += stride, y += y_step) {
        int32_t a0 = g->bias_x[0], a1 = g->bias_x[1], a2 = g->bias_x[2], a3 = g->bias_x[3];
        TC_DWQ_TAP(r0[0], 0);
        TC_DWQ_TAP(r0[1], 1);
        TC_DWQ_TAP(r0[2], 2);
        TC_DWQ_TAP(r1[0], 3);
        TC_DWQ_TAP(r1[1], 4);
        TC_DWQ_TAP(r1[2], 5);
        TC_DWQ_TAP(r2[0], 6);
        TC_DWQ_TAP(r2[1], 7);
        TC_DWQ_TAP(r2[2], 8);
        if (!g->fast) {
            y[0] = tc_dwq_requant(a0, g, 0);
            y[1] = tc_dwq_requant(a1, g, 1);
            y[2] = tc_dwq_requant(a2, g, 2);
            y[3] = tc_dwq_requant(a3, g, 3);
            continue;
        }
        a0 = tc_dwq_rq2(a0, g->rq[0]);
        a1 = tc_dwq_rq2(a1, g->rq[1]);
        a2 = tc_dwq_rq2(a2, g->rq[2]);
        a3 = tc_dwq_rq2(a3, g->rq[3]);
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

#if TC_DSP_ASM
/* The assembly's offsets (32-bit pointers). */
typedef char tc_dwq_group_layout[(offsetof(tc_dwq_group, bias_x) == 16 &&
                                  offsetof(tc_dwq_group, rq) == 32 &&
                                  offsetof(tc_dwq_group, w) == 80 &&
                                  offsetof(tc_dwq_group, bias_lanes) == 152 &&
                                  offsetof(tc_dwq_group, w_lanes) == 216 &&
                                  TC_DWQ_PIXELS * 4 == 200)
                                     ? 1
                                     : -1];

/* tc_dwconv2d_s8_asm.c: pixel pairs (A, A + 1) of a group, from g->x into g->y, g->pairs of
 * them, at stride 1 and 2. */
void tc_dwq_pairs_asm(tc_dwq_group *g);
void tc_dwq_pairs_s2_asm(tc_dwq_group *g);

/* Whether a group's rows can run in the assembly: stride 1 or 2, rows of 2 pixels or more,
 * the group is fast (tc_dsp_rq2), no fused clamp (then, for rows of 4 pixels or more at stride 1,
 * the group's lane tables are made). Its ring rows need the copies of slots 0 and 1 three slots
 * on (a window's rows are then contiguous). */
static inline int tc_dwq_asm_group(tc_dwq_group *g, int32_t stride_w, int32_t out_w) {
    const int asm_rows =
        stride_w <= 2 && out_w >= 2 && g->fast && g->act_min == -128 && g->act_max == 127;
    if (asm_rows && stride_w == 1 && out_w >= 4) tc_dwq_make_lanes(g); /* for the quads */
    return asm_rows;
}

/* Pixel pairs (A, A + 1) from ring rows r0 (rows TC_DWQ_PIXELS words apart) into y. */
static inline void tc_dwq_pairs(tc_dwq_group *g, const uint32_t *r0, int8_t *y, int32_t pairs,
                                int32_t y_step, int32_t stride_w) {
    g->x = r0;
    g->y = y;
    g->pairs = pairs;
    g->y_step = y_step;
    if (stride_w == 1) {
        tc_dwq_pairs_asm(g);
    } else {
        tc_dwq_pairs_s2_asm(g);
    }
}

void tc_dwq_quads_asm(tc_dwq_group *g);

/* n_out >= 2 pixels of a row from ring rows r0 (rows TC_DWQ_PIXELS words apart, with the
 * copies of tc_dwq_asm_group) into y: at stride 1, 4 pixels at a time (tc_dwq_quads_asm), then
 * a pair, and an odd last pixel in C (tc_dwq_row: cheaper than a pair for one pixel). */
static inline void tc_dwq_row_asm(tc_dwq_group *g, const uint32_t *r0, int8_t *y, int32_t n_out,
                                  int32_t y_step, int32_t stride_w) {
    int32_t done = 0;
    if (stride_w == 1 && n_out >= 4) {
        g->x = r0;
        g->y = y;
        g->pairs = n_out >> 2;
        g->y_step = y_step;
        tc_dwq_quads_asm(g);
        done = n_out & ~3;
    }
    if (n_out - done >= 2) {
        tc_dwq_pairs(g, r0 + done * stride_w, y + done * y_step, (n_out - done) >> 1, y_step,
                     stride_w);
        done += (n_out - done) & ~1;
    }
    if (done < n_out) {
        const uint32_t *r = r0 + done * stride_w;
        tc_dwq_row(g, r, r + TC_DWQ_PIXELS, r + 2 * TC_DWQ_PIXELS, 1, stride_w, y + done * y_step,
                   y_step);
    }
}
#endif /* TC_DSP_ASM */

#endif /* TC_HAVE_DSP */

#endif /* TC_DWCONV2D_QUAD_DSP_H */
