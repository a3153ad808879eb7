/*
 * tinycc runtime: first-layer convolutions (at most 4 input channels, a real window) on the
 * SIMD path of tc_conv2d_s8, bit-exact with the portable reference in tc_conv2d_s8.c.
 * tc_conv2d_s8_dsp enters it first, for the layers tc_conv2d_s8_first_dsp_applicable accepts
 * (an RGB 3x3 stem with few channels such as VWW's, 3x3 windows over one channel).
 *
 * Why a path of its own: a window of such a layer holds few values (27 for 3x3x3) whose count is
 * rarely a multiple of 4, and there are few output channels (8) to share the widening of each
 * window among; the gathered pixel-pair path pays its staging and its partial groups for every
 * pixel pair (3.1 instructions per MAC on the VWW stem), and rows of fewer than 4 values (3x3 on
 * one channel) do not take it at all (41.8 per MAC on the portable loop).
 *
 * Window layout (the "groups", 4 int8 values each): kernel row ky holds L = k_w * in_c contiguous
 * values in the input (NHWC) and in the weights (OHWI). Its first 4 * (L / 4) values are read as
 * whole words straight from the input row; the L % 4 values left at the end of every row are
 * collected, row after row, into the last groups, padded with zero weights. For 3x3x3 that is
 * 3 x 2 words + one group of the three rows' last values: 7 groups, 28 lanes for 27 values.
 *
 * Loop order: the output channels' weights are widened once per call (SXTB16: lanes (0, 2),
 * (1, 3)), then a block of output pixels is staged (each window widened alike) and every channel
 * pair walks the block two pixels at a time: per group two LDRD of pixels, two of weights and
 * eight SMLADs (a 2x2 block, tc_conv2d_first_pairs_asm), then tc_dsp_rq per output. When every
 * channel's weights and a block of at least FIRST_MIN_BLOCK pixels fit in FIRST_WORDS words (VWW's
 * 8 channels at 7 groups), all channels run over a block before the next is staged, so the input
 * is read in the order of the output rows, as the row-streaming overlap licence of tc_conv2d_s8
 * needs. Otherwise (IC's 16 channels at 7 groups) the channels go in two passes, each with its
 * half of the weights widened once and the whole input staged again (IC's stem: 2.39 -> 2.11
 * instructions per MAC against the gathered path); the second pass re-reads input the first
 * pass's outputs could have overwritten, so the path declines buffers that overlap (the layer
 * keeps its row-streaming licence, tinycc/ops/conv.py conv2d_overlap_licence, and then takes the
 * gathered path: a plan that overlaps the stem saves more SRAM than the pass costs instructions;
 * the zoo MobileNetV3's peak would grow 13,328 -> 21,952 B without it). KWS's 64 channels at 10
 * groups would take 32 passes: the gathered path. The stack stays FIRST_WORDS words. in_zp is
 * folded into the bias (-in_zp * sum(w), wrapping like the accumulator), so taps outside the
 * image are staged as in_zp and contribute nothing.
 * The requantization is tc_dsp_rq (exact for any accumulator), hence the layers: shifts in
 * [-23, -2] (the others take the gathered path); a fused clamp (IC's ReLU stem) goes over each
 * block's outputs once all their channels are written (first_clamp).
 */
#include "tc_conv.h"
#include "tc_dot_s8_dsp.h"

#include <stddef.h>
#include <string.h>

#if TC_HAVE_DSP && TC_CONV2D_FIRST

enum {
    FIRST_MAX_C = 4,       /* input channels */
    FIRST_MAX_GROUPS = 16, /* 4-value groups per window (depth <= 64) */
    FIRST_WORDS = 224,     /* every channel's widened weights + a pixel block (896 B) */
    FIRST_MAX_PAIRS = 8,   /* output channel pairs per pass */
    FIRST_MIN_BLOCK = 8,   /* pixels */
    FIRST_MAX_PASSES = 2   /* passes over the input (see above) */
};

/* The window layout of a layer (see above). */
typedef struct {
    int32_t row_len;   /* L = k_w * in_c */
    int32_t row_words; /* whole words per kernel row, L / 4 */
    int32_t row_tail;  /* values left per row, L % 4 */
    int32_t groups;    /* k_h * row_words + ceil(k_h * row_tail / 4) */
} first_layout;

static first_layout first_make_layout(const tc_conv2d_params *p) {
    first_layout l;
    l.row_len = p->k_w * p->in_c;
    l.row_words = l.row_len / 4;
    l.row_tail = l.row_len % 4;
    l.groups = p->k_h * l.row_words + (p->k_h * l.row_tail + 3) / 4;
    return l;
}

/* The channel pairs of a pass: all of them when they fit beside a FIRST_MIN_BLOCK-pixel block
 * (one pass), else as many as fit (0: none). tinycc/ops/conv.py conv2d_first_pass_pairs. */
static int32_t first_pass_pairs(const tc_conv2d_params *p, const first_layout *l) {
    const int32_t fit = FIRST_WORDS / (4 * l->groups) - FIRST_MIN_BLOCK / 2;
    return TC_MAX(TC_MIN(TC_MIN((p->out_c + 1) / 2, FIRST_MAX_PAIRS), fit), 0);
}

static int32_t first_passes(const tc_conv2d_params *p, int32_t pass_pairs) {
    return ((p->out_c + 1) / 2 + pass_pairs - 1) / pass_pairs;
}

int tc_conv2d_s8_first_dsp_applicable(const tc_conv2d_params *p, const int32_t *shift) {
    first_layout l;
    int32_t pass_pairs;
    if (p->groups != 1 || p->dil_w != 1 || p->in_c > FIRST_MAX_C || p->k_h * p->k_w < 2 ||
        p->out_c > 2 * FIRST_MAX_PAIRS * FIRST_MAX_PASSES) {
        return 0;
    }
    l = first_make_layout(p);
    if (l.groups > FIRST_MAX_GROUPS) return 0;
    pass_pairs = first_pass_pairs(p, &l);
    if (pass_pairs == 0 || first_passes(p, pass_pairs) > FIRST_MAX_PASSES) return 0;
    return tc_dsp_rq_applies_all(shift, p->out_c);
}

/* Four bytes (lanes 0..3) widened into x[0] = lanes (0, 2), x[1] = lanes (1, 3). */
static inline void first_widen(uint32_t *x, uint32_t v) {
    x[0] = tc_sxtb16(v);
    x[1] = tc_sxtb16_ror8(v);
}

/* k_h rows of L values (row ky at src + ky * row_step) in the window layout, widened into x:
 * each row's whole words, then the tail groups of the rows' last values (zero past them). */
static TC_DSP_NOINLINE void first_stage_rows(const int8_t *src, int32_t row_step, int32_t k_h,
                                             const first_layout *l, uint32_t *x) {
    uint32_t *x_tail = x + 2 * k_h * l->row_words;
    uint32_t tail = 0; /* the tail group being filled, byte t next */
    int32_t ky, j, t = 0;
    for (ky = 0; ky < k_h; ++ky, src += row_step) {
        for (j = 0; j < l->row_words; ++j, x += 2) first_widen(x, tc_read_s8x4(src + 4 * j));
        for (j = 0; j < l->row_tail; ++j) {
            tail |= (uint32_t)(uint8_t)src[4 * l->row_words + j] << (8 * t);
            if (++t == 4) {
                first_widen(x_tail, tail);
                x_tail += 2;
                tail = 0;
                t = 0;
            }
        }
    }
    if (t > 0) first_widen(x_tail, tail);
}

/* A 3x3x3 window (the RGB stems; weights alike), straight-line: six whole words and the tail
 * group of the three rows' last values; group g at x + g * step (2: a staged pixel, 4: a
 * channel's slot in a pair's weights). */
static inline void first_stage_333_step(const int8_t *src, int32_t row_step, uint32_t *x,
                                        int32_t step) {
    const int8_t *r1 = src + row_step, *r2 = r1 + row_step;
    first_widen(x, tc_read_s8x4(src));
    first_widen(x + step, tc_read_s8x4(src + 4));
    first_widen(x + 2 * step, tc_read_s8x4(r1));
    first_widen(x + 3 * step, tc_read_s8x4(r1 + 4));
    first_widen(x + 4 * step, tc_read_s8x4(r2));
    first_widen(x + 5 * step, tc_read_s8x4(r2 + 4));
    first_widen(x + 6 * step, (uint32_t)(uint8_t)src[8] | (uint32_t)(uint8_t)r1[8] << 8 |
                                  (uint32_t)(uint8_t)r2[8] << 16);
}

static inline void first_stage_333(const int8_t *src, int32_t row_step, uint32_t *x) {
    first_stage_333_step(src, row_step, x, 2);
}

/* A window over the border (its top-left tap at (in_y0, in_x0)) copied into win[k_h][L], the
 * taps outside the image as in_zp. */
static TC_DSP_NOINLINE void first_fill_window(const tc_conv2d_params *p, const int8_t *in,
                                              int32_t in_y0, int32_t in_x0, int8_t *win) {
    const int32_t L = p->k_w * p->in_c;
    const int32_t x_lo = TC_MAX(in_x0, 0), x_hi = TC_MIN(in_x0 + p->k_w, p->in_w);
    int32_t ky;
    memset(win, (int)p->in_zp, (size_t)(p->k_h * L));
    for (ky = 0; ky < p->k_h; ++ky, win += L) {
        const int32_t iy = in_y0 + ky * p->dil_h;
        if (iy >= 0 && iy < p->in_h && x_hi > x_lo) {
            memcpy(win + (x_lo - in_x0) * p->in_c, in + (iy * p->in_w + x_lo) * p->in_c,
                   (size_t)((x_hi - x_lo) * p->in_c));
        }
    }
}

/* Pixels pix0 .. pix0 + n - 1 (row-major output order) staged into x, 2 * groups words each. */
static TC_DSP_NOINLINE void first_stage_block(const tc_conv2d_params *p, const first_layout *l,
                                              const int8_t *in, int32_t pix0, int32_t n,
                                              uint32_t *x) {
    int8_t win[4 * FIRST_MAX_GROUPS];
    /* the geometry in locals: the stores through x (uint32_t) may alias p's int32_t fields, so
     * gcc would reload them for every pixel */
    const int32_t in_w = p->in_w, in_c = p->in_c, out_w = p->out_w, stride_w = p->stride_w;
    const int32_t pixel_words = 2 * l->groups, row_step = p->dil_h * in_w * in_c;
    const int is_333 = p->k_h == 3 && l->row_len == 9;
    /* the top-left taps of the windows inside the image (none when the image is smaller) */
    const int any_inside = in_w >= p->k_w && p->in_h > (p->k_h - 1) * p->dil_h;
    const uint32_t x_last = (uint32_t)(in_w - p->k_w);
    const uint32_t y_last = (uint32_t)(p->in_h - 1 - (p->k_h - 1) * p->dil_h);
    const int32_t oy = pix0 / out_w, ox0 = pix0 % out_w;
    int32_t ox_left = out_w - ox0; /* pixels left in the output row */
    int32_t in_y0 = oy * p->stride_h - p->pad_top, in_x0 = ox0 * stride_w - p->pad_left;
    for (; n > 0; --n, x += pixel_words) {
        if (any_inside && (uint32_t)in_x0 <= x_last && (uint32_t)in_y0 <= y_last) {
            const int8_t *src = in + (in_y0 * in_w + in_x0) * in_c;
            if (is_333) {
                first_stage_333(src, row_step, x);
            } else {
                first_stage_rows(src, row_step, p->k_h, l, x);
            }
        } else {
            first_fill_window(p, in, in_y0, in_x0, win);
            if (is_333) { /* the window copy in the layout of the image's windows */
                first_stage_333(win, 9, x);
            } else {
                first_stage_rows(win, l->row_len, p->k_h, l, x);
            }
        }
        in_x0 += stride_w;
        if (--ox_left == 0) { /* the next output row */
            ox_left = out_w;
            in_x0 = -p->pad_left;
            in_y0 += p->stride_h;
        }
    }
}

/* One output channel's requantization (tc_dsp_rq): what the assembly reads at these offsets. */
typedef struct {
    int32_t bias; /* bias - in_zp * sum(w), wrapping like the accumulator */
    int32_t mult;
    int32_t khi;  /* tc_dsp_rq_khi */
    int32_t e1;   /* -shift - 1 */
} first_channel;

/* Output channel oc's weights in the window layout, widened into the words of its slot in the
 * pair (group g at wp[4g], wp[4g + 1]), and its requantization. */
static TC_DSP_NOINLINE void first_stage_channel(const tc_conv2d_params *p, const first_layout *l,
                                                const int8_t *w, const tc_dsp_requant *q,
                                                int32_t oc, uint32_t *wp, first_channel *ch) {
    const uint32_t ones = tc_pack_s16x2(1, 1);
    const uint32_t bias = (uint32_t)(q->bias != NULL ? q->bias[oc] : 0);
    uint32_t x[2 * FIRST_MAX_GROUPS];
    int32_t g, w_sum = 0;
    first_stage_rows(w + oc * p->k_h * l->row_len, l->row_len, p->k_h, l, x);
    for (g = 0; g < l->groups; ++g) {
        wp[4 * g] = x[2 * g];
        wp[4 * g + 1] = x[2 * g + 1];
        w_sum = tc_smlad(x[2 * g], ones, tc_smlad(x[2 * g + 1], ones, w_sum));
    }
    /* sum(w * (x - zp)) + bias = sum(w * x) + bias - zp * sum(w), |zp * sum(w)| < 2^21 */
    ch->bias = (int32_t)(bias - (uint32_t)(p->in_zp * w_sum));
    ch->mult = q->mult[oc];
    ch->khi = tc_dsp_rq_khi(q->shift[oc], q->out_zp);
    ch->e1 = -q->shift[oc] - 1;
}

/* What walks a block for one channel pair; the assembly reads the fields at these offsets
 * (checked below) and advances y and pairs. */
typedef struct {
    const uint32_t *x;       /*  0: the block: pixel i at x + 2 * groups * i */
    const uint32_t *w;       /*  4: group g: [4g, 4g + 1] channel c, [4g + 2, 4g + 3] c + 1 */
    int8_t *y;               /*  8: channel c of the block's first pixel */
    int32_t y_step;          /* 12: out_c */
    int32_t groups;          /* 16 */
    int32_t pairs;           /* 20: pixel pairs */
    const first_channel *ch; /* 24: channels c and c + 1 */
} first_job;

#if TC_DSP_ASM
typedef char first_job_layout[(offsetof(first_job, y) == 8 && offsetof(first_job, groups) == 16 &&
                               offsetof(first_job, ch) == 24 && sizeof(first_channel) == 16 &&
                               offsetof(first_channel, khi) == 8) ? 1 : -1];

/* first_pairs by hand: gcc spills the 2x2 block's 14 live registers and re-reads the
 * requantization constants (about 2.4 instructions per MAC on a 7-group window); here a group is
 * 4 LDRD, 8 SMLAD and the loop's SUBS/BNE. tc_dsp_rq per output: lo = 2^30 | (acc & 2^31),
 * hi = khi - [acc < 0], SMLAL, ASR by e1, SSAT. Registers: r0 r2 channel c (pixels 0, 1), r1 r3
 * channel c + 1; r10 pixel 0, r12 pixel 1, r11 weights, lr groups left. Pushes 10 registers
 * (40 bytes), calls nothing (tinycc/sim/qemu.py HANDWRITTEN_FRAMES). */
void tc_conv2d_first_pairs_asm(first_job *job);
#define FIRST_RQ(ACC, Y)                                                                          \
    "    and    r7, " ACC ", #0x80000000\n"                                                      \
    "    orr    r7, r7, #0x40000000\n"                                                           \
    "    sub    r8, r5, " ACC ", lsr #31\n"                                                      \
    "    smlal  r7, r8, " ACC ", r4\n"                                                           \
    "    asr    r8, r8, r6\n"                                                                    \
    "    ssat   r8, #8, r8\n"                                                                    \
    "    strb   r8, " Y "\n"
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
        "    ldr    lr, [r12, #12]\n"         /* y_step */
        "    ldrd   r4, r5, [r11, #4]\n"      /* channel c: mult, khi, e1 */
        "    ldr    r6, [r11, #12]\n"
        FIRST_RQ("r0", "[r9]")
        FIRST_RQ("r2", "[r9, lr]")
        "    ldrd   r4, r5, [r11, #20]\n"     /* channel c + 1 */
        "    ldr    r6, [r11, #28]\n"
        "    add    r11, r9, #1\n"
        FIRST_RQ("r1", "[r11]")
        FIRST_RQ("r3", "[r11, lr]")
        "    add    r9, r9, lr, lsl #1\n"     /* the next pair's outputs */
        "    str    r9, [r12, #8]\n"
        "    ldr    r4, [r12, #20]\n"
        "    subs   r4, r4, #1\n"
        "    str    r4, [r12, #20]\n"
        "    bne    1b\n"
        "    pop    {r0, r4-r11, pc}\n"
        "    .size tc_conv2d_first_pairs_asm, .-tc_conv2d_first_pairs_asm\n"
        "    .popsection\n");
#else
/* The same 2x2 blocks in C (the host emulation, other compilers). */
static TC_DSP_NOINLINE void first_pairs(first_job *job) {
    const uint32_t *x = job->x;
    const int32_t G = job->groups, y_step = job->y_step;
    const first_channel *c0 = &job->ch[0], *c1 = &job->ch[1];
    int8_t *y = job->y;
    int32_t i;
    for (i = 0; i < job->pairs; ++i, x += 4 * G, y += 2 * y_step) {
        const uint32_t *x0 = x, *x1 = x + 2 * G, *wp = job->w;
        int32_t a00 = c0->bias, a01 = c1->bias, a10 = c0->bias, a11 = c1->bias, g;
        for (g = 0; g < G; ++g, x0 += 2, x1 += 2, wp += 4) {
            a00 = tc_smlad(x0[1], wp[1], tc_smlad(x0[0], wp[0], a00));
            a10 = tc_smlad(x1[1], wp[1], tc_smlad(x1[0], wp[0], a10));
            a01 = tc_smlad(x0[1], wp[3], tc_smlad(x0[0], wp[2], a01));
            a11 = tc_smlad(x1[1], wp[3], tc_smlad(x1[0], wp[2], a11));
        }
        y[0] = (int8_t)tc_dsp_rq(a00, c0->mult, c0->khi, c0->e1);
        y[1] = (int8_t)tc_dsp_rq(a01, c1->mult, c1->khi, c1->e1);
        y[y_step] = (int8_t)tc_dsp_rq(a10, c0->mult, c0->khi, c0->e1);
        y[y_step + 1] = (int8_t)tc_dsp_rq(a11, c1->mult, c1->khi, c1->e1);
    }
}
#endif

/* `channels` (1 or 2) channels of one pixel at x, outputs at y (a last odd pixel of a block, or
 * the last channel of an odd out_c). */
static TC_DSP_NOINLINE void first_pixel(const first_job *job, const uint32_t *x, int32_t channels,
                                        int8_t *y) {
    int32_t c, g;
    for (c = 0; c < channels; ++c) {
        const uint32_t *wp = job->w + 2 * c;
        const first_channel *ch = &job->ch[c];
        int32_t acc = ch->bias;
        for (g = 0; g < job->groups; ++g, wp += 4) {
            acc = tc_smlad(x[2 * g + 1], wp[1], tc_smlad(x[2 * g], wp[0], acc));
        }
        y[c] = (int8_t)tc_dsp_rq(acc, ch->mult, ch->khi, ch->e1);
    }
}

/* A fused clamp (ReLU: act_min = out_zp) over n finished outputs, four at a time (SSUB8, SEL):
 * the requantization saturates to int8 only, and the clamp costs ~2 instructions per output
 * here against 3 or more per output inside the register-bound 2x2 assembly. */
static TC_DSP_NOINLINE void first_clamp(int8_t *y, int32_t n, int32_t act_min, int32_t act_max) {
    const uint32_t lo4 = (uint32_t)(uint8_t)act_min * UINT32_C(0x01010101);
    const uint32_t hi4 = (uint32_t)(uint8_t)act_max * UINT32_C(0x01010101);
    int32_t i;
    for (i = 0; i + 4 <= n; i += 4) {
        const uint32_t v = tc_min_s8x4(tc_max_s8x4(tc_read_s8x4(y + i), lo4), hi4);
        memcpy(y + i, &v, sizeof v);
    }
    for (; i < n; ++i) y[i] = (int8_t)TC_MIN(TC_MAX((int32_t)y[i], act_min), act_max);
}

/* Whether the input and output buffers share a byte (a later pass would read overwritten input). */
static int first_buffers_overlap(const tc_conv2d_params *p, const int8_t *in, const int8_t *out) {
    const uintptr_t a = (uintptr_t)in, b = (uintptr_t)out;
    return a < b + (uintptr_t)(p->out_h * p->out_w * p->out_c) &&
           b < a + (uintptr_t)(p->in_h * p->in_w * p->in_c);
}

/* Output channel oc's weights widened into its slot of a pair (group g at wp[4g], wp[4g + 1]),
 * without the requantization first_stage_channel also derives: what a block re-widens. */
static TC_DSP_NOINLINE void first_widen_weights(const tc_conv2d_params *p, const first_layout *l,
                                                const int8_t *w, int32_t oc, uint32_t *wp) {
    uint32_t x[2 * FIRST_MAX_GROUPS];
    int32_t g;
    if (p->k_h == 3 && l->row_len == 9) {
        first_stage_333_step(w + oc * 27, 9, wp, 4);
        return;
    }
    first_stage_rows(w + oc * p->k_h * l->row_len, l->row_len, p->k_h, l, x);
    for (g = 0; g < l->groups; ++g) {
        wp[4 * g] = x[2 * g];
        wp[4 * g + 1] = x[2 * g + 1];
    }
}

/* Channels c0 .. c_end - 1 (their weights in buf, their requantization at ch) over a staged
 * block of n pixels, the first at output pixel pix0. */
static inline void first_run_channels(first_job *job, const uint32_t *buf, const first_channel *ch,
                               const uint32_t *x, int32_t n, int8_t *out_pix0, int32_t c0,
                               int32_t c_end) {
    const int32_t G = job->groups, out_c = job->y_step;
    int32_t c;
    for (c = c0; c < c_end; c += 2) {
        int8_t *y = out_pix0 + c;
        int32_t i = 0;
        job->w = buf + ((c - c0) >> 1) * 4 * G;
        job->ch = ch + (c - c0);
        if (c + 1 < c_end && n >= 2) { /* pixel pairs of a channel pair */
            job->x = x;
            job->y = y;
            job->pairs = n >> 1;
#if TC_DSP_ASM
            tc_conv2d_first_pairs_asm(job);
#else
            first_pairs(job);
#endif
            i = n & ~1;
        }
        for (; i < n; ++i) { /* an odd last pixel, the last channel of an odd out_c */
            first_pixel(job, x + 2 * G * i, TC_MIN(c_end - c, 2), y + i * out_c);
        }
    }
}

int tc_conv2d_s8_first_dsp(const tc_conv2d_params *p, const int8_t *in, const int8_t *w,
                           const int32_t *bias, const int32_t *mult, const int32_t *shift,
                           int8_t *out) {
    const tc_dsp_requant q =
        tc_dsp_make_requant(bias, mult, shift, p->out_zp, p->act_min, p->act_max);
    const first_layout l = first_make_layout(p);
    const int32_t G = l.groups, pixels = p->out_h * p->out_w, out_c = p->out_c;
    const int32_t pass_pairs = first_pass_pairs(p, &l), pair_words = 4 * G;
    const int32_t passes = first_passes(p, pass_pairs), pass_c = 2 * pass_pairs;
    /* Two passes over overlapping buffers (IC's plan overlaps its stem under the row-streaming
     * licence): a second pass over the input would read what the first one overwrote. When the
     * channels' requantization fits in chans (IC's 16), every block is staged once instead and
     * the passes take turns over it, each with its weights re-widened (the pass that ended a
     * block begins the next, so one pass per block re-widens): the input is read once, in the
     * order of the output rows. Out of place, staging the input twice costs less (IC's stem:
     * 2.00 against 2.09 instructions per MAC). */
    const int rewiden = passes > 1 && out_c <= 2 * FIRST_MAX_PAIRS && first_buffers_overlap(p, in, out);
    const int clamped = p->act_min > -128 || p->act_max < 127;
    const int32_t block = ((FIRST_WORDS - pass_pairs * pair_words) / (2 * G)) & ~1; /* >= 8 */
    uint32_t buf[FIRST_WORDS]; /* the pass's weights, pair i at buf + i * pair_words; the block */
    uint32_t *x = buf + pass_pairs * pair_words;
    first_channel chans[2 * FIRST_MAX_PAIRS];
    first_job job;
    int32_t pix0, c, c0;
    if (passes > 1 && !rewiden && first_buffers_overlap(p, in, out)) return 0; /* out_c > 16 */
    job.groups = G;
    job.y_step = out_c;
    if (rewiden) {
        for (c = 0; c < out_c; ++c) { /* the requantization; the weights are widened per block */
            first_stage_channel(p, &l, w, &q, c, buf + 2 * (c & 1), &chans[c]);
        }
        int32_t loaded = -1; /* the first channel of the pass whose weights are in buf */
        for (pix0 = 0; pix0 < pixels; pix0 += block) {
            const int32_t n = TC_MIN(block, pixels - pix0);
            int32_t turn;
            first_stage_block(p, &l, in, pix0, n, x);
            for (turn = 0; turn < 2; ++turn) {
                c0 = (loaded == pass_c) == (turn == 0) ? pass_c : 0; /* the loaded pass first */
                if (c0 != loaded) {
                    for (c = c0; c < TC_MIN(c0 + pass_c, out_c); ++c) {
                        first_widen_weights(p, &l, w, c,
                                            buf + ((c - c0) >> 1) * pair_words + 2 * (c & 1));
                    }
                    loaded = c0;
                }
                first_run_channels(&job, buf, &chans[c0], x, n, out + pix0 * out_c, c0,
                                   TC_MIN(c0 + pass_c, out_c));
            }
            if (clamped) first_clamp(out + pix0 * out_c, n * out_c, p->act_min, p->act_max);
        }
        return 1;
    }
    for (c0 = 0; c0 < out_c; c0 += pass_c) { /* a pass: channels c0 .. c_end - 1 */
        const int32_t c_end = TC_MIN(c0 + pass_c, out_c);
        for (c = c0; c < c_end; ++c) {
            first_stage_channel(p, &l, w, &q, c, buf + ((c - c0) >> 1) * pair_words + 2 * (c & 1),
                                &chans[c - c0]);
        }
        for (pix0 = 0; pix0 < pixels; pix0 += block) {
            const int32_t n = TC_MIN(block, pixels - pix0);
            first_stage_block(p, &l, in, pix0, n, x);
            first_run_channels(&job, buf, chans, x, n, out + pix0 * out_c, c0, c_end);
            if (clamped && c_end == out_c) { /* the block's pixels have all their channels */
                first_clamp(out + pix0 * out_c, n * out_c, p->act_min, p->act_max);
            }
        }
    }
    return 1;
}
#endif /* TC_HAVE_DSP && TC_CONV2D_FIRST */
