/*
 * tinycc runtime: the ARMv7E-M DSP (SIMD32) instructions the int8 fast paths use, plus a
 * portable C emulation of exactly those instructions.
 *
 * Which implementation is compiled:
 *   TC_NO_DSP defined           -> TC_HAVE_DSP is 0: kernels take their portable C99 path only.
 *   TC_EMULATE_DSP defined      -> portable C emulation (any compiler, any target). The host
 *                                  tests build the fast paths this way and compare them bit for
 *                                  bit with the golden model.
 *   __ARM_FEATURE_DSP (ACLE)    -> the real instructions: Cortex-M4, M7, M33/M35P/M55 with the
 *                                  DSP extension. GNU-compatible compilers (gcc, clang, armclang)
 *                                  get inline assembly, others the <arm_acle.h> intrinsics
 *                                  (also selectable with TC_DSP_ACLE_ONLY, for testing).
 *   otherwise (M0/M3, x86, ...) -> TC_HAVE_DSP is 0.
 *
 * Why inline assembly on GNU compilers (as CMSIS Core does): gcc 12 does not fold a rotate into
 * SXTB16/SXTAB16 (one extra instruction per widened word), and with its builtins the register
 * allocator unties SMLAD's accumulator. The statements are volatile so that they keep their
 * source order, which the dot-product loops choose to stay within the 14 allocatable
 * registers; left free, gcc's pre-allocation scheduler hoists loads and the loops spill. They
 * have no memory operands, so loads and stores still move around them.
 *
 * Packed values are uint32_t words: "s8x4" holds four int8 lanes, lane k = bits 8k..8k+7 = the
 * k-th byte in memory (little-endian; big-endian Cortex-M builds get TC_HAVE_DSP 0), and
 * "s16x2" two int16 lanes, lane 0 = bits 0..15.
 * Names map to ACLE/CMSIS as tc_sxtb16 = __sxtb16/__SXTB16, tc_sxtb16_ror8 = __SXTB16_RORn(x, 8),
 * tc_sxtab16 = __sxtab16/__SXTAB16, tc_sxtab16_ror8 = __SXTAB16_RORn(a, x, 8),
 * tc_smlad = __smlad/__SMLAD, tc_smlabb = __smlabb/__SMLABB, tc_smlatt = __smlatt/__SMLATT,
 * tc_ssat8 = __ssat(x, 8)/__SSAT(x, 8), tc_smuad = __smuad/__SMUAD, tc_smlabt = __smlabt/__SMLABT,
 * tc_smlatb = __smlatb/__SMLATB, tc_max_s8x4 / tc_min_s8x4 = __ssub8 then __sel (SSUB8, SEL),
 * tc_smmulr = __SMMULR (CMSIS; SMMULR), tc_smmlar = SMMLAR, tc_qadd = __qadd/__QADD.
 * They are tc_-prefixed so that this header coexists with CMSIS Core's definitions.
 */
#ifndef TC_ARM_DSP_H
#define TC_ARM_DSP_H

#include <stdint.h>
#include <string.h>

#if defined(TC_NO_DSP)
#define TC_HAVE_DSP 0
#elif defined(TC_EMULATE_DSP) || (defined(__ARM_FEATURE_DSP) && !defined(__ARM_BIG_ENDIAN))
#define TC_HAVE_DSP 1
#else
#define TC_HAVE_DSP 0
#endif

/* TC_DSP_ASM: the kernels' hand-written Thumb-2 loops (file-scope GNU assembly, self-contained
 * functions: no register constraints on the compiler, any -O level). Their C equivalents are
 * the reference and run everywhere else, including the host emulation; TC_NO_ASM turns the
 * assembly off. */
#if TC_HAVE_DSP && defined(__GNUC__) && defined(__thumb2__) && !defined(TC_EMULATE_DSP) && \
    !defined(TC_DSP_ACLE_ONLY) && !defined(TC_NO_ASM)
#define TC_DSP_ASM 1
#else
#define TC_DSP_ASM 0
#endif

#if TC_HAVE_DSP

#if defined(TC_EMULATE_DSP)
#define TC_DSP_IMPL_C 1
#elif defined(__GNUC__) && !defined(TC_DSP_ACLE_ONLY)
#define TC_DSP_IMPL_ASM 1
#else
#define TC_DSP_IMPL_ACLE 1
#include <arm_acle.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* For static functions holding a SIMD loop: kept out of line, so that the register allocator
 * sees the loop alone (see tc_dot_s8_dsp.h), and not reported when a file does not use them. */
#if defined(__GNUC__)
#define TC_DSP_NOINLINE __attribute__((noinline, unused))
#else
#define TC_DSP_NOINLINE
#endif

/* Four int8 values from any address, byte k in lane k (one LDR on v7-M and later, which
 * allow unaligned word loads; assembled byte by byte in the emulation, for any host). */
static inline uint32_t tc_read_s8x4(const int8_t *p) {
#if defined(TC_DSP_IMPL_C)
    const uint8_t *b = (const uint8_t *)p;
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
#else
    uint32_t word;
    memcpy(&word, p, sizeof word);
    return word;
#endif
}

/* Two int16 lanes (lo, hi) packed into one word; values are taken modulo 2^16. */
static inline uint32_t tc_pack_s16x2(int32_t lo, int32_t hi) {
    return ((uint32_t)lo & 0xFFFFu) | (((uint32_t)hi & 0xFFFFu) << 16);
}

#if defined(TC_DSP_IMPL_C)

/* Emulation helpers: the lanes of a word as signed values. */
static inline int32_t tc_emu_s8(uint32_t word, int byte) {
    return (int32_t)((word >> (8 * byte)) & 0xFFu) - (int32_t)(((word >> (8 * byte)) & 0x80u) << 1);
}

static inline int32_t tc_emu_s16(uint32_t word, int lane) {
    return (int32_t)((word >> (16 * lane)) & 0xFFFFu) -
           (int32_t)(((word >> (16 * lane)) & 0x8000u) << 1);
}

/* acc + p with the two's-complement wrap of a 32-bit register (no undefined behaviour). */
static inline int32_t tc_emu_wrap_add(int32_t acc, int32_t p) {
    const uint32_t sum = (uint32_t)acc + (uint32_t)p;
    return sum <= (uint32_t)INT32_MAX ? (int32_t)sum : -(int32_t)(~sum) - 1;
}

/* SXTB16: sign-extend bytes 0 and 2 to int16 lanes 0 and 1. */
static inline uint32_t tc_sxtb16(uint32_t x) {
    return tc_pack_s16x2(tc_emu_s8(x, 0), tc_emu_s8(x, 2));
}

/* SXTB16 x, ROR #8: sign-extend bytes 1 and 3. */
static inline uint32_t tc_sxtb16_ror8(uint32_t x) {
    return tc_pack_s16x2(tc_emu_s8(x, 1), tc_emu_s8(x, 3));
}

/* SXTAB16: lanes of a plus sign-extended bytes 0 and 2 of x, each modulo 2^16. */
static inline uint32_t tc_sxtab16(uint32_t a, uint32_t x) {
    return tc_pack_s16x2(tc_emu_s16(a, 0) + tc_emu_s8(x, 0), tc_emu_s16(a, 1) + tc_emu_s8(x, 2));
}

/* SXTAB16 x, ROR #8: lanes of a plus sign-extended bytes 1 and 3 of x. */
static inline uint32_t tc_sxtab16_ror8(uint32_t a, uint32_t x) {
    return tc_pack_s16x2(tc_emu_s16(a, 0) + tc_emu_s8(x, 1), tc_emu_s16(a, 1) + tc_emu_s8(x, 3));
}

/* SMLAD: acc + x.lo * y.lo + x.hi * y.hi, wrapping like the 32-bit register (Q flag ignored). */
static inline int32_t tc_smlad(uint32_t x, uint32_t y, int32_t acc) {
    acc = tc_emu_wrap_add(acc, tc_emu_s16(x, 0) * tc_emu_s16(y, 0));
    return tc_emu_wrap_add(acc, tc_emu_s16(x, 1) * tc_emu_s16(y, 1));
}

/* SMLABB: acc + x.lo * y.lo. */
static inline int32_t tc_smlabb(uint32_t x, uint32_t y, int32_t acc) {
    return tc_emu_wrap_add(acc, tc_emu_s16(x, 0) * tc_emu_s16(y, 0));
}

/* SMLATT: acc + x.hi * y.hi. */
static inline int32_t tc_smlatt(uint32_t x, uint32_t y, int32_t acc) {
    return tc_emu_wrap_add(acc, tc_emu_s16(x, 1) * tc_emu_s16(y, 1));
}

/* SSAT #8: x clamped to [-128, 127]. */
static inline int32_t tc_ssat8(int32_t x) { return x < -128 ? -128 : (x > 127 ? 127 : x); }

/* SMUAD: x.lo * y.lo + x.hi * y.hi, wrapping like the 32-bit register. */
static inline int32_t tc_smuad(uint32_t x, uint32_t y) { return tc_smlad(x, y, 0); }

/* SMLABT: acc + x.lo * y.hi. */
static inline int32_t tc_smlabt(uint32_t x, uint32_t y, int32_t acc) {
    return tc_emu_wrap_add(acc, tc_emu_s16(x, 0) * tc_emu_s16(y, 1));
}

/* SMLATB: acc + x.hi * y.lo. */
static inline int32_t tc_smlatb(uint32_t x, uint32_t y, int32_t acc) {
    return tc_emu_wrap_add(acc, tc_emu_s16(x, 1) * tc_emu_s16(y, 0));
}

/* SMMULR: the high word of a * b, rounded: floor((a * b + 2^31) / 2^32). */
static inline int32_t tc_smmulr(int32_t a, int32_t b) {
    return (int32_t)(((int64_t)a * b + (INT64_C(1) << 31)) >> 32);
}

/* SMMLAR: acc + the high word of a * b, rounded: floor((acc * 2^32 + a * b + 2^31) / 2^32),
 * wrapping like the register. */
static inline int32_t tc_smmlar(int32_t a, int32_t b, int32_t acc) {
    return tc_emu_wrap_add(acc, tc_smmulr(a, b));
}

/* QADD: a + b saturated to int32 (the Q flag is not modelled). */
static inline int32_t tc_qadd(int32_t a, int32_t b) {
    const int64_t sum = (int64_t)a + b;
    return sum > INT32_MAX ? INT32_MAX : (sum < INT32_MIN ? INT32_MIN : (int32_t)sum);
}

/* SSUB8 then SEL: the lane-wise signed maximum (SSUB8 sets GE where a - b >= 0, SEL takes a
 * there) and minimum (SEL with the operands swapped). */
static inline uint32_t tc_max_s8x4(uint32_t a, uint32_t b) {
    uint32_t r = 0;
    int lane;
    for (lane = 0; lane < 4; ++lane) {
        const int32_t x = tc_emu_s8(a, lane), y = tc_emu_s8(b, lane);
        r |= (uint32_t)((x >= y ? x : y) & 0xFF) << (8 * lane);
    }
    return r;
}

static inline uint32_t tc_min_s8x4(uint32_t a, uint32_t b) {
    uint32_t r = 0;
    int lane;
    for (lane = 0; lane < 4; ++lane) {
        const int32_t x = tc_emu_s8(a, lane), y = tc_emu_s8(b, lane);
        r |= (uint32_t)((x >= y ? y : x) & 0xFF) << (8 * lane);
    }
    return r;
}

#elif defined(TC_DSP_IMPL_ASM)

/* One wrapper per instruction: the bodies share their shape, not their instruction. */
static inline uint32_t tc_sxtb16(uint32_t x) {
    uint32_t r;
    __asm__ __volatile__("sxtb16 %0, %1" : "=r"(r) : "r"(x));
    return r;
}

static inline uint32_t tc_sxtb16_ror8(uint32_t x) {
    uint32_t r;
    __asm__ __volatile__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

static inline uint32_t tc_sxtab16(uint32_t a, uint32_t x) {
    uint32_t r;
    __asm__ __volatile__("sxtab16 %0, %1, %2" : "=r"(r) : "r"(a), "r"(x));
    return r;
}

static inline uint32_t tc_sxtab16_ror8(uint32_t a, uint32_t x) {
    uint32_t r;
    __asm__ __volatile__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}

static inline int32_t tc_smlad(uint32_t x, uint32_t y, int32_t acc) {
    __asm__ __volatile__("smlad %0, %1, %2, %0" : "+r"(acc) : "r"(x), "r"(y));
    return acc;
}

static inline int32_t tc_smlabb(uint32_t x, uint32_t y, int32_t acc) {
    __asm__ __volatile__("smlabb %0, %1, %2, %0" : "+r"(acc) : "r"(x), "r"(y));
    return acc;
}

static inline int32_t tc_smlatt(uint32_t x, uint32_t y, int32_t acc) {
    __asm__ __volatile__("smlatt %0, %1, %2, %0" : "+r"(acc) : "r"(x), "r"(y));
    return acc;
}

static inline int32_t tc_ssat8(int32_t x) {
    int32_t r;
    __asm__ __volatile__("ssat %0, #8, %1" : "=r"(r) : "r"(x));
    return r;
}

static inline int32_t tc_smuad(uint32_t x, uint32_t y) {
    int32_t r;
    __asm__ __volatile__("smuad %0, %1, %2" : "=r"(r) : "r"(x), "r"(y));
    return r;
}

static inline int32_t tc_smlabt(uint32_t x, uint32_t y, int32_t acc) {
    __asm__ __volatile__("smlabt %0, %1, %2, %0" : "+r"(acc) : "r"(x), "r"(y));
    return acc;
}

static inline int32_t tc_smlatb(uint32_t x, uint32_t y, int32_t acc) {
    __asm__ __volatile__("smlatb %0, %1, %2, %0" : "+r"(acc) : "r"(x), "r"(y));
    return acc;
}

static inline int32_t tc_smmulr(int32_t a, int32_t b) {
    int32_t r;
    __asm__ __volatile__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

static inline int32_t tc_smmlar(int32_t a, int32_t b, int32_t acc) {
    int32_t r;
    __asm__ __volatile__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}

static inline int32_t tc_qadd(int32_t a, int32_t b) {
    int32_t r;
    __asm__ __volatile__("qadd %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* The pair in one statement: SEL reads the GE flags SSUB8 sets, which the compiler does not
 * track between statements. */
static inline uint32_t tc_max_s8x4(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm__ __volatile__("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r"(r) : "r"(a), "r"(b) : "cc");
    return r;
}

static inline uint32_t tc_min_s8x4(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm__ __volatile__("ssub8 %0, %1, %2\n\tsel %0, %2, %1" : "=&r"(r) : "r"(a), "r"(b) : "cc");
    return r;
}

#else /* TC_DSP_IMPL_ACLE */

/* A rotate the compiler may fold into the extend instruction. */
static inline uint32_t tc_ror8(uint32_t x) { return (x >> 8) | (x << 24); }

static inline uint32_t tc_sxtb16(uint32_t x) { return (uint32_t)__sxtb16((int32_t)x); }

static inline uint32_t tc_sxtb16_ror8(uint32_t x) {
    return (uint32_t)__sxtb16((int32_t)tc_ror8(x));
}

static inline uint32_t tc_sxtab16(uint32_t a, uint32_t x) {
    return (uint32_t)__sxtab16((int32_t)a, (int32_t)x);
}

static inline uint32_t tc_sxtab16_ror8(uint32_t a, uint32_t x) {
    return (uint32_t)__sxtab16((int32_t)a, (int32_t)tc_ror8(x));
}

static inline int32_t tc_smlad(uint32_t x, uint32_t y, int32_t acc) {
    return __smlad((int32_t)x, (int32_t)y, acc);
}

static inline int32_t tc_smlabb(uint32_t x, uint32_t y, int32_t acc) {
    return __smlabb((int32_t)x, (int32_t)y, acc);
}

static inline int32_t tc_smlatt(uint32_t x, uint32_t y, int32_t acc) {
    return __smlatt((int32_t)x, (int32_t)y, acc);
}

static inline int32_t tc_ssat8(int32_t x) { return __ssat(x, 8); }

static inline int32_t tc_smuad(uint32_t x, uint32_t y) { return __smuad((int32_t)x, (int32_t)y); }

static inline int32_t tc_smlabt(uint32_t x, uint32_t y, int32_t acc) {
    return __smlabt((int32_t)x, (int32_t)y, acc);
}

static inline int32_t tc_smlatb(uint32_t x, uint32_t y, int32_t acc) {
    return __smlatb((int32_t)x, (int32_t)y, acc);
}

/* ACLE has no SMMULR / SMMLAR intrinsics: the C forms, which compilers map to SMULL and
 * the rounding (the sum wraps through uint32_t like the register). */
static inline int32_t tc_smmulr(int32_t a, int32_t b) {
    return (int32_t)(((int64_t)a * b + (INT64_C(1) << 31)) >> 32);
}

static inline int32_t tc_smmlar(int32_t a, int32_t b, int32_t acc) {
    const uint32_t sum = (uint32_t)acc + (uint32_t)tc_smmulr(a, b);
    return sum <= (uint32_t)INT32_MAX ? (int32_t)sum : -(int32_t)(~sum) - 1;
}

static inline int32_t tc_qadd(int32_t a, int32_t b) { return __qadd(a, b); }

static inline uint32_t tc_max_s8x4(uint32_t a, uint32_t b) {
    (void)__ssub8((int8x4_t)a, (int8x4_t)b);
    return (uint32_t)__sel((uint8x4_t)a, (uint8x4_t)b);
}

static inline uint32_t tc_min_s8x4(uint32_t a, uint32_t b) {
    (void)__ssub8((int8x4_t)a, (int8x4_t)b);
    return (uint32_t)__sel((uint8x4_t)b, (uint8x4_t)a);
}

#endif /* implementation */

#ifdef __cplusplus
}
#endif

#endif /* TC_HAVE_DSP */

#endif /* TC_ARM_DSP_H */
