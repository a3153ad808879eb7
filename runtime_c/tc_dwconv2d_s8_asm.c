/*
 * tinycc runtime: the Thumb-2 assembly pixel-pair loops of tc_dwconv2d_s8's 4-channel 3x3 path
 * (tc_dwconv2d_s8_dsp.c explains it and holds the C function of the same arithmetic, dwq_row,
 * the job struct dwq_group whose field offsets the code below uses, and their compile-time
 * check). Assembled on GNU-compatible compilers for Thumb-2 with the DSP extension (TC_DSP_ASM).
 */
#include "tc_arm_dsp.h"

#if TC_DSP_ASM

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
/* Columns of a kernel row at byte x0 of the ring, by which pixels' windows read them (A's tap
 * at weight offset ta, B's at tb): the rows of every kernel size and stride are sequences of
 * these (a column both windows read is loaded and widened once). */
#define DWQ_COL_A(x0, col, ta) DWQ_LOAD(x0, col) DWQ_A(ta)
#define DWQ_COL_AB(x0, col, ta, tb) DWQ_LOAD(x0, col) DWQ_A(ta) DWQ_B(tb)
#define DWQ_COL_B(x0, col, tb) DWQ_LOAD(x0, col) DWQ_B(tb)
/* Stride 1: column c is A's tap c and B's tap c - 1. */
#define DWQ_ROW3(x0, t0, t1, t2)                                                    \
    DWQ_COL_A(x0, 0, t0) DWQ_COL_AB(x0, 1, t1, t0) DWQ_COL_AB(x0, 2, t2, t1)        \
    DWQ_COL_B(x0, 3, t2)
/* Stride 2: column c is A's tap c and B's tap c - 2. */
#define DWQ_ROW3_S2(x0, t0, t1, t2)                                                 \
    DWQ_COL_A(x0, 0, t0) DWQ_COL_A(x0, 1, t1) DWQ_COL_AB(x0, 2, t2, t0)             \
    DWQ_COL_B(x0, 3, t1) DWQ_COL_B(x0, 4, t2)
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

/* The start of an assembly function `name` (its own section, Thumb-2). */
#define DWQ_FUNC(name)                                                              \
    "    .pushsection .text." name ",\"ax\",%progbits\n"                            \
    "    .syntax unified\n"                                                         \
    "    .thumb\n"                                                                  \
    "    .p2align 2\n"                                                              \
    "    .global " name "\n"                                                        \
    "    .type " name ", %function\n"                                               \
    "    .thumb_func\n"                                                             \
    name ":\n"
/* One pixel-pair function, in five top-level asm statements (each string below the 4095
 * characters ISO C guarantees; the assembler sees them in order): DWQ_HEAD, a ROW3 per kernel
 * row (reading it for both pixels), DWQ_TAIL with `advance` bytes from one pair's windows to the
 * next. */
#define DWQ_HEAD(name)                                                              \
    DWQ_FUNC(name)                                                                  \
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
/* After the sums of a pair (lr = job): the 8 outputs requantized (tc_dsp_rq, each channel's
 * constants from one LDM), stored, the pair count and output pointer advanced; back to label 1
 * for the next pair, else return popping `regs`. */
#define DWQ_STORE_PAIR(regs, name)                                                  \
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
    "    pop    {" regs ", pc}\n"                                                   \
    "    .size " name ", .-" name "\n"                                              \
    "    .popsection\n"
#define DWQ_TAIL(name, advance)                                                     \
    "    sub    lr, lr, #80\n"              /* lr = job */                           \
    "    add    r12, r12, #" #advance "\n"  /* the next pair's windows */            \
    "    str    r12, [lr, #0]\n"                                                    \
    DWQ_STORE_PAIR("r0, r4-r11", name)

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
#endif /* TC_DSP_ASM */

#if TC_DSP_ASM
/*
 * tc_dwconv2d_s8_k's pixel pairs for 5x5 and 7x7 kernels at strides 1 and 2 (the job struct is
 * dwk_group in tc_dwconv2d_s8_dsp.c, whose C function dwk_row_kw computes the same). Output
 * pixels in pairs (A, B = the next), 4 channels, all 8 sums in registers as in the 3x3 loops
 * above; the kernel rows go by a loop (the ring rows are not contiguous: row ky's pointer is
 * rows[ky], plus x_off for the pair), the K columns of a row are unrolled and each column both
 * windows read is loaded and widened once: (13 K + 3) instructions per 8 K MACs at stride 1,
 * 9 more per kernel row. Pushes 12 registers (48 bytes: r1 and r2's slots hold the row loop's
 * state, the rows cursor and the rows left) and calls nothing.
 */
/* Job field offsets (dwk_group): rows 0, y 4, pairs 8, y_step 12, bias_x 16, rq 32, x_off 80,
 * k_h 84, w 88. */
#define DWK_HEAD(name)                                                              \
    DWQ_FUNC(name)                                                                  \
    "    push   {r0, r1, r2, r4-r11, lr}\n"                                         \
    "1:  ldr    lr, [sp]\n"                 /* lr = job */                           \
    "    add    r8, lr, #16\n"                                                      \
    "    ldm    r8, {r0-r3}\n"              /* A's sums start from bias_x, B's too */ \
    "    mov    r4, r0\n"                                                           \
    "    mov    r5, r1\n"                                                           \
    "    mov    r6, r2\n"                                                           \
    "    mov    r7, r3\n"                                                           \
    "    ldr    r8, [lr, #0]\n"             /* rows cursor */                        \
    "    ldr    r9, [lr, #84]\n"            /* rows left = k_h */                    \
    "    strd   r8, r9, [sp, #4]\n"                                                 \
    "    add    lr, lr, #88\n"              /* lr = the weights of kernel row 0 */   \
    "2:  ldrd   r8, r9, [sp, #4]\n"                                                 \
    "    ldr    r12, [r8], #4\n"            /* r12 = ring row ky */                  \
    "    subs   r9, r9, #1\n"               /* flags kept to the bne below */        \
    "    strd   r8, r9, [sp, #4]\n"                                                 \
    "    ldr    r10, [sp]\n"                                                        \
    "    ldr    r10, [r10, #80]\n"                                                  \
    "    add    r12, r12, r10\n"            /* at pixel A's window */
/* After a kernel row: the next row's weights (row_bytes = 8 K), loop over the rows. */
#define DWK_ROW_END(row_bytes)                                                      \
    "    add    lr, lr, #" #row_bytes "\n"                                          \
    "    bne    2b\n"
#define DWK_TAIL(name, advance)                                                     \
    "    ldr    lr, [sp]\n"                 /* lr = job */                           \
    "    ldr    r12, [lr, #80]\n"                                                   \
    "    add    r12, r12, #" #advance "\n"  /* the next pair's windows */            \
    "    str    r12, [lr, #80]\n"                                                   \
    DWQ_STORE_PAIR("r0, r1, r2, r4-r11", name)

/* Kernel rows of 5 and 7 taps (weights of tap t at lr + 8 t), from the columns of DWQ_ROW3
 * (stride 1: column c is A's tap c and B's tap c - 1) and DWQ_ROW3_S2 (stride 2: B's tap
 * c - 2). The 7-tap rows begin as the 5-tap ones and are cut in two statements. */
#define DWK_S1_COLS_0_4                                                             \
    DWQ_COL_A(0, 0, 0) DWQ_COL_AB(0, 1, 8, 0) DWQ_COL_AB(0, 2, 16, 8)               \
    DWQ_COL_AB(0, 3, 24, 16) DWQ_COL_AB(0, 4, 32, 24)
#define DWK_S2_COLS_0_4                                                             \
    DWQ_COL_A(0, 0, 0) DWQ_COL_A(0, 1, 8) DWQ_COL_AB(0, 2, 16, 0)                   \
    DWQ_COL_AB(0, 3, 24, 8) DWQ_COL_AB(0, 4, 32, 16)
#define DWK_ROW5 DWK_S1_COLS_0_4 DWQ_COL_B(0, 5, 32)
#define DWK_ROW5_S2 DWK_S2_COLS_0_4 DWQ_COL_B(0, 5, 24) DWQ_COL_B(0, 6, 32)
#define DWK_ROW7_REST DWQ_COL_AB(0, 5, 40, 32) DWQ_COL_AB(0, 6, 48, 40) DWQ_COL_B(0, 7, 48)
#define DWK_ROW7_S2_REST                                                            \
    DWQ_COL_AB(0, 5, 40, 24) DWQ_COL_AB(0, 6, 48, 32) DWQ_COL_B(0, 7, 40)           \
    DWQ_COL_B(0, 8, 48)

__asm__(DWK_HEAD("tc_dwk5_pairs_asm"));
__asm__(DWK_ROW5);
__asm__(DWK_ROW_END(40));
__asm__(DWK_TAIL("tc_dwk5_pairs_asm", 8));

__asm__(DWK_HEAD("tc_dwk5_pairs_s2_asm"));
__asm__(DWK_ROW5_S2);
__asm__(DWK_ROW_END(40));
__asm__(DWK_TAIL("tc_dwk5_pairs_s2_asm", 16));

__asm__(DWK_HEAD("tc_dwk7_pairs_asm"));
__asm__(DWK_S1_COLS_0_4);
__asm__(DWK_ROW7_REST);
__asm__(DWK_ROW_END(56));
__asm__(DWK_TAIL("tc_dwk7_pairs_asm", 8));

__asm__(DWK_HEAD("tc_dwk7_pairs_s2_asm"));
__asm__(DWK_S2_COLS_0_4);
__asm__(DWK_ROW7_S2_REST);
__asm__(DWK_ROW_END(56));
__asm__(DWK_TAIL("tc_dwk7_pairs_s2_asm", 16));
#endif /* TC_DSP_ASM */
