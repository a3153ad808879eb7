/*
 * tinycc runtime: the SIMD variant of tc_dwconv2d_cb_s8 and tc_dwconv2d_cb_s8_inplace
 * (ARMv7E-M DSP extension, or its host emulation), bit-exact with the portable reference in
 * tc_dwconv2d_cb_s8.c, whose entry points call it for 3x3 layers of 4-channel groups.
 *
 * The arithmetic and the schedule are those of the int8 kernel's 4-channel 3x3 path
 * (tc_dwconv2d_s8_quad in tc_dwconv2d_s8_dsp.c, in its C form): the NHWC layout keeps 4
 * channels of a pixel in one word, so input rows are gathered a word per pixel into a ring of 3
 * rows on the stack (zero-point words in the padding), each window tap is one word read, two
 * SXTB16 and four SMLABB/SMLATT. Only the weights differ: a group's 4 x 9 taps are decoded from
 * the codebook once per group (36 bytes on the stack) and widened into int16 pairs, so the
 * codebook costs nothing per pixel. The int8 code's C functions are static there and index the
 * weights by out_c, so they cannot take a decoded group: this file keeps its own copy. Its
 * assembly (tc_dwconv2d_s8_asm.c, TC_DSP_ASM) takes a group's job struct, so it is shared.
 */
#include "tc_codebook.h"
#include "tc_dot_s8_dsp.h"

#include <stddef.h>

#if TC_HAVE_DSP

#define CBQ_PIXELS 50 /* ring row length in pixels (as TC_DWCONV2D_QUAD_PIXELS) */

/* Pixels of a ring row the windows read (pad_left columns, the image, the last window's 3
 * columns), 0 when they do not fit CBQ_PIXELS. */
static int32_t cbq_row_pixels(const tc_dwconv2d_cb_params *p) {
    const int32_t n = TC_MAX(p->pad_left + p->in_w, (p->out_w - 1) * p->stride_w + 3);
    return n <= CBQ_PIXELS ? n : 0;
}

/* In place (out == in): before output row oy is written, each input row first gathered for it
 * must still be intact, i.e. start at or after pixel oy * out_w (as the int8 kernel's
 * dw3_inplace_order_ok). */
static int cbq_inplace_order_ok(const tc_dwconv2d_cb_params *p) {
    int32_t oy, next_row = 0; /* rows below next_row were gathered for earlier output rows */
    for (oy = 0; oy < p->out_h; ++oy) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        const int32_t first_new = TC_MAX(TC_MAX(iy0, next_row), 0);
        if (first_new <= iy0 + 2 && first_new < p->in_h && oy * p->out_w > first_new * p->in_w) {
            return 0;
        }
        next_row = TC_MAX(next_row, iy0 + 3);
    }
    return 1;
}

int tc_dwconv2d_cb_s8_quad_applicable(const tc_dwconv2d_cb_params *p, int same_buffer) {
    return p->k_h == 3 && p->k_w == 3 && p->dil_h == 1 && p->dil_w == 1 && p->depth_mult == 1 &&
           (p->in_c & 3) == 0 && p->pad_left < CBQ_PIXELS && cbq_row_pixels(p) > 0 &&
           (!same_buffer || cbq_inplace_order_ok(p));
}

/* A group of 4 channels: the widened taps and requantization constants, worked out once. The
 * same members as the int8 kernel's dwq_group (so the same type, C99 6.2.7): the first ones
 * are the job of its assembly (tc_dwconv2d_s8_asm.c), which this file calls on GNU Thumb-2
 * builds. */
typedef struct {
    const uint32_t *x;      /*  0: ring row 0 (rows CBQ_PIXELS words apart) at pixel A's window */
    int8_t *y;              /*  4: pixel A's output, channel c */
    int32_t pairs;          /*  8: pixel pairs left (A, A + 1) */
    int32_t y_step;         /* 12: bytes between output pixels (out_c) */
    int32_t bias_x[4];      /* 16: bias - in_zp * sum(w), wrapping: the taps then take x itself */
    int32_t rq[4][3];       /* 32: per channel: mult, khi, e1 of tc_dsp_rq */
    uint32_t w[18];         /* 80: tap k: w[2k] = (ch 0, ch 2), w[2k + 1] = (ch 1, ch 3) */
    int32_t shift[4];
    int fast;               /* all four shifts suit tc_dsp_rq */
} cbq_group;

/* Channels c..c + 3: their rows decoded from the codebook, then widened and summed. */
static void cbq_make_group(const tc_dwconv2d_cb_params *p, const uint8_t *idx,
                           const int8_t *palette, const int32_t *bias, const int32_t *mult,
                           const int32_t *shift, int32_t c, cbq_group *g) {
    int8_t taps[4 * 9]; /* [channel][ky * 3 + kx] */
    int32_t k, j;
    tc_cb_decode_rows(idx, palette, p->bits, 9, p->palette_oc, c, 4, taps);
    for (k = 0; k < 9; ++k) {
        g->w[2 * k] = tc_pack_s16x2(taps[k], taps[18 + k]);
        g->w[2 * k + 1] = tc_pack_s16x2(taps[9 + k], taps[27 + k]);
    }
    g->fast = 1;
    for (j = 0; j < 4; ++j) {
        uint32_t w_sum = 0;
        for (k = 0; k < 9; ++k) w_sum += (uint32_t)(int32_t)taps[9 * j + k];
        g->bias_x[j] = tc_wrap_i32((uint32_t)(bias != NULL ? bias[c + j] : 0) -
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

/* Channels c..c + 3 of input row iy (or in_zp words outside the image) into a ring row, after
 * its pad_left columns (which, like the columns after the image, hold in_zp words). */
static void cbq_gather_row(const tc_dwconv2d_cb_params *p, const int8_t *in, int32_t c,
                           int32_t iy, uint32_t zp4, uint32_t *row) {
    uint32_t *dst = row + p->pad_left;
    int32_t i;
    if (iy < 0 || iy >= p->in_h) {
        for (i = 0; i < p->in_w; ++i) dst[i] = zp4;
        return;
    }
    in += iy * p->in_w * p->in_c + c;
    for (i = 0; i < p->in_w; ++i, in += p->in_c) dst[i] = tc_read_s8x4(in);
}

/* One window tap: 4 channels' values (x itself: the zero point's share is in bias_x) against
 * the group's weights for the tap. The sums wrap like the registers; the final ones fit. */
#define CBQ_TAP(x_word, k)                                                  \
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
static TC_DSP_NOINLINE int8_t cbq_requant(int32_t acc, const cbq_group *g, int32_t j,
                                          const tc_dwconv2d_cb_params *p) {
    return tc_requant_s8_nonneg(acc, g->rq[j][0], g->shift[j], p->out_zp, p->act_min,
                                p->act_max);
}

/* Output row of a group: out_w pixels from ring rows r0, r1, r2 into y (4 bytes per pixel,
 * y_step apart). */
static TC_DSP_NOINLINE void cbq_row(const cbq_group *g, const uint32_t *r0, const uint32_t *r1,
                                    const uint32_t *r2, const tc_dwconv2d_cb_params *p,
                                    int8_t *y) {
    const uint32_t *wt = g->w;
    const int32_t act_min = p->act_min, act_max = p->act_max;
    const int32_t stride = p->stride_w, y_step = p->out_c;
    const int clamp = act_min != -128 || act_max != 127;
    int32_t ox;
    for (ox = 0; ox < p->out_w; ++ox, r0 += stride, r1 += stride, r2 += stride, y += y_step) {
        int32_t a0 = g->bias_x[0], a1 = g->bias_x[1], a2 = g->bias_x[2], a3 = g->bias_x[3];
        CBQ_TAP(r0[0], 0);
        CBQ_TAP(r0[1], 1);
        CBQ_TAP(r0[2], 2);
        CBQ_TAP(r1[0], 3);
        CBQ_TAP(r1[1], 4);
        CBQ_TAP(r1[2], 5);
        CBQ_TAP(r2[0], 6);
        CBQ_TAP(r2[1], 7);
        CBQ_TAP(r2[2], 8);
        if (!g->fast) {
            y[0] = cbq_requant(a0, g, 0, p);
            y[1] = cbq_requant(a1, g, 1, p);
            y[2] = cbq_requant(a2, g, 2, p);
            y[3] = cbq_requant(a3, g, 3, p);
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

#if TC_DSP_ASM
typedef char cbq_job_layout[(offsetof(cbq_group, bias_x) == 16 && offsetof(cbq_group, rq) == 32 &&
                             offsetof(cbq_group, w) == 80 && CBQ_PIXELS * 4 == 200) ? 1 : -1];

/* tc_dwconv2d_s8_asm.c: output pixel pairs (A, A + 1) of a group from its ring rows. */
void tc_dwq_pairs_asm(cbq_group *g);
void tc_dwq_pairs_s2_asm(cbq_group *g);

/* Whether the group's rows can run in the assembly (the int8 kernel's dwq_asm_group). */
static int cbq_asm_group(const tc_dwconv2d_cb_params *p, const cbq_group *g) {
    return p->stride_w <= 2 && p->out_w >= 2 && g->fast && p->act_min == -128 &&
           p->act_max == 127;
}

/* Pixel pairs (A, A + 1) from ring rows r0 (rows CBQ_PIXELS words apart) into y. */
static void cbq_pairs_asm(const tc_dwconv2d_cb_params *p, cbq_group *g, const uint32_t *r0,
                          int8_t *y, int32_t pairs) {
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
#endif /* TC_DSP_ASM */

void tc_dwconv2d_cb_s8_quad(const tc_dwconv2d_cb_params *p, const int8_t *in,
                            const uint8_t *idx, const int8_t *palette, const int32_t *bias,
                            const int32_t *mult, const int32_t *shift, int8_t *out) {
    uint32_t ring[5 * CBQ_PIXELS]; /* 3 rows, and copies of rows 0 and 1 for the assembly */
    cbq_group g;
    const int32_t y_row = p->out_w * p->out_c;
    const uint32_t zp4 = (uint32_t)(uint8_t)p->in_zp * UINT32_C(0x01010101);
    int32_t c, oy, iy, i;
    for (i = 0; i < 5 * CBQ_PIXELS; ++i) ring[i] = zp4; /* the padding columns stay so */
    for (c = 0; c < p->in_c; c += 4) {
        int32_t next_row = -p->pad_top; /* the first input row not yet gathered */
        int asm_rows = 0;
        cbq_make_group(p, idx, palette, bias, mult, shift, c, &g);
#if TC_DSP_ASM
        asm_rows = cbq_asm_group(p, &g);
#endif
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            const uint32_t *r0 = ring + ((iy0 + p->pad_top) % 3) * CBQ_PIXELS;
            int8_t *y = out + oy * y_row + c;
            for (iy = TC_MAX(iy0, next_row); iy < iy0 + 3; ++iy) {
                /* for the assembly, slots 0 and 1 have copies 3 slots on: a window's rows
                 * are then contiguous */
                const int32_t slot = (iy + p->pad_top) % 3;
                cbq_gather_row(p, in, c, iy, zp4, ring + slot * CBQ_PIXELS);
                if (asm_rows && slot < 2) {
                    for (i = 0; i < CBQ_PIXELS; ++i) {
                        ring[(slot + 3) * CBQ_PIXELS + i] = ring[slot * CBQ_PIXELS + i];
                    }
                }
            }
            next_row = TC_MAX(next_row, iy0 + 3);
#if TC_DSP_ASM
            if (asm_rows) { /* pixel pairs; an odd last pixel pairs with the one before it */
                cbq_pairs_asm(p, &g, r0, y, p->out_w >> 1);
                if (p->out_w & 1) {
                    cbq_pairs_asm(p, &g, r0 + (p->out_w - 2) * p->stride_w,
                                  y + (p->out_w - 2) * p->out_c, 1);
                }
                continue;
            }
#endif
            cbq_row(&g, r0,
                    ring + ((iy0 + 1 + p->pad_top) % 3) * CBQ_PIXELS,
                    ring + ((iy0 + 2 + p->pad_top) % 3) * CBQ_PIXELS, p, y);
        }
    }
}

#else
typedef int tc_dwconv2d_cb_s8_dsp_empty; /* ISO C: a translation unit is not empty */
#endif /* TC_HAVE_DSP */
