/*
 * tinycc runtime: the SIMD variant of tc_avgpool_s8 (ARMv7E-M DSP extension, or its host
 * emulation), bit-exact with the portable reference in tc_avgpool_s8.c, whose entry point calls
 * it after the argument checks for channels >= 4.
 *
 * NHWC keeps a pixel's channels together, so one word read gives a tap of 4 channels, and two
 * SXTAB16 (bytes 0 and 2, bytes 1 and 3) add it to two words of int16 lanes: about 5
 * instructions per 4 channels per tap with the loop, against ~8 per channel per tap for the
 * byte loop. An int16 lane holds the sum of at most 255 int8 values (255 * 128 = 32,640), so
 * longer runs of taps are summed in chunks of 255 and the lanes emptied into int32 sums between
 * them. The window sums are exact integers, so the output stage (tc_avgpool_out, shared with
 * the reference; its requantizing mode in the equal form of tc_requant_s8_nonneg, constants
 * hoisted) sees the reference's values. A window whose columns span whole rows (global
 * pooling) is one run of contiguous pixels. The last 1 to 3 channels of a pixel take the byte
 * loop.
 */
#include "tc_arm_dsp.h"
#include "tc_pool.h"

#if TC_HAVE_DSP

enum { AVGPOOL_LANE_TAPS = 255 }; /* int8 values an int16 lane can sum without overflow */

/* The signed int16 lanes of a word (lane 0 = bits 0..15). */
static inline int32_t avgpool_lane_lo(uint32_t w) {
    return (int32_t)((w & 0xFFFFu) ^ 0x8000u) - 0x8000;
}

static inline int32_t avgpool_lane_hi(uint32_t w) {
    return avgpool_lane_lo(w >> 16);
}

/* Adds the n taps at x, x + step, ... (4 channels each) to sum[0..3]. */
static TC_DSP_NOINLINE void avgpool_run4(const int8_t *x, int32_t n, int32_t step,
                                         int32_t sum[4]) {
    while (n > 0) {
        const int32_t chunk = TC_MIN(n, (int32_t)AVGPOOL_LANE_TAPS);
        const int8_t *const end = x + chunk * step;
        uint32_t even = 0, odd = 0; /* channels 0 and 2, channels 1 and 3 */
        for (; x != end; x += step) {
            const uint32_t w = tc_read_s8x4(x);
            even = tc_sxtab16(even, w);
            odd = tc_sxtab16_ror8(odd, w);
        }
        sum[0] += avgpool_lane_lo(even);
        sum[1] += avgpool_lane_lo(odd);
        sum[2] += avgpool_lane_hi(even);
        sum[3] += avgpool_lane_hi(odd);
        n -= chunk;
    }
}

/* sum[0..3] = the sums of a window of rows x cols taps (4 channels each; rows * cols <= 255:
 * no lane overflows, one emptying of the lanes at the end). */
static TC_ALWAYS_INLINE inline void avgpool_window4(const int8_t *x, int32_t rows, int32_t cols,
                                                    int32_t row_step, int32_t step,
                                                    int32_t sum[4]) {
    uint32_t even = 0, odd = 0;
    int32_t r;
    for (r = 0; r < rows; ++r, x += row_step) {
        const int8_t *t = x;
        const int8_t *const end = x + cols * step;
        for (; t != end; t += step) {
            const uint32_t w = tc_read_s8x4(t);
            even = tc_sxtab16(even, w);
            odd = tc_sxtab16_ror8(odd, w);
        }
    }
    sum[0] = avgpool_lane_lo(even);
    sum[1] = avgpool_lane_lo(odd);
    sum[2] = avgpool_lane_hi(even);
    sum[3] = avgpool_lane_hi(odd);
}

/* The requantizing mode's constants for a right shift (shift < 0, the usual case), hoisted out
 * of the output loop: tc_requant_s8_nonneg's terms (equal to tc_requant_s8 for mult >= 0, which
 * the entry point checks). */
typedef struct {
    int32_t fast; /* use_requant and shift < 0 */
    int32_t mult, e_minus_1, out_zp, lo, hi;
    uint32_t half;
} avgpool_rq;

static avgpool_rq avgpool_make_rq(const tc_avgpool_params *p) {
    avgpool_rq r;
    r.fast = p->use_requant && p->shift < 0;
    r.mult = p->mult;
    r.e_minus_1 = r.fast ? -p->shift - 1 : 0;
    r.half = UINT32_C(1) << r.e_minus_1;
    r.out_zp = p->out_zp;
    r.lo = p->act_min - p->out_zp;
    r.hi = p->act_max - p->out_zp;
    return r;
}

/* tc_avgpool_out through the hoisted constants where they apply. */
static TC_ALWAYS_INLINE inline int8_t avgpool_out(const tc_avgpool_params *p,
                                                  const avgpool_rq *r, int32_t acc,
                                                  int32_t taps) {
    if (r->fast) {
        int32_t y = tc_mbqm_right(acc - taps * p->in_zp, r->mult, r->half, r->e_minus_1);
        y = TC_MAX(y, r->lo);
        y = TC_MIN(y, r->hi);
        return (int8_t)(y + r->out_zp);
    }
    return tc_avgpool_out(p, acc, taps);
}

void tc_avgpool_s8_dsp(const tc_avgpool_params *params, const int8_t *in, int8_t *out) {
    /* A local copy: the int8 stores to `out` may alias *params, so the compiler would reload
     * every field the output stage reads after each store. */
    const tc_avgpool_params q = *params;
    const tc_avgpool_params *const p = &q;
    const avgpool_rq rq = avgpool_make_rq(p);
    const int32_t channels = p->channels, row_step = p->in_w * channels;
    int32_t oy, ox, c, k, iy, ix;
    for (oy = 0; oy < p->out_h; ++oy) {
        int32_t y0, y1;
        tc_pool_window_range(oy, p->stride_h, p->pad_top, p->k_h, p->in_h, &y0, &y1);
        for (ox = 0; ox < p->out_w; ++ox) {
            int32_t x0, x1;
            int8_t *y = out + (oy * p->out_w + ox) * channels;
            tc_pool_window_range(ox, p->stride_w, p->pad_left, p->k_w, p->in_w, &x0, &x1);
            {
                const int32_t taps = (y1 - y0) * (x1 - x0);
                const int whole_rows = x0 == 0 && x1 == p->in_w; /* one contiguous run */
                const int8_t *window = in + y0 * row_step + x0 * channels;
                for (c = 0; c + 4 <= channels; c += 4) {
                    int32_t sum[4] = {0, 0, 0, 0};
                    if (taps <= AVGPOOL_LANE_TAPS) {
                        avgpool_window4(window + c, whole_rows ? 1 : y1 - y0,
                                        whole_rows ? taps : x1 - x0, row_step, channels, sum);
                    } else if (whole_rows) {
                        avgpool_run4(window + c, taps, channels, sum);
                    } else {
                        for (iy = 0; iy < y1 - y0; ++iy) {
                            avgpool_run4(window + iy * row_step + c, x1 - x0, channels, sum);
                        }
                    }
                    for (k = 0; k < 4; ++k) y[c + k] = avgpool_out(p, &rq, sum[k], taps);
                }
                for (; c < channels; ++c) { /* the last 1 to 3 channels, as tc_avgpool_s8 */
                    int32_t acc = 0;
                    for (iy = 0; iy < y1 - y0; ++iy) {
                        for (ix = 0; ix < x1 - x0; ++ix) {
                            acc += window[iy * row_step + ix * channels + c];
                        }
                    }
                    y[c] = avgpool_out(p, &rq, acc, taps);
                }
            }
        }
    }
}

#endif /* TC_HAVE_DSP */
