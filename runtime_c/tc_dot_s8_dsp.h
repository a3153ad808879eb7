/*
 * tinycc runtime: int8 dot-product blocks on the DSP instructions of tc_arm_dsp.h, shared by
 * the fast paths of tc_conv2d_s8, tc_dwconv2d_s8 and tc_fc_s8 (internal, not public API).
 *
 * Layers, innermost first:
 *  - tc_dsp_dot_RxC: one SIMD loop adding sum over i < n of (x_r[i] - in_zp) * w_c[i] for
 *    R input rows x C weight rows (2x2, 1x4, 1x1) to int32 accumulators, any n >= 0.
 *    Activations are widened with SXTAB16 and a packed (-in_zp, -in_zp), which is exact as
 *    x - in_zp lies in [-255, 255]; weights with SXTB16; SMLAD adds two products. Both sides
 *    are split the same way, into bytes (0, 2) and (1, 3), so no repacking is needed. The
 *    n % 4 remaining values go through a scalar loop.
 *  - tc_dsp_taps_RxC: a block summed over the runs of a convolution window (tc_dsp_taps).
 *  - tc_dsp_matmul_s8: out[r][c] = requant(x_r . w_c) for all rows r and columns c: a fully
 *    connected layer, or a 1x1 convolution whose input pixels are rows of in_c values.
 * Functions holding a SIMD loop are TC_DSP_NOINLINE: inlined into the large kernels, gcc 12
 * spills inside the loop (up to 10 more instructions per 16 multiply-accumulates), while a
 * call costs a few dozen instructions per block of 4 outputs.
 *
 * Bit-exactness with the portable kernels: the products are the same integers, and int32
 * addition is associative. The order differs, but tc_conv.h bounds the sum of the absolute
 * values of the terms below 2^31, so no partial sum in any order overflows.
 *
 * Static cost of the SIMD loops on Cortex-M4, arm-none-eabi-gcc 12.2 -O2 (checked by
 * tests/test_kernels_dsp.py), in instructions per multiply-accumulate: matrix 2x2 block 23/16,
 * window 2x2 block 24/16, 1x4 block 25/16, 1x1 block 10/4. Build these kernels with -O2 or
 * -O3: at -Os gcc 12 spills inside the loops and they run about twice as many instructions.
 */
#ifndef TC_DOT_S8_DSP_H
#define TC_DOT_S8_DSP_H

#include "tc_arm_dsp.h"
#include "tc_common.h"

#if TC_HAVE_DSP

#ifdef __cplusplus
extern "C" {
#endif

/* (-in_zp, -in_zp) for SXTAB16. */
static inline uint32_t tc_dsp_input_offset(int32_t in_zp) {
    return tc_pack_s16x2(-in_zp, -in_zp);
}

/*
 * 2 input rows x 2 weight rows: x0 = x, x1 = x + x_step, w0 = w, w1 = w + w_step;
 * acc[0] += x0.w0, acc[1] += x0.w1, acc[2] += x1.w0, acc[3] += x1.w1.
 */
static inline void tc_dsp_dot_2x2(const int8_t *x, int32_t x_step, const int8_t *w,
                                  int32_t w_step, int32_t n, int32_t in_zp, int32_t acc[4]) {
    const uint32_t offset = tc_dsp_input_offset(in_zp);
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    int32_t i;
    for (i = n >> 2; i > 0; --i) {
        uint32_t w1_odd = tc_read_s8x4(w + w_step);
        uint32_t w0_odd = tc_read_s8x4(w);
        const uint32_t w0_even = tc_sxtb16(w0_odd);
        const uint32_t w1_even = tc_sxtb16(w1_odd);
        uint32_t x_odd = tc_read_s8x4(x + x_step);
        uint32_t x_even = tc_sxtab16(offset, x_odd);
        w0_odd = tc_sxtb16_ror8(w0_odd);
        w1_odd = tc_sxtb16_ror8(w1_odd);
        x_odd = tc_sxtab16_ror8(offset, x_odd);
        a10 = tc_smlad(x_even, w0_even, a10);
        a11 = tc_smlad(x_even, w1_even, a11);
        a10 = tc_smlad(x_odd, w0_odd, a10);
        a11 = tc_smlad(x_odd, w1_odd, a11);
        x_odd = tc_read_s8x4(x);
        x_even = tc_sxtab16(offset, x_odd);
        x_odd = tc_sxtab16_ror8(offset, x_odd);
        a00 = tc_smlad(x_even, w0_even, a00);
        a01 = tc_smlad(x_even, w1_even, a01);
        a00 = tc_smlad(x_odd, w0_odd, a00);
        a01 = tc_smlad(x_odd, w1_odd, a01);
        x += 4;
        w += 4;
    }
    for (i = 0; i < (n & 3); ++i) {
        const int32_t x0 = (int32_t)x[i] - in_zp;
        const int32_t x1 = (int32_t)x[x_step + i] - in_zp;
        a00 += x0 * w[i];
        a01 += x0 * w[w_step + i];
        a10 += x1 * w[i];
        a11 += x1 * w[w_step + i];
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

/* 1 input row x 4 weight rows w + k * w_step, k = 0..3: acc[k] += x.w_k. (Shaped like
 * tc_dsp_dot_2x2, a different block: each input word meets four weight rows.) */
static inline void tc_dsp_dot_1x4(const int8_t *x, const int8_t *w, int32_t w_step, int32_t n,
                                  int32_t in_zp, int32_t acc[4]) {
    const uint32_t offset = tc_dsp_input_offset(in_zp);
    const int8_t *w2 = w + 2 * w_step;
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int32_t i;
    for (i = n >> 2; i > 0; --i) {
        uint32_t x_odd = tc_read_s8x4(x);
        const uint32_t x_even = tc_sxtab16(offset, x_odd);
        uint32_t wk_odd = tc_read_s8x4(w + w_step);
        uint32_t wk_even = tc_sxtb16(wk_odd);
        x_odd = tc_sxtab16_ror8(offset, x_odd);
        wk_odd = tc_sxtb16_ror8(wk_odd);
        a1 = tc_smlad(x_even, wk_even, a1);
        a1 = tc_smlad(x_odd, wk_odd, a1);
        wk_odd = tc_read_s8x4(w);
        wk_even = tc_sxtb16(wk_odd);
        wk_odd = tc_sxtb16_ror8(wk_odd);
        a0 = tc_smlad(x_even, wk_even, a0);
        a0 = tc_smlad(x_odd, wk_odd, a0);
        wk_odd = tc_read_s8x4(w2 + w_step);
        wk_even = tc_sxtb16(wk_odd);
        wk_odd = tc_sxtb16_ror8(wk_odd);
        a3 = tc_smlad(x_even, wk_even, a3);
        a3 = tc_smlad(x_odd, wk_odd, a3);
        wk_odd = tc_read_s8x4(w2);
        wk_even = tc_sxtb16(wk_odd);
        wk_odd = tc_sxtb16_ror8(wk_odd);
        a2 = tc_smlad(x_even, wk_even, a2);
        a2 = tc_smlad(x_odd, wk_odd, a2);
        x += 4;
        w += 4;
        w2 += 4;
    }
    for (i = 0; i < (n & 3); ++i) {
        const int32_t xv = (int32_t)x[i] - in_zp;
        a0 += xv * w[i];
        a1 += xv * w[w_step + i];
        a2 += xv * w2[i];
        a3 += xv * w2[w_step + i];
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* 1 input row x 1 weight row: returns acc + x.w. */
static inline int32_t tc_dsp_dot_1x1(const int8_t *x, const int8_t *w, int32_t n, int32_t in_zp,
                                     int32_t acc) {
    const uint32_t offset = tc_dsp_input_offset(in_zp);
    int32_t i;
    for (i = n >> 2; i > 0; --i) {
        const uint32_t xw = tc_read_s8x4(x);
        const uint32_t ww = tc_read_s8x4(w);
        acc = tc_smlad(tc_sxtab16(offset, xw), tc_sxtb16(ww), acc);
        acc = tc_smlad(tc_sxtab16_ror8(offset, xw), tc_sxtb16_ror8(ww), acc);
        x += 4;
        w += 4;
    }
    for (i = 0; i < (n & 3); ++i) {
        acc += ((int32_t)x[i] - in_zp) * w[i];
    }
    return acc;
}

/* The in-image taps of a convolution window as runs of contiguous int8 values: `rows` kernel
 * rows of `runs` runs of `run_len` values, laid out alike in the input and in each output
 * channel's weights. Rows are x_row / w_row elements apart in the input / weights, the runs of
 * a row x_run / w_run. */
typedef struct {
    int32_t rows, runs, run_len;
    int32_t x_row, w_row, x_run, w_run;
} tc_dsp_taps;

/* Offset of run k of kernel row r from the window's first tap, in the input or the weights.
 * (Offsets rather than stepped pointers: a pointer stepped past the last run would leave the
 * array, which C does not allow even if it is never read.) */
static inline int32_t tc_dsp_x_offset(const tc_dsp_taps *t, int32_t r, int32_t k) {
    return r * t->x_row + k * t->x_run;
}

static inline int32_t tc_dsp_w_offset(const tc_dsp_taps *t, int32_t r, int32_t k) {
    return r * t->w_row + k * t->w_run;
}

/* Sums over the taps for inputs x, x + x_step and weights w, w + w_step:
 * acc = {x.w, x.(w + w_step), (x + x_step).w, (x + x_step).(w + w_step)}. */
static TC_DSP_NOINLINE void tc_dsp_taps_2x2(const tc_dsp_taps *t, const int8_t *x,
                                            int32_t x_step, const int8_t *w, int32_t w_step,
                                            int32_t in_zp, int32_t acc[4]) {
    int32_t r, k;
    acc[0] = acc[1] = acc[2] = acc[3] = 0;
    for (r = 0; r < t->rows; ++r) {
        for (k = 0; k < t->runs; ++k) {
            tc_dsp_dot_2x2(x + tc_dsp_x_offset(t, r, k), x_step, w + tc_dsp_w_offset(t, r, k),
                           w_step, t->run_len, in_zp, acc);
        }
    }
}

/* Sums over the taps for input x and weights w + c * w_step: acc[c], c = 0..3. */
static TC_DSP_NOINLINE void tc_dsp_taps_1x4(const tc_dsp_taps *t, const int8_t *x,
                                            const int8_t *w, int32_t w_step, int32_t in_zp,
                                            int32_t acc[4]) {
    int32_t r, k;
    acc[0] = acc[1] = acc[2] = acc[3] = 0;
    for (r = 0; r < t->rows; ++r) {
        for (k = 0; k < t->runs; ++k) {
            tc_dsp_dot_1x4(x + tc_dsp_x_offset(t, r, k), w + tc_dsp_w_offset(t, r, k), w_step,
                           t->run_len, in_zp, acc);
        }
    }
}

/* Sum over the taps for input x and weights w. */
static TC_DSP_NOINLINE int32_t tc_dsp_taps_1x1(const tc_dsp_taps *t, const int8_t *x,
                                               const int8_t *w, int32_t in_zp) {
    int32_t r, k, acc = 0;
    for (r = 0; r < t->rows; ++r) {
        for (k = 0; k < t->runs; ++k) {
            acc = tc_dsp_dot_1x1(x + tc_dsp_x_offset(t, r, k), w + tc_dsp_w_offset(t, r, k),
                                 t->run_len, in_zp, acc);
        }
    }
    return acc;
}

/* Kernel indices k in [*lo, *hi) with 0 <= start + k * dil < size and k < k_size: the taps of
 * a window starting at input coordinate `start` that fall inside the image. */
static inline void tc_dsp_tap_range(int32_t start, int32_t dil, int32_t size, int32_t k_size,
                                    int32_t *lo, int32_t *hi) {
    const int32_t first = start >= 0 ? 0 : (dil - 1 - start) / dil;
    const int32_t end = start >= size ? 0 : (size - start + dil - 1) / dil;
    *lo = TC_MIN(first, k_size);
    *hi = TC_MAX(*lo, TC_MIN(end, k_size));
}

/* What turns the accumulator of output channel `ch` into int8 (bias may be NULL), exactly as
 * the portable kernels do: tc_requant_s8_nonneg(acc + bias[ch], mult[ch], shift[ch], ...). */
typedef struct {
    const int32_t *bias, *mult, *shift;
    int32_t out_zp, act_min, act_max;
    int32_t channel_mask; /* -1: mult/shift per channel; 0: one pair for all channels */
} tc_dsp_requant;

static inline tc_dsp_requant tc_dsp_make_requant(const int32_t *bias, const int32_t *mult,
                                                 const int32_t *shift, int32_t out_zp,
                                                 int32_t act_min, int32_t act_max) {
    tc_dsp_requant q;
    q.bias = bias;
    q.mult = mult;
    q.shift = shift;
    q.out_zp = out_zp;
    q.act_min = act_min;
    q.act_max = act_max;
    q.channel_mask = -1;
    return q;
}

static inline int8_t tc_dsp_output(const tc_dsp_requant *q, int32_t ch, int32_t acc) {
    if (q->bias != NULL) acc += q->bias[ch];
    return tc_requant_s8_nonneg(acc, q->mult[ch & q->channel_mask], q->shift[ch & q->channel_mask], q->out_zp, q->act_min,
                                q->act_max);
}

/* tc_dsp_output kept out of line, for outputs off the hot paths (leftover channels, border
 * pixels): each inlined requantization costs about 200 bytes of code. */
static TC_DSP_NOINLINE int8_t tc_dsp_output_call(const tc_dsp_requant *q, int32_t ch,
                                                 int32_t acc) {
    return tc_dsp_output(q, ch, acc);
}

/* out = {output c of acc[0], output c + 1 of acc[1], output c of acc[2], output c + 1 of
 * acc[3]}: a 2x2 block's results, each channel's parameters loaded once. */
static inline void tc_dsp_output_2x2(const tc_dsp_requant *q, int32_t c, const int32_t acc[4],
                                     int8_t out[4]) {
    const int32_t bias0 = q->bias != NULL ? q->bias[c] : 0;
    const int32_t bias1 = q->bias != NULL ? q->bias[c + 1] : 0;
    const int32_t m0 = c & q->channel_mask, m1 = (c + 1) & q->channel_mask;
    const int32_t mult0 = q->mult[m0], mult1 = q->mult[m1];
    const int32_t shift0 = q->shift[m0], shift1 = q->shift[m1];
    out[0] = tc_requant_s8_nonneg(acc[0] + bias0, mult0, shift0, q->out_zp, q->act_min,
                                  q->act_max);
    out[1] = tc_requant_s8_nonneg(acc[1] + bias1, mult1, shift1, q->out_zp, q->act_min,
                                  q->act_max);
    out[2] = tc_requant_s8_nonneg(acc[2] + bias0, mult0, shift0, q->out_zp, q->act_min,
                                  q->act_max);
    out[3] = tc_requant_s8_nonneg(acc[3] + bias1, mult1, shift1, q->out_zp, q->act_min,
                                  q->act_max);
}

/*
 * Requantization with the output zero point folded into the rounding constant, for the hot
 * loops. For shift = -e with 2 <= e <= TC_DSP_RQ_MAX_E, tc_requant_s8_nonneg(acc, mult, shift,
 * out_zp, -128, 127) == tc_dsp_rq(acc, mult, tc_dsp_rq_khi(shift, out_zp), -shift - 1):
 *  - tc_mbqm_right adds (2^(e-1) - s) * 2^31 + 2^30 to acc * mult (s = 1 when acc < 0) before
 *    taking bits 32 and up; for e >= 2 that constant is 2^(e-2) * 2^32 + 2^30 - s * 2^31, i.e.
 *    the word pair {hi = 2^(e-2) - s, lo = 2^30 | (acc & 2^31)};
 *  - adding out_zp * 2^(e-1) to hi adds exactly out_zp after the shift right by e - 1. With
 *    |acc * mult| < 2^62 and e <= 23, hi stays below 2^31 in magnitude.
 * So per output: one SMLAL on a pair built from the sign of acc, a shift and SSAT.
 */
enum { TC_DSP_RQ_MAX_E = 23 };

static inline int tc_dsp_rq_applies(int32_t shift) {
    return (uint32_t)(-2 - shift) <= (uint32_t)(TC_DSP_RQ_MAX_E - 2); /* -23 <= shift <= -2 */
}

/* Whether tc_dsp_rq serves every one of n channels' shifts. */
static inline int tc_dsp_rq_applies_all(const int32_t *shift, int32_t n) {
    int32_t c;
    for (c = 0; c < n; ++c) {
        if (!tc_dsp_rq_applies(shift[c])) return 0;
    }
    return 1;
}

/* The per-channel part of the constant: (2 * out_zp + 1) * 2^(e-2). */
static inline int32_t tc_dsp_rq_khi(int32_t shift, int32_t out_zp) {
    return (2 * out_zp + 1) * (INT32_C(1) << (-shift - 2));
}

/* acc requantized, out_zp added and saturated to int8 (e1 = e - 1 = -shift - 1). */
static inline int32_t tc_dsp_rq(int32_t acc, int32_t mult, int32_t khi, int32_t e1) {
    const uint32_t lo = UINT32_C(0x40000000) | ((uint32_t)acc & UINT32_C(0x80000000));
    const int32_t hi = khi - (acc < 0 ? 1 : 0);
    const int64_t v = (int64_t)hi * ((int64_t)1 << 32) + (int64_t)lo + (int64_t)acc * mult;
    return tc_ssat8((int32_t)(v >> 32) >> e1);
}

/*
 * Requantization from a doubled accumulator acc2 = 2 * acc, exact (|acc| < 2^30): then
 * SRDHM(acc, mult) = floor((acc2 * mult + 2^31) / 2^32), one SMMLAR, and for shift = -e with
 * 1 <= e <= TC_DSP_RQ_MAX_E, RoundingDivideByPOT(v, e) + out_zp = floor((v + 2^(e-1) - s) / 2^e)
 * + out_zp (s = [v < 0], which may be taken as [acc < 0]: they differ only where v = 0, and
 * there both give 0), so
 *    tc_requant_s8_nonneg(acc, mult, -e, out_zp, -128, 127)
 *        == ssat8((SMMLAR(acc2, mult, (2 * out_zp + 1) * 2^(e-1)) - [acc < 0]) >> e),
 * and for shift 0 == ssat8(SMMLAR(acc2, mult, out_zp)); shift 1 likewise from acc4 = 4 * acc
 * (its left shift, exact below 2^29). No overflow: |SMMLAR| < 2^30 + 255 * 2^22.
 * Where the doubling is folded into the weights and bias (shallow pointwise layers) this is
 * SMMLAR, SUB, ASR and SSAT per output; tc_dsp_rq2_k(shift, out_zp) is the constant,
 * e = max(-shift, 0).
 */
static inline int32_t tc_dsp_rq2_k(int32_t shift, int32_t out_zp) {
    return shift < 0 ? (2 * out_zp + 1) * (INT32_C(1) << (-shift - 1)) : out_zp;
}

static inline int32_t tc_dsp_rq2(int32_t acc2, int32_t mult, int32_t k, int32_t e) {
    const int32_t t = tc_smmlar(acc2, mult, k);
    return tc_ssat8(e > 0 ? (t - (acc2 < 0 ? 1 : 0)) >> e : t);
}

/*
 * Shifts -1, 0 and 1 (multipliers of about 1/4 to 2: ternary layers, whose scales are large),
 * for any int32 accumulator: tc_dsp_rq does not reach them (its constant needs e >= 2), so the
 * accumulator is doubled with saturation (QADD; twice for shift 1). Below 2^30 (2^29) that is
 * the exact tc_dsp_rq2; above, the exact result and this one are both beyond +-256 with the
 * sign of acc when mult >= TC_DSP_RQ_NEAR_MIN_MULT (QuantizeMultiplier gives >= 2^30), or both
 * out_zp when mult is 0, and the int8 saturation hides the difference.
 */
enum { TC_DSP_RQ_NEAR_MIN_MULT = 1 << 11 };

static inline int tc_dsp_rq_near_applies(int32_t mult, int32_t shift) {
    return (uint32_t)(shift + 1) <= 2u && (mult == 0 || mult >= TC_DSP_RQ_NEAR_MIN_MULT);
}

static inline int32_t tc_dsp_rq_near(int32_t acc, int32_t mult, int32_t k, int32_t shift) {
    int32_t acc2 = tc_qadd(acc, acc);
    if (shift > 0) acc2 = tc_qadd(acc2, acc2);
    return tc_dsp_rq2(acc2, mult, k, shift < 0 ? 1 : 0);
}

/* tc_requant_s8_nonneg out of line (left shifts, extreme right shifts: rare, off the hot path). */
static TC_DSP_NOINLINE int8_t tc_requant_call(int32_t acc, int32_t mult, int32_t shift,
                                              const tc_dsp_requant *q) {
    return tc_requant_s8_nonneg(acc, mult, shift, q->out_zp, q->act_min, q->act_max);
}

/* Rows x and x + depth of the matrix product, all columns. */
static TC_DSP_NOINLINE void tc_dsp_matmul_2rows(const int8_t *x, const int8_t *w, int32_t cols,
                                                int32_t depth, int32_t in_zp,
                                                const tc_dsp_requant *q, int8_t *y) {
    const tc_dsp_requant rq = *q; /* a local copy: stores through y cannot change it */
    int32_t c;
    for (c = 0; c + 2 <= cols; c += 2) {
        int32_t acc[4];
        int8_t out[4];
        acc[0] = acc[1] = acc[2] = acc[3] = 0;
        tc_dsp_dot_2x2(x, depth, w + c * depth, depth, depth, in_zp, acc);
        tc_dsp_output_2x2(&rq, c, acc, out);
        y[c] = out[0];
        y[c + 1] = out[1];
        y[cols + c] = out[2];
        y[cols + c + 1] = out[3];
    }
    if (c < cols) {
        const int32_t acc0 = tc_dsp_dot_1x1(x, w + c * depth, depth, in_zp, 0);
        const int32_t acc1 = tc_dsp_dot_1x1(x + depth, w + c * depth, depth, in_zp, 0);
        y[c] = tc_dsp_output_call(&rq, c, acc0);
        y[cols + c] = tc_dsp_output_call(&rq, c, acc1);
    }
}

/* Row x of the matrix product, all columns. */
static TC_DSP_NOINLINE void tc_dsp_matmul_1row(const int8_t *x, const int8_t *w, int32_t cols,
                                               int32_t depth, int32_t in_zp,
                                               const tc_dsp_requant *q, int8_t *y) {
    const tc_dsp_requant rq = *q;
    int32_t c;
    for (c = 0; c + 4 <= cols; c += 4) {
        int32_t acc[4];
        acc[0] = acc[1] = acc[2] = acc[3] = 0;
        tc_dsp_dot_1x4(x, w + c * depth, depth, depth, in_zp, acc);
        y[c] = tc_dsp_output(&rq, c, acc[0]);
        y[c + 1] = tc_dsp_output(&rq, c + 1, acc[1]);
        y[c + 2] = tc_dsp_output(&rq, c + 2, acc[2]);
        y[c + 3] = tc_dsp_output(&rq, c + 3, acc[3]);
    }
    for (; c < cols; ++c) {
        y[c] = tc_dsp_output_call(&rq, c, tc_dsp_dot_1x1(x, w + c * depth, depth, in_zp, 0));
    }
}

/*
 * out[r * cols + c] = output c of sum over k < depth of (x[r * depth + k] - in_zp) *
 * w[c * depth + k], for r < rows and c < cols. Rows are taken in pairs (2x2 blocks, the input
 * and weight rows are both `depth` apart); a last odd row takes 4 columns at a time.
 */
static inline void tc_dsp_matmul_s8(const int8_t *x, const int8_t *w, int32_t rows,
                                    int32_t cols, int32_t depth, int32_t in_zp,
                                    const tc_dsp_requant *q, int8_t *out) {
    int32_t r;
    for (r = 0; r + 2 <= rows; r += 2) {
        tc_dsp_matmul_2rows(x + r * depth, w, cols, depth, in_zp, q, out + r * cols);
    }
    if (r < rows) tc_dsp_matmul_1row(x + r * depth, w, cols, depth, in_zp, q, out + r * cols);
}

#ifdef __cplusplus
}
#endif

#endif /* TC_HAVE_DSP */

#endif /* TC_DOT_S8_DSP_H */
