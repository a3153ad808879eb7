/*
 * tinycc runtime: int8 2-D convolution (regular and grouped), TFLM ConvPerChannel arithmetic.
 * Mirrored by tinycc/golden/kernels_conv.py::conv2d_s8.
 *
 * This file is the entry point and the portable C99 reference, the specification every variant
 * matches bit for bit (CMSIS-NN's wrapper/variant layout):
 *  - conv2d_s8_portable below: always compiled, taken on every build without the DSP extension
 *    and for the layers the SIMD path does not cover;
 *  - tc_conv2d_s8_dsp.c (TC_HAVE_DSP, tc_arm_dsp.h: Cortex-M4/M7/M33/M55, or the host emulation
 *    -DTC_EMULATE_DSP): the SIMD path, taken when a window row holds at least 4 contiguous int8
 *    values to multiply, and for shallow pointwise layers (conv2d_dsp_applicable);
 *  - tc_conv2d_s8_fast.c (TC_FAST_PORTABLE, tc_conv.h: no DSP extension and no
 *    -DTC_PORTABLE_SPEC): register-blocked plain C for the cores without SIMD (M0+/M3, RISC-V,
 *    the host), taken for ungrouped layers (tc_conv2d_s8_fast_applicable);
 *  - tc_conv2d_s8_asm.c (TC_DSP_ASM: GNU-compatible compilers for Thumb-2): the hand-written hot
 *    loop of the SIMD path, which has C functions of the same arithmetic for every other build.
 */
#include "tc_conv.h"
#include "tc_dot_s8_dsp.h"

#include <stddef.h>
#include <string.h>

/* Sum of w * (x - in_zp) over the in-image taps of one output pixel, for one output channel.
 * `in_group` points at the first input channel of the channel group of `w_oc`. */
static int32_t conv2d_pixel_acc(const tc_conv2d_params *p, const int8_t *in_group,
                                const int8_t *w_oc, int32_t in_y0, int32_t in_x0) {
    const int32_t group_c = p->in_c / p->groups;
    int32_t acc = 0;
    int32_t ky, kx, ic;
    for (ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = in_y0 + ky * p->dil_h;
        if (iy < 0 || iy >= p->in_h) continue;
        for (kx = 0; kx < p->k_w; ++kx) {
            const int32_t ix = in_x0 + kx * p->dil_w;
            const int8_t *x;
            const int8_t *wk;
            if (ix < 0 || ix >= p->in_w) continue;
            x = in_group + (iy * p->in_w + ix) * p->in_c;
            wk = w_oc + (ky * p->k_w + kx) * group_c;
            for (ic = 0; ic < group_c; ++ic) {
                acc += (int32_t)wk[ic] * ((int32_t)x[ic] - p->in_zp);
            }
        }
    }
    return acc;
}

/* The layers the SIMD variant (tc_conv2d_s8_dsp.c) covers. */
#if TC_HAVE_DSP
static int conv2d_dsp_applicable(const tc_conv2d_params *p, const int32_t *shift) {
#if TC_CONV2D_FIRST
    if (tc_conv2d_s8_first_dsp_applicable(p, shift)) return 1; /* any row length */
#endif
    if (tc_conv2d_s8_shallow_dsp_applicable(p, shift)) return 1;
    if (p->groups == 1 && p->dil_w == 1) return p->k_w * p->in_c >= 4;
    return p->in_c / p->groups >= 4;
}
#endif

/* The portable C99 convolution, kept out of line: on DSP builds its locals stay off the stack
 * of the fast paths, and on the others gcc 12 compiles it about 1.7 times faster standalone
 * than inlined into tc_conv2d_s8 (measured on the Cortex-M3, benchmarks/bench_cortexm.py). */
#if defined(__GNUC__)
#define CONV2D_PORTABLE_ATTR __attribute__((noinline))
#else
#define CONV2D_PORTABLE_ATTR
#endif
static CONV2D_PORTABLE_ATTR void conv2d_s8_portable(const tc_conv2d_params *p, const int8_t *in,
                                                    const int8_t *w, const int32_t *bias,
                                                    const int32_t *mult, const int32_t *shift,
                                                    int8_t *out) {
    int32_t oy, ox, oc;
    int32_t group_c, group_oc, w_oc_size;
    group_c = p->in_c / p->groups;
    group_oc = p->out_c / p->groups;
    w_oc_size = p->k_h * p->k_w * group_c;
    for (oy = 0; oy < p->out_h; ++oy) {
        const int32_t in_y0 = oy * p->stride_h - p->pad_top;
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t in_x0 = ox * p->stride_w - p->pad_left;
            int8_t *y = out + (oy * p->out_w + ox) * p->out_c;
            for (oc = 0; oc < p->out_c; ++oc) {
                const int8_t *in_group = in + (oc / group_oc) * group_c;
                int32_t acc = conv2d_pixel_acc(p, in_group, w + oc * w_oc_size, in_y0, in_x0);
                if (bias != NULL) acc += bias[oc];
                y[oc] = tc_requant_s8_nonneg(acc, mult[oc], shift[oc], p->out_zp, p->act_min,
                                             p->act_max);
            }
        }
    }
}

tc_status tc_conv2d_s8(const tc_conv2d_params *p, const int8_t *in, const int8_t *w,
                       const int32_t *bias, const int32_t *mult, const int32_t *shift,
                       int8_t *out) {
    if (p == NULL || in == NULL || w == NULL || mult == NULL || shift == NULL || out == NULL) {
        return TC_ARG_ERROR;
    }
    if (!tc_conv2d_args_ok(p) ||
        !tc_conv_quant_args_ok(p->in_zp, p->out_zp, p->act_min, p->act_max, mult, shift,
                               p->out_c)) {
        return TC_ARG_ERROR;
    }
#if TC_HAVE_DSP
    if (conv2d_dsp_applicable(p, shift)) {
        tc_conv2d_s8_dsp(p, in, w, bias, mult, shift, out);
        return TC_OK;
    }
#endif
#if TC_FAST_PORTABLE
    if (tc_conv2d_s8_fast_applicable(p)) {
        tc_conv2d_s8_fast(p, in, w, bias, mult, shift, out);
        return TC_OK;
    }
#endif
    conv2d_s8_portable(p, in, w, bias, mult, shift, out);
    return TC_OK;
}
