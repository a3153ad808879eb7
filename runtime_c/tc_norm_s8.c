/*
 * int8 normalisation with integer statistics and an integer square root (tc_norm.h; the scheme
 * is documented in tinycc/ops/norm.py). No floating point; every intermediate fits its type
 * for count <= 2^20: |S| < 2^28, count * Q < 2^56, |count * d - S| < 2^29, recip < 2^31, so
 * the per-element product is one 32 x 32 -> 64-bit multiply (SMULL) below 2^60.
 */
#include "tc_norm.h"

static int norm_params_valid(const tc_norm_params *p) {
    int64_t count, total;
    if (p->outer < 1 || p->r1 < 1 || p->mid < 1 || p->r2 < 1) return 0;
    count = (int64_t)p->r1 * p->r2;
    total = (int64_t)p->outer * count * p->mid;
    return count <= TC_NORM_MAX_COUNT && total <= INT32_MAX && tc_is_int8(p->in_zp) &&
           tc_is_int8(p->out_zp) && p->eps_lo >= 0 && p->eps_hi >= 0 &&
           p->eps_hi <= (int32_t)1 << 29 &&
           (((int64_t)p->eps_hi << 31) + p->eps_lo) <= ((int64_t)1 << 60);
}

/* floor(sqrt(v)) for v < 2^62, bit by bit. */
static uint32_t isqrt_u64(uint64_t v) {
    uint64_t res = 0;
    uint64_t bit = (uint64_t)1 << 62;
    while (bit > v) bit >>= 2;
    while (bit != 0) {
        if (v >= res + bit) {
            v -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    return (uint32_t)res;
}

static int32_t bit_length_u64(uint64_t v) {
    int32_t n = 0;
    while (v != 0) {
        ++n;
        v >>= 1;
    }
    return n;
}

tc_status tc_norm_s8(const tc_norm_params *p, const int8_t *in, const int32_t *mult,
                     const int32_t *shift, const int32_t *bias, int8_t *out) {
    const int64_t eps_term = ((int64_t)p->eps_hi << 31) + p->eps_lo;
    int32_t count, channels, o, m, i, j;
    if (!norm_params_valid(p) || mult == NULL || shift == NULL || bias == NULL) return TC_ARG_ERROR;
    count = p->r1 * p->r2;
    channels = p->mid * p->r2;
    for (o = 0; o < p->outer; ++o) {
        const int32_t base = o * p->r1 * channels;
        for (m = 0; m < p->mid; ++m) {
            int32_t sum = 0;
            int64_t sumsq = 0, v;
            int32_t recip = 0;
            int32_t e = 1;
            for (i = 0; i < p->r1; ++i) {
                const int8_t *row = in + base + i * channels + m * p->r2;
                for (j = 0; j < p->r2; ++j) {
                    const int32_t d = (int32_t)row[j] - p->in_zp;
                    sum += d;
                    sumsq += (int64_t)(d * d);
                }
            }
            v = (int64_t)count * sumsq - (int64_t)sum * sum + eps_term;
            if (v > 0) {
                const int32_t k = (62 - bit_length_u64((uint64_t)v)) / 2;
                const uint32_t sd = isqrt_u64((uint64_t)v << (2 * k)); /* in [2^29, 2^31) */
                recip = (int32_t)(((uint64_t)1 << 60) / sd);            /* in (2^29, 2^31) */
                e = 60 - TC_NORM_Z_FRAC_BITS - k;                       /* in [10, 40] */
            }
            for (i = 0; i < p->r1; ++i) {
                const int32_t at = base + i * channels + m * p->r2;
                for (j = 0; j < p->r2; ++j) {
                    const int32_t c = m * p->r2 + j;
                    const int32_t dev = count * ((int32_t)in[at + j] - p->in_zp) - sum;
                    /* round half up; >> of a negative value is arithmetic on every compiler we
                     * target (as in tc_common.h) */
                    const int32_t z = (int32_t)(((int64_t)dev * recip + ((int64_t)1 << (e - 1))) >> e);
                    const int64_t y = (int64_t)tc_mbqm(z, mult[c], shift[c]) + bias[c] + p->out_zp;
                    out[at + j] = (int8_t)(y < -128 ? -128 : (y > 127 ? 127 : y));
                }
            }
        }
    }
    return TC_OK;
}
