/*
 * tinycc runtime: the Thumb-2 assembly loops of tc_dwconv2d_s8's 4-channel paths: the 3x3
 * pixel pairs and quads (job: tc_dwq_group of tc_dwconv2d_quad_dsp.h, which holds the C row of
 * the same arithmetic, tc_dwq_row, and the compile-time check of the field offsets used below)
 * and the 5x5 / 7x7 pixel pairs (job: dwk_group of tc_dwconv2d_s8_dsp.c, C row dwk_row_kw).
 * Assembled on GNU-compatible compilers for Thumb-2 with the DSP extension (TC_DSP_ASM).
 */
#include "tc_arm_dsp.h"
#include "tc_conv.h" /* TC_DWCONV2D_K57 */

#if TC_DSP_ASM

/*
 * 3x3 at strides 1 and 2: output pixels in pairs (A, B = the next), 4 channels, all in
 * registers (r0-r3 pixel A, r4-r7 pixel B), lr = the job throughout. Per kernel row the 4
 * (stride 2: 5) columns A and B read are loaded and widened once (SXTB16: x itself, the zero
 * point being in bias_x), and a column both windows share feeds both: 42 (45) instructions per
 * 24 MACs, then the 8 outputs are requantized (tc_dsp_rq2 on the doubled sums: the group's
 * weights and bias are doubled; the channel's constants from one LDM): 188 instructions per 72
 * MACs at stride 1, against 4.1 per MAC for tc_dwq_row in C, which gcc cannot keep in 14
 * registers for two pixels. Preconditions (tc_dwq_asm_group): stride_w 1 or 2, the group is
 * fast (every channel suits tc_dsp_rq2), no fused clamp. Each function pushes 10
 * registers (40 bytes) and calls nothing (tinycc/sim/qemu.py HANDWRITTEN_FRAMES).
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
/* tc_dsp_rq2 on a doubled sum (the 3x3 groups, tc_dwq_group: mult, k, e in r8-r10). */
#define DWQ_RQ2(acc)                                                                \
    "    smmlar r12, " acc ", r8, r9\n"                                            \
    "    sub    r12, r12, " acc ", lsr #31\n"                                      \
    "    asr    " acc ", r12, r10\n"                                               \
    "    ssat   " acc ", #8, " acc "\n"
/* The two outputs a and b of one channel (its constants at job byte rq_off), by RQ. */
#define DWQ_CHANNEL(RQ, rq_off, a, b)                                               \
    "    add    r8, lr, #" #rq_off "\n"                                             \
    "    ldm    r8, {r8, r9, r10}\n"                                                \
    RQ(a) RQ(b)

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
    "    mov    lr, r0\n"                   /* lr = job */                           \
    "1:  ldr    r12, [lr, #0]\n"            /* r12 = ring row 0 at pixel A */        \
    "    add    r8, lr, #16\n"                                                      \
    "    ldm    r8, {r0-r3}\n"              /* A's sums start from bias_x, B's too */ \
    "    ldm    r8, {r4-r7}\n"
/* After the sums of a pair (lr = job): the 8 outputs requantized (tc_dsp_rq, each channel's
 * constants from one LDM), stored, the output pointer advanced and the pairs left counted down
 * (the flags of that SUBS decide DWQ_LOOP_END's branch). */
#define DWQ_STORE(RQ)                                                               \
    DWQ_CHANNEL(RQ, 32, "r0", "r4")                                                 \
    DWQ_CHANNEL(RQ, 44, "r1", "r5")                                                 \
    DWQ_CHANNEL(RQ, 56, "r2", "r6")                                                 \
    DWQ_CHANNEL(RQ, 68, "r3", "r7")                                                 \
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
    "    strd   r8, r9, [lr, #4]\n"
/* The next pair (label 1) while pairs are left, else return popping `regs`. */
#define DWQ_LOOP_END(regs, name)                                                    \
    "    bne    1b\n"                                                               \
    "    pop    {" regs ", pc}\n"                                                   \
    "    .size " name ", .-" name "\n"                                              \
    "    .popsection\n"
#define DWQ_TAIL(name, advance)                                                     \
    "    add    r12, r12, #" #advance "\n"  /* the next pair's windows */            \
    "    str    r12, [lr, #0]\n"                                                    \
    DWQ_STORE(DWQ_RQ2) DWQ_LOOP_END("r0, r4-r11", name)

__asm__(DWQ_HEAD("tc_dwq_pairs_asm"));
__asm__(DWQ_ROW3(0, 80, 88, 96));
__asm__(DWQ_ROW3(200, 104, 112, 120));
__asm__(DWQ_ROW3(400, 128, 136, 144));
__asm__(DWQ_TAIL("tc_dwq_pairs_asm", 8));

__asm__(DWQ_HEAD("tc_dwq_pairs_s2_asm"));
__asm__(DWQ_ROW3_S2(0, 80, 88, 96));
__asm__(DWQ_ROW3_S2(200, 104, 112, 120));
__asm__(DWQ_ROW3_S2(400, 128, 136, 144));
__asm__(DWQ_TAIL("tc_dwq_pairs_s2_asm", 16));

/*
 * Stride 1, four pixels (A, B, C, D) at a time, in two passes over the same windows: channels
 * 0 and 2 (the low and high lanes of SXTB16), then 1 and 3 (SXTB16 ROR 8), each pass with its
 * 8 sums in r0-r7 (pixel A: r0 low lane, r1 high lane; B: r2, r3; ...). Per kernel row the
 * pass's 3 tap weights sit in registers (one LDM) and each of the row's 6 columns is loaded
 * and widened once for the (up to 3) pixels whose windows hold it: 38 instructions per 24 MACs
 * where the pixel pairs take 42 per 24, and the channel constants of the requantization load
 * once per 4 outputs instead of 2. Job: tc_dwq_group; `pairs` counts the quads left. Pushes
 * 10 registers (40 bytes) and calls nothing.
 */
#define DQ_MAC(lo, hi, w)                                                           \
    "    smlabb " lo ", r11, " w ", " lo "\n"                                       \
    "    smlatt " hi ", r11, " w ", " hi "\n"
#define DQ_A(w) DQ_MAC("r0", "r1", w)
#define DQ_B(w) DQ_MAC("r2", "r3", w)
#define DQ_C(w) DQ_MAC("r4", "r5", w)
#define DQ_D(w) DQ_MAC("r6", "r7", w)
/* Column `col` of the kernel row at byte x0 of the ring, widened lanes in r11. */
#define DQ_X(x0, col, ror)                                                          \
    "    ldr    r11, [r12, #" #x0 " + 4 * " #col "]\n"                               \
    "    sxtb16 r11, r11" ror "\n"
/* A kernel row: weights of taps 0, 1, 2 (job byte w_off on) in r8, r9, r10; column c is
 * A's tap c, B's c - 1, C's c - 2, D's c - 3. */
#define DQ_ROW(x0, w_off, ror)                                                      \
    "    add    r8, lr, #" #w_off "\n"                                              \
    "    ldm    r8, {r8, r9, r10}\n"                                                \
    DQ_X(x0, 0, ror) DQ_A("r8")                                                     \
    DQ_X(x0, 1, ror) DQ_A("r9") DQ_B("r8")                                          \
    DQ_X(x0, 2, ror) DQ_A("r10") DQ_B("r9") DQ_C("r8")                              \
    DQ_X(x0, 3, ror) DQ_B("r10") DQ_C("r9") DQ_D("r8")                              \
    DQ_X(x0, 4, ror) DQ_C("r10") DQ_D("r9")                                         \
    DQ_X(x0, 5, ror) DQ_D("r10")
/* A pass's start: r12 = ring row 0 at pixel A's window, the sums from bias_lanes. */
#define DQ_PASS_HEAD(bias_off)                                                      \
    "    ldr    r12, [lr, #0]\n"                                                    \
    "    add    r8, lr, #" #bias_off "\n"                                           \
    "    ldm    r8, {r0-r7}\n"
/* A pass's end: its two channels requantized (constants at rq_lo, rq_hi) and stored at byte
 * offsets lo and hi of the 4 pixels' outputs. */
#define DQ_PASS_END(rq_lo, rq_hi, lo, hi)                                           \
    "    add    r8, lr, #" #rq_lo "\n"                                              \
    "    ldm    r8, {r8, r9, r10}\n"                                                \
    DWQ_RQ2("r0") DWQ_RQ2("r2") DWQ_RQ2("r4") DWQ_RQ2("r6")                         \
    "    add    r8, lr, #" #rq_hi "\n"                                              \
    "    ldm    r8, {r8, r9, r10}\n"                                                \
    DWQ_RQ2("r1") DWQ_RQ2("r3") DWQ_RQ2("r5") DWQ_RQ2("r7")                         \
    "    ldr    r8, [lr, #4]\n"             /* y */                                  \
    "    ldr    r10, [lr, #12]\n"           /* y_step */                             \
    "    strb   r0, [r8, #" #lo "]\n"                                               \
    "    strb   r1, [r8, #" #hi "]\n"                                               \
    "    add    r8, r8, r10\n"                                                      \
    "    strb   r2, [r8, #" #lo "]\n"                                               \
    "    strb   r3, [r8, #" #hi "]\n"                                               \
    "    add    r8, r8, r10\n"                                                      \
    "    strb   r4, [r8, #" #lo "]\n"                                               \
    "    strb   r5, [r8, #" #hi "]\n"                                               \
    "    add    r8, r8, r10\n"                                                      \
    "    strb   r6, [r8, #" #lo "]\n"                                               \
    "    strb   r7, [r8, #" #hi "]\n"
/* After both passes: the next quad's windows (4 columns on) and outputs, quads left. */
#define DQ_NEXT(name)                                                               \
    "    ldr    r12, [lr, #0]\n"                                                    \
    "    add    r12, r12, #16\n"                                                    \
    "    str    r12, [lr, #0]\n"                                                    \
    "    ldrd   r8, r9, [lr, #4]\n"         /* y, quads left */                      \
    "    add    r8, r8, r10, lsl #2\n"      /* y + 4 y_step */                       \
    "    subs   r9, r9, #1\n"                                                       \
    "    strd   r8, r9, [lr, #4]\n"                                                 \
    DWQ_LOOP_END("r0, r4-r11", name)

__asm__(DWQ_FUNC("tc_dwq_quads_asm")
        "    push   {r0, r4-r11, lr}\n"
        "    mov    lr, r0\n"               /* lr = job */
        "1:\n"
        DQ_PASS_HEAD(152) DQ_ROW(0, 216, ""));
__asm__(DQ_ROW(200, 228, "") DQ_ROW(400, 240, ""));
__asm__(DQ_PASS_END(32, 56, 0, 2));
__asm__(DQ_PASS_HEAD(184) DQ_ROW(0, 252, ", ror #8"));
__asm__(DQ_ROW(200, 264, ", ror #8") DQ_ROW(400, 276, ", ror #8"));
__asm__(DQ_PASS_END(44, 68, 1, 3) DQ_NEXT("tc_dwq_quads_asm"));
#endif /* TC_DSP_ASM */

#if TC_DSP_ASM && TC_DWCONV2D_K57
/*
 * tc_dwconv2d_s8_k's pixel pairs for square 5x5 and 7x7 kernels at strides 1 and 2 (the job
 * struct is dwk_group in tc_dwconv2d_s8_dsp.c, whose C function dwk_row_kw computes the same).
 * Output pixels in pairs (A, B = the next), 4 channels, all 8 sums in registers as in the 3x3
 * loops above, lr = the job throughout. Every kernel row is unrolled: its ring row pointer (at
 * pixel A's window) is one load from the job's row[] (the ring rows are not contiguous), its K
 * columns are loaded and widened once for both windows, the taps' weights are immediate
 * offsets from the job: (13 K + 4) instructions per 8 K MACs at stride 1. After each pair the
 * row pointers advance by the pair's columns (one LDM, K adds, one STM). About 7.5 KB of code
 * for the four; with TC_OPTIMIZE_SIZE (--optimize size) the kernel rows go by a loop instead
 * (about 2 KB, 6 more instructions per kernel row), on the same job. Either pushes 12
 * registers (48 bytes; the loop keeps its row cursor and rows left in r1 and r2's slots) and
 * calls nothing.
 */
/* Job field offsets (dwk_group): y 4, pairs 8, y_step 12, bias_x 16, rq 32, row 80, w 112. */
#define DWK_HEAD(name)                                                              \
    DWQ_FUNC(name)                                                                  \
    "    push   {r0, r1, r2, r4-r11, lr}\n"                                         \
    "    mov    lr, r0\n"                   /* lr = job */                           \
    "1:  add    r8, lr, #16\n"                                                      \
    "    ldm    r8, {r0-r3}\n"              /* A's sums start from bias_x, B's too */ \
    "    ldm    r8, {r4-r7}\n"
/* Kernel row ky: r12 = its ring row at pixel A's window. */
#define DWK_ROW_AT(ky) "    ldr    r12, [lr, #80 + 4 * " #ky "]\n"
/* After the last pair's stores: the K row pointers advance by `advance` bytes (the flags of
 * DWQ_STORE's SUBS survive: ADD without S). */
#define DWK_ADVANCE5(advance)                                                       \
    "    add    r8, lr, #80\n"                                                      \
    "    ldm    r8, {r0-r4}\n"                                                      \
    "    add    r0, r0, #" #advance "\n"                                            \
    "    add    r1, r1, #" #advance "\n"                                            \
    "    add    r2, r2, #" #advance "\n"                                            \
    "    add    r3, r3, #" #advance "\n"                                            \
    "    add    r4, r4, #" #advance "\n"                                            \
    "    stm    r8, {r0-r4}\n"
#define DWK_ADVANCE7(advance)                                                       \
    DWK_ADVANCE5(advance)                                                           \
    "    ldrd   r0, r1, [lr, #100]\n"                                               \
    "    add    r0, r0, #" #advance "\n"                                            \
    "    add    r1, r1, #" #advance "\n"                                            \
    "    strd   r0, r1, [lr, #100]\n"
#define DWK_TAIL(name, advance, rows)                                               \
    DWQ_STORE(DWQ_RQ) DWK_ADVANCE##rows(advance) DWQ_LOOP_END("r0, r1, r2, r4-r11", name)

/* Kernel rows of 5 and 7 taps whose weights start at job byte wb (tap t at wb + 8 t), from the
 * columns of DWQ_ROW3 (stride 1: column c is A's tap c and B's tap c - 1) and DWQ_ROW3_S2
 * (stride 2: B's tap c - 2). The 7-tap rows begin as the 5-tap ones, and each is two
 * statements (a string stays below 4095 characters). */
#define DWK_S1_COLS_0_4(wb)                                                         \
    DWQ_COL_A(0, 0, wb + 0) DWQ_COL_AB(0, 1, wb + 8, wb + 0)                        \
    DWQ_COL_AB(0, 2, wb + 16, wb + 8) DWQ_COL_AB(0, 3, wb + 24, wb + 16)            \
    DWQ_COL_AB(0, 4, wb + 32, wb + 24)
#define DWK_S2_COLS_0_4(wb)                                                         \
    DWQ_COL_A(0, 0, wb + 0) DWQ_COL_A(0, 1, wb + 8) DWQ_COL_AB(0, 2, wb + 16, wb + 0) \
    DWQ_COL_AB(0, 3, wb + 24, wb + 8) DWQ_COL_AB(0, 4, wb + 32, wb + 16)
#define DWK_ROW5(wb) DWK_S1_COLS_0_4(wb) DWQ_COL_B(0, 5, wb + 32)
#define DWK_ROW5_S2(wb) DWK_S2_COLS_0_4(wb) DWQ_COL_B(0, 5, wb + 24) DWQ_COL_B(0, 6, wb + 32)
#define DWK_ROW7_REST(wb)                                                           \
    DWQ_COL_AB(0, 5, wb + 40, wb + 32) DWQ_COL_AB(0, 6, wb + 48, wb + 40)           \
    DWQ_COL_B(0, 7, wb + 48)
#define DWK_ROW7_S2_REST(wb)                                                        \
    DWQ_COL_AB(0, 5, wb + 40, wb + 24) DWQ_COL_AB(0, 6, wb + 48, wb + 32)           \
    DWQ_COL_B(0, 7, wb + 40) DWQ_COL_B(0, 8, wb + 48)

/* Kernel row ky of a 5x5 (weights from 112 + 40 ky) and of a 7x7 (from 112 + 56 ky). */
#define DWK5_ROW(ky, wb) __asm__(DWK_ROW_AT(ky) DWK_ROW5(wb))
#define DWK5_ROW_S2(ky, wb) __asm__(DWK_ROW_AT(ky) DWK_ROW5_S2(wb))
#define DWK7_ROW(ky, wb) __asm__(DWK_ROW_AT(ky) DWK_S1_COLS_0_4(wb)); __asm__(DWK_ROW7_REST(wb))
#define DWK7_ROW_S2(ky, wb)                                                         \
    __asm__(DWK_ROW_AT(ky) DWK_S2_COLS_0_4(wb));                                    \
    __asm__(DWK_ROW7_S2_REST(wb))

#if TC_OPTIMIZE_SIZE
/* The rows by a loop: lr = the row's weights (tap t at lr + 8 t), the row cursor and the rows
 * left on the stack; the row body sets no flags, so SUBS's reach the BNE after it. */
#define DWKL_HEAD(name, rows)                                                       \
    DWQ_FUNC(name)                                                                  \
    "    push   {r0, r1, r2, r4-r11, lr}\n"                                         \
    "1:  ldr    lr, [sp]\n"                 /* lr = job */                           \
    "    add    r8, lr, #16\n"                                                      \
    "    ldm    r8, {r0-r3}\n"              /* A's sums start from bias_x, B's too */ \
    "    ldm    r8, {r4-r7}\n"                                                      \
    "    add    r8, lr, #80\n"              /* row cursor */                         \
    "    mov    r9, #" #rows "\n"           /* rows left */                          \
    "    strd   r8, r9, [sp, #4]\n"                                                 \
    "    add    lr, lr, #112\n"             /* lr = the weights of kernel row 0 */   \
    "2:  ldrd   r8, r9, [sp, #4]\n"                                                 \
    "    ldr    r12, [r8], #4\n"            /* r12 = ring row ky at A's window */    \
    "    subs   r9, r9, #1\n"                                                       \
    "    strd   r8, r9, [sp, #4]\n"
#define DWKL_ROW_END(row_bytes)                                                     \
    "    add    lr, lr, #" #row_bytes "\n"                                          \
    "    bne    2b\n"                                                               \
    "    ldr    lr, [sp]\n"
__asm__(DWKL_HEAD("tc_dwk5_pairs_asm", 5) DWK_ROW5(0));
__asm__(DWKL_ROW_END(40) DWK_TAIL("tc_dwk5_pairs_asm", 8, 5));
__asm__(DWKL_HEAD("tc_dwk5_pairs_s2_asm", 5) DWK_ROW5_S2(0));
__asm__(DWKL_ROW_END(40) DWK_TAIL("tc_dwk5_pairs_s2_asm", 16, 5));
__asm__(DWKL_HEAD("tc_dwk7_pairs_asm", 7) DWK_S1_COLS_0_4(0));
__asm__(DWK_ROW7_REST(0) DWKL_ROW_END(56));
__asm__(DWK_TAIL("tc_dwk7_pairs_asm", 8, 7));
__asm__(DWKL_HEAD("tc_dwk7_pairs_s2_asm", 7) DWK_S2_COLS_0_4(0));
__asm__(DWK_ROW7_S2_REST(0) DWKL_ROW_END(56));
__asm__(DWK_TAIL("tc_dwk7_pairs_s2_asm", 16, 7));
#else
__asm__(DWK_HEAD("tc_dwk5_pairs_asm"));
DWK5_ROW(0, 112);
DWK5_ROW(1, 152);
DWK5_ROW(2, 192);
DWK5_ROW(3, 232);
DWK5_ROW(4, 272);
__asm__(DWK_TAIL("tc_dwk5_pairs_asm", 8, 5));

__asm__(DWK_HEAD("tc_dwk5_pairs_s2_asm"));
DWK5_ROW_S2(0, 112);
DWK5_ROW_S2(1, 152);
DWK5_ROW_S2(2, 192);
DWK5_ROW_S2(3, 232);
DWK5_ROW_S2(4, 272);
__asm__(DWK_TAIL("tc_dwk5_pairs_s2_asm", 16, 5));

__asm__(DWK_HEAD("tc_dwk7_pairs_asm"));
DWK7_ROW(0, 112);
DWK7_ROW(1, 168);
DWK7_ROW(2, 224);
DWK7_ROW(3, 280);
DWK7_ROW(4, 336);
DWK7_ROW(5, 392);
DWK7_ROW(6, 448);
__asm__(DWK_TAIL("tc_dwk7_pairs_asm", 8, 7));

__asm__(DWK_HEAD("tc_dwk7_pairs_s2_asm"));
DWK7_ROW_S2(0, 112);
DWK7_ROW_S2(1, 168);
DWK7_ROW_S2(2, 224);
DWK7_ROW_S2(3, 280);
DWK7_ROW_S2(4, 336);
DWK7_ROW_S2(5, 392);
DWK7_ROW_S2(6, 448);
__asm__(DWK_TAIL("tc_dwk7_pairs_s2_asm", 16, 7));
#endif /* TC_OPTIMIZE_SIZE */
#endif /* TC_DSP_ASM && TC_DWCONV2D_K57 */
