/*
 * tinycc runtime: the SIMD variant of tc_maxpool_s8 (ARMv7E-M DSP extension, or its host
 * emulation), bit-exact with the portable reference in tc_maxpool_s8.c, whose entry point calls
 * it after the argument checks. NHWC keeps a pixel's channels together, so a window tap of 4
 * channels is one word read and one lane-wise maximum (SSUB8 + SEL): 4 channels per tap in
 * about 5 instructions with the loop, against ~13 per channel per tap for the byte loop. The
 * last 1 to 3 channels of a pixel take the byte loop. The clamp to [act_min, act_max] is two
 * more lane-wise operations per 4 outputs.
 */
#include "tc_arm_dsp.h"
#include "tc_pool.h"

#include <string.h>

#if TC_HAVE_DSP

#define MAXPOOL_TAPS 64 /* windows up to this many in-image taps go by an offset list */

/* Max over rows [y0, y1) and columns [x0, x1) of the 4 channels at `in` (pixel (0, 0)). */
static TC_ALWAYS_INLINE inline uint32_t maxpool_window4(const int8_t *in, int32_t row_step,
                                                        int32_t pixel_step, int32_t y0,
                                                        int32_t y1, int32_t x0, int32_t x1) {
    uint32_t m = UINT32_C(0x80808080); /* -128 in every lane */
    int32_t iy, ix;
    for (iy = y0; iy < y1; ++iy) {
        const int8_t *x = in + iy * row_step + x0 * pixel_step;
        for (ix = x0; ix < x1; ++ix, x += pixel_step) m = tc_max_s8x4(tc_read_s8x4(x), m);
    }
    return m;
}

/* Max over the taps at in + offsets[0..n) (n >= 1): one loop per group of 4 channels instead of
 * a row and a column loop, which small windows (2x2, 3x3) spend most of their time setting up. */
static TC_ALWAYS_INLINE inline uint32_t maxpool_taps4(const int8_t *in, const int32_t *offsets,
                                                      int32_t n) {
    uint32_t m = tc_read_s8x4(in + offsets[0]);
    int32_t t;
    for (t = 1; t < n; ++t) m = tc_max_s8x4(tc_read_s8x4(in + offsets[t]), m);
    return m;
}

void tc_maxpool_s8_dsp(const tc_maxpool_params *p, const int8_t *in_image, int8_t *out) {
    const int32_t channels = p->channels, row_step = p->in_w * channels;
    const uint32_t lo4 = (uint32_t)(uint8_t)p->act_min * UINT32_C(0x01010101);
    const uint32_t hi4 = (uint32_t)(uint8_t)p->act_max * UINT32_C(0x01010101);
    const int clamp = p->act_min != -128 || p->act_max != 127;
    const int32_t full_taps = p->k_h * p->k_w;
    int32_t offsets[MAXPOOL_TAPS];
    int offsets_whole = 0; /* offsets holds a whole window's taps from its first pixel */
    int32_t oy, ox, c, iy, ix, t;
    for (oy = 0; oy < p->out_h; ++oy) {
        int32_t y0, y1;
        tc_pool_window_range(oy, p->stride_h, p->pad_top, p->k_h, p->in_h, &y0, &y1);
        for (ox = 0; ox < p->out_w; ++ox) {
            int32_t x0, x1, n = 0;
            int8_t *y = out + (oy * p->out_w + ox) * channels;
            const int8_t *in = in_image;
            tc_pool_window_range(ox, p->stride_w, p->pad_left, p->k_w, p->in_w, &x0, &x1);
            if ((y1 - y0) * (x1 - x0) == full_taps && full_taps <= MAXPOOL_TAPS) {
                /* a whole window (no padding in it): the same taps from its first pixel as
                 * every whole window's, rebuilt only after a clipped window */
                if (!offsets_whole) {
                    for (iy = 0; iy < p->k_h; ++iy) {
                        for (ix = 0; ix < p->k_w; ++ix) offsets[n++] = iy * row_step + ix * channels;
                    }
                    offsets_whole = 1;
                }
                in += y0 * row_step + x0 * channels;
                n = full_taps;
            } else if ((y1 - y0) * (x1 - x0) <= MAXPOOL_TAPS) { /* >= 1 tap (checked) */
                for (iy = y0; iy < y1; ++iy) {
                    for (ix = x0; ix < x1; ++ix) offsets[n++] = iy * row_step + ix * channels;
                }
                offsets_whole = 0;
            }
            for (c = 0; n > 0 && c + 4 <= channels; c += 4) {
                uint32_t m = maxpool_taps4(in + c, offsets, n);
                if (clamp) m = tc_min_s8x4(tc_max_s8x4(m, lo4), hi4);
                memcpy(y + c, &m, sizeof m);
            }
            for (; c + 4 <= channels; c += 4) { /* windows of more than MAXPOOL_TAPS taps */
                uint32_t m = maxpool_window4(in + c, row_step, channels, y0, y1, x0, x1);
                if (clamp) m = tc_min_s8x4(tc_max_s8x4(m, lo4), hi4);
                memcpy(y + c, &m, sizeof m);
            }
            if (c < channels && channels >= 4) {
                /* the last 1 to 3 channels: one more word over the last 4 channels, which
                 * rewrites 1 to 3 outputs with the values they have (out never overlaps in:
                 * the kernel declares no in-place licence) */
                c = channels - 4;
                {
                    uint32_t m = n > 0 ? maxpool_taps4(in + c, offsets, n)
                                       : maxpool_window4(in + c, row_step, channels, y0, y1, x0, x1);
                    if (clamp) m = tc_min_s8x4(tc_max_s8x4(m, lo4), hi4);
                    memcpy(y + c, &m, sizeof m);
                }
                c = channels;
            }
            for (; c < channels; ++c) { /* 1 to 3 channels, as tc_maxpool_s8 */
                int32_t max = INT8_MIN;
                if (n > 0) {
                    for (t = 0; t < n; ++t) max = TC_MAX(max, (int32_t)in[offsets[t] + c]);
                } else {
                    for (iy = y0; iy < y1; ++iy) {
                        for (ix = x0; ix < x1; ++ix) {
                            max = TC_MAX(max, (int32_t)in[iy * row_step + ix * channels + c]);
                        }
                    }
                }
                y[c] = (int8_t)tc_clamp_i32(max, p->act_min, p->act_max);
            }
        }
    }
}

#endif /* TC_HAVE_DSP */
