/*
 * tinycc runtime: the Thumb-2 assembly hot loop of tc_conv2d_s8's SIMD variant
 * (tc_conv2d_s8_dsp.c explains it and holds the C functions of the same arithmetic, the job
 * struct conv2d_asm_job whose field offsets the code below uses, and their compile-time check).
 * Assembled on GNU-compatible compilers for Thumb-2 with the DSP extension (TC_DSP_ASM).
 */
#include "tc_arm_dsp.h"

#if TC_DSP_ASM
/* One 4-value group of the loop below: the two pixels' widened words, interleaved by group
 * (pixel 0's lanes (0, 2) and (1, 3), then pixel 1's: one LDM), against channel c + 1 at
 * [r10, r11] and channel c at [r10] (post-indexed), into r0 r2 (channel c) and r1 r3 (c + 1).
 * 15 instructions per 16 multiply-accumulates. */
#define CONV2D_ASM_GROUP                                                            \
    "    ldm    r12!, {r4-r7}\n"           /* pixel 0 (r4 r5), pixel 1 (r6 r7) */  \
    "    ldr    r8, [r10, r11]\n"           /* channel c + 1 */                     \
    "    sxtb16 r9, r8\n"                                                           \
    "    sxtb16 r8, r8, ror #8\n"                                                   \
    "    smlad  r1, r4, r9, r1\n"                                                   \
    "    smlad  r3, r6, r9, r3\n"                                                   \
    "    smlad  r1, r5, r8, r1\n"                                                   \
    "    smlad  r3, r7, r8, r3\n"                                                   \
    "    ldr    r8, [r10], #4\n"            /* channel c */                         \
    "    sxtb16 r9, r8\n"                                                           \
    "    sxtb16 r8, r8, ror #8\n"                                                   \
    "    smlad  r0, r4, r9, r0\n"                                                   \
    "    smlad  r2, r6, r9, r2\n"                                                   \
    "    smlad  r0, r5, r8, r0\n"                                                   \
    "    smlad  r2, r7, r8, r2\n"

#define CONV2D_PAIRS_START(NAME)                                                    \
    "    .pushsection .text." NAME ",\"ax\",%progbits\n"                            \
    "    .syntax unified\n"                                                         \
    "    .thumb\n"                                                                  \
    "    .p2align 2\n"                                                              \
    "    .global " NAME "\n"                                                        \
    "    .type " NAME ", %function\n"                                               \
    "    .thumb_func\n"                                                             \
    "" NAME ":\n"                                                                   \
    "    push   {r0, r4-r11, lr}\n"                                                 \
    "    ldr    r12, [sp]\n"                /* r12 = job (again at each pair's end) */ \
    "    ldr    r10, [r12, #12]\n"          /* w: channel c; c + 1 at [r10, r11] */

/* A pair's sums start from sums_in when bias is NULL, else from the bias. */
#define CONV2D_PAIRS_SUMS_IN                                                        \
    "1:  ldr    r4, [r12, #16]\n"                                                   \
    "    cbnz   r4, 2f\n"                                                           \
    "    ldr    r4, [r12, #20]\n"           /* sums from sums: (c,0) (c,1) (c+1,0) (c+1,1) */ \
    "    ldrd   r0, r2, [r4], #16\n"                                                \
    "    ldrd   r1, r3, [r4, #-8]\n"                                                \
    "    str    r4, [r12, #20]\n"                                                   \
    "    b      3f\n"                                                               \
    "2:  ldrd   r0, r1, [r4], #8\n"         /* or from the bias: r0 r2 channel c, r1 r3 c + 1 */ \
    "    str    r4, [r12, #16]\n"                                                   \
    "    mov    r2, r0\n"                                                           \
    "    mov    r3, r1\n"

/* tc_conv2d_pairs_out_asm's start of a pair: always from the bias (a whole window). */
#define CONV2D_PAIRS_BIAS                                                           \
    "1:  ldr    r4, [r12, #16]\n"                                                   \
    "    ldrd   r0, r1, [r4], #8\n"         /* r0 r2 channel c, r1 r3 c + 1 */      \
    "    str    r4, [r12, #16]\n"                                                   \
    "    mov    r2, r0\n"                                                           \
    "    mov    r3, r1\n"

#define CONV2D_PAIRS_LOOP                                                           \
    "3:  ldm    r12, {r11, r12, lr}\n"     /* depth, x, iters */                   \
    "    lsrs   lr, lr, #1\n"              /* iterations; carry: the first is half */ \
    "    bcs    8f\n"                                                               \
    "4:  tc_conv2d_group\n"                                                         \
    "    tc_conv2d_group\n"                                                         \
    "8:  tc_conv2d_group\n"                /* four groups per iteration */         \
    "    tc_conv2d_group\n"                                                         \
    "    subs   lr, lr, #1\n"                                                       \
    "    bne    4b\n"                                                               \
    "    ldr    r12, [sp]\n"                                                        \
    "    ldr    r4, [r12, #40]\n"           /* the next pair's weights */           \
    "    add    r10, r10, r4\n"            /* (r10 stays live to the next pair) */

/* y0 NULL: the sums are stored to sums_out (and the next pair follows), else requantized. */
#define CONV2D_PAIRS_SUMS_OUT                                                       \
    "    ldr    r5, [r12, #32]\n"                                                   \
    "    cbnz   r5, 5f\n"                                                           \
    "    ldr    r4, [r12, #52]\n"           /* y0 NULL: store the sums */           \
    "    strd   r0, r2, [r4], #16\n"                                                \
    "    strd   r1, r3, [r4, #-8]\n"                                                \
    "    str    r4, [r12, #52]\n"                                                   \
    "    ldr    r4, [r12, #44]\n"           /* next channel pair, if any */         \
    "    cmp    r10, r4\n"                                                          \
    "    bne    1b\n"                                                               \
    "    pop    {r0, r4-r11, pc}\n"

/* The general loop: sums from the bias or sums_in, into bytes or sums_out. */
#define CONV2D_PAIRS_HEAD(NAME)                                                     \
    CONV2D_PAIRS_START(NAME) CONV2D_PAIRS_SUMS_IN CONV2D_PAIRS_LOOP CONV2D_PAIRS_SUMS_OUT

#define CONV2D_PAIRS_RQ_FAR                                                         \
    "5:  ldrd   r4, r5, [r12, #24]\n"       /* r6 r7 mult, r8 r9 shift of c, c + 1 */ \
    "    ldrd   r6, r7, [r4], #8\n"                                                 \
    "    ldrd   r8, r9, [r5], #8\n"                                                 \
    "    strd   r4, r5, [r12, #24]\n"                                               \
    "    mvn    r8, r8\n"                   /* e - 1 = -shift - 1 */                \
    "    mvn    r9, r9\n"                                                           \
    "    ldr    r5, [r12, #56]\n"           /* zp1 * 2^(e-2): high word of the rounding */ \
    "    lsl    r11, r5, r9\n"              /* constant (with the zero point when folded) */ \
    "    lsl    r4, r5, r8\n"                                                       \
    "    asr    r4, r4, #1\n"                                                       \
    "    asr    r11, r11, #1\n"                                                     \
    "    and    r5, r0, #0x80000000\n"      /* (c, px0): lo = 2^30 | sign, hi = 2^(e-2) - s */ \
    "    orr    r5, r5, #0x40000000\n"                                              \
    "    sub    lr, r4, r0, lsr #31\n"                                              \
    "    smlal  r5, lr, r0, r6\n"                                                   \
    "    asr    r0, lr, r8\n"                                                       \
    "    and    r5, r2, #0x80000000\n"      /* (c, px1) */                          \
    "    orr    r5, r5, #0x40000000\n"                                              \
    "    sub    lr, r4, r2, lsr #31\n"                                              \
    "    smlal  r5, lr, r2, r6\n"                                                   \
    "    asr    r2, lr, r8\n"                                                       \
    "    and    r5, r1, #0x80000000\n"      /* (c + 1, px0) */                      \
    "    orr    r5, r5, #0x40000000\n"                                              \
    "    sub    lr, r11, r1, lsr #31\n"                                             \
    "    smlal  r5, lr, r1, r7\n"                                                   \
    "    asr    r1, lr, r9\n"                                                       \
    "    and    r5, r3, #0x80000000\n"      /* (c + 1, px1) */                      \
    "    orr    r5, r5, #0x40000000\n"                                              \
    "    sub    lr, r11, r3, lsr #31\n"                                             \
    "    smlal  r5, lr, r3, r7\n"                                                   \
    "    asr    r3, lr, r9\n"

#define CONV2D_PAIRS_TAIL(NAME)                                                     \
    "    ldrd   r4, r5, [r12, #44]\n"       /* w_end; + out_zp unless folded */     \
    "    cbz    r5, 7f\n"                                                           \
    "    add    r0, r0, r5\n"                                                       \
    "    add    r1, r1, r5\n"                                                       \
    "    add    r2, r2, r5\n"                                                       \
    "    add    r3, r3, r5\n"                                                       \
    "7:  cmp    r10, r4\n"                 /* next pair? (SSAT keeps the flags) */ \
    "    ssat   r0, #8, r0\n"                                                       \
    "    ssat   r1, #8, r1\n"                                                       \
    "    ssat   r2, #8, r2\n"                                                       \
    "    ssat   r3, #8, r3\n"                                                       \
    "    ldrd   r4, r5, [r12, #32]\n"       /* y0[c], y0[c + 1], y1[c], y1[c + 1] */ \
    "    strb   r1, [r4, #1]\n"                                                     \
    "    strb   r0, [r4], #2\n"                                                     \
    "    strb   r3, [r5, #1]\n"                                                     \
    "    strb   r2, [r5], #2\n"                                                     \
    "    strd   r4, r5, [r12, #32]\n"                                               \
    "    bne    1b\n"                      /* (r12: job) */                        \
    "    pop    {r0, r4-r11, pc}\n"                                                 \
    "    .size " NAME ", .-" NAME "\n"                                              \
    "    .popsection\n"

/* Requantization of one channel's two sums A and B (mult M, shift SH) where shifts -1, 0 and 1
 * occur (tc_dsp_rq_near; the layer's other channels as in CONV2D_PAIRS_RQ_FAR); the zero point
 * is folded into the constant as there (zp1 = 2 * out_zp + 1 or 1: the constant of shift -1,
 * zp1 >> 1 that of shifts 0 and 1). Scratch r4 r5 r11 lr; SH is clobbered. */
#define CONV2D_PAIRS_RQ_CHANNEL(A, B, M, SH)                                        \
    "    adds   r4, " SH ", #1\n"          /* shift + 1: >= 0 for shifts -1, 0, 1 */ \
    "    ldr    r5, [r12, #56]\n"          /* zp1 */                                \
    "    bpl    10f\n"                                                              \
    "    mvn    " SH ", " SH "\n"          /* e - 1 */                              \
    "    lsl    r4, r5, " SH "\n"                                                   \
    "    asr    r4, r4, #1\n"              /* zp1 * 2^(e-2) */                      \
    "    and    r5, " A ", #0x80000000\n"                                           \
    "    orr    r5, r5, #0x40000000\n"                                              \
    "    sub    lr, r4, " A ", lsr #31\n"                                           \
    "    smlal  r5, lr, " A ", " M "\n"                                             \
    "    asr    " A ", lr, " SH "\n"                                                \
    "    and    r5, " B ", #0x80000000\n"                                           \
    "    orr    r5, r5, #0x40000000\n"                                              \
    "    sub    lr, r4, " B ", lsr #31\n"                                           \
    "    smlal  r5, lr, " B ", " M "\n"                                             \
    "    asr    " B ", lr, " SH "\n"                                                \
    "    b      12f\n"                                                              \
    "10: qadd   r11, " A ", " A "\n"       /* the sums doubled, saturated */        \
    "    qadd   lr, " B ", " B "\n"                                                 \
    "    cbz    r4, 11f\n"                                                          \
    "    asr    r5, r5, #1\n"              /* shifts 0 and 1: constant out_zp or 0 */ \
    "    cmp    r4, #1\n"                                                           \
    "    itt    ne\n"                      /* shift 1: its left shift, saturated */ \
    "    qaddne r11, r11, r11\n"                                                    \
    "    qaddne lr, lr, lr\n"                                                       \
    "    smmlar " A ", r11, " M ", r5\n"                                            \
    "    smmlar " B ", lr, " M ", r5\n"                                             \
    "    b      12f\n"                                                              \
    "11: smmlar r11, r11, " M ", r5\n"     /* shift -1: minus the sign, halved */   \
    "    smmlar lr, lr, " M ", r5\n"                                                \
    "    sub    r11, r11, " A ", lsr #31\n"                                         \
    "    sub    lr, lr, " B ", lsr #31\n"                                           \
    "    asr    " A ", r11, #1\n"                                                   \
    "    asr    " B ", lr, #1\n"                                                    \
    "12:\n"

#define CONV2D_PAIRS_RQ_NEAR                                                        \
    "5:  ldrd   r4, r5, [r12, #24]\n"      /* r6 r7 = mult, r8 r9 = shift of c, c + 1 */ \
    "    ldrd   r6, r7, [r4], #8\n"                                                 \
    "    ldrd   r8, r9, [r5], #8\n"                                                 \
    "    strd   r4, r5, [r12, #24]\n"                                               \
    CONV2D_PAIRS_RQ_CHANNEL("r0", "r2", "r6", "r8")                                 \
    CONV2D_PAIRS_RQ_CHANNEL("r1", "r3", "r7", "r9")

/* The group as an assembler macro (the functions' strings stay within C99's 4095 characters). */
__asm__("    .macro tc_conv2d_group\n" CONV2D_ASM_GROUP "    .endm\n");

/* tc_conv2d_pairs_sums_asm: every shift in [-31, -2]; tc_conv2d_pairs_near_asm: shifts -1, 0, 1
 * too (tc_dsp_rq_near_applies; conv2d_asm_layer chooses). */
__asm__(CONV2D_PAIRS_HEAD("tc_conv2d_pairs_sums_asm") CONV2D_PAIRS_RQ_FAR
        CONV2D_PAIRS_TAIL("tc_conv2d_pairs_sums_asm"));
__asm__(CONV2D_PAIRS_HEAD("tc_conv2d_pairs_near_asm") CONV2D_PAIRS_RQ_NEAR
        CONV2D_PAIRS_TAIL("tc_conv2d_pairs_near_asm"));
/* tc_conv2d_pairs_asm: tc_conv2d_pairs_sums_asm for a whole window (bias set, y0 not NULL:
 * conv2d_s8_one_chunk), without the two per-pair tests (3 of ~60 instructions per 2x2 block). */
__asm__(CONV2D_PAIRS_START("tc_conv2d_pairs_asm") CONV2D_PAIRS_BIAS CONV2D_PAIRS_LOOP
        CONV2D_PAIRS_RQ_FAR CONV2D_PAIRS_TAIL("tc_conv2d_pairs_asm"));

/*
 * The shallow pointwise loops (conv2d_s8_shallow in tc_conv2d_s8_dsp.c, whose C function
 * conv2d_shallow_run is the reference): one output channel over pixel pairs of a widened block,
 * the channel's widened (and scaled) weights, folded bias, multiplier and rounding constant in
 * registers; per output tc_dsp_rq2. r3 holds e in its low byte (ASR by a register uses only that
 * byte) and minus the remaining pixel pairs times 512 above it: the loop counter costs no
 * register. The "z" loops are those of e = 0 (shifts 0 and 1: no sign term, no shift).
 * Job (conv2d_shallow_job): 0 x, 4 y, 8 y_step, 12 count_e, 16..28 w[4], 32 bias, 36 mult,
 * 40 k. Each pushes 10 registers (40 bytes of stack) and calls nothing (HANDWRITTEN_FRAMES).
 */
/* Requantizes the scaled sum in ACC (tc_dsp_rq2: r9 mult, r10 k, r3 e) into T, stores the byte
 * at [r1] and steps r1 by r2. */
#define CONV2D_SHALLOW_RQ(ACC, T)                                                   \
    "    smmlar " T ", " ACC ", r9, r10\n"                                          \
    "    sub    " T ", " T ", " ACC ", lsr #31\n"                                   \
    "    asr    " T ", " T ", r3\n"                                                 \
    "    ssat   " T ", #8, " T "\n"                                                 \
    "    strb   " T ", [r1]\n"                                                      \
    "    add    r1, r1, r2\n"

#define CONV2D_SHALLOW_RQZ(ACC, T)                                                  \
    "    smmlar " T ", " ACC ", r9, r10\n"                                          \
    "    ssat   " T ", #8, " T "\n"                                                 \
    "    strb   " T ", [r1]\n"                                                      \
    "    add    r1, r1, r2\n"

#define CONV2D_SHALLOW_SETUP                                                        \
    "    push   {r3-r11, lr}\n"                                                     \
    "    ldrd   r4, r5, [r0, #16]\n"                                                \
    "    ldrd   r6, r7, [r0, #24]\n"                                                \
    "    ldrd   r8, r9, [r0, #32]\n"                                                \
    "    ldr    r10, [r0, #40]\n"                                                   \
    "    ldm    r0, {r0, r1, r2, r3}\n"

#define CONV2D_SHALLOW_FUNCTION(NAME, BODY)                                         \
    __asm__("    .pushsection .text." NAME ",\"ax\",%progbits\n"                    \
            "    .syntax unified\n"                                                 \
            "    .thumb\n"                                                          \
            "    .p2align 2\n"                                                      \
            "    .global " NAME "\n"                                                \
            "    .type " NAME ", %function\n"                                       \
            "    .thumb_func\n" NAME ":\n" CONV2D_SHALLOW_SETUP                     \
            "1:" BODY                                                               \
            "    adds   r3, r3, #512\n"                                             \
            "    bmi    1b\n"                                                       \
            "    pop    {r3-r11, pc}\n"                                             \
            "    .size " NAME ", .-" NAME "\n"                                      \
            "    .popsection\n");

/* Four int8 inputs per pixel (two widened words): weights r4 r5, bias r8; two pixels. */
#define CONV2D_SHALLOW4_PAIR(RQ)                                                    \
    "    ldm    r0!, {r6, r7, r11, r12}\n"                                          \
    "    smlad  lr, r6, r4, r8\n"                                                   \
    "    smlad  lr, r7, r5, lr\n"                                                   \
    "    smlad  r6, r11, r4, r8\n"                                                  \
    "    smlad  r6, r12, r5, r6\n"                                                  \
    RQ("lr", "r11")                                                                 \
    RQ("r6", "r12")

/* Eight int8 inputs per pixel (four widened words): weights r4 r5 r6 r7, bias r8; one pixel. */
#define CONV2D_SHALLOW8_PIXEL(RQ)                                                   \
    "    ldrd   r11, r12, [r0], #8\n"                                               \
    "    smlad  lr, r11, r4, r8\n"                                                  \
    "    smlad  lr, r12, r5, lr\n"                                                  \
    "    ldrd   r11, r12, [r0], #8\n"                                               \
    "    smlad  lr, r11, r6, lr\n"                                                  \
    "    smlad  lr, r12, r7, lr\n"                                                  \
    RQ("lr", "r11")

CONV2D_SHALLOW_FUNCTION("tc_conv2d_shallow4_asm", CONV2D_SHALLOW4_PAIR(CONV2D_SHALLOW_RQ))
CONV2D_SHALLOW_FUNCTION("tc_conv2d_shallow4z_asm", CONV2D_SHALLOW4_PAIR(CONV2D_SHALLOW_RQZ))
CONV2D_SHALLOW_FUNCTION("tc_conv2d_shallow8_asm",
                        CONV2D_SHALLOW8_PIXEL(CONV2D_SHALLOW_RQ)
                        CONV2D_SHALLOW8_PIXEL(CONV2D_SHALLOW_RQ))
CONV2D_SHALLOW_FUNCTION("tc_conv2d_shallow8z_asm",
                        CONV2D_SHALLOW8_PIXEL(CONV2D_SHALLOW_RQZ)
                        CONV2D_SHALLOW8_PIXEL(CONV2D_SHALLOW_RQZ))

#endif /* TC_DSP_ASM */
