/*
 * tinycc runtime: the SIMD-extension variant of tc_add_s8 / tc_sub_s8's rows (ARMv7E-M DSP
 * extension, or its host emulation), bit-exact with the portable reference in tc_add_s8.c,
 * whose row function calls it when the shifts suit it (tc_add_s8_dsp_applies).
 *
 * TFLM's three MultiplyByQuantizedMultiplier calls per element (two operands, one output), each
 * a rounding doubling high multiply then a rounding right shift, become one multiply each:
 *  - an operand whose shift is 0 (the input with the larger scale: multiplier 0.5 * 2^31 ..) is
 *    SRDHM((x - zp) * 2^20, m) = floor(((x - zp) * m * 2^20 + 2^30) / 2^31)
 *                              = floor(((x - zp) * 2^21 * m + 2^31) / 2^32): SMMULR of
 *    (x - zp) << 21 (|x - zp| <= 255: below 2^29) and m;
 *  - an operand whose shift is -e, e in [1, 31], takes the same SMMULR, then its rounding right
 *    shift as one add of a constant built from the sign and a shift;
 *  - an ADD adds the second rescaled operand to the first's SMMULR in the same instruction
 *    (SMMLAR: acc + the rounded high word, exactly);
 *  - the output takes tc_dsp_rq (one SMLAL, a shift, SSAT with the zero point folded in) when
 *    its shift is in [-23, -2], as the conv kernels do.
 * The other layers keep the portable row.
 */
#include "tc_arm_dsp.h"
#include "tc_dot_s8_dsp.h"
#include "tc_eltwise.h"

#include <string.h>

#if TC_HAVE_DSP

/* TFLM's rescaled operand MBQM((x - zp) << 20, mult, shift), shift = -e <= 0, with zp21 =
 * zp << 21: the rounding doubling high multiply SRDHM((x - zp) << 20, mult) is one SMMULR of
 * (x - zp) << 21 (see the top); for e >= 1 (`e_zero` a constant of the caller's loop) the
 * rounding right shift is floor((v + 2^(e-1) - s) / 2^e) with s = [x - zp < 0] (tc_mbqm_right's
 * identity), the 2^(e-1) (half) added by the multiply itself (SMMLAR). */
static TC_ALWAYS_INLINE inline int32_t add_rescale(int32_t x, int32_t zp21, int32_t mult,
                                                   int32_t half, int32_t e, const int e_zero) {
    const int32_t d21 = x * (INT32_C(1) << 21) - zp21;
    if (e_zero) return tc_smmulr(d21, mult);
    return (tc_smmlar(d21, mult, half) - (d21 < 0 ? 1 : 0)) >> e;
}

/* The operand's constants: zp << 21, the multiplier, 2^(e-1) (0 for e = 0) and e. */
typedef struct {
    int32_t zp21, mult, half, e;
} add_operand;

static add_operand add_make_operand(int32_t zp, int32_t mult, int32_t shift) {
    add_operand o;
    o.zp21 = zp * (INT32_C(1) << 21);
    o.mult = mult;
    o.e = -shift;
    o.half = shift < 0 ? INT32_C(1) << (-shift - 1) : 0;
    return o;
}

int tc_add_s8_dsp_applies(const tc_add_params *p) {
    return tc_dsp_rq_applies(p->out_shift);
}

/* n outputs from contiguous inputs, ADD (sign2 = 1) or SUB (-1); e1_zero, e2_zero: the
 * operands' shifts are 0 (an ADD's larger-scale operand: multiplier 0.5), clamp_lo / clamp_hi:
 * the fused activation raises the lower / lowers the upper bound of [-128, 127] (a ReLU only the
 * lower: one compare and one register less in the loop). Constants of the caller: one loop per
 * case. */
static TC_ALWAYS_INLINE inline void add_rows(const tc_add_params *p, const add_operand *o1,
                                             const add_operand *o2, const int8_t *in1,
                                             const int8_t *in2, int8_t *out, int32_t n,
                                             const int32_t sign2, const int e1_zero,
                                             const int e2_zero, const int clamp_lo,
                                             const int clamp_hi) {
    const int32_t zp1 = o1->zp21, m1 = o1->mult, h1 = o1->half, s1 = o1->e;
    const int32_t zp2 = o2->zp21, m2 = o2->mult, h2 = o2->half, s2 = o2->e;
    const int32_t mult = p->out_multiplier, e = -p->out_shift;
    const int32_t k = tc_dsp_rq2_k(p->out_shift, p->out_zp);
    const int32_t act_min = p->act_min, act_max = p->act_max;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t b = add_rescale(in2[i], zp2, m2, h2, s2, e2_zero);
        /* An ADD of an operand with shift 0: SMMLAR adds b to its SMMULR for free (b + the
         * rounded high word of d * m, exactly; |a|, |b| < 2^28). */
        const int32_t sum = sign2 > 0 && e1_zero
                                ? tc_smmlar(in1[i] * (INT32_C(1) << 21) - zp1, m1, b)
                                : add_rescale(in1[i], zp1, m1, h1, s1, e1_zero) +
                                      (sign2 > 0 ? b : -b);
        /* |sum| < 2^29: doubled exactly, then tc_dsp_rq2 (SMMLAR, SUB, ASR, SSAT: one
         * instruction and one register fewer than tc_dsp_rq's SMLAL pair). */
        const int32_t sum2 = sum * 2;
        int32_t y = tc_ssat8((tc_smmlar(sum2, mult, k) - (sum2 < 0 ? 1 : 0)) >> e);
        if (clamp_lo) y = TC_MAX(y, act_min);
        if (clamp_hi) y = TC_MIN(y, act_max);
        out[i] = (int8_t)y;
    }
}

/* SUB, and an ADD whose two operand shifts are nonzero (not from TFLM's arithmetic, where the
 * larger scale's multiplier is 0.5): the shifts at run time, e = 0 folded as half = 0 and
 * s = 0. */
static TC_DSP_NOINLINE void add_rows_any(const tc_add_params *p, int32_t sign2,
                                         const int8_t *in1, const int8_t *in2, int8_t *out,
                                         int32_t n) {
    const add_operand o1 = add_make_operand(p->in1_zp, p->in1_multiplier, p->in1_shift);
    const add_operand o2 = add_make_operand(p->in2_zp, p->in2_multiplier, p->in2_shift);
    const int32_t n1 = o1.e > 0 ? 1 : 0, n2 = o2.e > 0 ? 1 : 0;
    const int32_t mult = p->out_multiplier, e1 = -p->out_shift - 1;
    const int32_t khi = tc_dsp_rq_khi(p->out_shift, p->out_zp);
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t d1 = in1[i] * (INT32_C(1) << 21) - o1.zp21;
        const int32_t d2 = in2[i] * (INT32_C(1) << 21) - o2.zp21;
        const int32_t a = (tc_smmlar(d1, o1.mult, o1.half) - (d1 < 0 ? n1 : 0)) >> o1.e;
        const int32_t b = (tc_smmlar(d2, o2.mult, o2.half) - (d2 < 0 ? n2 : 0)) >> o2.e;
        const int32_t y = tc_dsp_rq(sign2 > 0 ? a + b : a - b, mult, khi, e1);
        out[i] = (int8_t)TC_MIN(TC_MAX(y, p->act_min), p->act_max);
    }
}

/* TFLM's ADD gives the operand of the larger scale the multiplier 0.5 (2^30, shift 0): its
 * SMMULR of (x - zp) << 21 is (x - zp) << 19 exactly (the product is a multiple of 2^32 / 2), so
 * it costs no multiply. Its -zp << 19 then joins the other operand's rounding constant: adding
 * a multiple of 2^e before the shift right by e adds the quotient exactly, so with
 * half' = 2^(e-1) - zp1 * 2^(19 + e), b' = (SMMLAR(d2, m2, half') - s) >> e = b - zp1 * 2^19
 * and the sum is b' + (x1 << 19): one ADD with a shifted operand. It needs e >= 1 and half' and
 * SMMLAR's result inside int32 (add_half_applies). Fewer live constants (no zp1, m1) keep the
 * clamped loops out of the stack. */
enum { ADD_HALF_MULT = 1 << 30, ADD_HALF_SHIFT = 19 };

static int add_half_applies(const add_operand *o1, const add_operand *o2, int32_t zp1) {
    /* |SMMULR(d2, m2)| <= 2^28 (|d2| < 2^29, m2 < 2^31) */
    const int64_t zp_term = (int64_t)(zp1 < 0 ? -zp1 : zp1) << (ADD_HALF_SHIFT + o2->e);
    return o1->mult == ADD_HALF_MULT && o1->e == 0 && o2->e >= 1 && o2->e <= 30 &&
           zp_term + o2->half + (INT64_C(1) << 28) < INT64_C(0x7FFFFFFF);
}

static TC_ALWAYS_INLINE inline void add_rows_half(const tc_add_params *p, const add_operand *o2,
                                                  int32_t half2, const int8_t *in1,
                                                  const int8_t *in2, int8_t *out, int32_t n,
                                                  const int clamp_lo, const int clamp_hi) {
    const int32_t zp2 = o2->zp21, m2 = o2->mult, s2 = o2->e;
    const int32_t mult = p->out_multiplier, e = -p->out_shift;
    const int32_t k = tc_dsp_rq2_k(p->out_shift, p->out_zp);
    const int32_t act_min = p->act_min, act_max = p->act_max;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t d2 = in2[i] * (INT32_C(1) << 21) - zp2;
        const int32_t b = (tc_smmlar(d2, m2, half2) - (d2 < 0 ? 1 : 0)) >> s2;
        const int32_t sum2 = (b + in1[i] * (INT32_C(1) << ADD_HALF_SHIFT)) * 2;
        int32_t y = tc_ssat8((tc_smmlar(sum2, mult, k) - (sum2 < 0 ? 1 : 0)) >> e);
        if (clamp_lo) y = TC_MAX(y, act_min);
        if (clamp_hi) y = TC_MIN(y, act_max);
        out[i] = (int8_t)y;
    }
}

#define ADD_ROWS_HALF_CASE(name, clamp_lo, clamp_hi)                                             \
    static TC_DSP_NOINLINE void name(const tc_add_params *p, const add_operand *o2,             \
                                     int32_t half2, const int8_t *in1, const int8_t *in2,       \
                                     int8_t *out, int32_t n) {                                  \
        add_rows_half(p, o2, half2, in1, in2, out, n, clamp_lo, clamp_hi);                      \
    }
ADD_ROWS_HALF_CASE(add_rows_half_full, 0, 0)
ADD_ROWS_HALF_CASE(add_rows_half_lo, 1, 0)
ADD_ROWS_HALF_CASE(add_rows_half_hi, 0, 1)
ADD_ROWS_HALF_CASE(add_rows_half_clamp, 1, 1)

/* The rows of add_half_applies: the folded constant, then one loop per clamp. */
static void add_rows_half_dispatch(const tc_add_params *p, int32_t zp1, const add_operand *o2,
                                   const int8_t *in1, const int8_t *in2, int8_t *out, int32_t n,
                                   int clamp_lo, int clamp_hi) {
    const int32_t half2 = o2->half - zp1 * (INT32_C(1) << (ADD_HALF_SHIFT + o2->e));
    if (clamp_lo && clamp_hi) {
        add_rows_half_clamp(p, o2, half2, in1, in2, out, n);
    } else if (clamp_lo) {
        add_rows_half_lo(p, o2, half2, in1, in2, out, n);
    } else if (clamp_hi) {
        add_rows_half_hi(p, o2, half2, in1, in2, out, n);
    } else {
        add_rows_half_full(p, o2, half2, in1, in2, out, n);
    }
}

/* The loops of an ADD whose operand shifts are both 0 (equal scales), one per clamp case. */
#define ADD_ROWS_CASE(name, e2_zero, clamp_lo, clamp_hi)                                         \
    static TC_DSP_NOINLINE void name(const tc_add_params *p, const add_operand *o1,             \
                                     const add_operand *o2, const int8_t *in1,                  \
                                     const int8_t *in2, int8_t *out, int32_t n) {               \
        add_rows(p, o1, o2, in1, in2, out, n, 1, 1, e2_zero, clamp_lo, clamp_hi);                \
    }
ADD_ROWS_CASE(add_rows_00, 1, 0, 0)
ADD_ROWS_CASE(add_rows_00_lo, 1, 1, 0)
ADD_ROWS_CASE(add_rows_00_hi, 1, 0, 1)
ADD_ROWS_CASE(add_rows_00_clamp, 1, 1, 1)

void tc_add_s8_row_dsp(const tc_add_params *p, int32_t sign2, const int8_t *in1,
                       int32_t stride1, const int8_t *in2, int32_t stride2, int8_t *out,
                       int32_t n) {
    const int clamp_lo = p->act_min != -128, clamp_hi = p->act_max != 127;
    add_operand o1 = add_make_operand(p->in1_zp, p->in1_multiplier, p->in1_shift);
    add_operand o2 = add_make_operand(p->in2_zp, p->in2_multiplier, p->in2_shift);
    (void)stride1; /* both 1: the caller (add_row) checks */
    (void)stride2;
    const int swapped = o1.e != 0 && o2.e == 0;
    if (swapped) { /* ADD commutes: the operand with shift 0 first */
        const add_operand t = o1;
        const int8_t *tp = in1;
        o1 = o2;
        o2 = t;
        in1 = in2;
        in2 = tp;
    }
    /* direct calls only: the static stack bound follows the call graph */
    if (sign2 > 0 && add_half_applies(&o1, &o2, o1.zp21 / (INT32_C(1) << 21))) {
        add_rows_half_dispatch(p, o1.zp21 / (INT32_C(1) << 21), &o2, in1, in2, out, n,
                               clamp_lo, clamp_hi);
    } else if (sign2 > 0 && o1.e == 0 && o2.e == 0) {
        if (clamp_lo && clamp_hi) {
            add_rows_00_clamp(p, &o1, &o2, in1, in2, out, n);
        } else if (clamp_lo) {
            add_rows_00_lo(p, &o1, &o2, in1, in2, out, n);
        } else if (clamp_hi) {
            add_rows_00_hi(p, &o1, &o2, in1, in2, out, n);
        } else {
            add_rows_00(p, &o1, &o2, in1, in2, out, n);
        }
    } else {
        /* SUB, an ADD of two nonzero shifts, and the rare ADD whose folded constant would
         * leave int32 (a scale ratio below 1/32 with a large zero point): the general rows,
         * with the caller's operand order (p's) */
        add_rows_any(p, sign2, swapped ? in2 : in1, swapped ? in1 : in2, out, n);
    }
}

/* ---- tc_add_s8_table's rows: two table entries, one add, tc_dsp_rq2 ---------------------- */

/* The doubled sum's requantization by tc_dsp_rq2 (SMMLAR, SUB of the sign, ASR, SSAT or USAT)
 * wants e = -shift >= 1 (its e = 0 form differs), and SMMLAR must not overflow: the high word
 * of acc2 * mult is below 2^29 in magnitude (|acc2| < 2^30, mult < 2^31) and the constant
 * (2 * zp + 1) * 2^(e-1), with zp up to out_zp + 128 = 255 in the clamped loop, is below 2^30
 * for e <= 22. Every ADD's output shift (about -20) is in range. */
enum { ADD_TABLE_MAX_E = 22 };

int tc_add_s8_table_dsp_applies(const tc_add_params *p) {
    return p->out_shift <= -1 && p->out_shift >= -ADD_TABLE_MAX_E;
}

/* One output plus 128, in [0, 255]: two table entries, their (doubled) sum and tc_dsp_rq2
 * (SMMLAR, sign correction, shift) with out_zp + 128 in k, saturated unsigned (USAT):
 * ssat8(v) + 128 == clamp(v + 128, 0, 255), and a biased byte needs no mask to be packed. */
static TC_ALWAYS_INLINE inline uint32_t add_table_biased(const int32_t *t1, const int32_t *t2,
                                                         int8_t x1, int8_t x2, int32_t mult,
                                                         int32_t k, int32_t e) {
    const int32_t acc2 = t1[x1] + t2[x2];
    const int32_t v = (tc_smmlar(acc2, mult, k) - (acc2 < 0 ? 1 : 0)) >> e;
    return (uint32_t)TC_MIN(TC_MAX(v, 0), 255);
}

/* The same output not biased: SSAT with out_zp in k. */
static TC_ALWAYS_INLINE inline int8_t add_table_s8(const int32_t *t1, const int32_t *t2,
                                                   int8_t x1, int8_t x2, int32_t mult, int32_t k,
                                                   int32_t e) {
    const int32_t acc2 = t1[x1] + t2[x2];
    return (int8_t)tc_ssat8((tc_smmlar(acc2, mult, k) - (acc2 < 0 ? 1 : 0)) >> e);
}

/* n outputs without a clamp (12 instructions each on the M4 with the loop; unrolled by hand,
 * gcc 12 stops using post-increment loads and it is no fewer). Both input bytes of an output
 * are read before it is written, so out may be in1 or in2 (in place). */
static TC_DSP_NOINLINE void add_table_rows_full(const tc_add_params *p, const int32_t *t1,
                                                const int32_t *t2, const int8_t *in1,
                                                const int8_t *in2, int8_t *out, int32_t n) {
    const int32_t mult = p->out_multiplier, e = -p->out_shift;
    const int32_t k = tc_dsp_rq2_k(p->out_shift, p->out_zp);
    int32_t i;
    for (i = 0; i < n; ++i) out[i] = add_table_s8(t1, t2, in1[i], in2[i], mult, k, e);
}

/* n outputs with the fused activation's clamp, 4 at a time: biased by 128
 * (add_table_biased), packed into a word with three ORs, unbiased by one EOR, clamped
 * lane-wise (SSUB8 + SEL per bound) and stored at once (fewer instructions than 4 byte stores
 * and 4 scalar clamps); the last 0 to 3 one by one. Every input byte of a group is read before
 * its word is written, so out may be in1 or in2 (in place). */
static TC_DSP_NOINLINE void add_table_rows_clamp(const tc_add_params *p, const int32_t *t1,
                                                 const int32_t *t2, const int8_t *in1,
                                                 const int8_t *in2, int8_t *out, int32_t n) {
    const int32_t mult = p->out_multiplier, e = -p->out_shift;
    const int32_t k = tc_dsp_rq2_k(p->out_shift, p->out_zp + 128);
    const uint32_t lo4 = (uint32_t)(uint8_t)p->act_min * UINT32_C(0x01010101);
    const uint32_t hi4 = (uint32_t)(uint8_t)p->act_max * UINT32_C(0x01010101);
    const int8_t *end4 = in1 + (n & ~3);
    const int8_t *end = in1 + n;
    while (in1 != end4) {
        uint32_t y = add_table_biased(t1, t2, in1[0], in2[0], mult, k, e);
        y |= add_table_biased(t1, t2, in1[1], in2[1], mult, k, e) << 8;
        y |= add_table_biased(t1, t2, in1[2], in2[2], mult, k, e) << 16;
        y |= add_table_biased(t1, t2, in1[3], in2[3], mult, k, e) << 24;
        y ^= UINT32_C(0x80808080);
        y = tc_min_s8x4(tc_max_s8x4(y, lo4), hi4);
        memcpy(out, &y, sizeof y);
        in1 += 4;
        in2 += 4;
        out += 4;
    }
    while (in1 != end) {
        const int32_t y = (int32_t)add_table_biased(t1, t2, *in1++, *in2++, mult, k, e) - 128;
        *out++ = (int8_t)TC_MIN(TC_MAX(y, p->act_min), p->act_max);
    }
}

void tc_add_s8_table_row_dsp(const tc_add_params *p, const int32_t *t1, const int32_t *t2,
                             const int8_t *in1, const int8_t *in2, int8_t *out, int32_t n) {
    if (p->act_min == -128 && p->act_max == 127) {
        add_table_rows_full(p, t1, t2, in1, in2, out, n);
    } else {
        add_table_rows_clamp(p, t1, t2, in1, in2, out, n);
    }
}

#endif /* TC_HAVE_DSP */
