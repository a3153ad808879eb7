/*
 * tinycc runtime: first-layer convolutions (at most 4 input channels, a real window) on the
 * SIMD path of tc_conv2d_s8, bit-exact with the portable reference in tc_conv2d_s8.c.
 * tc_conv2d_s8_dsp enters it first, for the layers tc_conv2d_s8_first_dsp_applicable accepts
 * (an RGB 3x3 stem, a 10x4 window over one audio feature plane).
 *
 * Why a path of its own: a window of such a layer holds few values (27 for 3x3x3, 40 for 10x4x1)
 * whose count is rarely a multiple of 4, and there are few output channels (8, 16) to share the
 * widening of each window among; the generic gathered path pays its staging and its partial
 * groups for every pixel pair (about 3 instructions per MAC on the VWW stem).
 *
 * Window layout (the "groups", 4 int8 values each): kernel row ky holds L = k_w * in_c contiguous
 * values in the input (NHWC) and in the weights (OHWI). Its first 4 * (L / 4) values are read as
 * whole words straight from the input row; the L % 4 values left at the end of every row are
 * collected, row after row, into the last groups, padded with zero weights. For 3x3x3 that is
 * 3 x 2 words + one group of the three rows' last values: 7 groups, 28 lanes for 27 values.
 *
 * Loop order: a block of output pixels is staged once (each window widened to int16 pairs by
 * SXTB16: (lanes 0, 2), (lanes 1, 3)), then every output channel pair walks the block two pixels
 * at a time: per group two LDRD of pixels, two of weights and eight SMLADs (a 2x2 block). The
 * weights are widened once per call when all channels fit FIRST_W_WORDS, else per channel pair
 * and block. in_zp is folded into the bias (-in_zp * sum(w), exact in int32), so taps outside the
 * image are staged as in_zp and contribute nothing. The accumulator's doubling (quadrupling for
 * shift 1) is folded into the weights and bias, and the requantization is tc_dsp_rq2 (SMMLAR,
 * SUB, ASR, SSAT): exact while |bias - in_zp * sum(w)| < 2^28 (the products add at most
 * 64 * 128 * 128 = 2^20); a channel with a larger folded bias keeps unscaled sums and the
 * portable requantization.
 */
#include "tc_conv.h"
#include "tc_dot_s8_dsp.h"

#include <stddef.h>
#include <string.h>

#if TC_HAVE_DSP

enum {
    FIRST_MAX_C = 4,       /* input channels */
    FIRST_MAX_GROUPS = 16, /* 4-value groups per window (depth <= 64) */
    FIRST_WORDS = 224,     /* the channels' widened weights + a pixel block (896 B) */
    FIRST_MAX_PAIRS = 8,   /* output channel pairs */
    FIRST_MIN_BLOCK = 8    /* pixels */
};
#define FIRST_MAX_BIAS (INT32_C(1) << 28)

/* The window layout of a layer (see above). */
typedef struct {
    int32_t row_len;    /* L = k_w * in_c */
    int32_t row_words;  /* whole words per kernel row, L / 4 */
    int32_t row_tail;   /* values left per row, L % 4 */
    int32_t groups;     /* k_h * row_words + ceil(k_h * row_tail / 4) */
} first_layout;

static first_layout first_make_layout(const tc_conv2d_params *p) {
    first_layout l;
    l.row_len = p->k_w * p->in_c;
    l.row_words = l.row_len / 4;
    l.row_tail = l.row_len % 4;
    l.groups = p->k_h * l.row_words + (p->k_h * l.row_tail + 3) / 4;
    return l;
}

/* Whether every channel pair's widened weights (4 words per group) and a block of at least
 * FIRST_MIN_BLOCK pixels fit the buffer. All channels run over a staged block before the next
 * block is staged, so the input is read in the order of the output rows, as the row-streaming
 * overlap licence of tc_conv2d_s8 needs (tinycc/ops/conv.py conv2d_overlap_licence): staging the
 * input again for a second chunk of channels would read rows the first chunk's outputs may have
 * overwritten. Layers with more channels (the IC stem's 16 at 7 groups, the KWS stem's 64) take
 * the gathered pixel-pair path. */
static int first_fits(const tc_conv2d_params *p, const first_layout *l) {
    const int32_t pairs = (p->out_c + 1) >> 1;
    return pairs <= FIRST_MAX_PAIRS && (pairs + FIRST_MIN_BLOCK / 2) * 4 * l->groups <= FIRST_WORDS;
}

int tc_conv2d_s8_first_dsp_applicable(const tc_conv2d_params *p, const int32_t *shift) {
    first_layout l;
    int32_t c;
    if (p->groups != 1 || p->dil_w != 1 || p->in_c > FIRST_MAX_C || p->k_h * p->k_w < 2) return 0;
    l = first_make_layout(p);
    if (l.groups > FIRST_MAX_GROUPS) return 0;
    if (!first_fits(p, &l)) return 0;
    for (c = 0; c < p->out_c; ++c) {
        if (shift[c] < -TC_DSP_RQ_MAX_E || shift[c] > 1) return 0;
    }
    return 1;
}

/* Four bytes (lanes 0..3) widened into x[0] = lanes (0, 2), x[1] = lanes (1, 3). */
static inline void first_widen(uint32_t *x, uint32_t v) {
    x[0] = tc_sxtb16(v);
    x[1] = tc_sxtb16_ror8(v);
}

/* Kernel row iy's L values for the window at column in_x0, those outside the image as in_zp,
 * in `row` (a window reaching past the left or right border, or a row outside the image). */
static const int8_t *first_padded_row(const tc_conv2d_params *p, const int8_t *in, int32_t iy,
                                      int32_t in_x0, int8_t *row) {
    const int32_t L = p->k_w * p->in_c;
    memset(row, (int)p->in_zp, (size_t)L);
    if (iy >= 0 && iy < p->in_h) {
        const int32_t x_lo = TC_MAX(in_x0, 0), x_hi = TC_MIN(in_x0 + p->k_w, p->in_w);
        if (x_hi > x_lo) {
            memcpy(row + (x_lo - in_x0) * p->in_c, in + (iy * p->in_w + x_lo) * p->in_c,
                   (size_t)((x_hi - x_lo) * p->in_c));
        }
    }
    return row;
}

/* One kernel row's values at src: its row_words whole words widened at *x, its row_tail last
 * values appended to the tail group being filled (*tail, byte *t next), which is widened at
 * *x_tail when full. Inlined with constant row_words and row_tail for the common layouts. */
static inline void first_stage_row(const int8_t *src, int32_t row_words, int32_t row_tail,
                                   uint32_t **x, uint32_t **x_tail, uint32_t *tail, int32_t *t) {
    int32_t j;
    for (j = 0; j < row_words; ++j, *x += 2) first_widen(*x, tc_read_s8x4(src + 4 * j));
    for (j = 0; j < row_tail; ++j) {
        *tail |= (uint32_t)(uint8_t)src[4 * row_words + j] << (8 * *t);
        if (++*t == 4) {
            first_widen(*x_tail, *tail);
            *x_tail += 2;
            *tail = 0;
            *t = 0;
        }
    }
}

/* A window inside the image (top-left tap at src, rows row_step bytes apart) widened into x. */
static inline void first_stage_inside(const int8_t *src, int32_t row_step, int32_t k_h,
                                      int32_t row_words, int32_t row_tail, uint32_t *x) {
    uint32_t *x_tail = x + 2 * k_h * row_words;
    uint32_t tail = 0;
    int32_t ky, t = 0;
    for (ky = 0; ky < k_h; ++ky, src += row_step) {
        first_stage_row(src, row_words, row_tail, &x, &x_tail, &tail, &t);
    }
    if (t > 0) first_widen(x_tail, tail); /* lanes past the values: zero weights */
}

/* A 3x3x3 window inside the image (the RGB stems), straight-line: six whole words and the
 * tail group of the three rows' last values. */
static inline void first_stage_inside_333(const int8_t *src, int32_t row_step, uint32_t *x) {
    const int8_t *r1 = src + row_step, *r2 = r1 + row_step;
    const uint32_t tail = (uint32_t)(uint8_t)src[8] | (uint32_t)(uint8_t)r1[8] << 8 |
                          (uint32_t)(uint8_t)r2[8] << 16;
    first_widen(x, tc_read_s8x4(src));
    first_widen(x + 2, tc_read_s8x4(src + 4));
    first_widen(x + 4, tc_read_s8x4(r1));
    first_widen(x + 6, tc_read_s8x4(r1 + 4));
    first_widen(x + 8, tc_read_s8x4(r2));
    first_widen(x + 10, tc_read_s8x4(r2 + 4));
    first_widen(x + 12, tail);
}

/* A window over the border of the image (its top-left tap at (in_y0, in_x0)) widened into
 * x[2 * groups], taps outside the image as in_zp: each kernel row copied into `row` with its
 * padding, then staged as inside the image. */
static TC_DSP_NOINLINE void first_stage_border(const tc_conv2d_params *p, const first_layout *l,
                                               const int8_t *in, int32_t in_y0, int32_t in_x0,
                                               uint32_t *x) {
    int8_t row[4 * FIRST_MAX_GROUPS];
    const int inside_x = in_x0 >= 0 && in_x0 + p->k_w <= p->in_w;
    uint32_t *x_tail = x + 2 * p->k_h * l->row_words;
    uint32_t tail = 0;
    int32_t ky, t = 0;
    for (ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = in_y0 + ky * p->dil_h;
        const int8_t *src = inside_x && iy >= 0 && iy < p->in_h
                                ? in + (iy * p->in_w + in_x0) * p->in_c
                                : first_padded_row(p, in, iy, in_x0, row);
        first_stage_row(src, l->row_words, l->row_tail, &x, &x_tail, &tail, &t);
    }
    if (t > 0) first_widen(x_tail, tail);
}

/* Pixels pix0 .. pix0 + n - 1 (row-major output order) staged into x, 2 * groups words each;
 * `is_333`: the layer's windows are 3x3x3 (first_stage_inside_333 inside the image). */
static inline void first_stage_pixels(const tc_conv2d_params *p, const first_layout *l,
                                      const int8_t *in, int32_t pix0, int32_t n, uint32_t *x,
                                      const int is_333) {
    const int32_t x_step = 2 * l->groups, row_step = p->dil_h * p->in_w * p->in_c;
    /* the top-left taps of the windows inside the image */
    const uint32_t x_last = (uint32_t)(p->in_w - p->k_w);
    const uint32_t y_last = (uint32_t)(p->in_h - 1 - (p->k_h - 1) * p->dil_h);
    const int any_inside = p->in_w >= p->k_w && p->in_h > (p->k_h - 1) * p->dil_h;
    int32_t oy = pix0 / p->out_w, ox = pix0 % p->out_w;
    for (; n > 0; --n, x += x_step) {
        const int32_t in_y0 = oy * p->stride_h - p->pad_top, in_x0 = ox * p->stride_w - p->pad_left;
        if (any_inside && (uint32_t)in_x0 <= x_last && (uint32_t)in_y0 <= y_last) {
            const int8_t *src = in + (in_y0 * p->in_w + in_x0) * p->in_c;
            if (is_333) {
                first_stage_inside_333(src, row_step, x);
            } else {
                first_stage_inside(src, row_step, p->k_h, l->row_words, l->row_tail, x);
            }
        } else {
            first_stage_border(p, l, in, in_y0, in_x0, x);
        }
        if (++ox == p->out_w) {
            ox = 0;
            ++oy;
        }
    }
}

static TC_DSP_NOINLINE void first_stage_block_333(const tc_conv2d_params *p,
                                                  const first_layout *l, const int8_t *in,
                                                  int32_t pix0, int32_t n, uint32_t *x) {
    first_stage_pixels(p, l, in, pix0, n, x, 1);
}

static TC_DSP_NOINLINE void first_stage_block_any(const tc_conv2d_params *p,
                                                  const first_layout *l, const int8_t *in,
                                                  int32_t pix0, int32_t n, uint32_t *x) {
    first_stage_pixels(p, l, in, pix0, n, x, 0);
}

/* One output channel's requantization, with its weights as staged. */
typedef struct {
    int32_t bias; /* (bias - in_zp * sum(w)) * scale; scale 2 (shifts <= 0) or 4 (shift 1) */
    int32_t mult;
    int32_t k;    /* tc_dsp_rq2_k; the shift itself for an unscaled channel */
    int32_t e;    /* max(-shift, 0); FIRST_UNSCALED: unscaled sums, the portable requantization */
} first_channel;
#define FIRST_UNSCALED 32

/* Output channel oc's weights in the window layout, widened and scaled into the even or odd
 * half of each group's 4 words (`w` at channel slot `slot` of its pair: words 4g + 2 * slot and
 * 4g + 2 * slot + 1), and its requantization. */
static TC_DSP_NOINLINE void first_stage_channel(const tc_conv2d_params *p, const first_layout *l, const int8_t *w,
                                const tc_dsp_requant *q, int32_t oc, uint32_t *wp,
                                first_channel *ch) {
    const int8_t *wc = w + oc * p->k_h * l->row_len;
    const uint32_t ones = tc_pack_s16x2(1, 1);
    const int32_t bias = q->bias != NULL ? q->bias[oc] : 0;
    const int32_t shift = q->shift[oc];
    uint32_t words[FIRST_MAX_GROUPS];
    int8_t tail[4 * FIRST_MAX_GROUPS];
    int32_t ky, j, g = 0, t = 0, w_sum = 0, folded, scale;
    for (ky = 0; ky < p->k_h; ++ky) {
        const int8_t *src = wc + ky * l->row_len;
        for (j = 0; j < l->row_words; ++j) words[g++] = tc_read_s8x4(src + 4 * j);
        for (j = 0; j < l->row_tail; ++j) tail[t++] = src[4 * l->row_words + j];
    }
    for (; (t & 3) != 0; ++t) tail[t] = 0;
    for (j = 0; j < t; j += 4) words[g++] = tc_read_s8x4(tail + j);
    for (j = 0; j < g; ++j) {
        w_sum = tc_smlad(tc_sxtb16(words[j]), ones, w_sum);
        w_sum = tc_smlad(tc_sxtb16_ror8(words[j]), ones, w_sum);
    }
    /* sum(w * (x - zp)) = sum(w * x) - zp * sum(w); |zp * sum(w)| <= 2^21 */
    folded = bias - (bias > -(INT32_C(1) << 30) && bias < (INT32_C(1) << 30) ? p->in_zp * w_sum : 0);
    if (folded <= -FIRST_MAX_BIAS || folded >= FIRST_MAX_BIAS) {
        scale = 1; /* wrapping like the accumulator */
        ch->bias = (int32_t)((uint32_t)bias - (uint32_t)(p->in_zp * w_sum));
        ch->e = FIRST_UNSCALED;
        ch->k = shift;
    } else {
        scale = shift > 0 ? 4 : 2;
        ch->bias = folded * scale;
        ch->e = shift < 0 ? -shift : 0;
        ch->k = tc_dsp_rq2_k(shift, q->out_zp);
    }
    for (j = 0; j < g; ++j) {
        uint32_t even = tc_sxtb16(words[j]), odd = tc_sxtb16_ror8(words[j]);
        int32_t n;
        for (n = 1; n < scale; ++n) { /* lanes of |w| * 4 <= 512 stay in int16 */
            even = tc_sxtab16(even, words[j]);
            odd = tc_sxtab16_ror8(odd, words[j]);
        }
        wp[4 * j] = even;
        wp[4 * j + 1] = odd;
    }
    ch->mult = q->mult[oc];
}

/* The output of a sum as staged (bias included), clamped when the layer clamps. */
static inline int32_t first_output(const first_channel *ch, int32_t acc, const tc_dsp_requant *q) {
    if (ch->e == FIRST_UNSCALED) return tc_requant_call(acc, ch->mult, ch->k, q);
    return TC_MIN(TC_MAX(tc_dsp_rq2(acc, ch->mult, ch->k, ch->e), q->act_min), q->act_max);
}

/* What walks a block for one channel pair (or a last single channel); the assembly reads the
 * fields at these offsets (checked below) and advances y and pairs. */
typedef struct {
    const uint32_t *x;       /*  0: the block: pixel i at x + 2 * groups * i */
    const uint32_t *w;       /*  4: group g: [4g, 4g + 1] channel c, [4g + 2, 4g + 3] c + 1 */
    int8_t *y;               /*  8: channel c of the block's first pixel */
    int32_t y_step;          /* 12: out_c */
    int32_t groups;          /* 16 */
    int32_t pairs;           /* 20: pixel pairs */
    const first_channel *ch; /* 24: channel c, and c + 1 for a pair */
} first_job;

/* The hot loop, for a pair of scaled channels with right shifts (e >= 1) and no clamp:
 * per pixel pair and group 2 + 2 word-pair loads and 8 SMLADs, then 4 x tc_dsp_rq2. */
static TC_DSP_NOINLINE void first_pairs_rq(const first_job *job) {
    const uint32_t *x = job->x;
    int8_t *y = job->y;
    const int32_t G = job->groups, y_step = job->y_step;
    const int32_t b0 = job->ch[0].bias, b1 = job->ch[1].bias;
    int32_t i;
    for (i = 0; i < job->pairs; ++i, x += 4 * G, y += 2 * y_step) {
        const uint32_t *x0 = x, *x1 = x + 2 * G, *wp = job->w;
        int32_t a00 = b0, a01 = b1, a10 = b0, a11 = b1, g;
        for (g = 0; g < G; ++g, x0 += 2, x1 += 2, wp += 4) {
            const uint32_t x0e = x0[0], x0o = x0[1], x1e = x1[0], x1o = x1[1];
            const uint32_t w0e = wp[0], w0o = wp[1], w1e = wp[2], w1o = wp[3];
            a00 = tc_smlad(x0e, w0e, a00);
            a00 = tc_smlad(x0o, w0o, a00);
            a10 = tc_smlad(x1e, w0e, a10);
            a10 = tc_smlad(x1o, w0o, a10);
            a01 = tc_smlad(x0e, w1e, a01);
            a01 = tc_smlad(x0o, w1o, a01);
            a11 = tc_smlad(x1e, w1e, a11);
            a11 = tc_smlad(x1o, w1o, a11);
        }
        y[0] = (int8_t)tc_dsp_rq2(a00, job->ch[0].mult, job->ch[0].k, job->ch[0].e);
        y[1] = (int8_t)tc_dsp_rq2(a01, job->ch[1].mult, job->ch[1].k, job->ch[1].e);
        y[y_step] = (int8_t)tc_dsp_rq2(a10, job->ch[0].mult, job->ch[0].k, job->ch[0].e);
        y[y_step + 1] = (int8_t)tc_dsp_rq2(a11, job->ch[1].mult, job->ch[1].k, job->ch[1].e);
    }
}

#if TC_DSP_ASM
typedef char first_job_layout[(offsetof(first_job, y) == 8 && offsetof(first_job, groups) == 16 &&
                               offsetof(first_job, ch) == 24 && sizeof(first_channel) == 16 &&
                               offsetof(first_channel, k) == 8) ? 1 : -1];

/* first_pairs_rq by hand: gcc spills the 2x2 block's 14 live registers and re-reads the
 * requantization constants (about 2.4 instructions per MAC on a 7-group window); here a group is
 * 3 LDRD, 8 SMLAD and the loop's SUBS/BNE, a pixel pair's four outputs about 30 instructions.
 * Registers: r0 r2 channel c (pixels 0, 1), r1 r3 channel c + 1; r10 pixel 0, r12 pixel 1,
 * r11 weights, lr groups left. Pushes 10 registers (40 bytes), calls nothing
 * (tinycc/sim/qemu.py HANDWRITTEN_FRAMES). */
void tc_conv2d_first_pairs_asm(first_job *job);
__asm__("    .pushsection .text.tc_conv2d_first_pairs_asm,\"ax\",%progbits\n"
        "    .syntax unified\n"
        "    .thumb\n"
        "    .p2align 2\n"
        "    .global tc_conv2d_first_pairs_asm\n"
        "    .type tc_conv2d_first_pairs_asm, %function\n"
        "    .thumb_func\n"
        "tc_conv2d_first_pairs_asm:\n"
        "    push   {r0, r4-r11, lr}\n"
        "    ldr    r10, [r0, #0]\n"          /* pixel 0 of the first pair */
        "1:  ldr    r12, [sp]\n"              /* job */
        "    ldr    lr, [r12, #16]\n"         /* groups */
        "    ldr    r11, [r12, #24]\n"
        "    ldr    r0, [r11, #0]\n"          /* the sums start from the biases */
        "    ldr    r1, [r11, #16]\n"
        "    mov    r2, r0\n"
        "    mov    r3, r1\n"
        "    ldr    r11, [r12, #4]\n"         /* weights */
        "    add    r12, r10, lr, lsl #3\n"   /* pixel 1 */
        "2:  ldrd   r4, r5, [r10], #8\n"
        "    ldrd   r6, r7, [r12], #8\n"
        "    ldrd   r8, r9, [r11, #8]\n"      /* channel c + 1 */
        "    smlad  r1, r4, r8, r1\n"
        "    smlad  r1, r5, r9, r1\n"
        "    smlad  r3, r6, r8, r3\n"
        "    smlad  r3, r7, r9, r3\n"
        "    ldrd   r8, r9, [r11], #16\n"     /* channel c */
        "    smlad  r0, r4, r8, r0\n"
        "    smlad  r0, r5, r9, r0\n"
        "    smlad  r2, r6, r8, r2\n"
        "    smlad  r2, r7, r9, r2\n"
        "    subs   lr, lr, #1\n"
        "    bne    2b\n"
        "    mov    r10, r12\n"               /* the next pair's pixel 0 */
        "    ldr    r12, [sp]\n"
        "    ldr    r11, [r12, #24]\n"
        "    ldr    r9, [r12, #8]\n"          /* y */
        "    ldr    r8, [r12, #12]\n"         /* y_step */
        "    ldrd   r4, r5, [r11, #4]\n"      /* channel c: mult, k, e */
        "    ldr    r6, [r11, #12]\n"
        "    smmlar r7, r0, r4, r5\n"         /* tc_dsp_rq2 */
        "    sub    r7, r7, r0, lsr #31\n"
        "    asr    r7, r7, r6\n"
        "    ssat   r7, #8, r7\n"
        "    strb   r7, [r9]\n"
        "    smmlar r7, r2, r4, r5\n"
        "    sub    r7, r7, r2, lsr #31\n"
        "    asr    r7, r7, r6\n"
        "    ssat   r7, #8, r7\n"
        "    strb   r7, [r9, r8]\n"
        "    ldrd   r4, r5, [r11, #20]\n"     /* channel c + 1 */
        "    ldr    r6, [r11, #28]\n"
        "    smmlar r7, r1, r4, r5\n"
        "    sub    r7, r7, r1, lsr #31\n"
        "    asr    r7, r7, r6\n"
        "    ssat   r7, #8, r7\n"
        "    strb   r7, [r9, #1]\n"
        "    smmlar r7, r3, r4, r5\n"
        "    sub    r7, r7, r3, lsr #31\n"
        "    asr    r7, r7, r6\n"
        "    ssat   r7, #8, r7\n"
        "    add    r6, r9, r8\n"
        "    strb   r7, [r6, #1]\n"
        "    add    r9, r9, r8, lsl #1\n"     /* the next pair's outputs */
        "    str    r9, [r12, #8]\n"
        "    ldr    r4, [r12, #20]\n"
        "    subs   r4, r4, #1\n"
        "    str    r4, [r12, #20]\n"
        "    bne    1b\n"
        "    pop    {r0, r4-r11, pc}\n"
        "    .size tc_conv2d_first_pairs_asm, .-tc_conv2d_first_pairs_asm\n"
        "    .popsection\n");
#endif

/* Every other case, one pixel at a time: `channels` (1 or 2) channels over n pixels, clamped,
 * any shift, unscaled channels by the portable requantization. */
static TC_DSP_NOINLINE void first_pixels_any(const first_job *job, int32_t n, int32_t channels,
                                             const tc_dsp_requant *q) {
    const uint32_t *x = job->x;
    int8_t *y = job->y;
    const int32_t G = job->groups;
    for (; n > 0; --n, x += 2 * G, y += job->y_step) {
        int32_t c;
        for (c = 0; c < channels; ++c) {
            const uint32_t *wp = job->w + 2 * c;
            int32_t acc = job->ch[c].bias, g;
            for (g = 0; g < G; ++g, wp += 4) {
                acc = tc_smlad(x[2 * g], wp[0], acc);
                acc = tc_smlad(x[2 * g + 1], wp[1], acc);
            }
            y[c] = (int8_t)first_output(&job->ch[c], acc, q);
        }
    }
}

/* The job's channels over the block's n pixels. */
static void first_run(first_job *job, int32_t n, int32_t channels, int fast_layer,
                      const tc_dsp_requant *q) {
    const int fast = fast_layer && channels == 2 && job->ch[0].e > 0 && job->ch[1].e > 0 &&
                     job->ch[0].e != FIRST_UNSCALED && job->ch[1].e != FIRST_UNSCALED;
    if (fast && n >= 2) {
        const uint32_t *x = job->x;
        int8_t *y = job->y;
        job->pairs = n >> 1;
#if TC_DSP_ASM
        tc_conv2d_first_pairs_asm(job);
#else
        first_pairs_rq(job);
#endif
        if ((n & 1) == 0) return;
        job->x = x + 2 * job->groups * (n - 1); /* the odd last pixel */
        job->y = y + job->y_step * (n - 1);
        n = 1;
    }
    first_pixels_any(job, n, channels, q);
}

void tc_conv2d_s8_first_dsp(const tc_conv2d_params *p, const int8_t *in, const int8_t *w,
                            const int32_t *bias, const int32_t *mult, const int32_t *shift,
                            int8_t *out) {
    const tc_dsp_requant q =
        tc_dsp_make_requant(bias, mult, shift, p->out_zp, p->act_min, p->act_max);
    const first_layout l = first_make_layout(p);
    const int32_t G = l.groups, pixels = p->out_h * p->out_w, out_c = p->out_c;
    const int32_t pairs = (out_c + 1) >> 1, pair_words = 4 * G;
    const int32_t block = ((FIRST_WORDS - pairs * pair_words) / (2 * G)) & ~1; /* >= 8 pixels */
    const int fast_layer = q.act_min == -128 && q.act_max == 127;
    const int is_333 = p->k_h == 3 && l.row_len == 9;
    uint32_t buf[FIRST_WORDS]; /* the weights, pair i at buf + i * pair_words; the block after */
    uint32_t *x = buf + pairs * pair_words;
    first_channel chans[2 * FIRST_MAX_PAIRS];
    first_job job;
    int32_t pix0, i, c;
    for (c = 0; c < out_c; ++c) {
        first_stage_channel(p, &l, w, &q, c, buf + (c >> 1) * pair_words + 2 * (c & 1), &chans[c]);
    }
    job.groups = G;
    job.y_step = out_c;
    for (pix0 = 0; pix0 < pixels; pix0 += block) {
        const int32_t n = TC_MIN(block, pixels - pix0);
        if (is_333) {
            first_stage_block_333(p, &l, in, pix0, n, x);
        } else {
            first_stage_block_any(p, &l, in, pix0, n, x);
        }
        for (i = 0; i < pairs; ++i) {
            c = 2 * i;
            job.x = x;
            job.w = buf + i * pair_words;
            job.ch = &chans[c];
            job.y = out + pix0 * out_c + c;
            first_run(&job, n, TC_MIN(out_c - c, 2), fast_layer, &q);
        }
    }
}
#endif /* TC_HAVE_DSP */
