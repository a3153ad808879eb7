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
 * the reference) sees the reference's values. A window whose columns span whole rows (global
 * pooling) is one run of contiguous pixels. The last 1 to 3 channels of a pixel take the byte
 * loop.
 */
#include "tc_arm_dsp.h"
#include "tc_pool.h"

#if TC_HAVE_DSP

enum { AVGPOOL_LANE_TAPS = 255 }; /* int8 values an int16 lane can sum without overflow */

/* The signed int16 lanes of a word (lane 0 = bits 0..15). */
static inline int32_t avgpool_lane_lo(uint32_t w) {
    return (int32_t)(w & 0xFFFFu) - (int32_t)((w & 0x8000u) << 1);
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

void tc_avgpool_s8_dsp(const tc_avgpool_params *p, const int8_t *in, int8_t *out) {
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
                    if (whole_rows) {
                        avgpool_run4(window + c, taps, channels, sum);
                    } else {
                        for (iy = 0; iy < y1 - y0; ++iy) {
                            avgpool_run4(window + iy * row_step + c, x1 - x0, channels, sum);
                        }
                    }
                    for (k = 0; k < 4; ++k) y[c + k] = tc_avgpool_out(p, sum[k], taps);
                }
                for (; c < channels; ++c) { /* the last 1 to 3 channels, as tc_avgpool_s8 */
                    int32_t acc = 0;
                    for (iy = 0; iy < y1 - y0; ++iy) {
                        for (ix = 0; ix < x1 - x0; ++ix) {
                            acc += window[iy * row_step + ix * channels + c];
                        }
                    }
                    y[c] = tc_avgpool_out(p, acc, taps);
                }
            }
        }
    }
}

#endif /* TC_HAVE_DSP */
